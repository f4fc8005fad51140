"""datapackage.json: the release as a Frictionless Data Package (v2), from models and manifest.

Bytes and sha256 come from the manifest, so the descriptor states what was published rather
than what a later reader happens to find on disk. `register_parquet_reader` lets frictionless
validate the published data itself, not only the descriptor.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.release.dictionary import ColumnDoc, TableDoc, table_docs
from schemas.registry import ForeignKey

PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
PACKAGE_NAME = "kratom-evidence"
PARQUET_MEDIATYPE = "application/vnd.apache.parquet"
LICENSE = {"name": "MIT", "path": "https://opensource.org/licenses/MIT", "title": "MIT License"}
PARQUET_PLUGIN = "kratom-evidence-parquet"
"""The name `register_parquet_reader` registers with frictionless (to deregister it)."""
CELL_TYPES = ("array", "boolean", "date", "datetime", "integer", "number", "string")


def field_type(arrow_type: pa.DataType) -> str:
    """The Table Schema type of an Arrow type."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "number"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    if pa.types.is_list(arrow_type):
        return "array"
    raise ValueError(f"no Table Schema type for Arrow type {arrow_type}")


def field_descriptor(column: ColumnDoc) -> dict[str, Any]:
    """One Table Schema field with the constraints the model checks."""
    constraints: dict[str, Any] = {"required": not column.nullable}
    if column.unique:
        constraints["unique"] = True
    if column.allowed is not None:
        constraints["enum"] = list(column.allowed)
    if column.pattern is not None:
        constraints["pattern"] = column.pattern
    if column.minimum is not None:
        constraints["minimum"] = column.minimum
    if column.maximum is not None:
        constraints["maximum"] = column.maximum
    field: dict[str, Any] = {"name": column.name, "type": field_type(column.arrow_type)}
    if column.description:
        field["description"] = column.description
    field["constraints"] = constraints
    return field


def expressible(fk: ForeignKey, doc: TableDoc) -> bool:
    """Whether Table Schema can state a foreign key as the release's rules check it.

    The rules skip a key with any null part (SQL's MATCH SIMPLE); Table Schema skips only an
    all-null key (frictionless-py; frictionlessdata/specs#795 is open), so a composite key
    that can be partly null (result_groups' study_id, arm_label: a group tied to no arm)
    would fail valid rows. `kratom-evidence validate` still checks it.
    """
    nullable = {c.name for c in doc.columns if c.nullable}
    return len(fk.columns) == 1 or not nullable & set(fk.columns)


def table_schema(doc: TableDoc) -> dict[str, Any]:
    """The Table Schema of a table: fields, primary key, foreign keys.

    `missingValues` is empty: Parquet tells null from the empty string, and an empty string is
    a value (outcome_results' category of a measure without categories is "").
    """
    schema: dict[str, Any] = {
        "fields": [field_descriptor(c) for c in doc.columns],
        "missingValues": [],
    }
    if doc.spec.primary_key:
        schema["primaryKey"] = list(doc.spec.primary_key)
    foreign_keys = [fk for fk in doc.spec.foreign_keys if expressible(fk, doc)]
    if foreign_keys:
        schema["foreignKeys"] = [
            {
                "fields": list(fk.columns),
                "reference": {"resource": fk.ref_table, "fields": list(fk.ref_columns)},
            }
            for fk in foreign_keys
        ]
    return schema


def resource(doc: TableDoc, entry: dict[str, Any]) -> dict[str, Any]:
    """A Parquet file of the release as a data resource."""
    return {
        "name": doc.name,
        "path": entry["file"],
        "type": "table",
        "format": "parquet",
        "mediatype": PARQUET_MEDIATYPE,
        "bytes": entry["bytes"],
        "hash": f"sha256:{entry['sha256']}",
        "description": doc.spec.description,
        "schema": table_schema(doc),
    }


def build_datapackage(manifest: dict[str, Any]) -> dict[str, Any]:
    """The descriptor of a release; every table of the manifest is one resource."""
    tables = manifest["tables"]
    return {
        "$schema": PROFILE,
        "name": PACKAGE_NAME,
        "title": "Kratom Evidence",
        "description": "Registered studies, outcomes, publications, compounds and an evidence "
        "map on kratom (Mitragyna speciosa) and its alkaloids for addiction treatment.",
        "version": manifest["version"],
        "created": manifest["created_at"],
        "licenses": [LICENSE],
        "contributors": [{"title": "Kratom Evidence contributors", "roles": ["creator"]}],
        "keywords": ["kratom", "mitragynine", "addiction", "clinical trials", "evidence map"],
        "resources": [
            resource(doc, tables[doc.name]) for doc in table_docs() if doc.name in tables
        ],
    }


def parquet_cells(path: str) -> Iterator[list[Any]]:
    """A Parquet file as frictionless cells: the header, then each row as pyarrow reads it.

    Lists stay Python lists and nulls stay None, which is what Table Schema types expect.
    """
    parquet = pq.ParquetFile(path)
    yield parquet.schema_arrow.names
    for batch in parquet.iter_batches():
        for row in batch.to_pylist():
            yield list(row.values())


def register_parquet_reader() -> None:
    """Make frictionless read local Parquet files through `parquet_cells`.

    frictionless 5.21's own Parquet parser goes through pandas, where a list cell becomes a
    numpy array and a null integer a NaN: a valid release would show over a thousand false
    `type-error`s. Call once before `frictionless.validate(".../datapackage.json")`.
    """
    import frictionless

    frictionless.system.register(PARQUET_PLUGIN, _parquet_plugin())


@functools.cache
def _parquet_plugin() -> Any:
    """The plugin, built on first use: importing frictionless costs builds a second."""
    from frictionless import Resource
    from frictionless.system import Parser, Plugin

    class PyarrowParquetParser(Parser):
        """Reads a Parquet resource cell for cell with pyarrow."""

        supported_types = list(CELL_TYPES)

        def read_cell_stream_create(self) -> Iterator[list[Any]]:
            return parquet_cells(str(self.resource.normpath))

    class PyarrowParquetPlugin(Plugin):
        """Takes `format: parquet` resources on local disk; remote ones keep the built-in."""

        def create_parser(self, resource: Resource) -> Parser | None:
            if resource.format == "parquet" and not resource.remote:
                return PyarrowParquetParser(resource)
            return None

    return PyarrowParquetPlugin()

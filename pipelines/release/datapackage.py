"""datapackage.json: the release as a Frictionless Data Package (v2), from models and manifest.

Bytes and sha256 come from the manifest, so the descriptor states what was published rather
than what a later reader happens to find on disk.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.release.dictionary import ColumnDoc, TableDoc, table_docs

PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
PACKAGE_NAME = "kratom-evidence"
PARQUET_MEDIATYPE = "application/vnd.apache.parquet"
LICENSE = {"name": "MIT", "path": "https://opensource.org/licenses/MIT", "title": "MIT License"}


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


def table_schema(doc: TableDoc) -> dict[str, Any]:
    """The Table Schema of a table: fields, primary key, foreign keys."""
    schema: dict[str, Any] = {"fields": [field_descriptor(c) for c in doc.columns]}
    if doc.spec.primary_key:
        schema["primaryKey"] = list(doc.spec.primary_key)
    if doc.spec.foreign_keys:
        schema["foreignKeys"] = [
            {
                "fields": list(fk.columns),
                "reference": {"resource": fk.ref_table, "fields": list(fk.ref_columns)},
            }
            for fk in doc.spec.foreign_keys
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

"""datapackage.json and README.md: generated from the models, valid for frictionless."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import frictionless
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from frictionless.system import Parser, Plugin

from pipelines.release.datapackage import field_type
from schemas import RELEASED
from tests.release.conftest import TwoReleases


class PylistParquetParser(Parser):
    """Reads Parquet with pyarrow's to_pylist: lists stay lists and nulls stay None.

    frictionless 5.21's own Parquet parser goes through pandas, where a list cell is a numpy
    array and a null integer is a NaN it does not recognise, so every list and null-integer cell
    would be a false `type-error`.
    """

    supported_types = ("array", "boolean", "date", "datetime", "integer", "number", "string")

    def read_cell_stream_create(self) -> Iterator[list[Any]]:
        table = pq.read_table(self.resource.normpath)
        yield table.column_names
        for row in table.to_pylist():
            yield list(row.values())


class PylistParquetPlugin(Plugin):
    """Registered ahead of the built-in plugin for `format: parquet` resources."""

    def create_parser(self, resource: frictionless.Resource) -> Parser | None:
        if resource.format == "parquet":
            return PylistParquetParser(resource)
        return None


@pytest.fixture
def pylist_parquet() -> Iterator[None]:
    frictionless.system.register("kratom_pylist_parquet", PylistParquetPlugin())
    yield
    frictionless.system.deregister("kratom_pylist_parquet")


def descriptor(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))


def test_descriptor_is_a_valid_data_package(two_releases: TwoReleases) -> None:
    errors = list(frictionless.Package.metadata_validate(descriptor(two_releases.first)))
    assert [e.message for e in errors] == []


def test_frictionless_validates_every_table_and_key(
    two_releases: TwoReleases, pylist_parquet: None
) -> None:
    report = frictionless.validate(
        two_releases.second / "datapackage.json", skip_errors=["byte-count", "hash-count"]
    )
    problems = report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"])
    assert problems == []
    assert report.valid
    assert {t.name for t in report.tasks} == {t.name for t in RELEASED}


def test_frictionless_catches_a_value_outside_the_enum(
    two_releases: TwoReleases, pylist_parquet: None, tmp_path: Path
) -> None:
    package = descriptor(two_releases.first)
    studies = next(r for r in package["resources"] if r["name"] == "studies")
    table = pq.read_table(two_releases.first / "studies.parquet")
    index = table.schema.get_field_index("design")
    designs = ["not_a_design", *table["design"].to_pylist()[1:]]
    pq.write_table(table.set_column(index, "design", pa.array(designs)), tmp_path / "s.parquet")
    resource = {**studies, "path": "s.parquet", "bytes": None, "hash": None}
    resource = {k: v for k, v in resource.items() if v is not None}
    (tmp_path / "dp.json").write_text(json.dumps({**package, "resources": [resource]}))
    report = frictionless.validate(tmp_path / "dp.json", skip_errors=["foreign-key"])
    assert [(e[0], e[1]) for e in report.flatten(["fieldName", "type"])] == [
        ("design", "constraint-error")
    ]


def test_resources_match_the_manifest(two_releases: TwoReleases) -> None:
    folder = two_releases.first
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    package = descriptor(folder)
    assert package["name"] == "kratom-evidence"
    assert package["version"] == manifest["version"]
    assert package["created"] == manifest["created_at"]
    assert package["$schema"] == "https://datapackage.org/profiles/2.0/datapackage.json"
    resources = {r["name"]: r for r in package["resources"]}
    assert set(resources) == set(manifest["tables"])
    for name, entry in manifest["tables"].items():
        res = resources[name]
        assert res["path"] == f"{name}.parquet"
        assert (res["format"], res["mediatype"]) == ("parquet", "application/vnd.apache.parquet")
        assert res["bytes"] == (folder / res["path"]).stat().st_size == entry["bytes"]
        assert res["hash"] == f"sha256:{entry['sha256']}"
        assert [f["name"] for f in res["schema"]["fields"]] == entry["columns"]


def test_fields_carry_types_descriptions_and_constraints(two_releases: TwoReleases) -> None:
    resources = {r["name"]: r for r in descriptor(two_releases.first)["resources"]}
    studies = resources["studies"]["schema"]
    fields = {f["name"]: f for f in studies["fields"]}
    assert studies["primaryKey"] == ["study_id"]
    assert fields["study_id"]["type"] == "string"
    assert fields["study_id"]["constraints"]["required"] is True
    assert fields["study_id"]["constraints"]["pattern"].startswith("^(NCT\\d{8}|PMID:\\d+")
    assert fields["design"]["constraints"]["enum"][0] == "rct"
    assert fields["enrollment"] == {
        "name": "enrollment",
        "type": "integer",
        "description": "Participants.",
        "constraints": {"required": False, "minimum": 0},
    }
    assert fields["phases"]["type"] == "array"
    assert fields["start_date"]["type"] == "date"
    assert fields["has_results"]["type"] == "boolean"
    assert all(f.get("description") for f in studies["fields"])
    results = {f["name"]: f for f in resources["outcome_results"]["schema"]["fields"]}
    assert results["value"]["type"] == "number"
    assert resources["interventions"]["schema"]["foreignKeys"] == [
        {"fields": ["study_id"], "reference": {"resource": "studies", "fields": ["study_id"]}},
        {
            "fields": ["compound_id"],
            "reference": {"resource": "compounds", "fields": ["compound_id"]},
        },
    ]
    assert "primaryKey" not in resources["quarantine"]["schema"]


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.string(), "string"),
        (pa.int64(), "integer"),
        (pa.float64(), "number"),
        (pa.bool_(), "boolean"),
        (pa.date32(), "date"),
        (pa.list_(pa.string()), "array"),
    ],
)
def test_field_type_from_arrow(arrow_type: pa.DataType, expected: str) -> None:
    assert field_type(arrow_type) == expected


def test_field_type_refuses_an_unmapped_arrow_type() -> None:
    with pytest.raises(ValueError, match="no Table Schema type"):
        field_type(pa.binary())


def test_readme_dictionary_describes_every_column(two_releases: TwoReleases) -> None:
    readme = (two_releases.first / "README.md").read_text(encoding="utf-8")
    manifest = json.loads((two_releases.first / "manifest.json").read_text(encoding="utf-8"))
    assert readme.startswith(f"# Kratom Evidence — release {manifest['version']}\n")
    for spec in RELEASED:
        assert f"### `{spec.name}`" in readme
        assert f"- Rows: {manifest['tables'][spec.name]['rows']}" in readme
        for column in spec.columns:
            assert f"| `{column}` |" in readme
    assert "| `study_id` | `string` | no | Registry id (NCT06072170)" in readme
    assert "- Primary key: `outcome_id`, `group_title`, `param_type`, `category`" in readme
    assert "- Foreign key: `compound_id` → `compounds` (`compound_id`); null allowed" in readme
    assert "one of `rct`, `non_randomised_trial`" in readme
    assert "| `phases` | `list<item: string>` | no |" in readme

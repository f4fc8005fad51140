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

from pipelines.release.datapackage import (
    PARQUET_PLUGIN,
    field_type,
    parquet_cells,
    register_parquet_reader,
)
from schemas import RELEASED
from tests.release.conftest import TwoReleases


@pytest.fixture
def parquet_reader() -> Iterator[None]:
    """Our Parquet reader, as a user registers it (README), removed again afterwards."""
    register_parquet_reader()
    yield
    frictionless.system.deregister(PARQUET_PLUGIN)


def descriptor(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))


def test_descriptor_is_a_valid_data_package(two_releases: TwoReleases) -> None:
    errors = list(frictionless.Package.metadata_validate(descriptor(two_releases.first)))
    assert [e.message for e in errors] == []


def test_frictionless_validates_every_table_and_key(
    two_releases: TwoReleases, parquet_reader: None
) -> None:
    report = frictionless.validate(
        two_releases.second / "datapackage.json", skip_errors=["byte-count", "hash-count"]
    )
    problems = report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"])
    assert problems == []
    assert report.valid
    assert {t.name for t in report.tasks} == {t.name for t in RELEASED}


def _studies_alone(release: Path, folder: Path, studies: pa.Table | None = None) -> Path:
    """A package of the studies table alone (no bytes or hash to check, no foreign keys)."""
    package = descriptor(release)
    resource = next(r for r in package["resources"] if r["name"] == "studies")
    pq.write_table(studies or pq.read_table(release / "studies.parquet"), folder / "s.parquet")
    schema = {k: v for k, v in resource["schema"].items() if k != "foreignKeys"}
    resource = {**resource, "path": "s.parquet", "schema": schema}
    resource = {k: v for k, v in resource.items() if k not in ("bytes", "hash")}
    (folder / "dp.json").write_text(json.dumps({**package, "resources": [resource]}))
    return folder / "dp.json"


def test_frictionless_own_parquet_reader_gives_false_type_errors(
    two_releases: TwoReleases, tmp_path: Path
) -> None:
    """Why the reader ships: without it, list and null-integer cells fail their types, and a
    null float is read as the text 'nan', which also fails a minimum constraint."""
    package = _studies_alone(two_releases.second, tmp_path)
    own = frictionless.validate(package)
    errors = own.flatten(["type", "cell"])
    assert not own.valid and {kind for kind, _ in errors} <= {"type-error", "constraint-error"}
    assert "type-error" in {kind for kind, _ in errors}
    assert {cell for kind, cell in errors if kind == "constraint-error"} <= {"nan"}
    register_parquet_reader()
    try:
        assert frictionless.validate(package).valid
    finally:
        frictionless.system.deregister(PARQUET_PLUGIN)


def test_parquet_cells_keep_lists_and_nulls(tmp_path: Path) -> None:
    table = pa.table(
        {"phases": [["PHASE1", "PHASE2"], []], "enrollment": pa.array([None, 3], pa.int64())}
    )
    pq.write_table(table, tmp_path / "t.parquet")
    assert list(parquet_cells(str(tmp_path / "t.parquet"))) == [
        ["phases", "enrollment"],
        [["PHASE1", "PHASE2"], None],
        [[], 3],
    ]


def test_frictionless_catches_a_value_outside_the_enum(
    two_releases: TwoReleases, parquet_reader: None, tmp_path: Path
) -> None:
    table = pq.read_table(two_releases.first / "studies.parquet")
    index = table.schema.get_field_index("design")
    designs = ["not_a_design", *table["design"].to_pylist()[1:]]
    studies = table.set_column(index, "design", pa.array(designs))
    report = frictionless.validate(_studies_alone(two_releases.first, tmp_path, studies))
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


def test_release_readme_names_every_file_it_ships(two_releases: TwoReleases) -> None:
    readme = (two_releases.second / "README.md").read_text(encoding="utf-8")
    files = next(line for line in readme.splitlines() if line.startswith("Files:"))
    others = [p.name for p in two_releases.second.iterdir() if p.suffix != ".parquet"]
    others.remove("README.md")  # the file being read
    assert "`report.html`" in files and "`quarantine.parquet`" in files
    assert [name for name in sorted(others) if f"`{name}`" not in files] == []


def test_release_readme_frictionless_example_runs_as_written(
    two_releases: TwoReleases, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (two_releases.second / "README.md").read_text(encoding="utf-8")
    example = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(two_releases.second)
    try:
        exec(compile(example, "README.md", "exec"), {})
    finally:
        frictionless.system.deregister(PARQUET_PLUGIN)
    assert capsys.readouterr().out == "True\n"

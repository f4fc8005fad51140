"""The three evidence tables in real releases: every facts row published or quarantined, a bad row
quarantined with its reason, and datapackage.json, the data dictionary, `validate`, `diff` and
the record history covering them.

Two builds of the bundled snapshot into one temporary data dir: the first with the project's
data/reference/, the second with an edited copy in which a curator changed one value and added a
row whose percentage is above 100. The Parquet files are read back.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import paths
from pipelines.build import build
from pipelines.cli import main
from pipelines.normalize.evidence_tables import EVIDENCE_TABLES
from pipelines.release.describe import render_sums
from pipelines.release.diff import diff_releases
from pipelines.release.publish import DataDir, write_parquet
from pipelines.release.validate import validate_release
from schemas import TABLES_BY_NAME

FACTS = paths.PROJECT_ROOT.parent / "shared" / "facts"
FACTS_ROWS = {"product_composition": 37, "interaction_effects": 37, "safety_signals": 32}
"""Rows of the three facts files (../shared/facts/README.md)."""
BAD_ROW = "pc-900"
CHANGED_ROW = "pc-003"


@dataclass(frozen=True)
class EditedReleases:
    """A data dir with a release from the project's reference and one from an edited copy."""

    data_dir: Path
    first: Path
    second: Path
    reference: Path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def edit_reference(reference: Path) -> None:
    """Change pc-003's high value and add a copy of pc-001 claiming 150 %."""
    path = reference / "product_composition.csv"
    rows = _rows(path)
    for row in rows:
        if row["composition_id"] == CHANGED_ROW:
            row["value_high"] = "63.0"
    (template,) = [r for r in rows if r["composition_id"] == "pc-001"]
    rows.append({**template, "composition_id": BAD_ROW, "value_high": "150"})
    _write(path, rows)


@pytest.fixture(scope="module")
def edited(tmp_path_factory: pytest.TempPathFactory, bundled_build: Path) -> EditedReleases:
    root = tmp_path_factory.mktemp("evidence")
    data_dir = Path(shutil.copytree(bundled_build, root / "data"))
    reference = Path(shutil.copytree(paths.REFERENCE_DIR, root / "reference"))
    edit_reference(reference)
    build(paths.BUNDLED_SNAPSHOT, DataDir(data_dir), None, "2026-12-05T00:00:00Z", reference)
    releases = data_dir / "releases"
    return EditedReleases(data_dir, releases / "2026.11.25", releases / "2026.11.25.1", reference)


def _quarantined(folder: Path, table: str) -> list[dict[str, object]]:
    rows = pq.read_table(folder / "quarantine.parquet").to_pylist()
    return [r for r in rows if r["table_name"] == table]


@pytest.mark.slow
def test_every_facts_row_is_published_or_quarantined_with_a_reason(
    edited: EditedReleases,
) -> None:
    for folder, reference in (
        (edited.first, paths.REFERENCE_DIR),
        (edited.second, edited.reference),
    ):
        for spec in EVIDENCE_TABLES:
            rows_in = _rows(reference / spec.file)
            published = pq.read_table(folder / f"{spec.name}.parquet").num_rows
            quarantined = _quarantined(folder, spec.name)
            assert published + len(quarantined) == len(rows_in), (folder.name, spec.name)
            assert all(r["reason"] and r["raw"] for r in quarantined)
            ids = {r[spec.key] for r in rows_in}
            published_ids = set(
                pq.read_table(folder / f"{spec.name}.parquet")[spec.key].to_pylist()
            )
            assert published_ids | {r["record_key"] for r in quarantined} == ids
    if FACTS.is_dir():
        for spec in EVIDENCE_TABLES:
            assert len(_rows(FACTS / spec.file)) == FACTS_ROWS[spec.name]
            assert len(_rows(paths.REFERENCE_DIR / spec.file)) == FACTS_ROWS[spec.name]


def test_a_row_breaking_a_range_is_quarantined_naming_the_check(edited: EditedReleases) -> None:
    published = pq.read_table(edited.second / "product_composition.parquet")
    assert BAD_ROW not in published["composition_id"].to_pylist()
    (bad,) = [
        r for r in _quarantined(edited.second, "product_composition") if r["record_key"] == BAD_ROW
    ]
    assert "percent_within_0_100" in str(bad["reason"])
    assert float(json.loads(str(bad["raw"]))["value_high"]) == 150.0


def test_published_rows_keep_their_page_quote_and_printed_value(edited: EditedReleases) -> None:
    for spec in EVIDENCE_TABLES:
        table = pq.read_table(edited.first / f"{spec.name}.parquet").to_pylist()
        assert table and all(r["source_url"] and r["quote"] and r["source_kind"] for r in table)
    (k51,) = [
        r
        for r in pq.read_table(edited.first / "interaction_effects.parquet").to_pylist()
        if r["interaction_id"] == "ie-001"
    ]
    assert (k51["perpetrator_compound_id"], k51["victim_compound_id"]) == ("kratom", "midazolam")
    assert (k51["study_id"], k51["publication_id"]) == ("NCT04392011", "PMID:36924284")


def test_papers_no_source_returned_are_stub_publications(edited: EditedReleases) -> None:
    publications = {
        r["publication_id"]: r
        for r in pq.read_table(edited.first / "publications.parquet").to_pylist()
    }
    cited = set()
    for spec in EVIDENCE_TABLES:
        cited |= set(
            pq.read_table(edited.first / f"{spec.name}.parquet")["publication_id"].to_pylist()
        )
    cited.discard(None)
    assert cited <= set(publications)
    stub = publications["DOI:10.1055/a-1795-5876"]  # Manwill 2022: in no literature source
    assert (stub["is_stub"], stub["doi"], stub["sources"]) == (True, "10.1055/a-1795-5876", [])


def test_datapackage_and_dictionary_describe_the_evidence_tables(edited: EditedReleases) -> None:
    package = json.loads((edited.first / "datapackage.json").read_text(encoding="utf-8"))
    resources = {r["name"]: r for r in package["resources"]}
    readme = (edited.first / "README.md").read_text(encoding="utf-8")
    for spec in EVIDENCE_TABLES:
        schema = resources[spec.name]["schema"]
        assert schema["primaryKey"] == [spec.key]
        assert {fk["reference"]["resource"] for fk in schema["foreignKeys"]} >= {
            "compounds",
            "publications",
        }
        fields = {f["name"]: f for f in schema["fields"]}
        assert list(fields) == TABLES_BY_NAME[spec.name].columns
        assert all(f.get("description") for f in fields.values())
        assert spec.name in readme
        assert all(f"`{column}`" in readme for column in fields)


def test_validate_passes_and_catches_a_broken_evidence_row(
    edited: EditedReleases, tmp_path: Path
) -> None:
    assert validate_release(edited.first) == []
    assert validate_release(edited.second) == []
    copy = Path(shutil.copytree(edited.first, tmp_path / "release"))
    table = pq.read_table(copy / "interaction_effects.parquet")
    index = table.schema.get_field_index("ci_high")
    high = table["ci_high"].to_pylist()
    high[0] = 1.0  # below the estimate 1.39
    table = table.set_column(index, "ci_high", pa.array(high, pa.float64()))
    digest = write_parquet(table, copy / "interaction_effects.parquet")
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["tables"]["interaction_effects"].update(
        sha256=digest, bytes=(copy / "interaction_effects.parquet").stat().st_size
    )
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (copy / "SHA256SUMS").write_text(render_sums(copy), encoding="utf-8")
    problems = validate_release(copy)
    assert problems and all(p.startswith("interaction_effects.parquet: ") for p in problems)
    assert any("ci_low_le_value_le_ci_high" in p for p in problems)


def test_diff_and_history_follow_the_evidence_rows(
    edited: EditedReleases, capsys: pytest.CaptureFixture[str]
) -> None:
    diff = {t.table: t for t in diff_releases(edited.first, edited.second).tables}
    composition = diff["product_composition"]
    assert (composition.added, composition.removed) == ((), ())
    assert [(c.key, c.columns) for c in composition.changed] == [
        ((CHANGED_ROW,), ("value_high", "value_high_mg_per_g"))
    ]
    assert diff["interaction_effects"].unchanged and diff["safety_signals"].unchanged
    changes = (edited.second / "CHANGES.md").read_text(encoding="utf-8")
    assert "## product_composition" in changes
    versions = pq.read_table(edited.second / "record_versions.parquet").to_pylist()
    assert {
        (r["record_type"], r["record_id"], r["change"], tuple(r["changed_fields"]))
        for r in versions
        if r["version"] == "2026.11.25.1"
    } == {("composition", CHANGED_ROW, "changed", ("value_high", "value_high_mg_per_g"))}
    first = {(r["record_type"], r["change"]) for r in versions if r["version"] == "2026.11.25"}
    assert {("composition", "added"), ("interaction", "added"), ("safety_signal", "added")} <= first
    args = ["diff", "2026.11.25", "2026.11.25.1", "--data-dir", str(edited.data_dir)]
    assert main(args) == 0
    assert ["product_composition", "0", "0", "1"] in [
        line.split() for line in capsys.readouterr().out.splitlines()
    ]

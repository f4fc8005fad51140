"""Diffs by primary key: pure comparisons, then two real releases through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from pipelines.cli import main
from pipelines.release.diff import (
    ChangedRow,
    diff_keyed,
    diff_multiset,
    diff_releases,
    render_markdown,
)
from schemas import TABLES_BY_NAME
from tests.release.conftest import (
    DELETED_STUDY,
    EDITED_STUDY,
    FIRST_VERSION,
    SECOND_VERSION,
    TwoReleases,
)


def compared(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A DuckDB session holding the two tables as `old` and `new`."""
    con = duckdb.connect()
    con.register("old", pa.Table.from_pylist(old))
    con.register("new", pa.Table.from_pylist(new))
    return con


def test_diff_keyed_names_only_the_columns_that_differ() -> None:
    spec = TABLES_BY_NAME["conditions"]
    old = [
        {"study_id": "A", "condition": "x", "condition_category": "pain", "mesh_term": None},
        {"study_id": "B", "condition": "y", "condition_category": "pain", "mesh_term": "Pain"},
    ]
    new = [
        {"study_id": "A", "condition": "x", "condition_category": "other", "mesh_term": "X"},
        {"study_id": "C", "condition": "z", "condition_category": "pain", "mesh_term": None},
    ]
    diff = diff_keyed(compared(old, new), spec, "old", "new")
    assert diff.added == (("C", "z"),)
    assert diff.removed == (("B", "y"),)
    assert [(c.key, c.columns) for c in diff.changed] == [
        (("A", "x"), ("condition_category", "mesh_term"))
    ]


def test_diff_keyed_list_values_compare_by_content() -> None:
    spec = TABLES_BY_NAME["compounds"]
    old = [{"compound_id": "m", "synonyms": ["a", "b"]}]
    new = [{"compound_id": "m", "synonyms": ["a", "b"]}]
    assert diff_keyed(compared(old, new), spec, "old", "new").unchanged
    changed = [{"compound_id": "m", "synonyms": ["b", "a"]}]
    assert diff_keyed(compared(old, changed), spec, "old", "new").changed == (
        ChangedRow(("m",), ("synonyms",)),
    )


def test_diff_multiset_counts_duplicate_rows_of_a_keyless_table() -> None:
    columns = ["table_name", "reason"]
    old = [{"table_name": "t", "reason": "r"}]
    new = [{"table_name": "t", "reason": "r"}, {"table_name": "t", "reason": "r"}]
    diff = diff_multiset(compared(old, new), "quarantine", columns, "old", "new")
    assert diff.added == (("t", "r"),)
    assert diff.removed == ()
    backwards = diff_multiset(compared(old, new), "quarantine", columns, "new", "old")
    assert backwards.removed == (("t", "r"),)


def test_diff_of_two_releases_by_primary_key(two_releases: TwoReleases) -> None:
    diff = diff_releases(two_releases.first, two_releases.second)
    by_table = {t.table: t for t in diff.tables}
    studies = by_table["studies"]
    assert studies.added == ()
    assert studies.removed == ((DELETED_STUDY,),)
    assert [(c.key, c.columns) for c in studies.changed] == [((EDITED_STUDY,), ("overall_status",))]
    assert {k[0] for k in by_table["conditions"].removed} == {DELETED_STUDY}
    assert {k[0] for k in by_table["interventions"].removed} == {DELETED_STUDY}
    assert by_table["publications"].unchanged
    assert by_table["quarantine"].unchanged
    assert (diff.old_version, diff.new_version) == (two_releases.first.name, "2026.11.25.1")


def test_diff_of_a_release_with_itself_is_empty(two_releases: TwoReleases) -> None:
    diff = diff_releases(two_releases.first, two_releases.first)
    assert all(t.unchanged for t in diff.tables)
    assert "No row was added, removed or changed." in render_markdown(diff)


def test_cli_diff_prints_per_table_summary(
    two_releases: TwoReleases, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["diff", two_releases.first.name, two_releases.second.name]
    assert main([*args, "--data-dir", str(two_releases.data_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2026.11.25 -> 2026.11.25.1"
    assert lines[1].split() == ["table", "added", "removed", "changed"]
    assert ["studies", "0", "1", "1"] in [line.split() for line in lines]


def test_cli_diff_json_lists_keys_and_changed_columns(
    two_releases: TwoReleases, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["diff", two_releases.first.name, two_releases.second.name, "--json"]
    assert main([*args, "--data-dir", str(two_releases.data_dir)]) == 0
    studies = json.loads(capsys.readouterr().out)["tables"]["studies"]
    assert (studies["added"], studies["removed"], studies["changed"]) == (0, 1, 1)
    assert studies["removed_keys"] == [{"study_id": DELETED_STUDY}]
    assert studies["changed_rows"] == [
        {"key": {"study_id": EDITED_STUDY}, "columns": ["overall_status"]}
    ]


def test_cli_diff_unknown_version_is_one_line_error(
    two_releases: TwoReleases, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["diff", two_releases.first.name, "1999.01.01", "--data-dir", str(two_releases.data_dir)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unknown release version '1999.01.01'" in err[0]


def test_cli_diff_reads_a_version_without_a_folder_from_the_catalog(
    two_releases: TwoReleases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another machine's release has no folder here: the catalog has it (time travel)."""
    data_dir = Path(shutil.copytree(two_releases.data_dir, tmp_path / "data"))
    shutil.rmtree(data_dir / "releases" / FIRST_VERSION)
    args = ["diff", FIRST_VERSION, SECOND_VERSION, "--json", "--data-dir", str(data_dir)]
    assert main(args) == 0
    expected = diff_releases(two_releases.first, two_releases.second).to_dict()
    assert json.loads(capsys.readouterr().out) == expected


def test_changes_md_of_second_release_names_the_changes(two_releases: TwoReleases) -> None:
    changes = (two_releases.second / "CHANGES.md").read_text(encoding="utf-8")
    assert changes.startswith("# Changes in 2026.11.25.1\n")
    assert "Compared with release 2026.11.25" in changes
    assert "| studies | 0 | 1 | 1 |" in changes
    assert f"- `{DELETED_STUDY}`" in changes
    assert f"- `{EDITED_STUDY}`: overall_status" in changes


def test_changes_md_of_first_release_says_so(two_releases: TwoReleases) -> None:
    changes = (two_releases.first / "CHANGES.md").read_text(encoding="utf-8")
    assert changes == (
        "# Changes in 2026.11.25\n\nFirst release: there is no previous version to compare.\n"
    )


def test_diff_treats_a_missing_table_file_as_empty(
    two_releases: TwoReleases, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    diff = diff_releases(empty, two_releases.first)
    studies = next(t for t in diff.tables if t.table == "studies")
    assert len(studies.added) > 0 and not studies.removed

"""A data dir keeps working after it is moved or copied: the lake follows its folder.

DuckLake stores the absolute data path in its catalog; a researcher who downloads or moves a
whole data dir must still be able to query it, time-travel in it and publish into it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.release import catalog
from tests.cli_query import query_json
from tests.release._snapshots import DROPPED_STUDY, variant_snapshot

pytestmark = pytest.mark.slow

BASE = "2026.11.25"


@contextmanager
def _cwd(folder: Path) -> Iterator[None]:
    """The documented SQL uses paths relative to the analyst's working directory."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def test_moved_then_copied_data_dir_reads_time_travels_and_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bundled_build: Path
) -> None:
    first = Path(shutil.copytree(bundled_build, tmp_path / "first"))
    moved = tmp_path / "moved"
    first.rename(moved)

    count = "SELECT count(*) AS n FROM studies"
    bundled = query_json(moved, count, capsys)
    assert bundled == [{"n": 79}]

    variant = variant_snapshot(tmp_path / "variant")
    assert main(["build", "--snapshot", str(variant), "--data-dir", str(moved)]) == 0
    assert (moved / "releases" / f"{BASE}.1").is_dir()
    new_files = sorted((moved / "lake" / "files").rglob("*.parquet"))
    assert new_files, "the second release must write its data files inside the moved lake"

    copied = tmp_path / "copied"
    shutil.copytree(moved, copied)
    shutil.rmtree(moved)
    latest = query_json(copied, count, capsys)
    old = query_json(copied, count, capsys, "--release-version", BASE)
    assert latest == [{"n": 78}]
    assert old == [{"n": 79}]
    dropped = f"SELECT count(*) AS n FROM studies WHERE study_id = '{DROPPED_STUDY}'"
    assert query_json(copied, dropped, capsys, "--release-version", BASE) == [{"n": 1}]


SQL_PAGES = ("README.md", "docs/releases-and-time-travel.md")
"""The README's first DuckDB query, and the docs page's with time travel to an older release."""


def _sql_statements(page: str) -> list[str]:
    """The statements of the page's "from any DuckDB session" block, in order."""
    text = (paths.PROJECT_ROOT / page).read_text(encoding="utf-8")
    block = text.split("```sql\nLOAD ", 1)[1].split("```", 1)[0]
    lines = [line for line in ("LOAD " + block).splitlines() if not line.startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _run_statements(page: str, workdir: Path) -> list[list[tuple[object, ...]]]:
    """Each statement's rows, run as an analyst in `workdir` would (the LOAD path filled in)."""
    con = duckdb.connect()
    results = []
    with _cwd(workdir):
        for statement in _sql_statements(page):
            if statement.startswith("LOAD "):
                statement = f"LOAD '{catalog.ducklake_extension_path()}'"
            results.append(con.execute(statement).fetchall())
    return results


def test_attach_sql_of_readme_and_docs_reads_a_moved_data_dir(
    tmp_path: Path, bundled_build: Path
) -> None:
    built = Path(shutil.copytree(bundled_build, tmp_path / "built"))
    variant = variant_snapshot(tmp_path / "variant")
    assert main(["build", "--snapshot", str(variant), "--data-dir", str(built)]) == 0
    workdir = tmp_path / "analyst"
    workdir.mkdir()
    built.rename(workdir / "data")

    answers = {page: _run_statements(page, workdir) for page in SQL_PAGES}
    for page, results in answers.items():
        versions = [row[0] for row in results[3]]
        assert versions == [f"{BASE}.1", BASE], page
        studies = [row[0] for row in results[4]]
        assert studies and DROPPED_STUDY not in studies, page
    older = answers["docs/releases-and-time-travel.md"]
    assert older[-1] == [(79,)]

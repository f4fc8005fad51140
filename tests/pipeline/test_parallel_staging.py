"""ClinicalTrials.gov's pages staged in two parts at once give one pass's tables, row for row.

Real-shape pages (copies of the real v2 samples beside the repository, `bench/
generate_realshape.py`) are dealt to parts in runs of files; the step's thread stages the
first run into a real DuckDB warehouse while a second thread stages the other into a file of
its own, whose rows are then appended. A study on pages of both runs is decided by one pass.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import orjson
import pytest

from pipelines import setwise, shards, snapshot
from pipelines.build import build
from pipelines.release.publish import DataDir
from pipelines.sources.base import SnapshotFormatError
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import ensure_schemas
from tests.pipeline.test_recorded_hashes import release_hashes
from tests.scripts import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "ctgov"
PAGES, PER_PAGE = 4, 15

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples absent")


def _generator() -> ModuleType:
    return load_script(REPO_ROOT / "bench" / "generate_realshape.py")


def realshape_pages(out: Path, repeat: bool = False) -> Path:
    """A snapshot of PAGES list pages of real-shape studies; with `repeat`, the last page also
    holds the first page's first study unchanged and its second study with a changed title."""
    generator = _generator()
    stream = generator.iter_studies(PAGES * PER_PAGE, generator.load_templates(SAMPLES))
    pages = [[orjson.loads(next(stream)) for _ in range(PER_PAGE)] for _ in range(PAGES)]
    if repeat:
        changed = orjson.loads(orjson.dumps(pages[0][1]))
        changed["protocolSection"]["identificationModule"]["briefTitle"] = "Changed title"
        pages[-1] += [pages[0][0], changed]
    folder = out / "clinicaltrials"
    folder.mkdir(parents=True)
    for number, studies in enumerate(pages, start=1):
        path = folder / f"page-{number:05d}.json"
        path.write_bytes(orjson.dumps({"studies": studies}))
    generator.write_info(out, PAGES * PER_PAGE, SAMPLES, f"{PAGES} list pages")
    return out


def staged_tables(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[list[tuple], list[tuple]]]:
    """Every staging table: its columns and types, and its rows in stored order."""
    names = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' "
        "ORDER BY table_name"
    ).fetchall()
    return {
        name: (
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'staging' AND table_name = ? ORDER BY ordinal_position",
                [name],
            ).fetchall(),
            con.execute(f'SELECT * FROM staging."{name}"').fetchall(),
        )
        for (name,) in names
    }


def _one_pass(snap: Path, database: Path) -> tuple[StageStats, dict]:
    con = duckdb.connect(str(database))
    ensure_schemas(con)
    stats = stage_source(con, snap, "clinicaltrials")
    tables = staged_tables(con)
    con.close()
    return stats, tables


def _two_parts(snap: Path, database: Path) -> tuple[StageStats, dict]:
    """Staged by `stage_here` in two parts at once."""
    con = duckdb.connect(str(database))
    ensure_schemas(con)
    stats = shards.stage_here(con, snap, "clinicaltrials", database, 2, {"threads": "1"})
    tables = staged_tables(con)
    con.close()
    return stats, tables


def _passes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Each `stage_source` call in this process: by which thread, and the part it stages
    (None: the whole source)."""
    passes: list[tuple[str, Any]] = []
    real = shards.stage_source

    def counted(*args: Any) -> StageStats:
        passes.append((threading.current_thread().name, args[3] if len(args) > 3 else None))
        return real(*args)

    monkeypatch.setattr(shards, "stage_source", counted)
    return passes


def test_pages_are_dealt_in_runs_of_files_of_about_equal_size(tmp_path: Path) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    parts = snapshot.file_shards(snap, "clinicaltrials", 2)
    names = [sorted(part.files or ()) for part in parts]
    assert names == [
        ["clinicaltrials/page-00001.json", "clinicaltrials/page-00002.json"],
        ["clinicaltrials/page-00003.json", "clinicaltrials/page-00004.json"],
    ]
    assert len(snapshot.file_shards(snap, "clinicaltrials", 9)) == PAGES  # no empty part
    assert [p.name for p in snapshot.shard_files(snap, "clinicaltrials", parts[1])] == [
        "page-00003.json",
        "page-00004.json",
    ]


def test_two_parts_at_once_stage_the_same_tables_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    one, one_tables = _one_pass(snap, tmp_path / "one.duckdb")
    passes = _passes(monkeypatch)
    two, two_tables = _two_parts(snap, tmp_path / "two.duckdb")

    assert two == one and one.staged == PAGES * PER_PAGE
    assert two_tables == one_tables
    assert any(rows for _, rows in one_tables.values())
    here = threading.current_thread().name
    # this thread staged the first part, another thread the second, each its files only
    assert sorted(thread == here for thread, _ in passes) == [False, True]
    assert all(shard.files for _, shard in passes)
    assert passes[0][1].files.isdisjoint(passes[1][1].files)
    assert not any((tmp_path / "two.shards").iterdir())


def test_the_combine_appends_two_tables_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    _, one_tables = _one_pass(snap, tmp_path / "one.duckdb")
    threads: dict[str, set[str]] = {}
    real = shards._append

    def recorded(con: duckdb.DuckDBPyConnection, main: str, alias: str, table: str) -> None:
        threads.setdefault(threading.current_thread().name, set()).add(table)
        real(con, main, alias, table)

    monkeypatch.setattr(shards, "_append", recorded)
    _, two_tables = _two_parts(snap, tmp_path / "two.duckdb")

    assert two_tables == one_tables
    assert len(threads) == shards.APPEND_TABLES  # each table appended by one of two threads
    assert set.union(*threads.values()) == {t for t in one_tables if "quarantine" not in t}


def test_a_study_on_pages_of_both_parts_is_decided_as_by_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = realshape_pages(tmp_path / "snapshot", repeat=True)
    one, one_tables = _one_pass(snap, tmp_path / "one.duckdb")
    passes = _passes(monkeypatch)
    two, two_tables = _two_parts(snap, tmp_path / "two.duckdb")

    assert (one.duplicates, one.quarantined) == (1, 1)
    assert two == one
    assert two_tables == one_tables
    # the two parts, then the whole source again in one pass
    assert [shard is None for _, shard in passes] == [False, False, True]
    columns, rows = one_tables["clinicaltrials__quarantine"]
    (row,) = rows
    reason = row[[name for name, _ in columns].index("reason")]
    assert "appears again with different content" in reason


def test_a_bad_page_in_the_second_part_stops_staging_naming_it(tmp_path: Path) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    (snap / "clinicaltrials" / "page-00004.json").write_bytes(b'{"studies": [')
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schemas(con)
    with pytest.raises(SnapshotFormatError, match=r"page-00004\.json"):
        shards.stage_here(con, snap, "clinicaltrials", tmp_path / "w.duckdb", 2)
    assert not any((tmp_path / "w.shards").iterdir())


def test_a_build_staging_on_one_cursor_publishes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default build stages a batch's statements on two cursors side by side: the same
    release as one cursor gives."""
    snap = realshape_pages(tmp_path / "snapshot")
    created = "2026-11-25T00:00:00Z"
    build(snap, DataDir(tmp_path / "two"), created_at=created)
    monkeypatch.setattr(setwise, "STATEMENT_CURSORS", 1)
    build(snap, DataDir(tmp_path / "one"), created_at=created)
    assert release_hashes(tmp_path / "two") == release_hashes(tmp_path / "one")

"""The record-id uniqueness check of the release history, in passes, under a memory limit.

At 560 000 studies the publish session (256MB) ran out of memory in one statement:
`GROUP BY _rid` over the 19 million outcome_results ids (1.6 GB of ids), which DuckDB's hash
aggregate could not finish under 256MB or 512MB however much it spilled. The check now groups
the ids in passes by hash. That failure needs those 19 million ids (bench/README.md, h5r); at
test size DuckDB fails, or not, on fixed allocations instead, so these tests run the passes
on a million real-shape ids under 80MB and check that they still find a repeated id.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.release import history

ROWS = 1_000_000
MEMORY = "80MB"


def _ids_file(folder: Path, duplicate: bool = False) -> str:
    """A Parquet file of ROWS outcome_results keys shaped like the registry's (about 90
    bytes an id), the first row twice when `duplicate`."""
    path = folder / "outcome_results.parquet"
    rows = (
        "SELECT 'NCT9' || lpad(CAST(i // 20 AS VARCHAR), 7, '0') || ':primary:' || (i % 20) "
        "AS outcome_id, 'Group ' || repeat('g', 60) || (i % 3) AS group_title, "
        f"'MEAN' AS param_type, 'all' AS category FROM range({ROWS}) t(i)"
    )
    if duplicate:
        rows += f" UNION ALL ({rows} LIMIT 1)"
    duckdb.execute(f"COPY ({rows}) TO '{path}' (FORMAT parquet)")
    return f"read_parquet('{path}')"


def _session(folder: Path) -> duckdb.DuckDBPyConnection:
    """A session like the publish step's: a fixed memory limit and a spill folder."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{MEMORY}'")
    con.execute(f"SET temp_directory = '{folder / 'spill'}'")
    return con


def _prepare_history(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Run the history's preparation (record ids and their check) on one table; the
    history's rows are not read."""
    current = history.Scans("2026.01.01", {"outcome_results": source})
    next(history.history_batches(con, None, current, "2026.01.01"))


def test_the_check_in_passes_fits_the_same_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "IDS_PER_PASS", 250_000)
    _prepare_history(_session(tmp_path), _ids_file(tmp_path))


def test_the_check_in_passes_still_finds_a_repeated_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "IDS_PER_PASS", 250_000)
    with pytest.raises(ValueError, match="not unique"):
        _prepare_history(_session(tmp_path), _ids_file(tmp_path, duplicate=True))

"""The record-id check of the release history on a large sorted stream.

Two rows of a release under one record id would merge two records' histories. The check
used to GROUP BY every id (at 560 000 studies in passes, to fit the publish session's memory:
bench/README.md, h5r); it now compares each row of the sorted stream with the one before,
so a repeated id must be found wherever the stream's batches cut it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.release import history
from pipelines.release.publish import PUBLISH_MEMORY

ROWS = 300_000


def _ids_file(folder: Path, repeated: int | None = None) -> str:
    """A Parquet file of ROWS outcome_results keys shaped like the registry's (about 90
    bytes an id), in the order of their record ids; row `repeated` (if any) twice."""
    path = folder / "outcome_results.parquet"
    rows = (
        "SELECT 'NCT9' || lpad(CAST(i // 20 AS VARCHAR), 7, '0') || ':primary:' "
        "|| lpad(CAST(i % 20 AS VARCHAR), 2, '0') "
        "AS outcome_id, 'Group ' || repeat('g', 60) || (i % 3) AS group_title, "
        f"'MEAN' AS param_type, 'all' AS category FROM range({ROWS}) t(i)"
    )
    if repeated is not None:
        rows += f" UNION ALL ({rows} OFFSET {repeated} LIMIT 1)"
    duckdb.execute(f"COPY ({rows}) TO '{path}' (FORMAT parquet)")
    return f"read_parquet('{path}')"


def _history(folder: Path, source: str) -> int:
    """The first release's record_versions of one table, read in a session like the publish
    step's (its memory limit, a spill folder); returns its rows."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{PUBLISH_MEMORY}'")
    con.execute(f"SET temp_directory = '{folder / 'spill'}'")
    current = history.Scans("2026.01.01", {"outcome_results": source})
    name, versions = next(history.history_batches(con, None, current, "2026.01.01"))
    assert name == history.RECORD_VERSIONS
    return sum(batch.num_rows for batch in versions)


def test_distinct_ids_pass(tmp_path: Path) -> None:
    assert _history(tmp_path, _ids_file(tmp_path)) == ROWS


@pytest.mark.parametrize("repeated", [0, history.ROWS_PER_BATCH - 1, ROWS - 1])
def test_a_repeated_id_is_found_wherever_the_batches_cut(tmp_path: Path, repeated: int) -> None:
    """Row `repeated` twice: the first id, the pair the first two batches split, the last."""
    with pytest.raises(ValueError, match="not unique"):
        _history(tmp_path, _ids_file(tmp_path, repeated))

"""The record-id check of the release history on a large sorted stream.

Two rows of a release under one record id would merge two records' histories. The check
used to GROUP BY every id (at 560 000 studies in passes, to fit the publish session's memory:
bench/README.md, h5r); it now compares each row of the sorted stream with the one before,
so a repeated id must be found wherever the stream's batches cut it.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.release import history
from pipelines.release.publish import PUBLISH_MEMORY

ROWS = 300_000


def _ids_file(folder: Path, repeated: int | None = None, beside: bool = True) -> str:
    """A Parquet file of ROWS outcome_results keys shaped like the registry's (about 90
    bytes an id), in the order of their record ids; row `repeated` (if any) twice, the copy
    `beside` it or at the end (too far out of order to be sorted on the way)."""
    path = folder / "outcome_results.parquet"
    rows = (
        "SELECT 'NCT9' || lpad(CAST(i // 20 AS VARCHAR), 7, '0') || ':primary:' "
        "|| lpad(CAST(i % 20 AS VARCHAR), 2, '0') "
        "AS outcome_id, 'Group ' || repeat('g', 60) || (i % 3) AS group_title, "
        f"'MEAN' AS param_type, 'all' AS category FROM range({ROWS}) t(i)"
    )
    if repeated is not None:
        rows += f" UNION ALL ({rows} OFFSET {repeated} LIMIT 1)"
        if beside:
            rows = f"SELECT * FROM ({rows}) ORDER BY ALL"
    duckdb.execute(f"COPY ({rows}) TO '{path}' (FORMAT parquet)")
    return f"read_parquet('{path}')"


def _history(folder: Path, source: str) -> int:
    """The first release's record_versions of one table, read in a session like the publish
    step's (its memory limit, a spill folder); returns its rows."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{PUBLISH_MEMORY}'")
    con.execute(f"SET temp_directory = '{folder / 'spill'}'")
    current = history.Scans("2026.01.01", {"outcome_results": source})
    written = history.written_history(
        con, None, current, "2026.01.01", lambda _, stream: sum(b.num_rows for b in stream)
    )
    return written[history.RECORD_VERSIONS]


def test_distinct_ids_pass(tmp_path: Path) -> None:
    assert _history(tmp_path, _ids_file(tmp_path)) == ROWS


@pytest.mark.parametrize("beside", [True, False], ids=["sorted_on_the_way", "sorted_in_sql"])
@pytest.mark.parametrize("repeated", [0, history.ROWS_PER_BATCH - 1, ROWS - 1])
def test_a_repeated_id_is_found_wherever_the_batches_cut(
    tmp_path: Path, repeated: int, beside: bool
) -> None:
    """Row `repeated` twice: the first id, the pair the first two batches split, the last;
    the copy beside it (sorted on the way) or at the end (sorted by DuckDB)."""
    with pytest.raises(ValueError, match="not unique"):
        _history(tmp_path, _ids_file(tmp_path, repeated, beside))


def _batches(ids: list[str], size: int) -> list[pa.Array]:
    return [pa.array(ids[i : i + size], pa.string()) for i in range(0, len(ids), size)]


@pytest.mark.parametrize("seed", range(6))
def test_ids_out_of_order_within_a_window_are_sorted_on_the_way(seed: int) -> None:
    """Each id moved at most `reach` places from its sorted place, `reach` under a batch: the
    ids come out sorted, in ascending chunks, none held back past the end."""
    rng = random.Random(seed)
    ids = sorted(f"NCT9{n:07d}:R{rng.randint(1, 12)}|{n}" for n in range(2_000))
    reach, size = rng.randint(1, 40), rng.randint(41, 300)
    shuffled = list(ids)
    for start in range(0, len(ids), reach):
        window = shuffled[start : start + reach]
        rng.shuffle(window)
        shuffled[start : start + reach] = window
    chunks = list(history._sorted_on_the_way(iter(_batches(shuffled, size)), "arm"))
    assert [i for chunk in chunks for i in chunk.to_pylist()] == ids


def test_an_id_below_one_already_sorted_gives_up() -> None:
    """The smallest id two batches on: the batches before it went out believing it larger."""
    ids = [f"NCT{n:02d}" for n in range(1, 10)] + ["NCT00"]
    with pytest.raises(history.UnorderedIds, match="'NCT00' came after"):
        list(history._sorted_on_the_way(iter(_batches(ids, 3)), "arm"))


def test_ids_held_back_past_the_limit_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids in descending order: every batch's ids lie above the next batch's, all held."""
    monkeypatch.setattr(history, "HELD_ROWS", 5)
    ids = [f"NCT{n:02d}" for n in range(30, 0, -1)]
    with pytest.raises(history.UnorderedIds, match="more than 5 ids held back"):
        list(history._sorted_on_the_way(iter(_batches(ids, 3)), "arm"))


def test_a_release_whose_ids_are_far_out_of_order_is_sorted_in_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored in descending order: sorting on the way gives up, and the history is written
    again from DuckDB's sort, equal to it row for row."""
    monkeypatch.setattr(history, "ROWS_PER_BATCH", 7)
    monkeypatch.setattr(history, "HELD_ROWS", 20)
    path = tmp_path / "arms.parquet"
    duckdb.execute(
        "COPY (SELECT 'NCT' || lpad(CAST(i AS VARCHAR), 3, '0') AS study_id, 'a' AS arm_label "
        f"FROM range(100) t(i) ORDER BY i DESC) TO '{path}' (FORMAT parquet)"
    )
    current = history.Scans("2026.01.01", {"arms": f"read_parquet('{path}')"})
    tries: list[str] = []

    def read(name: str, stream: pa.RecordBatchReader) -> pa.Table:
        tries.append(name)
        return stream.read_all()

    written = history.written_history(duckdb.connect(), None, current, "2026.01.01", read)
    sorted_ids = [f"NCT{i:03d}|a" for i in range(100)]
    assert written[history.RECORD_VERSIONS].column("record_id").to_pylist() == sorted_ids
    assert tries == [
        history.RECORD_VERSIONS,
        history.RECORD_VERSIONS,
        history.REMOVED_RECORDS,
    ]  # the first try gave up in record_versions


def test_added_rows_keep_their_constants_across_batches_of_any_size() -> None:
    """A first release's added rows: the constant columns, made as long as the longest batch
    so far (not ROWS_PER_BATCH up front), fit batches that grow, shrink and are empty."""
    schema = history.SCHEMAS[history.RECORD_VERSIONS]
    added = history._Added(schema, "arm", "2026.01.01")
    for size in (0, 2, 5, 3, 0, 8):
        ids = pa.array([f"NCT{n:03d}|a" for n in range(size)], pa.string())
        batch = added.rows(ids)
        assert batch.schema == schema
        assert batch.to_pylist() == [
            {
                "record_type": "arm",
                "record_id": f"NCT{n:03d}|a",
                "version": "2026.01.01",
                "change": "added",
                "changed_fields": [],
            }
            for n in range(size)
        ]

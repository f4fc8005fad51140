"""per_distinct and classify_distinct: the same answers as a call per row, one call per
distinct row of values."""

from __future__ import annotations

from unittest.mock import patch

import duckdb
import pyarrow as pa
import pytest

from pipelines.normalize.distinct import classify_distinct, matches, per_distinct


def test_one_call_per_distinct_row_answers_in_row_order() -> None:
    calls: list[tuple[str | None, str | None]] = []

    def classify(title: str | None, frame: str | None) -> str:
        calls.append((title, frame))
        return f"{title}|{frame}"

    titles = ["Pain", "COWS", "Pain", None, "Pain", None]
    frames = ["Week 4", None, "Week 4", None, "Week 8", None]
    assert per_distinct(classify, titles, frames) == [
        f"{t}|{f}" for t, f in zip(titles, frames, strict=True)
    ]
    assert calls == [("Pain", "Week 4"), ("COWS", None), (None, None), ("Pain", "Week 8")]


def test_columns_of_unequal_length_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shorter|longer"):
        per_distinct(str, ["a", "b"], ["c"])


def test_classify_distinct_calls_once_per_distinct_row_and_joins_back_nulls_too() -> None:
    """In DuckDB: a table of each distinct input row and its classes, joined back to every
    row (a null input matches its own class), in batches smaller than the input."""
    calls: list[tuple[str | None, str | None]] = []

    def classify(title: str | None, frame: str | None) -> tuple[str, int]:
        calls.append((title, frame))
        return f"{title}|{frame}", len(calls)

    titles = ["Pain", "COWS", "Pain", None, "Pain", None]
    frames = ["Week 4", None, "Week 4", None, "Week 8", None]
    con = duckdb.connect()
    con.register("_rows", pa.table({"n": range(6), "title": titles, "frame": frames}))
    outputs = pa.schema([("label", pa.string()), ("call", pa.int64())])
    with patch("pipelines.normalize.distinct.BATCH_ROWS", 2):
        classify_distinct(con, "_classes", "SELECT title, frame FROM _rows", classify, outputs)
    found = con.execute(
        "SELECT r.n, c.label FROM _rows r JOIN _classes c "
        f"ON {matches('r', 'c', ['title', 'frame'])} ORDER BY r.n"
    ).fetchall()
    assert [label for _, label in found] == [
        f"{t}|{f}" for t, f in zip(titles, frames, strict=True)
    ]
    assert sorted(calls, key=str) == sorted(
        [("Pain", "Week 4"), ("COWS", None), (None, None), ("Pain", "Week 8")], key=str
    )
    assert con.execute("SELECT count(DISTINCT call) FROM _classes").fetchone() == (4,)

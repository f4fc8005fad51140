"""per_distinct: the same answers as a call per row, one call per distinct row of values."""

from __future__ import annotations

import pytest

from pipelines.normalize.distinct import per_distinct


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

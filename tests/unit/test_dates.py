"""Partial registry dates keep their precision; garbage is refused, never guessed."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.normalize.dates import parse_partial_date


def test_partial_date_day_precision() -> None:
    assert parse_partial_date("2023-08-16") == (date(2023, 8, 16), "day")


def test_partial_date_month_precision_is_first_of_month() -> None:
    assert parse_partial_date("2023-08") == (date(2023, 8, 1), "month")


def test_partial_date_year_precision_is_first_of_year() -> None:
    assert parse_partial_date("2023") == (date(2023, 1, 1), "year")


def test_partial_date_none_and_blank_are_missing() -> None:
    assert parse_partial_date(None) == (None, None)
    assert parse_partial_date("   ") == (None, None)


def test_partial_date_surrounding_whitespace_ignored() -> None:
    assert parse_partial_date(" 2019-10-09\n") == (date(2019, 10, 9), "day")


def test_partial_date_legacy_month_year() -> None:
    assert parse_partial_date("March 2019") == (date(2019, 3, 1), "month")


def test_partial_date_legacy_month_day_year() -> None:
    assert parse_partial_date("March 27, 2019") == (date(2019, 3, 27), "day")


def test_partial_date_legacy_abbreviated_and_lower_case_month() -> None:
    assert parse_partial_date("sept 2020") == (date(2020, 9, 1), "month")
    assert parse_partial_date("Dec. 5, 2021") == (date(2021, 12, 5), "day")


def test_partial_date_leap_day_accepted() -> None:
    assert parse_partial_date("2024-02-29") == (date(2024, 2, 29), "day")


@pytest.mark.parametrize("text", ["2023-02-30", "2023-13", "February 30, 2023", "2023-00-10"])
def test_partial_date_impossible_day_or_month_raises(text: str) -> None:
    with pytest.raises(ValueError, match="impossible date"):
        parse_partial_date(text)


@pytest.mark.parametrize(
    "text", ["soon", "2023/08/16", "16-08-2023", "Smarch 2019", "2023-8-16", "March 27 2019x"]
)
def test_partial_date_garbage_raises_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a registry date"):
        parse_partial_date(text)

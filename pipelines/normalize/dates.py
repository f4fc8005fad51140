"""Partial dates as registries give them: a day, a month or only a year.

A registry date like `2023-08` keeps its precision beside the date: it is stored as the first
day of the period (2023-08-01) with precision "month", so no day is ever invented silently.
"""

from __future__ import annotations

import re
from datetime import date

_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_LEGACY = re.compile(r"([A-Za-z]+)\.?\s+(?:(\d{1,2}),\s*)?(\d{4})")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}


def parse_partial_date(text: str | None) -> tuple[date | None, str | None]:
    """Parse a registry date into (first day of the period, precision).

    Accepts ISO `YYYY-MM-DD` / `YYYY-MM` / `YYYY` (API v2) and the legacy `March 2019` /
    `March 27, 2019` forms (classic ClinicalTrials.gov XML). None or blank gives (None, None).

    Raises:
        ValueError: the text is not a date in one of these forms, or names an impossible day.
    """
    if text is None or not text.strip():
        return None, None
    value = text.strip()
    iso = _ISO.fullmatch(value)
    if iso:
        year, month, day = iso.groups()
        precision = "day" if day else "month" if month else "year"
        return _build(value, int(year), int(month or 1), int(day or 1)), precision
    legacy = _LEGACY.fullmatch(value)
    if legacy and legacy.group(1).lower() in _MONTHS:
        month_name, day, year = legacy.groups()
        month = _MONTHS[month_name.lower()]
        return _build(value, int(year), month, int(day or 1)), "day" if day else "month"
    raise ValueError(
        f"not a registry date: {text!r} (expected YYYY-MM-DD, YYYY-MM, YYYY, "
        "'Month YYYY' or 'Month D, YYYY')"
    )


def _build(text: str, year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"impossible date {text!r}: {exc}") from exc

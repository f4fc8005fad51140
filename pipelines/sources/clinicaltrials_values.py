"""Readers for ClinicalTrials.gov v2 values, shared by the protocol and the results parsers.

The API gives counts and measurements as strings ("23", "NA", "≥5") or numbers; these helpers
read them without ever raising, so each parser decides what a value it cannot read means.
"""

from __future__ import annotations

from typing import Any

_EXACT_INTS = 2**53
"""Integers below this survive the float round trip unchanged, so they may skip it."""


def dig(node: Any, *keys: str) -> Any:
    """The value at `keys` inside nested objects; None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def as_text(value: Any) -> str | None:
    """A value as stripped text; None for null and blank."""
    if value.__class__ is str:  # most values: no str() call
        return value.strip() or None
    if value is None:
        return None
    return str(value).strip() or None


def str_list(values: Any) -> list[str]:
    """The non-blank items of a list as stripped text."""
    return [t for v in values or () if (t := as_text(v))]


def as_number(value: Any) -> float | None:
    """A finite float, or None for 'NA', '', '≤ 5' and the like."""
    if value is None or value.__class__ is bool:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number - number == 0.0 else None  # inf - inf and nan - nan are nan


def as_count(value: Any) -> int | None:
    """A non-negative whole number, or None for anything else (text, negative, fractional)."""
    if value.__class__ is int and value < _EXACT_INTS:  # most counts: no float round trip
        return value if value >= 0 else None
    number = as_number(value)
    if number is None or not number.is_integer() or number < 0:
        return None
    return int(number)


def denominators(denoms: list[dict[str, Any]] | None) -> dict[str, int]:
    """Participants per group id: the 'Participants' denominator, else the first one given."""
    if not denoms:
        return {}
    chosen = next(
        (d for d in denoms if (d.get("units") or "").casefold() == "participants"), denoms[0]
    )
    counts = {}
    for count in chosen.get("counts") or []:
        value = as_count(count.get("value"))
        if value is not None:
            counts[count.get("groupId")] = value
    return counts

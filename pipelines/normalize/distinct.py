"""Classify each distinct text once: registries repeat outcome titles, intervention names,
conditions and time frames across studies, and every classifier here is a pure function of
its inputs, so a column of N values costs one call per distinct value, not N."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def per_distinct(fn: Callable[..., T], *columns: Iterable[Any]) -> list[T]:
    """`[fn(*row) for row in zip(*columns)]`, calling `fn` once per distinct row of values."""
    rows = list(zip(*columns, strict=True))
    found = {row: fn(*row) for row in dict.fromkeys(rows)}
    return [found[row] for row in rows]

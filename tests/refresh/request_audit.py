"""Politeness and throughput figures from a refresh's request log (`requests.jsonl` entries)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

Entry = Mapping[str, Any]


def throughput(entries: Sequence[Entry]) -> float:
    """Requests per second from the first start to the last: (n - 1) / span."""
    starts = sorted(entry["started_at"] for entry in entries)
    return (len(starts) - 1) / (starts[-1] - starts[0])


def instant_throughput(entries: Sequence[Entry], interval: float) -> float:
    """Throughput had the server answered every request within the client's `interval`.

    A start-paced client starts the next request as soon as both the interval has passed and
    the previous answer is in; an answer slower than `interval` (a loaded machine, not the
    client) delays the next start by its excess, which is taken off that gap. A client pacing
    from the end of each answer keeps the interval on top and still shows it.
    """
    ordered = sorted(entries, key=lambda entry: entry["started_at"])
    span = sum(
        later["started_at"] - earlier["started_at"] - max(0.0, earlier["elapsed"] - interval)
        for earlier, later in itertools.pairwise(ordered)
    )
    return (len(ordered) - 1) / span

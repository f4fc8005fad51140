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
    """Throughput had the server answered, and the client been ready again, within `interval`.

    A start-paced client starts the next request once the interval (or its rate limit) allows
    and it is ready: the previous answer in and its own work on it done. Each gap between
    starts is the time until the client asked for the next request plus what its pace held
    that request (`paced`); of the first, only what exceeds `interval` is the machine's (a
    slow answer, or a client thread waiting for a core on a loaded machine) and is taken off,
    and of the second, what the pace's sleep overran (`overslept`, a thread woken late).
    What the pace chose to hold stays, so a client that holds too long still shows it.
    """
    ordered = sorted(entries, key=lambda entry: entry["started_at"])
    span = 0.0
    for earlier, later in itertools.pairwise(ordered):
        gap = later["started_at"] - earlier["started_at"]
        busy = gap - later["paced"]  # the answer and the client's own work
        span += gap - later.get("overslept", 0.0) - max(0.0, busy - interval)
    return (len(ordered) - 1) / span

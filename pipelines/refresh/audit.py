"""What a refresh leaves for an audit beside the bodies: `requests.jsonl` (every attempt, as it
happens) and `search_strategy.json` (each query with its hits, pages, requests and pace)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipelines.http import RequestLogEntry
from pipelines.refresh.record import SourceOutcome
from pipelines.refresh.resume import TOPIC
from pipelines.sources.relevance import Screen

REQUEST_LOG = "requests.jsonl"
SEARCH_STRATEGY = "search_strategy.json"


class RequestLog:
    """requests.jsonl: one line per attempt, written as it happens and flushed at once, so a
    refresh that is killed keeps the log of what it asked; a resumed run appends its own."""

    def __init__(self, folder: Path) -> None:
        self._handle = (folder / REQUEST_LOG).open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def writer(self, source: str) -> Callable[[RequestLogEntry], None]:
        """The client hook that logs `source`'s attempts."""

        def write(entry: RequestLogEntry) -> None:
            line = json.dumps({"source": source, **asdict(entry)}, sort_keys=True) + "\n"
            with self._lock:
                self._handle.write(line)
                self._handle.flush()

        return write

    def close(self) -> None:
        self._handle.close()


def busiest_window(starts: Sequence[float], window: float = 1.0) -> int:
    """Most request starts inside any half-open span of `window` seconds: the politeness audit."""
    ordered = sorted(starts)
    best = low = 0
    for high, start in enumerate(ordered):
        while start - ordered[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def _timing(log: Sequence[Mapping[str, Any]]) -> dict[str, float | int]:
    """Busiest second and seconds from first request start to last answer, from a request log."""
    if not log:
        return {"busiest_second": 0, "seconds": 0.0}
    first = min(e["started_at"] for e in log)
    last = max(e["started_at"] + e["elapsed"] for e in log)
    busiest = busiest_window([e["started_at"] for e in log])
    return {"busiest_second": busiest, "seconds": round(last - first, 3)}


def _queries(hits: Mapping[str, int], screen: Screen | None) -> list[dict[str, Any]]:
    """Each query with its hits; a screened source adds how many it kept and dropped, the pages
    it asked and why paging stopped, and, where the source announced a hit count, that count
    and how many of its hits were left unasked because a bound stopped paging (`unseen`, the
    reason being `stopped`)."""
    rows: list[dict[str, Any]] = []
    for query, count in hits.items():
        row: dict[str, Any] = {"query": query, "hits": count}
        tally = screen.tallies.get(query) if screen is not None else None
        if tally is not None:
            row.update(kept=tally.kept, dropped=tally.dropped, pages=tally.pages)
            row.update(stopped=tally.stopped)
            if tally.announced is not None:
                row.update(announced=tally.announced, unseen=tally.unseen)
        rows.append(row)
    return rows


def write_strategy(
    folder: Path,
    outcomes: Mapping[str, SourceOutcome],
    captured_at: str,
    notes: Mapping[str, str],
    carried: Mapping[str, str],
) -> None:
    """search_strategy.json: the search as data, each query with its hit count per source.

    `note` says when a source was asked differently from the usual (null otherwise);
    `carried_from` names the snapshot a failed source's files were copied from (else null);
    `warnings` lists what a source flagged without failing (a hit count it announced but did
    not deliver), also printed on stderr by `refresh`. A screened source's queries say what was
    kept and dropped (`_queries`).
    """
    doc = {
        "captured_at": captured_at,
        "topic": TOPIC,
        "sources": {
            source: {
                "queries": _queries(outcome.hits, outcome.screen),
                "pages": outcome.pages,
                "requests": outcome.requests,
                "retries": outcome.retries,
                "error": outcome.error,
                "warnings": outcome.warnings,
                "carried_from": carried.get(source),
                "note": notes.get(source),
                **_timing(outcome.log),
            }
            for source, outcome in outcomes.items()
        },
    }
    (folder / SEARCH_STRATEGY).write_text(
        json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

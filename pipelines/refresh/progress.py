"""The refresh's progress bar: one task per live source with its units, requests and retries,
drawn on a terminal only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pipelines.http import RequestLogEntry
from pipelines.refresh.record import SourceOutcome
from pipelines.refresh.settings import live_sources, live_units

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


def progress_bar(console: Console | None) -> Progress:
    """The bar: per source its units (queries, or batches and pages), requests and retries.

    Without a console given it draws on stderr, and only on a terminal.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    target = console if console is not None else Console(stderr=True)
    return Progress(
        TextColumn("{task.description:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[requests]:>5} requests"),
        TextColumn("{task.fields[retries]:>3} retries"),
        TimeElapsedColumn(),
        console=target,
        disable=not target.is_terminal,
    )


def _total_units(source: str, work: Mapping[str, list[Any]]) -> int | None:
    """Queries of a searched source; unknown ahead for a source asked by id (batches, pages)."""
    if live_units()[source].compound_ids is not None:
        return None
    return len(work.get(source, []))


class SourceProgress:
    """One progress task per live source, in report order, fed by the clients' request logs."""

    def __init__(self, bar: Progress, work: Mapping[str, list[Any]]) -> None:
        self.bar = bar
        self.tasks = {
            source: bar.add_task(source, total=_total_units(source, work), requests=0, retries=0)
            for source in live_sources()
        }
        self._counts = {source: [0, 0] for source in live_sources()}
        self._done = dict.fromkeys(live_sources(), 0)
        self._lock = threading.Lock()

    def advance(self, source: str, units: int) -> None:
        """A query, batch or page of `source` is done (called from that source's thread)."""
        self._done[source] += units
        self.bar.advance(self.tasks[source], units)

    def attempt(self, source: str, entry: RequestLogEntry) -> None:
        """One request attempt ended; a failed one will (mostly) be retried."""
        with self._lock:
            counts = self._counts[source]
            counts[0] += 1
            counts[1] += entry.problem is not None
            requests, retries = counts
        self.bar.update(self.tasks[source], requests=requests, retries=retries)

    def finish(self, outcome: SourceOutcome) -> None:
        """The source's final counts; a source that finished shows a full bar."""
        task = self.tasks[outcome.source]
        fields: dict[str, Any] = {"requests": outcome.requests, "retries": outcome.retries}
        if outcome.error is None:
            done = self._done[outcome.source]
            fields.update(total=done, completed=done)
        else:
            fields["description"] = f"{outcome.source} (stopped)"
        self.bar.update(task, **fields)


def log_hooks(
    write: Callable[[RequestLogEntry], None], progress: SourceProgress | None, source: str
) -> Callable[[RequestLogEntry], None]:
    """The client's request-log hook: the line in requests.jsonl, then the progress counts."""
    if progress is None:
        return write

    def note(entry: RequestLogEntry) -> None:
        write(entry)
        progress.attempt(source, entry)

    return note

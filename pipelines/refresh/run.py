"""One refresh: every live source recorded concurrently into a new (or resumed) snapshot, then
the snapshot finished with what it carries over and marked complete."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from pipelines import paths, snapshot
from pipelines.http import ResponseRecorder, SourceError, SourceHttp
from pipelines.refresh.audit import RequestLog, write_strategy
from pipelines.refresh.carry import carry_snapshot_only, merge_base
from pipelines.refresh.plan import (
    COMPOUND_IDS,
    Plan,
    full_plan,
    incremental_plan,
    last_recorded,
)
from pipelines.refresh.progress import SourceProgress, log_hooks, progress_bar
from pipelines.refresh.record import SourceOutcome, fetch_source
from pipelines.refresh.resume import open_snapshot, write_info
from pipelines.refresh.settings import (
    LIVE,
    LIVE_SOURCES,
    POLITE,
    HttpSettings,
    RefreshError,
    source_client,
)
from pipelines.sources.base import Credentials

if TYPE_CHECKING:
    from rich.console import Console

logger = logging.getLogger("kratom_evidence.refresh")


class _Cancelled(RuntimeError):
    """Another source failed for good: stop this one between queries."""


@dataclass(frozen=True)
class RefreshResult:
    """The recorded snapshot and what each source did."""

    snapshot_dir: Path
    outcomes: dict[str, SourceOutcome]

    @property
    def complete(self) -> bool:
        """True when every source finished."""
        return all(o.error is None for o in self.outcomes.values())

    @property
    def first_error(self) -> str | None:
        """The failure that stopped the refresh (not a source cancelled because of it)."""
        failed = [o for o in self.outcomes.values() if o.error is not None and not o.cancelled]
        return failed[0].error if failed else None


def refresh(
    data_dir: Path,
    base_urls: Mapping[str, str],
    creds: Credentials,
    now: datetime,
    *,
    settings: HttpSettings = POLITE,
    reference_dir: Path = paths.REFERENCE_DIR,
    show_progress: bool = True,
    since_last: bool = False,
    console: Console | None = None,
) -> RefreshResult:
    """Record every live source into `data_dir/snapshots/<stamp>/`; complete only if all finish.

    Sources run concurrently, each inside its own client and pace. A source that fails for good
    leaves the snapshot marked incomplete; the result carries its one-line error. The next run
    resumes that snapshot: every page already recorded is read back, not fetched again.
    With `since_last`, only what changed since the last complete recorded snapshot is fetched,
    and that snapshot's files are carried over unchanged (see `carry.merge_base`). The progress
    bar (one task per source with its requests and retries) draws on `console`, by default
    stderr when it is a terminal: piped stderr carries nothing but errors.
    """
    base = last_recorded(data_dir / "snapshots") if since_last else None
    if since_last and base is None:
        raise RefreshError(
            f"--since-last: no complete recorded snapshot in {data_dir / 'snapshots'}; "
            "run a full refresh first"
        )
    folder, captured_at, extra = open_snapshot(data_dir, now, base)
    full = full_plan(reference_dir)
    plan = full
    delta_name = f"delta-{folder.name}"
    if base is not None:
        base_info = json.loads((base / snapshot.INFO_FILE).read_text(encoding="utf-8"))
        plan = incremental_plan(full, base_info, now.date(), delta_name, creds)
        for source, note in plan.notes.items():
            logger.info("%s: %s", source, note)
    plan.page_size = settings.page_size
    progress = SourceProgress(progress_bar(console), full.work) if show_progress else None
    request_log = RequestLog(folder)
    outcomes = _record_all(folder, plan, base_urls, creds, settings, request_log, progress)
    write_strategy(folder, outcomes, captured_at, plan.notes)
    result = RefreshResult(folder, outcomes)
    if result.complete:
        _finish(data_dir, folder, base, delta_name, captured_at, extra, base_urls, full)
    return result


def _record_all(
    folder: Path,
    plan: Plan,
    base_urls: Mapping[str, str],
    creds: Credentials,
    settings: HttpSettings,
    request_log: RequestLog,
    progress: SourceProgress | None,
) -> dict[str, SourceOutcome]:
    """Every live source in its own thread; the first to fail for good stops the others."""
    recorder = ResponseRecorder(folder)
    pacers = {s: live.pacer() for s, live in LIVE.items() if live.pacer is not None}
    clients: dict[str, SourceHttp] = {
        source: source_client(
            source,
            base_urls[source],
            creds,
            settings,
            recorder,
            log_hooks(request_log.writer(source), progress, source),
            pacers.get(source),
        )
        for source in LIVE_SOURCES
    }
    outcomes: dict[str, SourceOutcome] = {}
    stop = threading.Event()

    def work(source: str) -> SourceOutcome:
        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(source, n)
            if stop.is_set():
                raise _Cancelled(f"{source}: stopped because another source failed")

        try:
            outcome = fetch_source(source, clients[source], plan, pacers.get(source), advance)
        except _Cancelled as exc:
            outcome = SourceOutcome(source, error=str(exc), cancelled=True)
        except (SourceError, ValueError) as exc:
            stop.set()
            outcome = SourceOutcome(source, error=_one_line(exc, creds))
        http = clients[source]
        outcome.requests, outcome.retries = http.requests_sent, http.retries
        outcome.log = [asdict(entry) for entry in http.log]
        if progress is not None:
            progress.finish(outcome)
        return outcome

    try:
        if progress is not None:
            progress.bar.start()
        with ThreadPoolExecutor(max_workers=len(LIVE_SOURCES)) as pool:
            for outcome in pool.map(work, LIVE_SOURCES):
                outcomes[outcome.source] = outcome
    finally:
        if progress is not None:
            progress.bar.stop()
        for http in clients.values():
            http.close()
        request_log.close()
    return outcomes


def _finish(
    data_dir: Path,
    folder: Path,
    base: Path | None,
    delta_name: str,
    captured_at: str,
    extra: dict[str, Any],
    base_urls: Mapping[str, str],
    full: Plan,
) -> None:
    """Carry over what this run did not fetch, then mark the snapshot complete."""
    notes = "Recorded by kratom-evidence refresh from: " + ", ".join(
        f"{s}={_scheme_host(base_urls[s])}" for s in LIVE_SOURCES
    )
    if base is None:
        carry_snapshot_only(data_dir / "snapshots", folder)
    else:
        carried = merge_base(folder, base, delta_name)
        extra = {**extra, snapshot.SUPERSEDES: carried.supersedes}
        notes = (
            f"Incremental from {base.name}: records changed since then, as recorded, with "
            f"that snapshot's {carried.files} files carried over byte for byte; "
            f"{carried.superseded} of their records are superseded (listed under "
            f"{snapshot.SUPERSEDES!r}, skipped by the build). " + notes
        )
    compound_ids = {s: full.work[s] for s, live in LIVE.items() if live.compound_ids}
    write_info(
        folder, captured_at, complete=True, notes=notes, extra={**extra, COMPOUND_IDS: compound_ids}
    )


def _scheme_host(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode()}{parts.path}"


def _one_line(exc: Exception, creds: Credentials) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in creds.secrets():
        text = text.replace(secret, "***")
    return text

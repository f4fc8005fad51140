"""One refresh: every live source recorded concurrently into a new (or resumed) snapshot, then
the snapshot finished with what it carries over and marked complete."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from pipelines import paths, snapshot
from pipelines.http import ResponseRecorder, SourceError, SourceHttp
from pipelines.refresh.audit import RequestLog, write_strategy
from pipelines.refresh.carry import (
    CARRIED_FROM,
    FAILED_SOURCES,
    carry_failed,
    carry_snapshot_only,
    carry_sources,
    merge_base,
)
from pipelines.refresh.plan import (
    COMPOUND_IDS,
    Plan,
    full_plan,
    incremental_plan,
    last_recorded,
    relevance_plan,
)
from pipelines.refresh.progress import SourceProgress, log_hooks, progress_bar
from pipelines.refresh.record import SourceOutcome, fetch_source
from pipelines.refresh.resume import open_snapshot, write_info
from pipelines.refresh.settings import (
    POLITE,
    HttpSettings,
    RefreshError,
    live_sources,
    live_units,
    source_client,
)
from pipelines.sources.base import Credentials

if TYPE_CHECKING:
    from rich.console import Console

logger = logging.getLogger("kratom_evidence.refresh")


@dataclass(frozen=True)
class RefreshResult:
    """The recorded snapshot, what each source did, and what was carried over for failures."""

    snapshot_dir: Path
    outcomes: dict[str, SourceOutcome]
    carried_from: dict[str, str] = field(default_factory=dict)
    """Failed source -> stamp of the complete snapshot its files were copied from."""

    @property
    def failed(self) -> dict[str, str]:
        """Source -> one-line reason, for every source that failed for good."""
        return {s: o.error for s, o in self.outcomes.items() if o.error is not None}

    @property
    def notes(self) -> dict[str, str]:
        """Source -> one line on how it was asked, when that differs from the usual (OpenAlex
        without an API key keeps to its keyless budget)."""
        return {s: o.screen.note for s, o in self.outcomes.items() if o.screen and o.screen.note}

    @property
    def complete(self) -> bool:
        """True when every source finished or was carried over from an earlier snapshot."""
        return set(self.failed) <= set(self.carried_from)

    @property
    def first_error(self) -> str | None:
        """Why the snapshot was left incomplete: the first failure nothing was carried for."""
        for source, error in self.failed.items():
            if source not in self.carried_from:
                return f"{error}; no earlier complete snapshot holds {source} to carry over"
        return None


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
    known: Path | None = paths.BUNDLED_SNAPSHOT,
) -> RefreshResult:
    """Record every live source into `data_dir/snapshots/<stamp>/`; complete if all are there.

    Sources run concurrently, each inside its own client and pace, and one failing never stops
    the others. A source that fails for good is named with its one-line reason in SNAPSHOT.json
    (`failed_sources`); its files are then carried over byte for byte from the newest complete
    recorded snapshot (`carried_from`) and the snapshot is complete. When a failed source has no
    earlier snapshot, nothing is carried and the snapshot stays incomplete; the next run
    resumes it: every page already recorded is read back, not fetched again.
    With `since_last`, only what changed since the last complete recorded snapshot is fetched,
    and that snapshot's files are carried over unchanged (see `carry.merge_base`). The progress
    bar (one task per source with its requests and retries) draws on `console`, by default
    stderr when it is a terminal: piped stderr carries nothing but errors.
    Crossref and OpenAlex hits are screened for relevance (`pipelines.sources.relevance`): the
    DOIs of the newest complete recorded snapshot count as known, else those of `known`.
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
    known_from = last_recorded(data_dir / "snapshots") or known
    plan.relevance = relevance_plan(reference_dir, known_from, base is None, creds)
    progress = SourceProgress(progress_bar(console), full.work) if show_progress else None
    request_log = RequestLog(folder)
    outcomes = _record_all(folder, plan, base_urls, creds, settings, request_log, progress)
    failed = {s: o.error for s, o in outcomes.items() if o.error is not None}
    sources = carry_sources(data_dir / "snapshots", folder, failed, base)
    carried = carry_failed(folder, sources, copy=base is None) if sources is not None else {}
    result = RefreshResult(folder, outcomes, carried)
    said = {
        s: "; ".join(n for n in (plan.notes.get(s), result.notes.get(s)) if n)
        for s in live_sources()
    }
    write_strategy(folder, outcomes, captured_at, {s: n for s, n in said.items() if n}, carried)
    if failed:
        extra = {**extra, FAILED_SOURCES: failed}
    off_topic = _off_topic(outcomes, sources or {}, base)
    if off_topic:
        extra = {**extra, snapshot.OFF_TOPIC: off_topic}
    if result.complete:
        _finish(data_dir, folder, base, delta_name, captured_at, extra, base_urls, full, carried)
    else:
        notes = "refresh stopped: " + "; ".join(f"{s} failed" for s in failed)
        write_info(folder, captured_at, complete=False, notes=notes, extra=extra)
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
    """Every live source in its own thread; each runs to its end, whatever the others do."""
    recorder = ResponseRecorder(folder)
    units = live_units()
    pacers = {s: live.pacer() for s, live in units.items() if live.pacer is not None}
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
        for source in units
    }
    outcomes: dict[str, SourceOutcome] = {}

    def work(source: str) -> SourceOutcome:
        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(source, n)

        try:
            outcome = fetch_source(source, clients[source], plan, pacers.get(source), advance)
        except (SourceError, ValueError) as exc:
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
        with ThreadPoolExecutor(max_workers=len(units)) as pool:
            for outcome in pool.map(work, units):
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
    carried: Mapping[str, str],
) -> None:
    """Carry over what this run did not fetch, then mark the snapshot complete."""
    notes = "Recorded by kratom-evidence refresh from: " + ", ".join(
        f"{s}={_scheme_host(base_urls[s])}" for s in live_sources()
    )
    if carried:
        extra = {**extra, CARRIED_FROM: dict(carried)}
        notes = (
            "Failed for good, so carried over byte for byte from an earlier complete snapshot: "
            + ", ".join(f"{s} from {stamp}" for s, stamp in carried.items())
            + ". "
            + notes
        )
    if base is None:
        carry_snapshot_only(data_dir / "snapshots", folder)
    else:
        merged = merge_base(folder, base, delta_name)
        extra = {**extra, snapshot.SUPERSEDES: merged.supersedes}
        notes = (
            f"Incremental from {base.name}: records changed since then, as recorded, with "
            f"that snapshot's {merged.files} files carried over byte for byte; "
            f"{merged.superseded} of their records are superseded (listed under "
            f"{snapshot.SUPERSEDES!r}, skipped by the build). " + notes
        )
    compound_ids = {s: full.work[s] for s, live in live_units().items() if live.compound_ids}
    write_info(
        folder, captured_at, complete=True, notes=notes, extra={**extra, COMPOUND_IDS: compound_ids}
    )


def _off_topic(
    outcomes: Mapping[str, SourceOutcome], carried: Mapping[str, Path], base: Path | None
) -> dict[str, dict[str, str]]:
    """The works each screen dropped (SNAPSHOT.json `off_topic`), with what the files carried
    over from the base or an earlier snapshot were listed with; a record this run kept in the
    same version is no longer listed."""
    listed = snapshot.off_topic_records(base) if base is not None else {}
    for source, previous in carried.items():
        listed[source] = snapshot.off_topic_records(previous.parent).get(source, {})
    for source, outcome in outcomes.items():
        if outcome.screen is None or source in carried:
            continue
        kept = outcome.screen.kept
        merged = {k: v for k, v in listed.get(source, {}).items() if kept.get(k) != v}
        listed[source] = {**merged, **outcome.screen.off_topic()}
    return {s: dict(sorted(keys.items())) for s, keys in sorted(listed.items()) if keys}


def _scheme_host(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode()}{parts.path}"


def _one_line(exc: Exception, creds: Credentials) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in creds.secrets():
        text = text.replace(secret, "***")
    return text

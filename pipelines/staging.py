"""Staging: replay a snapshot source folder into staging tables, record by record.

Every record read ends somewhere: as rows in staging tables, as a quarantine row with a reason,
counted as an exact duplicate of a record already staged (the same study on two pages), or
counted as superseded: a record of a file a `--since-last` refresh carried over unchanged, which
a newer record replaces (SNAPSHOT.json `supersedes` lists it by file and key). A work a refresh's
relevance screen dropped (SNAPSHOT.json `off_topic`, by key and content hash) is quarantined with
that reason.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import setwise, snapshot
from pipelines.snapshot import off_topic_records, superseded_records
from pipelines.sources import SOURCES
from pipelines.sources.base import RecordError, SourceUnit
from pipelines.sources.relevance import OFF_TOPIC_REASON
from pipelines.warehouse import StagingSink, drop_staging


@dataclass
class StageStats:
    """What staging one source did.

    records_read == staged + quarantined + duplicates + superseded.
    """

    source: str
    files: int = 0
    records_read: int = 0
    staged: int = 0
    quarantined: int = 0
    duplicates: int = 0
    superseded: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    process_peaks_mib: list[float] = field(default_factory=list, compare=False)
    """The peak memory of each process that staged a run of the source's pages, when it was
    staged in runs (`pipelines.shards.stage_runs`); empty when staged in the step's process."""


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for a bulk load, restoring it after.

    Staging builds millions of dicts, lists and strings (parsed records, rows waiting in the
    sink) that never form reference cycles and are freed by reference counting; the collector
    would still walk all of them again and again as they pile up (bench/README.md measures
    what that costs).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@cyclic_gc_paused()
def stage_source(
    con: duckdb.DuckDBPyConnection,
    snapshot_dir: Path,
    source: str,
    shard: snapshot.Shard = snapshot.WHOLE,
    place: setwise.Place = setwise.WHOLE_SOURCE,
) -> StageStats:
    """Parse every file of `source` in the snapshot into `staging.<source>__<table>` tables.

    A file that is not in the source's format raises `SnapshotFormatError`; a bad record inside a
    good file (or a bad member of a bulk archive) becomes a quarantine row with what is wrong
    with it; a good record seen again with different content after a staged one keeps the
    first and quarantines the second (a quarantined first is not "kept", so a later good
    version of it is staged). A record the snapshot lists as superseded is counted and skipped.
    With `shard`, only that part of the records (all versions of a key fall in one part).
    With `place`, this is one of the runs of files that stage a set-wise source into this
    database one after another: the stats are this run's, the rows its own.
    """
    unit = SOURCES[source]
    superseded = superseded_records(snapshot_dir)
    off_topic = off_topic_records(snapshot_dir).get(source, {})
    if place.first:
        drop_staging(con, source)
    stats = StageStats(source, files=len(snapshot.source_files(snapshot_dir, source)))
    if unit.setwise is not None:
        setwise.stage(con, snapshot_dir, unit, shard, stats, place)
        return stats
    if place != setwise.WHOLE_SOURCE:
        raise ValueError(f"{source} is staged record by record, in one run")
    sink = StagingSink(con, source)
    seen: dict[str, tuple[str, str, bool]] = {}  # key -> (fingerprint, origin, was staged)
    for item in snapshot.source_records(snapshot_dir, source, shard):
        stats.records_read += 1
        if item.problem is not None:
            stats.quarantined += 1
            _quarantine(sink, unit, item.key, item.problem, item.origin, item.raw)
            continue
        record = item.value
        key = unit.record_key(record)
        if key is not None and key in superseded.get(item.file, ()):
            stats.superseded += 1
            continue
        raw = unit.raw(record)
        fingerprint = hashlib.sha256(raw.encode()).hexdigest() if key is not None else ""
        previous = seen.get(key) if key is not None else None
        if previous is not None and previous[0] == fingerprint:
            stats.duplicates += 1
            continue
        reason = None
        try:
            rows = unit.parse(record)
        except RecordError as exc:
            reason = str(exc)
        if reason is None and key is not None and off_topic.get(key) == fingerprint:
            reason = OFF_TOPIC_REASON
        if reason is None and previous is not None and previous[2]:
            reason = (
                f"record {key} appears again with different content; "
                f"kept the first, from {previous[1]}"
            )
        if key is not None and (previous is None or not previous[2]):
            seen[key] = (fingerprint, item.origin, reason is None)
        if reason is not None:
            stats.quarantined += 1
            _quarantine(sink, unit, key, reason, item.origin, raw)
            continue
        stats.staged += 1
        for table in sorted(rows):
            sink.add_rows(table, rows[table], item.origin)
    sink.close()
    stats.rows = {t: n for t, n in sorted(sink.counts.items()) if t != "quarantine"}
    return stats


def _quarantine(
    sink: StagingSink, unit: SourceUnit, key: str | None, reason: str, origin: str, raw: str
) -> None:
    """A record (or archive member) that ends in quarantine, with why and where it was read."""
    sink.add(
        "quarantine",
        {
            "table_name": unit.primary_table,
            "source": unit.name,
            "record_key": key,
            "reason": reason,
            "source_file": origin,
            "raw": raw,
        },
        origin,
    )

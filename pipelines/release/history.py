"""Record history across releases: record_versions and removed_records (tombstones).

Each release carries the whole cumulative history, computed from the previous release's
history and the new studies and publications, so no release needs its predecessors to answer
"when did this trial's status change". Everything here but `read_previous` is pure: rows come
out sorted and nothing depends on the clock or on set or dict order.

Choices: `changed_fields` lists the columns (present in both releases) whose values differ, and
is empty for added, removed and restored records, where every column is new, gone or back. A
removed NCT id that a present study lists among its nctIdAliases was merged by the registry:
its tombstone names that study in `merged_into`, re-resolved each release so it always points
at a study of the same release.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.arrow import arrow_schema
from schemas.history import RecordVersion, RemovedRecord
from schemas.literature import Publication
from schemas.studies import Study, StudyIdentifier

RECORD_VERSIONS = "record_versions"
REMOVED_RECORDS = "removed_records"
ALIAS_ID_TYPE = "nct_alias"

Row = dict[str, Any]
RecordKey = tuple[str, str]


@dataclass(frozen=True)
class Records:
    """The tables of one release that history follows."""

    studies: pa.Table
    publications: pa.Table
    study_identifiers: pa.Table

    @classmethod
    def from_tables(cls, tables: dict[str, pa.Table]) -> Records:
        """Pick the followed tables out of a release's tables (empty when a table is absent)."""
        return cls(
            tables.get("studies", arrow_schema(Study).empty_table()),
            tables.get("publications", arrow_schema(Publication).empty_table()),
            tables.get("study_identifiers", arrow_schema(StudyIdentifier).empty_table()),
        )


@dataclass(frozen=True)
class PreviousRelease:
    """The release before the one being published: its version, records and history."""

    version: str
    records: Records
    record_versions: pa.Table | None
    """None when that release predates history tables."""
    removed_records: pa.Table | None


@dataclass(frozen=True)
class History:
    """The two cumulative history tables of a release."""

    record_versions: pa.Table
    removed_records: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        return {RECORD_VERSIONS: self.record_versions, REMOVED_RECORDS: self.removed_records}


def _read_optional(path: Path) -> pa.Table | None:
    return pq.read_table(path) if path.is_file() else None


def read_previous(folder: Path, version: str) -> PreviousRelease:
    """Read what history needs from a published release folder."""
    tables = {
        name: pq.read_table(folder / f"{name}.parquet")
        for name in ("studies", "publications", "study_identifiers")
        if (folder / f"{name}.parquet").is_file()
    }
    return PreviousRelease(
        version,
        Records.from_tables(tables),
        _read_optional(folder / f"{RECORD_VERSIONS}.parquet"),
        _read_optional(folder / f"{REMOVED_RECORDS}.parquet"),
    )


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of YYYY.MM.DD[.N] versions: numeric, so .10 comes after .9."""
    return tuple(int(part) for part in version.split("."))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def changed_fields(before: Row, after: Row) -> list[str]:
    """Columns present in both rows whose values differ, sorted.

    A column only one side has (a schema that grew) is not a change of the record.
    """
    return sorted(c for c in before.keys() & after.keys() if not _same(before[c], after[c]))


def study_sources(row: Row) -> list[str]:
    """Where a study came from: its registry, else its evidence source."""
    origin = row.get("registry") or row.get("evidence_source")
    return [origin] if origin else []


def publication_sources(row: Row) -> list[str]:
    """Where a publication came from: its `sources` column, sorted."""
    return sorted(row.get("sources") or [])


def by_id(table: pa.Table, key: str) -> dict[str, Row]:
    """Rows of a table keyed by its id column."""
    return {row[key]: row for row in table.to_pylist()}


def merge_targets(study_identifiers: pa.Table, present: Iterable[str]) -> dict[str, str]:
    """Alias NCT id → the present study listing it among its nctIdAliases.

    Should two studies list the same alias, the smallest study id wins (deterministic).
    """
    studies = set(present)
    targets: dict[str, str] = {}
    for row in study_identifiers.to_pylist():
        alias, study = row["id_value"], row["study_id"]
        if row["id_type"] != ALIAS_ID_TYPE or study not in studies or alias == study:
            continue
        if alias not in targets or study < targets[alias]:
            targets[alias] = study
    return targets


@dataclass(frozen=True)
class _Kind:
    record_type: str
    key: str
    sources: Callable[[Row], list[str]]


_KINDS = (
    _Kind("study", "study_id", study_sources),
    _Kind("publication", "publication_id", publication_sources),
)


def _current(records: Records) -> dict[str, dict[str, Row]]:
    return {
        "study": by_id(records.studies, "study_id"),
        "publication": by_id(records.publications, "publication_id"),
    }


def _version_row(
    record_type: str, record_id: str, version: str, change: str, fields: list[str]
) -> Row:
    return {
        "record_type": record_type,
        "record_id": record_id,
        "version": version,
        "change": change,
        "changed_fields": fields,
    }


def _seed_versions(previous: PreviousRelease) -> list[Row]:
    """History of a release published before history tables: everything added in it."""
    rows = []
    for record_type, records in _current(previous.records).items():
        rows += [_version_row(record_type, rid, previous.version, "added", []) for rid in records]
    return rows


def _merged_into(record_type: str, record_id: str, targets: dict[str, str]) -> str | None:
    return targets.get(record_id) if record_type == "study" else None


def compute_history(previous: PreviousRelease | None, current: Records, version: str) -> History:
    """The cumulative history of the release `version`, given the one before it (or None).

    New rows: added (never seen), changed (with its changed fields), removed (in the previous
    release, not in this one: also a tombstone), restored (back from a tombstone). Tombstones
    of records still absent are carried over.
    """
    now = _current(current)
    targets = merge_targets(current.study_identifiers, now["study"])
    before: dict[str, dict[str, Row]] = {"study": {}, "publication": {}}
    versions: list[Row] = []
    tombstones: dict[RecordKey, Row] = {}
    if previous is not None:
        before = _current(previous.records)
        if previous.record_versions is None:
            versions = _seed_versions(previous)
        else:
            versions = previous.record_versions.to_pylist()
        if previous.removed_records is not None:
            tombstones = {
                (r["record_type"], r["record_id"]): r for r in previous.removed_records.to_pylist()
            }
    for kind in _KINDS:
        old, new = before[kind.record_type], now[kind.record_type]
        for rid in sorted(new.keys() - old.keys()):
            back = tombstones.pop((kind.record_type, rid), None) is not None
            versions.append(
                _version_row(kind.record_type, rid, version, "restored" if back else "added", [])
            )
        for rid in sorted(new.keys() & old.keys()):
            tombstones.pop((kind.record_type, rid), None)
            fields = changed_fields(old[rid], new[rid])
            if fields:
                versions.append(_version_row(kind.record_type, rid, version, "changed", fields))
        for rid in sorted(old.keys() - new.keys()):
            versions.append(_version_row(kind.record_type, rid, version, "removed", []))
            tombstones[(kind.record_type, rid)] = {
                "record_type": kind.record_type,
                "record_id": rid,
                "sources": kind.sources(old[rid]),
                "last_version_seen": previous.version if previous else version,
                "removed_in_version": version,
                "merged_into": None,
            }
    removed = [
        {**row, "merged_into": _merged_into(record_type, record_id, targets)}
        for (record_type, record_id), row in sorted(tombstones.items())
    ]
    versions.sort(key=lambda r: (r["record_type"], r["record_id"], version_key(r["version"])))
    return History(
        pa.Table.from_pylist(versions, schema=arrow_schema(RecordVersion)),
        pa.Table.from_pylist(removed, schema=arrow_schema(RemovedRecord)),
    )

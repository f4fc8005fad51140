"""Record history across releases: record_versions and removed_records (tombstones).

Each release carries the whole cumulative history, computed from the previous release's
history and the new studies, publications, evidence rows (product_composition,
interaction_effects, safety_signals) and posted-results rows (arms, result_groups,
outcome_results, outcome_analyses, adverse_events, adverse_event_totals, baseline_measures,
participant_flow, outcome_changes), so no release needs its predecessors to answer "when did
this trial's status change" or "when did its adverse events change". Everything here but
`read_previous` is pure: rows come out sorted and nothing depends on the clock or on set or
dict order.

A row of a table with a composite primary key is named by its key values joined by `|`, a null
part as the empty string (as `quarantine.record_key` names a rejected row): the adverse event
`NCT03722472|EG000|serious|Anaemia|Blood and lymphatic system disorders|Group A`.

Choices: `changed_fields` lists the columns (present in both releases) whose values differ, and
is empty for added, removed and restored records, where every column is new, gone or back. A
removed NCT id that a present study lists among its nctIdAliases was merged by the registry:
its tombstone names that study in `merged_into`, re-resolved each release so it always points
at a study of the same release.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pandera.pandas import DataFrameModel

from pipelines.release.diff import ReleaseTables, as_release
from schemas import TABLES_BY_NAME
from schemas.arrow import arrow_schema
from schemas.evidence_tables import InteractionEffect, ProductComposition, SafetySignal
from schemas.history import RecordVersion, RemovedRecord
from schemas.literature import Publication
from schemas.studies import Study, StudyIdentifier

RECORD_VERSIONS = "record_versions"
REMOVED_RECORDS = "removed_records"
ALIAS_ID_TYPE = "nct"
"""An nctIdAlias is a study_identifiers row of this id_type with is_alias true."""

Row = dict[str, Any]
RecordKey = tuple[str, str]


RESULTS: dict[str, str] = {
    "arms": "arm",
    "result_groups": "result_group",
    "outcome_results": "outcome_result",
    "outcome_analyses": "outcome_analysis",
    "adverse_events": "adverse_event",
    "adverse_event_totals": "adverse_event_total",
    "baseline_measures": "baseline_measure",
    "participant_flow": "participant_flow",
    "outcome_changes": "outcome_change",
}
"""Posted-results tables history follows, with the record type of their rows."""
REGISTRY_PAGE = "https://clinicaltrials.gov/study/{}"
"""Where a posted-results row came from: its study's record page."""
KEY_SEPARATOR = "|"

FOLLOWED: dict[str, type[DataFrameModel]] = {
    "studies": Study,
    "publications": Publication,
    "study_identifiers": StudyIdentifier,
    "product_composition": ProductComposition,
    "interaction_effects": InteractionEffect,
    "safety_signals": SafetySignal,
    **{name: TABLES_BY_NAME[name].model for name in RESULTS},
}
"""The tables history reads from a release (study_identifiers only for merged NCT ids)."""


def _empty(table: str) -> pa.Table:
    return arrow_schema(FOLLOWED[table]).empty_table()


@dataclass(frozen=True)
class Records:
    """The tables of one release that history follows.

    The evidence and results tables default to empty: a release published before they
    existed has none.
    """

    studies: pa.Table
    publications: pa.Table
    study_identifiers: pa.Table
    product_composition: pa.Table = field(default_factory=lambda: _empty("product_composition"))
    interaction_effects: pa.Table = field(default_factory=lambda: _empty("interaction_effects"))
    safety_signals: pa.Table = field(default_factory=lambda: _empty("safety_signals"))
    arms: pa.Table = field(default_factory=lambda: _empty("arms"))
    result_groups: pa.Table = field(default_factory=lambda: _empty("result_groups"))
    outcome_results: pa.Table = field(default_factory=lambda: _empty("outcome_results"))
    outcome_analyses: pa.Table = field(default_factory=lambda: _empty("outcome_analyses"))
    adverse_events: pa.Table = field(default_factory=lambda: _empty("adverse_events"))
    adverse_event_totals: pa.Table = field(default_factory=lambda: _empty("adverse_event_totals"))
    baseline_measures: pa.Table = field(default_factory=lambda: _empty("baseline_measures"))
    participant_flow: pa.Table = field(default_factory=lambda: _empty("participant_flow"))
    outcome_changes: pa.Table = field(default_factory=lambda: _empty("outcome_changes"))

    @classmethod
    def from_tables(cls, tables: dict[str, pa.Table]) -> Records:
        """Pick the followed tables out of a release's tables (empty when a table is absent)."""
        return cls(**{name: tables.get(name, _empty(name)) for name in FOLLOWED})


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


def read_previous(source: Path | ReleaseTables, version: str) -> PreviousRelease:
    """Read what history needs from a published release: its folder, or the catalog.

    A release published on another machine into a shared catalog has no folder here; it is
    read from the catalog by time travel instead (`diff.CatalogRelease`).
    """
    release = as_release(source)
    tables = {name: table for name in FOLLOWED if (table := release.read(name)) is not None}
    return PreviousRelease(
        version,
        Records.from_tables(tables),
        release.read(RECORD_VERSIONS),
        release.read(REMOVED_RECORDS),
    )


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of YYYY.MM.DD[.N] versions: numeric, so .10 comes after .9."""
    return tuple(int(part) for part in version.split("."))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _vectorised(arrow_type: pa.DataType) -> bool:
    return not (pa.types.is_nested(arrow_type) or pa.types.is_null(arrow_type))


def differs(before: pa.ChunkedArray, after: pa.ChunkedArray) -> pa.Array:
    """Per row, whether two aligned columns hold different values.

    Null equals null and NaN equals NaN. Flat columns are compared by Arrow kernels (fast on
    large tables); lists, and columns whose type changed, value by value.
    """
    if before.type != after.type or not _vectorised(before.type):
        pairs = zip(before.to_pylist(), after.to_pylist(), strict=True)
        return pa.array([not _same(a, b) for a, b in pairs], type=pa.bool_())
    same = pc.or_(
        pc.fill_null(pc.equal(before, after), False),
        pc.and_(pc.is_null(before), pc.is_null(after)),
    )
    if pa.types.is_floating(before.type):
        both_nan = pc.and_(pc.is_nan(before), pc.is_nan(after))
        same = pc.or_(same, pc.fill_null(both_nan, False))
    result = pc.invert(same)
    return result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result


def _rows_of(table: pa.Table, key: str, ids: list[str]) -> pa.Table:
    """The rows of `table` whose `key` is in `ids`, in the order of `ids`."""
    wanted = pa.array(ids, type=pa.string())
    return table.take(pc.index_in(wanted, value_set=table[key].combine_chunks()))


def changed_columns(
    before: pa.Table, after: pa.Table, key: str, ids: list[str]
) -> dict[str, list[str]]:
    """Id → sorted columns whose values differ between the two tables; unchanged ids left out.

    Only columns both tables have count: a column one release lacks (a schema that grew) is
    not a change of the record. `ids` must be present in both tables.
    """
    old, new = _rows_of(before, key, ids), _rows_of(after, key, ids)
    changed: dict[str, list[str]] = {}
    for column in sorted(set(old.column_names) & set(new.column_names)):
        for index in pc.indices_nonzero(differs(old[column], new[column])).to_pylist():
            changed.setdefault(ids[index], []).append(column)
    return changed


def study_sources(row: Row) -> list[str]:
    """Where a study came from: its registry, else its evidence source."""
    origin = row.get("registry") or row.get("evidence_source")
    return [origin] if origin else []


def publication_sources(row: Row) -> list[str]:
    """Where a publication came from: its `sources` column, sorted."""
    return sorted(row.get("sources") or [])


def evidence_sources(row: Row) -> list[str]:
    """Where an evidence row came from: the page it was read on."""
    return [row["source_url"]] if row.get("source_url") else []


def results_sources(row: Row) -> list[str]:
    """Where a posted-results row came from: the record page of its study (named by the row's
    study_id, else by its outcome_id, `<study_id>:R<n>`)."""
    study_id = row.get("study_id") or str(row.get("outcome_id") or "").split(":")[0]
    return [REGISTRY_PAGE.format(study_id)] if study_id else []


def record_ids(table: pa.Table, key: tuple[str, ...]) -> pa.Array:
    """Per row, its record_id: the key column, or the key columns joined by KEY_SEPARATOR with
    a null part as the empty string.

    Raises ValueError when two rows get one id (a key value holding the separator), which
    would merge two records' histories.
    """
    if len(key) == 1:
        ids = table[key[0]].combine_chunks()
    else:
        parts = [pc.cast(table[c], pa.string()) for c in key]
        ids = pc.binary_join_element_wise(
            *parts, KEY_SEPARATOR, null_handling="replace", null_replacement=""
        ).combine_chunks()
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise ValueError(
            f"record ids of ({', '.join(key)}) are not unique: a value holds {KEY_SEPARATOR!r}"
        )
    return ids


def merge_targets(study_identifiers: pa.Table, present: Iterable[str]) -> dict[str, str]:
    """Alias NCT id → the present study listing it among its nctIdAliases.

    Should two studies list the same alias, the smallest study id wins (deterministic).
    """
    studies = set(present)
    aliases = study_identifiers.filter(
        pc.and_(
            pc.equal(study_identifiers["id_type"], ALIAS_ID_TYPE),
            pc.equal(study_identifiers["is_alias"], True),
        )
    )
    targets: dict[str, str] = {}
    for row in aliases.select(["study_id", "id_value"]).to_pylist():
        alias, study = row["id_value"], row["study_id"]
        if study not in studies or alias == study:
            continue
        if alias not in targets or study < targets[alias]:
            targets[alias] = study
    return targets


RECORD_ID = "_record_id"
"""Column holding each row's record_id while history compares two releases."""


@dataclass(frozen=True)
class _Kind:
    record_type: str
    table_name: str
    sources: Callable[[Row], list[str]]

    def table(self, records: Records) -> pa.Table:
        """The followed table with each row's record_id in RECORD_ID."""
        table: pa.Table = getattr(records, self.table_name)
        key = TABLES_BY_NAME[self.table_name].primary_key
        return table.append_column(RECORD_ID, record_ids(table, key))


_KINDS = (
    _Kind("study", "studies", study_sources),
    _Kind("publication", "publications", publication_sources),
    _Kind("composition", "product_composition", evidence_sources),
    _Kind("interaction", "interaction_effects", evidence_sources),
    _Kind("safety_signal", "safety_signals", evidence_sources),
    *(_Kind(record_type, name, results_sources) for name, record_type in RESULTS.items()),
)


def _ids(table: pa.Table) -> set[str]:
    return set(table[RECORD_ID].to_pylist())


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
    return [
        _version_row(kind.record_type, rid, previous.version, "added", [])
        for kind in _KINDS
        for rid in sorted(_ids(kind.table(previous.records)))
    ]


def _merged_into(record_type: str, record_id: str, targets: dict[str, str]) -> str | None:
    return targets.get(record_id) if record_type == "study" else None


def _tombstone(kind: _Kind, row: Row, last_seen: str, version: str) -> Row:
    return {
        "record_type": kind.record_type,
        "record_id": row[RECORD_ID],
        "sources": kind.sources(row),
        "last_version_seen": last_seen,
        "removed_in_version": version,
        "merged_into": None,
    }


def compute_history(previous: PreviousRelease | None, current: Records, version: str) -> History:
    """The cumulative history of the release `version`, given the one before it (or None).

    New rows: added (never seen), changed (with its changed fields), removed (in the previous
    release, not in this one: also a tombstone), restored (back from a tombstone). Tombstones
    of records still absent are carried over.
    """
    versions: list[Row] = []
    tombstones: dict[RecordKey, Row] = {}
    if previous is not None:
        if previous.record_versions is None:
            versions = _seed_versions(previous)
        else:
            versions = previous.record_versions.to_pylist()
        if previous.removed_records is not None:
            tombstones = {
                (r["record_type"], r["record_id"]): r for r in previous.removed_records.to_pylist()
            }
    present: dict[str, set[str]] = {}
    for kind in _KINDS:
        after = kind.table(current)
        before = kind.table(previous.records) if previous is not None else after.slice(0, 0)
        new = present[kind.record_type] = _ids(after)
        old = _ids(before)
        for rid in sorted(new - old):
            back = tombstones.pop((kind.record_type, rid), None) is not None
            versions.append(
                _version_row(kind.record_type, rid, version, "restored" if back else "added", [])
            )
        kept = sorted(new & old)
        for rid in kept:
            tombstones.pop((kind.record_type, rid), None)
        if previous is None:
            continue
        changed = changed_columns(before, after, RECORD_ID, kept)
        for rid, fields in sorted(changed.items()):
            versions.append(_version_row(kind.record_type, rid, version, "changed", fields))
        gone = sorted(old - new)
        for row in _rows_of(before, RECORD_ID, gone).to_pylist():
            versions.append(_version_row(kind.record_type, row[RECORD_ID], version, "removed", []))
            tombstones[(kind.record_type, row[RECORD_ID])] = _tombstone(
                kind, row, previous.version, version
            )
    targets = merge_targets(current.study_identifiers, present["study"])
    removed = [
        {**row, "merged_into": _merged_into(record_type, record_id, targets)}
        for (record_type, record_id), row in sorted(tombstones.items())
    ]
    versions.sort(key=lambda r: (r["record_type"], r["record_id"], version_key(r["version"])))
    return History(
        pa.Table.from_pylist(versions, schema=arrow_schema(RecordVersion)),
        pa.Table.from_pylist(removed, schema=arrow_schema(RemovedRecord)),
    )

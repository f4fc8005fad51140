"""Record history across releases: record_versions and removed_records (tombstones).

Each release carries the whole cumulative history, computed from the previous release's
history and the new studies, publications, evidence rows (product_composition,
interaction_effects, safety_signals) and posted-results rows (arms, result_groups,
outcome_results, outcome_analyses, adverse_events, adverse_event_totals, baseline_measures,
participant_flow, outcome_changes), so no release needs its predecessors to answer "when did
this trial's status change" or "when did its adverse events change".

DuckDB computes it set-wise: a record id per row, then joins of the new tables against the
previous release's on those ids (added, restored, changed, removed), streamed out sorted. A
release of a whole registry holds millions of posted-results rows, so nothing here holds a
row in Python; the tables are read where they lie (the Parquet files just written, the
previous release's folder, or the catalog by time travel). Rows come out sorted and nothing
depends on the clock or on input order.

A row of a table with a composite primary key is named by its key values joined by `|`, a null
part as the empty string (as `quarantine.record_key` names a rejected row): the adverse event
`NCT03722472|EG000|serious|Anaemia|Blood and lymphatic system disorders|Group A`.

Choices: `changed_fields` lists the columns (present in both releases) whose values differ (null
equals null, NaN equals NaN; a column whose type changed is compared by value), and is empty
for added, removed and restored records, where every column is new, gone or back. A removed
NCT id that a present study lists among its nctIdAliases was merged by the registry: its
tombstone names that study in `merged_into` (the smallest study id, should two list it),
re-resolved each release so it always points at a study of the same release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pandera.pandas import DataFrameModel

from pipelines.release.diff import (
    ReleaseTables,
    as_release,
    differs_sql,
    sql_name,
    sql_text,
)
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
REGISTRY_PAGE = "https://clinicaltrials.gov/study/"
"""Where a posted-results row came from: its study's record page (this + the NCT id)."""
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
SCHEMAS = {
    RECORD_VERSIONS: arrow_schema(RecordVersion),
    REMOVED_RECORDS: arrow_schema(RemovedRecord),
}
ROWS_PER_BATCH = 122_880
"""Rows per streamed batch (and Parquet row group) of a history table."""
_T = TypeVar("_T")


def _empty(table: str) -> pa.Table:
    return arrow_schema(FOLLOWED[table]).empty_table()


@dataclass(frozen=True)
class Records:
    """The tables of one release that history follows, as Arrow tables.

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
    def from_tables(cls, tables: Mapping[str, pa.Table]) -> Records:
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


Source: TypeAlias = pa.Table | str | None
"""A table for DuckDB: Arrow in memory, a SQL FROM item (a Parquet file, the catalog at a
snapshot) or None when the release has no such table."""


@dataclass(frozen=True)
class Scans:
    """One release's tables as history reads them: followed table name -> Source, and its
    history tables (None when it predates them, or for the release being published)."""

    version: str
    tables: Mapping[str, Source]
    record_versions: Source = None
    removed_records: Source = None


def read_previous(source: Path | ReleaseTables, version: str) -> PreviousRelease:
    """Read what history needs from a published release into memory (small releases, tests)."""
    release = as_release(source)
    tables = {name: table for name in FOLLOWED if (table := release.read(name)) is not None}
    return PreviousRelease(
        version,
        Records.from_tables(tables),
        release.read(RECORD_VERSIONS),
        release.read(REMOVED_RECORDS),
    )


def scans_of(release: ReleaseTables) -> Scans:
    """A published release read in place: its files, or the catalog at its snapshot."""
    return Scans(
        release.version,
        {name: release.scan(name) for name in FOLLOWED},
        release.scan(RECORD_VERSIONS),
        release.scan(REMOVED_RECORDS),
    )


@dataclass(frozen=True)
class _Kind:
    record_type: str
    table_name: str


_KINDS = (
    _Kind("study", "studies"),
    _Kind("publication", "publications"),
    _Kind("composition", "product_composition"),
    _Kind("interaction", "interaction_effects"),
    _Kind("safety_signal", "safety_signals"),
    *(_Kind(record_type, name) for name, record_type in RESULTS.items()),
)
_EVIDENCE = frozenset({"composition", "interaction", "safety_signal"})
_NO_FIELDS = "[]::VARCHAR[]"


def _record_id(key: tuple[str, ...]) -> str:
    """SQL of a row's record_id: its key column, or the key columns joined by KEY_SEPARATOR
    with a null part as the empty string."""
    if len(key) == 1:
        return f"CAST({sql_name(key[0])} AS VARCHAR)"
    parts = [f"coalesce(CAST({sql_name(c)} AS VARCHAR), '')" for c in key]
    return f" || {sql_text(KEY_SEPARATOR)} || ".join(parts)


def _column_or_null(columns: Mapping[str, str], name: str) -> str:
    return sql_name(name) if name in columns else "NULL::VARCHAR"


def _sources(record_type: str, columns: Mapping[str, str]) -> str:
    """SQL of where a removed record came from: a study's registry (else its evidence
    source), a publication's sorted `sources`, an evidence row's page, a posted-results row's
    study record page (its study_id, else the study part of its outcome_id)."""

    def one(value: str) -> str:
        return f"CASE WHEN {value} IS NULL THEN {_NO_FIELDS} ELSE [{value}] END"

    def given(name: str) -> str:
        return f"nullif({_column_or_null(columns, name)}, '')"

    if record_type == "study":
        return one(f"coalesce({given('registry')}, {given('evidence_source')})")
    if record_type == "publication":
        if "sources" not in columns:
            return _NO_FIELDS
        return f"coalesce(list_sort(sources), {_NO_FIELDS})"
    if record_type in _EVIDENCE:
        return one(given("source_url"))
    outcome_study = (
        f"nullif(split_part(coalesce({_column_or_null(columns, 'outcome_id')}, ''), ':', 1), '')"
    )
    study = f"coalesce({given('study_id')}, {outcome_study})"
    return one(f"{sql_text(REGISTRY_PAGE)} || {study}")


def _changed_fields(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """SQL list of the sorted names of the columns both releases have whose values differ."""
    common = sorted((set(before) & set(after)) - {"_rid"})
    if not common:
        return _NO_FIELDS
    flags = ", ".join(
        f"CASE WHEN {differs_sql(c, before[c], after[c])} THEN {sql_text(c)} END" for c in common
    )
    return f"list_filter([{flags}]::VARCHAR[], x -> x IS NOT NULL)"


def _view(con: duckdb.DuckDBPyConnection, view: str, source: Source, empty: pa.Table) -> list[str]:
    """Make `source` the view `view`: an Arrow table (or `empty` for None) is registered now,
    a SQL FROM item becomes a statement to run with the others (returned)."""
    if isinstance(source, str):
        return [f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source}"]
    con.register(view, empty if source is None else source)
    return []


Columns: TypeAlias = dict[str, tuple[dict[str, str], dict[str, str]]]
"""Record type -> the column types of its table in the previous and in the new release."""


def _columns(con: duckdb.DuckDBPyConnection) -> Columns:
    """Each record type's column types in h_old_<t> and h_new_<t>, from one catalog query."""
    found: dict[str, dict[str, str]] = {}
    for view, column, kind in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = 'temp' AND (starts_with(table_name, 'h_old_') "
        "OR starts_with(table_name, 'h_new_')) ORDER BY table_name, column_index"
    ).fetchall():
        found.setdefault(str(view), {})[str(column)] = str(kind)
    return {
        k.record_type: (found[f"h_old_{k.record_type}"], found[f"h_new_{k.record_type}"])
        for k in _KINDS
    }


def _prepare(con: duckdb.DuckDBPyConnection, previous: Scans | None, current: Scans) -> Columns:
    """Temp views h_new_<t> per record type, each row with its record id in `_rid`; with a
    previous release also h_old_<t>, the previous history (h_old_versions, h_old_removed) and
    the merge targets (h_targets). Returns each record type's (old, new) column types (none
    without a previous release: nothing is compared).

    The views are made by one multi-statement call: each call gives up Python's GIL and waits
    for it again, and beside the report's charts (pure Python) every wait is a switch interval
    (5 ms): the 150 statements of this preparation took 1.2 s more in the build than alone.
    """
    releases = {"new": current} if previous is None else {"new": current, "old": previous}
    statements = []
    for side, release in releases.items():
        for name in FOLLOWED:
            source = release.tables.get(name)
            statements += _view(con, f"h_{side}_src_{name}", source, _empty(name))
        for kind in _KINDS:
            key = TABLES_BY_NAME[kind.table_name].primary_key
            statements.append(
                f"CREATE OR REPLACE TEMP VIEW h_{side}_{kind.record_type} AS SELECT "
                f"{_record_id(key)} AS _rid, * FROM h_{side}_src_{kind.table_name}"
            )
    if previous is not None:
        versions, removed = (
            SCHEMAS[RECORD_VERSIONS].empty_table(),
            SCHEMAS[REMOVED_RECORDS].empty_table(),
        )
        statements += _view(con, "h_old_versions", previous.record_versions, versions)
        statements += _view(con, "h_old_removed", previous.removed_records, removed)
        statements.append(
            "CREATE OR REPLACE TEMP VIEW h_targets AS SELECT i.id_value AS alias, "
            "min(i.study_id) AS study FROM h_new_src_study_identifiers i "
            "SEMI JOIN h_new_study s ON s._rid = i.study_id "
            f"WHERE i.id_type = {sql_text(ALIAS_ID_TYPE)} AND i.is_alias "
            "AND i.id_value <> i.study_id GROUP BY i.id_value"
        )
    con.execute(";\n".join(statements))
    return _columns(con) if previous is not None else {}


VERSION_ORDER = (
    "CAST(replace(left(version, 10), '.', '') AS BIGINT) * 1000000 "
    "+ coalesce(CAST(nullif(split_part(version, '.', 4), '') AS BIGINT) + 1, 0)"
)
"""SQL sort key of a YYYY.MM.DD[.N] version: numeric, so .10 comes after .9."""


def _versions_sql(previous: Scans | None, columns: Columns, version: str, record_type: str) -> str:
    """record_versions of one record type, sorted: the previous history (or, for a release
    that predates it, every one of its records added in it), then this release's added,
    restored, changed and removed. The first release's records are all added, in one
    version: their ids, unique (`_checked`), order them alone, and the sort holds nothing but
    the ids, the constant columns added after it (200 000 studies' outcome_results: 4.2 -> 3.0
    CPU s)."""
    new, t = sql_text(version), sql_text(record_type)
    if previous is None:
        return (
            f"SELECT {t} AS record_type, record_id, {new} AS version, 'added' AS change, "
            f"{_NO_FIELDS} AS changed_fields "
            f"FROM (SELECT _rid AS record_id FROM h_new_{record_type} ORDER BY record_id)"
        )
    parts = []
    kind = next((k for k in _KINDS if k.record_type == record_type), None)
    if previous.record_versions is None:
        if kind is not None:
            parts.append(
                f"SELECT _rid, {sql_text(previous.version)}, 'added', {_NO_FIELDS} "
                f"FROM h_old_{record_type}"
            )
    else:
        parts.append(
            "SELECT record_id, version, change, changed_fields FROM h_old_versions "
            f"WHERE record_type = {t}"
        )
    if kind is not None:
        new_view, old_view = f"h_new_{record_type}", f"h_old_{record_type}"
        fields = _changed_fields(*columns[record_type])
        parts += [
            f"SELECT c._rid, {new}, CASE WHEN c._rid IN (SELECT record_id FROM "
            f"h_old_removed WHERE record_type = {t}) THEN 'restored' ELSE 'added' END, "
            f"{_NO_FIELDS} FROM {new_view} c ANTI JOIN {old_view} p ON p._rid = c._rid",
            f"SELECT _rid, {new}, 'changed', fields FROM (SELECT c._rid, {fields} AS fields "
            f"FROM {new_view} c JOIN {old_view} p ON p._rid = c._rid) WHERE len(fields) > 0",
            f"SELECT p._rid, {new}, 'removed', {_NO_FIELDS} "
            f"FROM {old_view} p ANTI JOIN {new_view} c ON c._rid = p._rid",
        ]
    union = " UNION ALL ".join(f"({part})" for part in parts)
    return (
        f"SELECT {t} AS record_type, record_id, version, change, changed_fields FROM ("
        f"SELECT * FROM ({union}) AS v(record_id, version, change, changed_fields)) "
        f"ORDER BY record_id, {VERSION_ORDER}, change"
    )


def _record_types(con: duckdb.DuckDBPyConnection, previous: Scans | None) -> list[str]:
    """Every record type of the new history, sorted: the followed ones and any other the
    previous history holds."""
    found = []
    if previous is not None and previous.record_versions is not None:
        found = con.execute("SELECT DISTINCT record_type FROM h_old_versions").fetchall()
    return sorted({k.record_type for k in _KINDS} | {str(t) for (t,) in found})


def _clashing(record_type: str, detail: str) -> ValueError:
    kind = next((k for k in _KINDS if k.record_type == record_type), None)
    key = TABLES_BY_NAME[kind.table_name].primary_key if kind is not None else ("?",)
    return ValueError(
        f"record ids of ({', '.join(key)}) are not unique: {detail}; "
        f"a key value holds {KEY_SEPARATOR!r}, or a key repeats"
    )


def _checked(
    batches: Iterable[pa.RecordBatch], record_type: str, version: str
) -> Iterator[pa.RecordBatch]:
    """One record type's sorted history rows, passed on once checked: a row without a record
    id, or two rows of this version with one id (two records of the release under one id,
    whose histories would merge), is a ValueError.

    Sorted by id, rows sharing an id are neighbours, so comparing each row with the one
    before finds them: no GROUP BY of every id (at 560 000 studies that needed passes to fit
    the publish session's memory; at 20 000 it took 0.4 CPU s).
    """
    last: tuple[str, bool] | None = None
    for batch in batches:
        ids = batch.column("record_id")
        if ids.null_count:
            raise _clashing(record_type, "a row has no record id (its key is null)")
        if batch.num_rows:
            new = pc.equal(batch.column("version"), version)
            if last is not None:
                ids = pa.concat_arrays([pa.array([last[0]], ids.type), ids])
                new = pa.concat_arrays([pa.array([last[1]]), new])
            same = pc.and_(
                pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)),
                pc.and_(new.slice(1), new.slice(0, len(new) - 1)),
            )
            if pc.any(same).as_py():
                twice = ids[pc.index(same, True).as_py()].as_py()
                raise _clashing(record_type, f"two rows are {twice!r}")
            last = (ids[-1].as_py(), new[-1].as_py())
        yield batch


def _versions(
    con: duckdb.DuckDBPyConnection,
    previous: Scans | None,
    columns: Columns,
    version: str,
    sort_in_sql: bool,
) -> pa.RecordBatchReader:
    """record_versions as one stream: a query per record type, in record type order (each sort
    holds one type's rows, not the whole history's), checked on the way. A first release's
    ids are read in their table's order and sorted on the way (`_sorted_on_the_way`) unless
    `sort_in_sql`."""
    schema = SCHEMAS[RECORD_VERSIONS]

    def batches() -> Iterator[pa.RecordBatch]:
        for record_type in _record_types(con, previous):
            stream: Iterable[pa.RecordBatch]
            if previous is None and not sort_in_sql:
                read = con.execute(f"SELECT _rid FROM h_new_{record_type}")
                ids = (batch.column(0) for batch in read.to_arrow_reader(ROWS_PER_BATCH))
                added = _Added(schema, record_type, version)
                stream = map(added.rows, _sorted_on_the_way(ids, record_type))
            else:
                sql = _versions_sql(previous, columns, version, record_type)
                stream = con.execute(sql).to_arrow_reader(ROWS_PER_BATCH).cast(schema)
            yield from _checked(stream, record_type, version)

    return pa.RecordBatchReader.from_batches(schema, batches())


HELD_ROWS = 4 * ROWS_PER_BATCH
"""Ids `_sorted_on_the_way` may hold back at once before it gives up (`UnorderedIds`)."""


class UnorderedIds(Exception):
    """A record type's ids came too far out of order to be sorted on the way."""


def _sorted_on_the_way(ids: Iterator[pa.Array], record_type: str) -> Iterator[pa.Array]:
    """Ids in their table's order, yielded sorted: each batch is sorted with the ids held back
    from the one before, and what lies below the next batch's smallest id goes out.

    A release's tables are stored in key order, and an id is its key's parts joined by
    KEY_SEPARATOR, so the ids come nearly sorted: 12 of 14 record types at 560 000 studies
    exactly, the other two out of order only within a study (`NCT..:R10|` sorts before
    `NCT..:R1|`). DuckDB's sort of outcome_results' 19 million ids took 14.2 s there.

    Raises:
        UnorderedIds: an id came below one already yielded (a batch further on held a smaller
            one), or more than HELD_ROWS were held back; the caller sorts in SQL instead.
        ValueError: an id is null (`_clashing`).
    """
    held: pa.Array | None = None
    last: str | None = None
    ahead = next(ids, None)
    while ahead is not None:
        current, ahead = ahead, next(ids, None)
        if current.null_count:
            raise _clashing(record_type, "a row has no record id (its key is null)")
        merged = current if held is None else pa.concat_arrays([held, current])
        if not _ascending(merged):
            merged = merged.take(pc.sort_indices(merged))
        if ahead is None:
            out, held = merged, None
        else:
            below = pc.sum(pc.less(merged, pc.min(ahead))).as_py() or 0
            out, held = merged.slice(0, below), merged.slice(below)
            if len(held) > HELD_ROWS:
                raise UnorderedIds(f"{record_type}: more than {HELD_ROWS} ids held back")
        if len(out):
            if last is not None and out[0].as_py() < last:
                raise UnorderedIds(f"{record_type}: {out[0].as_py()!r} came after {last!r}")
            last = out[-1].as_py()
            yield out


def _ascending(ids: pa.Array) -> bool:
    if len(ids) < 2:
        return True
    return bool(pc.all(pc.less_equal(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py())


class _Added:
    """record_versions rows of a first release: every id of one record type added in
    `version`. The constant columns are made once (`pa.repeat` per batch took 16.6 s at
    560 000 studies), as long as the longest batch so far, and sliced for each batch of ids:
    made at ROWS_PER_BATCH up front, they cost 20 ms a record type, 0.3 s of a bundled
    release whose types hold a few hundred rows in all (bench/README.md, session 21)."""

    def __init__(self, schema: pa.Schema, record_type: str, version: str) -> None:
        self.schema = schema
        self.values = [
            record_type,
            version,
            "added",
            pa.scalar([], schema.field("changed_fields").type),
        ]
        self.made: list[pa.Array] = []

    def _made(self, count: int) -> list[pa.Array]:
        return [pa.repeat(value, count) for value in self.values]

    def rows(self, ids: pa.Array) -> pa.RecordBatch:
        count = len(ids)
        if not self.made or count > len(self.made[0]):
            self.made = self._made(max(count, 1))  # pa.repeat makes no empty array
        kind, version, change, fields = (column.slice(0, count) for column in self.made)
        return pa.RecordBatch.from_arrays([kind, ids, version, change, fields], schema=self.schema)


def _removed_sql(previous: Scans, columns: Columns, version: str) -> str:
    """removed_records: tombstones of records gone in this release, and the previous
    release's tombstones of records still absent; `merged_into` resolved anew."""
    present = " UNION ALL ".join(
        f"SELECT {sql_text(k.record_type)} AS record_type, _rid AS record_id "
        f"FROM h_new_{k.record_type}"
        for k in _KINDS
    )
    gone_union = " UNION ALL ".join(
        f"SELECT {sql_text(k.record_type)} AS record_type, p._rid AS record_id, "
        f"{_sources(k.record_type, columns[k.record_type][0])} AS sources, "
        f"{sql_text(previous.version)} AS last_version_seen, "
        f"{sql_text(version)} AS removed_in_version "
        f"FROM h_old_{k.record_type} p ANTI JOIN h_new_{k.record_type} c ON c._rid = p._rid"
        for k in _KINDS
    )
    carried = (
        "SELECT record_type, record_id, sources, last_version_seen, removed_in_version "
        f"FROM h_old_removed o WHERE NOT EXISTS (SELECT 1 FROM ({present}) n "
        "WHERE n.record_type = o.record_type AND n.record_id = o.record_id) "
        "AND NOT EXISTS (SELECT 1 FROM h_gone g "
        "WHERE g.record_type = o.record_type AND g.record_id = o.record_id)"
    )
    return (
        f"WITH h_gone AS ({gone_union}) "
        "SELECT t.record_type, t.record_id, t.sources, t.last_version_seen, "
        "t.removed_in_version, CASE WHEN t.record_type = 'study' THEN m.study END AS merged_into "
        f"FROM (SELECT * FROM h_gone UNION ALL {carried}) t "
        "LEFT JOIN h_targets m ON m.alias = t.record_id "
        "ORDER BY t.record_type, t.record_id"
    )


def history_batches(
    con: duckdb.DuckDBPyConnection,
    previous: Scans | None,
    current: Scans,
    version: str,
    sort_in_sql: bool = False,
) -> Iterator[tuple[str, pa.RecordBatchReader]]:
    """The history tables of the release `version`, given the one before it (or None): each
    table's name and its sorted rows as a stream, in the tables' schemas.

    New rows: added (never seen), changed (with its changed fields), removed (in the previous
    release, not in this one: also a tombstone), restored (back from a tombstone). Tombstones
    of records still absent are carried over. Read each stream to its end before asking for
    the next: both run on `con`. A first release's record_versions raise UnorderedIds when
    its ids come too far out of order to be sorted on the way (`written_history`).
    """
    columns = _prepare(con, previous, current)
    yield RECORD_VERSIONS, _versions(con, previous, columns, version, sort_in_sql)
    schema = SCHEMAS[REMOVED_RECORDS]
    if previous is None:  # nothing was there to be removed
        yield REMOVED_RECORDS, pa.RecordBatchReader.from_batches(schema, [])
        return
    removed = con.execute(_removed_sql(previous, columns, version))
    yield REMOVED_RECORDS, removed.to_arrow_reader(ROWS_PER_BATCH).cast(schema)


def written_history(
    con: duckdb.DuckDBPyConnection,
    previous: Scans | None,
    current: Scans,
    version: str,
    write: Callable[[str, pa.RecordBatchReader], _T],
) -> dict[str, _T]:
    """`write(name, stream)` for each history table (`history_batches`), in order; if a first
    release's ids came too far out of order to be sorted on the way, every table is written
    again from DuckDB's sort (what `write` wrote first is replaced)."""
    try:
        return {
            name: write(name, stream)
            for name, stream in history_batches(con, previous, current, version)
        }
    except UnorderedIds:
        return {
            name: write(name, stream)
            for name, stream in history_batches(con, previous, current, version, True)
        }


def compute_history(previous: PreviousRelease | None, current: Records, version: str) -> History:
    """`history_batches` over Arrow tables in memory, read whole (small releases, tests)."""
    prior = None
    if previous is not None:
        prior = Scans(
            previous.version,
            vars(previous.records),
            previous.record_versions,
            previous.removed_records,
        )
    con = duckdb.connect()
    try:
        found = written_history(
            con, prior, Scans(version, vars(current)), version, lambda _, stream: stream.read_all()
        )
    finally:
        con.close()
    return History(found[RECORD_VERSIONS], found[REMOVED_RECORDS])

"""The rules every published table obeys, applied three ways from one definition.

The rules are each table's Pandera model (schemas/) and the key table `schemas.registry.TABLES`
(primary and foreign keys). `breaches` applies them to a frame; from it come the curate gate
(`enforce`: rows that break a rule go to quarantine naming the rule, never dropped silently),
the blocking asset check of every curated table (`table_check`), and the table checks of
`kratom-evidence validate` (`problem_lines`, see pipelines/release/validate.py). Validation is
lazy, so one pass reports every failure. Rows that live in DuckDB in the model's types are
screened by the model's checks as SQL (schemas/sql.py): Pandera reads only the rows the screen
flags, and the rows kept never leave DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import dagster as dg
import duckdb
import orjson
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.warehouse import LINEAGE_COLUMNS, read_frame
from schemas import QUARANTINE, TableSpec
from schemas.arrow import arrow_schema
from schemas.fields import NULLABLE_KEY
from schemas.registry import ForeignKey
from schemas.sql import Screen, duckdb_types, float_columns, nan_as_null, quoted, screen

QUARANTINE_COLUMNS = QUARANTINE.columns
EXAMPLES = 3
"""Failing values a problem line shows."""

ParentKeys = dict[str, set[tuple[Any, ...]]]
"""Key tuples of parent tables, by table name, for foreign-key checks."""

PRIMARY_KEY, SCHEMA, FOREIGN_KEY = "primary key", "schema", "foreign key"
NOT_NULL, UNIQUE = "not_nullable", "unique"
"""The two checks of the primary-key rule."""


@dataclass(frozen=True)
class Breach:
    """One row (`row` None: the table as a whole) breaking one rule."""

    row: int | None
    rule: str
    columns: tuple[str, ...]
    check: str
    """The Pandera check that failed; for a foreign key, the parent table."""
    value: Any
    reason: str
    """The quarantine reason, naming the rule and the value."""


@dataclass
class Enforced:
    """A table that passed the gate, and the rows that did not."""

    frame: pd.DataFrame
    rejects: pd.DataFrame


def _is_missing(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def key_set(frame: pd.DataFrame, columns: tuple[str, ...]) -> set[tuple[Any, ...]]:
    """The key tuples of a table, for its children's foreign-key checks."""
    return set(frame[list(columns)].itertuples(index=False, name=None))


def nullable_key_columns(spec: TableSpec) -> tuple[str, ...]:
    """Primary-key columns whose model opts in to nulls (`schemas.fields.nullable_key_part`),
    such as outcome_changes' registered_outcome_id: a reported outcome nothing was registered
    for has none. Every other key column must be non-null."""
    columns = spec.model.to_schema().columns
    return tuple(
        c for c in spec.primary_key if (columns[c].metadata or {}).get(NULLABLE_KEY) is True
    )


# Where the rules read rows from: key columns in DuckDB, every column in pandas by chunks.

CHUNK_ROWS = 100_000
"""Rows Pandera validates at a time, so memory stays flat however large a table grows. Every
model check is per value or per row; uniqueness is the primary key's, which SQL checks whole
(tests/unit/test_rules.py holds the models to that)."""


@dataclass(frozen=True)
class Rows:
    """Rows under the rules, named 0..count-1 in order by `_row`: their key columns as the DuckDB
    relation `relation`, and all their columns as pandas, one chunk at a time."""

    relation: str
    count: int
    stop: int
    """Every `_row` is below it (rows may leave gaps)."""
    chunk: Callable[[int, int], pd.DataFrame]
    """The rows with start <= _row < stop, indexed by _row."""
    whole: bool = False
    """The relation holds every column (the rows live in DuckDB), not only the key columns."""
    table: str | None = None
    """The temporary table holding the rows in `_row` order (rowid = `_row`), with a
    `_rejected` flag the gate sets: the rows it keeps are then a scan, in that order."""


def key_columns(spec: TableSpec) -> list[str]:
    """The columns the SQL rules read: primary key, then foreign-key columns."""
    columns = [*spec.primary_key, *(c for fk in spec.foreign_keys for c in fk.columns)]
    return list(dict.fromkeys(columns))


def _registered(frame: pd.DataFrame) -> pd.DataFrame:
    """Text key columns as pandas strings, so DuckDB types them VARCHAR even when all null."""
    return frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})


def frame_rows(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, spec: TableSpec) -> Rows:
    """A pandas frame's rows, named by position; its key columns registered in DuckDB."""
    frame = frame.reset_index(drop=True)
    keys = [c for c in key_columns(spec) if c in frame.columns]
    name = f"_rows__{spec.name}"
    con.register(name, _registered(frame[keys]).assign(_row=range(len(frame))))
    return Rows(name, len(frame), len(frame), lambda start, stop: frame.iloc[start:stop])


def _indexed(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows read from DuckDB, indexed by their `_row`."""
    frame.index = pd.Index(frame.pop("_row").to_numpy())
    return frame


def _relation_rows(
    con: duckdb.DuckDBPyConnection, relation: str, count: int, stop: int, table: str | None = None
) -> Rows:
    """Rows of a relation that has `_row` (each below `stop`), read back by range."""

    def chunk(start: int, end: int) -> pd.DataFrame:
        return _indexed(
            read_frame(
                con,
                f"SELECT * FROM {relation} WHERE _row >= ? AND _row < ? ORDER BY _row",
                [start, end],
            )
        )

    return Rows(relation, count, stop, chunk, whole=True, table=table)


SORT_RUN_ROWS = 500_000
"""Rows a staged table is sorted in at a time when its records were staged in key order
(`sorted_rows`). At 560 000 studies, outcome_results' 19 million rows took 56.8 s sorted whole
and 25.0 s in runs of 500 000 (32.6 in runs of a million, 25.5 of 250 000), against 22.6 s to
copy them unsorted (bench/README.md, session 15)."""


def sorted_rows(
    con: duckdb.DuckDBPyConnection,
    select: str,
    spec: TableSpec,
    order: str,
    table: str | None = None,
    in_runs: bool = False,
) -> Rows:
    """The rows of a query in `order` (SQL ORDER BY terms), copied into a table in that order,
    so each chunk is read back by range, never the whole table at once: `table`, a warehouse
    table a keeper may then take whole as the kept rows (`kept_in_place`), else a temporary one.

    The copy is the one sort: a new table's rowids number its rows in insertion order, which
    DuckDB keeps for an ORDER BY (`preserve_insertion_order`), so rowid is `_row`, and a scan
    of the table (what the gate inserts) gives the rows in that order without sorting again.
    `in_runs`: the query's `_seq` numbers its rows as they were staged, record after record;
    the rows are then sorted a run of `_seq` at a time when the runs prove to follow each other
    in `order` (`_sorted_in_runs`), else whole.
    """
    name = table or f"_rows__{spec.name}"
    kind = "TABLE" if table else "TEMP TABLE"
    if not (in_runs and _sorted_in_runs(con, select, name, kind, order)):
        con.execute(
            f"CREATE OR REPLACE {kind} {name} AS "
            f"SELECT *, false AS _rejected FROM ({select}) ORDER BY {order}"
        )
    count, stop = cast(
        tuple[int, int],
        con.execute(f"SELECT count(*), coalesce(max(rowid) + 1, 0) FROM {name}").fetchone(),
    )
    if count != stop:
        raise RuntimeError(f"{name}: rowids of a new table are not 0..{count - 1}")
    relation = f"(SELECT rowid AS _row, * EXCLUDE (_rejected) FROM {name})"
    return _relation_rows(con, relation, count, count, name)


def _run_starts(con: duckdb.DuckDBPyConnection, select: str) -> tuple[list[int], int] | None:
    """Where each run of about SORT_RUN_ROWS rows starts (a `_seq`), each at the first row of a
    new source file, so no record is split between two runs, and the rows in all; None when
    the rows fit one run or some row has no `_seq`."""
    count, numbered, first, last = cast(
        tuple[int, int, int | None, int | None],
        con.execute(
            f"SELECT count(*), count(_seq), min(_seq), max(_seq) FROM ({select})"
        ).fetchone(),
    )
    if count <= SORT_RUN_ROWS or numbered != count or first is None or last is None:
        return None
    starts = [first]
    seq = first + SORT_RUN_ROWS
    while seq <= last:
        (start,) = cast(
            tuple[int | None],
            con.execute(
                f"SELECT min(_seq) FROM ({select}) WHERE _seq >= ? AND _seq < ? AND _source_file "
                f"IS DISTINCT FROM (SELECT max(_source_file) FROM ({select}) WHERE _seq = ?)",
                [seq, seq + SORT_RUN_ROWS, seq - 1],
            ).fetchone(),
        )
        if start is None:
            seq += SORT_RUN_ROWS  # one file longer than a run: look past it
            continue
        starts.append(start)
        seq = start + SORT_RUN_ROWS
    return (starts, count) if len(starts) > 1 else None


def _sorted_in_runs(
    con: duckdb.DuckDBPyConnection, select: str, name: str, kind: str, order: str
) -> bool:
    """Copy the rows of `select` into `name` in `order`, a run of `_seq` at a time, and say
    whether that gave the rows in `order` throughout (else the caller sorts them whole).

    A sort of the whole spills and compares long keys across every row; runs of records staged
    in key order sort in memory, each after the last. Each run is sorted, so the whole is when
    every run's first row follows the last row of the run before: both rows, sorted by
    `order`, must come out as they are.
    """
    found = _run_starts(con, select)
    if found is None:
        return False
    starts, count = found
    con.execute(
        f"CREATE OR REPLACE {kind} {name} AS SELECT *, false AS _rejected FROM ({select}) LIMIT 0"
    )
    rows = 0
    for i, start in enumerate(starts):
        after = f"_seq >= {start}" if i else "true"
        before = f"_seq < {starts[i + 1]}" if i + 1 < len(starts) else "true"
        inserted = con.execute(
            f"INSERT INTO {name} SELECT *, false AS _rejected FROM ({select}) "
            f"WHERE {after} AND {before} ORDER BY {order}"
        ).fetchone()
        first, rows = rows, rows + (int(inserted[0]) if inserted else 0)
        if i and not _follows(con, name, order, first):
            return False  # found at once: the rows are then sorted whole
    return rows == count


def _follows(con: duckdb.DuckDBPyConnection, name: str, order: str, row: int) -> bool:
    """Whether `row` of table `name` sorts after the row before it by `order` (a tie either
    way: it cannot occur in staged rows, whose lineage differs)."""
    pair = con.execute(
        f"SELECT rowid FROM {name} WHERE rowid IN (?, ?) ORDER BY {order}", [row - 1, row]
    ).fetchall()
    return [found for (found,) in pair] == [row - 1, row]


def stored_rows(con: duckdb.DuckDBPyConnection, table: str) -> Rows:
    """The rows of a warehouse table in place, named by DuckDB's rowid."""
    count, stop = cast(
        tuple[int, int],
        con.execute(f"SELECT count(*), coalesce(max(rowid) + 1, 0) FROM {table}").fetchone(),
    )
    return _relation_rows(con, f"(SELECT rowid AS _row, * FROM {table})", count, stop)


# The rules.


def _null_keys(con: duckdb.DuckDBPyConnection, rows: Rows, spec: TableSpec) -> list[Breach]:
    """Every null in a key column that did not opt in to nulls, column by column (one query)."""
    allowed = nullable_key_columns(spec)
    columns = [c for c in spec.primary_key if c not in allowed]
    if not columns:
        return []
    nulls = ", ".join(f"{quoted(c)} IS NULL" for c in columns)
    named = con.execute(
        f"SELECT _row, {nulls} FROM {rows.relation} "
        f"WHERE {' OR '.join(f'{quoted(c)} IS NULL' for c in columns)} ORDER BY _row"
    ).fetchall()
    return [
        Breach(row, PRIMARY_KEY, (column,), NOT_NULL, None, f"primary key column {column} is null")
        for i, column in enumerate(columns)
        for row, *nulls in named
        if nulls[i]
    ]


def _duplicate_keys(con: duckdb.DuckDBPyConnection, rows: Rows, spec: TableSpec) -> list[Breach]:
    """Every row repeating an earlier row's primary key (the first one stays), among rows whose
    key has no forbidden null.

    Null counts as a value (SQL's IS NOT DISTINCT FROM, as PARTITION BY groups): two rows whose
    keys differ only in being null in the same place are duplicates, so a nullable key part
    still keys one row.
    """
    if not spec.primary_key:
        return []
    allowed = nullable_key_columns(spec)
    repeats = _adjacent_repeats(con, rows, spec, allowed)
    if repeats is None:
        repeats = _grouped_repeats(con, rows, spec, allowed)
    reason = f"duplicate primary key ({', '.join(spec.primary_key)})"
    return [Breach(row, PRIMARY_KEY, spec.primary_key, UNIQUE, None, reason) for row in repeats]


def _grouped_repeats(
    con: duckdb.DuckDBPyConnection, rows: Rows, spec: TableSpec, allowed: tuple[str, ...]
) -> list[int]:
    """`_duplicate_keys` for rows in any order: keys held by more than one row, grouped (no
    sort), then their rows after the first."""
    complete = " AND ".join(
        [f"{quoted(c)} IS NOT NULL" for c in spec.primary_key if c not in allowed] or ["true"]
    )
    key = ", ".join(quoted(c) for c in spec.primary_key)
    same = " AND ".join(
        f"r.{quoted(c)} IS NOT DISTINCT FROM d.{quoted(c)}" for c in spec.primary_key
    )
    named = con.execute(
        f"SELECT r._row FROM {rows.relation} r JOIN (SELECT {key}, min(_row) AS _first "
        f"FROM {rows.relation} WHERE {complete} GROUP BY ALL HAVING count(*) > 1) d "
        f"ON {same} WHERE r._row > d._first ORDER BY r._row"
    ).fetchall()
    return [row for (row,) in named]


KEY_BATCH_ROWS = 1 << 17
"""Rows of key columns the streamed checks (`_adjacent_repeats`, `_merged_orphans`) hold at a
time."""


def _adjacent_repeats(
    con: duckdb.DuckDBPyConnection, rows: Rows, spec: TableSpec, allowed: tuple[str, ...]
) -> list[int] | None:
    """`_duplicate_keys` in one streamed pass, for rows whose keys never decrease in `_row`
    order (what the gate sorts, and so every curated table): equal keys are then neighbours,
    and a repeat is a complete key equal to the row before it. None when the rows are not so
    ordered (or a key type has no order here), for the grouped query.

    Grouping every key in SQL spills once the keys outgrow DuckDB's memory: at 200 000 studies
    outcome_results' 6.8 million keys took 6.4 s that way, 2.1 s streamed (bench/README.md).
    Any total order will do: keys that never decrease under one have their equals adjacent.
    """
    key = list(spec.primary_key)
    required = [i for i, c in enumerate(key) if c not in allowed]
    selected = ", ".join(quoted(c) for c in ["_row", *key])
    reader = con.execute(f"SELECT {selected} FROM {rows.relation}").to_arrow_reader(KEY_BATCH_ROWS)
    found: list[int] = []
    last: pa.RecordBatch | None = None
    for batch in reader:
        if batch.num_rows == 0:
            continue
        joined = batch if last is None else pa.Table.from_batches([last, batch]).combine_chunks()
        columns = [joined.column(i) for i in range(joined.num_columns)]
        try:
            repeats = _repeats_after_first(columns[0], columns[1:], required)
        except pa.ArrowNotImplementedError:
            return None
        if repeats is None:
            return None
        found.extend(repeats)
        last = batch.slice(batch.num_rows - 1, 1)
    return found


def _repeats_after_first(
    row: pa.ChunkedArray | pa.Array, keys: list[pa.ChunkedArray | pa.Array], required: list[int]
) -> list[int] | None:
    """Of rows 1..n-1, the `row` of each whose key equals its predecessor's with no null in a
    `required` part; None unless `row` increases and the keys never decrease (nulls last)."""
    n = len(row)
    if n < 2:
        return []
    if not pc.all(pc.less(row[:-1], row[1:])).as_py():
        return None
    ordered: Any = None
    equal: Any = None
    for column in reversed(keys):
        before, after = column[:-1], column[1:]
        null_before, null_after = pc.is_null(before), pc.is_null(after)
        same = pc.or_(
            pc.fill_null(pc.equal(before, after), False), pc.and_(null_before, null_after)
        )
        less = pc.or_(
            pc.fill_null(pc.less(before, after), False), pc.and_(pc.invert(null_before), null_after)
        )
        ordered = pc.or_(less, same if ordered is None else pc.and_(same, ordered))
        equal = same if equal is None else pc.and_(same, equal)
    if not pc.all(ordered).as_py():
        return None
    repeat = equal
    for i in required:
        repeat = pc.and_(repeat, pc.is_valid(keys[i][1:]))
    return cast(list[int], pc.filter(row[1:], repeat).to_pylist())


def _dangling(
    con: duckdb.DuckDBPyConnection, rows: Rows, spec: TableSpec, parents: dict[str, str]
) -> dict[int, list[Breach]]:
    """Rows whose non-null foreign key has no parent row, each with its breaches in key order;
    a parent absent from `parents` (table name -> relation) is not checked (a release folder
    missing that table already reports it)."""
    found: dict[int, list[Breach]] = {}
    for fk in spec.foreign_keys:
        parent = parents.get(fk.ref_table)
        if parent is None:
            continue
        named = None
        if fk.columns == spec.primary_key[:1]:  # rows sorted by their key, so by this one
            named = _merged_orphans(con, rows, fk, parent)
        if named is None:
            named = _joined_orphans(con, rows, fk, parent)
        for row, *values in named:
            shown = tuple(values) if len(values) > 1 else values[0]
            reason = f"{', '.join(fk.columns)} {shown!r} not found in {fk.ref_table}"
            breach = Breach(row, FOREIGN_KEY, fk.columns, fk.ref_table, shown, reason)
            found.setdefault(row, []).append(breach)
    return found


def _joined_orphans(
    con: duckdb.DuckDBPyConnection, rows: Rows, fk: ForeignKey, parent: str
) -> list[tuple[Any, ...]]:
    """`_dangling`'s rows of one foreign key, `_row` then the key's values, by an anti-join:
    for rows and parents in any order."""
    columns = [quoted(c) for c in fk.columns]
    present = " AND ".join(f"t.{c} IS NOT NULL" for c in columns)
    match = " AND ".join(
        f"p.{quoted(r)} = t.{c}" for r, c in zip(fk.ref_columns, columns, strict=True)
    )
    return con.execute(
        f"SELECT t._row, {', '.join(f't.{c}' for c in columns)} FROM {rows.relation} t "
        f"WHERE {present} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match}) "
        "ORDER BY t._row"
    ).fetchall()


def _merged_orphans(
    con: duckdb.DuckDBPyConnection, rows: Rows, fk: ForeignKey, parent: str
) -> list[tuple[Any, ...]] | None:
    """`_joined_orphans` for a one-column key by merging two sorted streams: the rows' key in
    `_row` order, which never decreases when the key leads the gate's order (outcome_results'
    outcome_id), and the parent's in stored order, which never decreases when it is the
    parent's primary key. None when either is not so ordered, the two types differ, or the
    parent is a relation only `con` sees (a registered frame), for the anti-join.

    The anti-join hashes every parent key: at 560 000 studies, 5.4 million outcome_ids took
    outcome_results' check 8 s, six times its 200 000-study time (bench/README.md).
    """
    if len(fk.columns) != 1:
        return None
    column, ref = quoted(fk.columns[0]), quoted(fk.ref_columns[0])
    with con.cursor() as parent_cursor:
        try:
            parent_keys = parent_cursor.execute(
                f"SELECT {ref} FROM {parent} WHERE {ref} IS NOT NULL"
            ).to_arrow_reader(KEY_BATCH_ROWS)
        except duckdb.CatalogException:
            return None
        child = con.execute(
            f"SELECT _row, {column} FROM {rows.relation} WHERE {column} IS NOT NULL"
        ).to_arrow_reader(KEY_BATCH_ROWS)
        if child.schema.field(1).type != parent_keys.schema.field(0).type:
            return None
        return _merge_missing(child, parent_keys)


def _merge_missing(
    child: pa.RecordBatchReader, parent_keys: pa.RecordBatchReader
) -> list[tuple[Any, ...]] | None:
    """(row, key) of each child row (batches of `_row`, key) whose key is not among the parent
    keys; None unless `_row` increases and both keys never decrease along their whole streams.

    Each child batch is looked up among the parent keys in its own range, read ahead as far as
    its last key: each side is read once, and no set outgrows a batch or two."""
    parent_arrays = (b.column(0) for b in parent_keys if b.num_rows)
    # Parent keys read and not below the child's keys so far, in order.
    held = pa.array([], parent_keys.schema.field(0).type)
    last_parent: Any = None
    parents_left = True
    found: list[tuple[Any, ...]] = []
    last_row: Any = None
    last_key: Any = None
    for batch in child:
        if batch.num_rows == 0:
            continue
        row, key = batch.column(0), batch.column(1)
        if not (_ascending(row, last_row, strict=True) and _ascending(key, last_key)):
            return None
        last_row, last_key = row[-1], key[-1]
        while parents_left and (last_parent is None or pc.less(last_parent, last_key).as_py()):
            more = next(parent_arrays, None)
            if more is None:
                parents_left = False
            elif not _ascending(more, last_parent):
                return None
            else:
                last_parent = more[-1]
                held = pa.concat_arrays([held, more])
        held = pc.filter(held, pc.greater_equal(held, key[0]))
        in_range = pc.filter(held, pc.less_equal(held, last_key))
        missing = pc.invert(pc.is_in(key, value_set=in_range))
        found += zip(
            pc.filter(row, missing).to_pylist(), pc.filter(key, missing).to_pylist(), strict=True
        )
    for more in parent_arrays:  # a parent key out of order past the rows' could match one
        if not _ascending(more, last_parent):
            return None
        last_parent = more[-1]
    return found


def _ascending(values: pa.Array, before: Any, strict: bool = False) -> bool:
    """Whether non-null `values` never decrease (`strict`: increase), starting above or at
    `before` (a scalar from the previous batch, or None)."""
    step = pc.less if strict else pc.less_equal
    if before is not None and not step(before, values[0]).as_py():
        return False
    return len(values) < 2 or bool(pc.all(step(values[:-1], values[1:])).as_py())


def _schema_reason(case: Any) -> str:
    """A column check names the column and value; a row check (a dataframe check such as
    'a CI contains its estimate') names the check alone, since it spans several columns."""
    if case.schema_context == "DataFrameSchema" and not pd.isna(case.index):
        return f"failed row check {case.check}"
    return f"{case.column}: failed {case.check} (value {case.failure_case!r})"


def _schema_breaches(
    frame: pd.DataFrame, spec: TableSpec
) -> tuple[pd.DataFrame | None, list[Breach]]:
    """Pandera's lazy validation: the validated (coerced) frame when every row passes, else
    None and one breach per failure case, in Pandera's order."""
    try:
        lineage = [c for c in LINEAGE_COLUMNS if c in frame.columns]
        return spec.model.to_schema().validate(frame.drop(columns=lineage), lazy=True), []
    except pandera.errors.SchemaErrors as errors:
        found = []
        for case in errors.failure_cases.itertuples():
            row = None if case.index is None or pd.isna(case.index) else int(case.index)
            column = case.column if isinstance(case.column, str) else None
            found.append(
                Breach(
                    row,
                    SCHEMA,
                    (column,) if column and column in spec.columns else (),
                    str(case.check),
                    case.failure_case,
                    _schema_reason(case),
                )
            )
        return None, found


@dataclass(frozen=True)
class Checked:
    """One chunk of rows under the rules: the rows, what they break, and (when no row failed
    the model) the model's validated frame of the rows that passed the key rules."""

    rows: pd.DataFrame
    found: list[Breach]
    validated: pd.DataFrame | None


def checked(
    con: duckdb.DuckDBPyConnection,
    rows: Rows,
    spec: TableSpec,
    parents: dict[str, str],
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Checked]:
    """Every rule over `rows`, chunk by chunk, each row's breaches in the gate's order: null
    key parts that may not be null, then repeated primary keys among the other rows (the first
    row of a key stays), then every Pandera failure of the rows left, then foreign keys of the
    rows still left. Key and foreign-key rules run in SQL over the whole table, Pandera on one
    chunk at a time (a table-level failure is reported by every chunk).

    Rows that live in DuckDB in the model's types are screened (`screened`): only the chunks of
    rows that may break a rule are read and yielded, every other row keeps every rule. No such
    rows, no rule to run: an empty table skips the dozen statements of its rules (ten of the
    bundled build's twenty-three tables are empty; bench/README.md, session 21).
    """
    typed = in_model_types(con, rows, spec)
    if typed and rows.count == 0:
        return
    by_row: dict[int, list[Breach]] = {}
    for breach in _null_keys(con, rows, spec) + _duplicate_keys(con, rows, spec):
        by_row.setdefault(cast(int, breach.row), []).append(breach)
    dangling = _dangling(con, rows, spec, parents)
    if typed:
        yield from _screened(con, rows, spec, by_row, dangling, chunk_rows)
        return
    for start in range(0, max(rows.stop, 1), chunk_rows):
        chunk = rows.chunk(start, start + chunk_rows)
        keyed = [b for i in chunk.index if i in by_row for b in by_row[i]]
        validated, found = _schema_breaches(chunk.drop(index=[b.row for b in keyed]), spec)
        rejected = {b.row for b in keyed + found}
        foreign = [dangling[i][0] for i in chunk.index if i in dangling and i not in rejected]
        yield Checked(chunk, keyed + found + foreign, validated)


def in_model_types(con: duckdb.DuckDBPyConnection, rows: Rows, spec: TableSpec) -> bool:
    """Whether the rows live in DuckDB with every model column in the model's type (so the
    model's coercion would change nothing but a float NaN, which it reads as missing)."""
    if not rows.whole:
        return False
    described = con.execute(f"DESCRIBE SELECT * FROM {rows.relation}").fetchall()
    found = {str(name): str(kind) for name, kind, *_ in described}
    return all(found.get(c) == kind for c, kind in duckdb_types(spec.model).items())


def _screened(
    con: duckdb.DuckDBPyConnection,
    rows: Rows,
    spec: TableSpec,
    by_row: dict[int, list[Breach]],
    dangling: dict[int, list[Breach]],
    chunk_rows: int,
) -> Iterator[Checked]:
    """`checked` for rows in the model's types: the model's SQL checks (schemas/sql.py) find
    the rows that may fail it, Pandera runs its other checks over every row (when the model
    has any), and each chunk of the rows that may break some rule is validated as `checked`
    does, Pandera seeing only the rows the screen or its other checks flagged."""
    model = screen(spec.model, spec.primary_key)
    flagged = {*by_row, *dangling, *_residual_failures(con, rows, model, chunk_rows)}
    con.register("_flagged", pa.table({"_row": pa.array(sorted(flagged), pa.int64())}))
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _examined AS SELECT _row, "
            "row_number() OVER (ORDER BY _row) - 1 AS _n FROM ("
            f"SELECT _row FROM {rows.relation} WHERE {model.suspect} "
            "UNION SELECT _row FROM _flagged)"
        )
    finally:
        con.unregister("_flagged")
    (count,) = cast(tuple[int], con.execute("SELECT count(*) FROM _examined").fetchone())
    for start in range(0, count, chunk_rows):
        chunk = _indexed(
            read_frame(
                con,
                f"SELECT r.* FROM {rows.relation} r JOIN _examined e USING (_row) "
                "WHERE e._n >= ? AND e._n < ? ORDER BY _row",
                [start, start + chunk_rows],
            )
        )
        keyed = [b for i in chunk.index if i in by_row for b in by_row[i]]
        _, found = _schema_breaches(chunk.drop(index=[b.row for b in keyed]), spec)
        rejected = {b.row for b in keyed + found}
        foreign = [dangling[i][0] for i in chunk.index if i in dangling and i not in rejected]
        yield Checked(chunk, keyed + found + foreign, None)


def _residual_failures(
    con: duckdb.DuckDBPyConnection, rows: Rows, model: Screen, chunk_rows: int
) -> list[int]:
    """Rows failing a check of the model that SQL does not express. Those checks are per row
    (or per value), so each distinct combination of the columns they read is validated once;
    a combination is failed whole when a check fails its chunk as a whole."""
    if model.residual is None:
        return []
    columns = [quoted(c) for c in model.reads]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _variants AS SELECT row_number() OVER () - 1 AS _row, * "
        f"FROM (SELECT DISTINCT {', '.join(columns)} FROM {rows.relation})"
    )
    (count,) = cast(tuple[int], con.execute("SELECT count(*) FROM _variants").fetchone())
    failing: list[int] = []
    for start in range(0, count, chunk_rows):
        chunk = _indexed(
            read_frame(
                con,
                "SELECT * FROM _variants WHERE _row >= ? AND _row < ? ORDER BY _row",
                [start, start + chunk_rows],
            )
        )
        try:
            model.residual.validate(chunk, lazy=True)
        except pandera.errors.SchemaErrors as errors:
            cases = errors.failure_cases["index"]
            failing += list(chunk.index) if cases.isna().any() else [int(i) for i in cases]
    if not failing:
        return []
    con.register("_failing", pa.table({"_row": pa.array(sorted(set(failing)), pa.int64())}))
    try:
        same = " AND ".join(f"r.{c} IS NOT DISTINCT FROM v.{c}" for c in columns)
        found = con.execute(
            f"SELECT r._row FROM {rows.relation} r JOIN _variants v ON {same} "
            "WHERE v._row IN (SELECT _row FROM _failing)"
        ).fetchall()
    finally:
        con.unregister("_failing")
    return [row for (row,) in found]


def breaches(frame: pd.DataFrame, spec: TableSpec, parents: ParentKeys) -> list[Breach]:
    """Every rule `frame` breaks (rows named by position), `parents` giving the parent keys."""
    con = duckdb.connect()
    try:
        rows = frame_rows(con, frame, spec)
        return collected(checked(con, rows, spec, register_parents(con, spec, parents)))
    finally:
        con.close()


def collected(parts: Iterable[Checked]) -> list[Breach]:
    """Every chunk's breaches, a table-level one once (each chunk reports it)."""
    found: list[Breach] = []
    for part in parts:
        found += [b for b in part.found if b.row is not None or b not in found]
    return found


def register_parents(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, parents: ParentKeys
) -> dict[str, str]:
    """Parent key sets as DuckDB relations, by parent table name."""
    names = {}
    for fk in spec.foreign_keys:
        keys = parents.get(fk.ref_table)
        if keys is None:
            continue
        frame = pd.DataFrame(list(keys), columns=list(fk.ref_columns), dtype=object)
        names[fk.ref_table] = f"_parent__{fk.ref_table}"
        con.register(names[fk.ref_table], _registered(frame))
    return names


def _examples(values: Iterable[Any]) -> str:
    shown: list[str] = []
    for value in values:
        if repr(value) not in shown:
            shown.append(repr(value))
    return ", ".join(shown[:EXAMPLES])


def problem_lines(spec: TableSpec, found: list[Breach], rule: str) -> list[str]:
    """One line per broken check of `rule`, with counts and a few failing values."""
    if rule == PRIMARY_KEY:
        return _primary_key_lines(spec, found)
    groups: dict[tuple[tuple[str, ...], str], list[Breach]] = {}
    for breach in found:
        if breach.rule == rule:
            groups.setdefault((breach.columns, breach.check), []).append(breach)
    lines = []
    for (columns, check), part in sorted(groups.items()):
        if rule == SCHEMA:
            where = f"column {columns[0]}" if columns else "table"
            lines.append(
                f"table {spec.name}, {where} fails {check} "
                f"({len(part)} values, e.g. {_examples(b.value for b in part)})"
            )
        else:
            missing = sorted({str(b.value) for b in part})
            lines.append(
                f"foreign key {', '.join(columns)} -> {check}: {len(missing)} values do not "
                f"resolve, e.g. {', '.join(missing[:EXAMPLES])}"
            )
    return lines


def _primary_key_lines(spec: TableSpec, found: list[Breach]) -> list[str]:
    """Null key parts per column, then duplicate rows."""
    lines = []
    for column in spec.primary_key:
        count = sum(1 for b in found if b.check == NOT_NULL and b.columns == (column,))
        if count:
            lines.append(f"table {spec.name}, primary key column {column} has {count} nulls")
    duplicates = sum(1 for b in found if b.rule == PRIMARY_KEY and b.check == UNIQUE)
    if duplicates:
        key = ", ".join(spec.primary_key)
        lines.append(f"table {spec.name}, primary key {key} has {duplicates} duplicate rows")
    return lines


def all_problem_lines(spec: TableSpec, found: list[Breach]) -> list[str]:
    """Schema, then primary-key, then foreign-key lines."""
    rules = (SCHEMA, PRIMARY_KEY, FOREIGN_KEY)
    return [line for rule in rules for line in problem_lines(spec, found, rule)]


# The curate gate.


def list_columns(spec: TableSpec) -> list[str]:
    return [f.name for f in arrow_schema(spec.model) if str(f.type).startswith("list")]


def empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in QUARANTINE_COLUMNS})


LINEAGE_NULLS = "NULL::VARCHAR AS _source, NULL::VARCHAR AS _source_file, NULL::BIGINT AS _seq"
"""The lineage columns (pipelines/warehouse.py) as typed nulls."""


def gate_order(spec: TableSpec) -> list[str]:
    """The gate's row order: of rows sharing a primary key, the first in lineage order stays."""
    return [*spec.primary_key, *LINEAGE_COLUMNS]


def conform(frame: pd.DataFrame | None, spec: TableSpec) -> pd.DataFrame:
    """Give a staged frame every model column (missing → null, or [] for lists), keep lineage."""
    frame = pd.DataFrame() if frame is None else frame.copy()
    n = len(frame)
    for column in spec.columns:
        if column not in frame.columns:
            frame[column] = [[] for _ in range(n)] if column in list_columns(spec) else None
    for column in list_columns(spec):
        frame[column] = [sorted(set(v)) if isinstance(v, list) else [] for v in frame[column]]
    for column in LINEAGE_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return frame[[*spec.columns, *LINEAGE_COLUMNS]].reset_index(drop=True)


def ordered_frame_rows(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame | None, spec: TableSpec
) -> Rows:
    """A builder's frame, conformed and in the gate's order."""
    data = conform(frame, spec)
    data = data.sort_values(gate_order(spec), kind="stable", na_position="last")
    return frame_rows(con, data, spec)


def staged_rows(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, staged: list[str], table: str | None = None
) -> Rows:
    """Every source's staged rows for `spec`'s table (`staged`: their warehouse tables), conformed
    in SQL as `conform` does in pandas and in the gate's order, without reading them whole."""
    return query_rows(con, spec, [f"SELECT * FROM {name}" for name in staged], table, True)


def query_rows(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    queries: list[str],
    table: str | None = None,
    staged_order: bool = False,
) -> Rows:
    """The rows of `queries` (each giving some of the model's columns, any others and lineage),
    conformed in SQL as `conform` does in pandas and in the gate's order (in `table`, if
    given: `sorted_rows`). `staged_order`: each query reads a staged table as it was staged,
    so one query's rows may be sorted in runs (`sorted_rows`)."""
    model = f"_model__{spec.name}"
    con.register(model, arrow_schema(spec.model).empty_table())
    # The model's columns with its types, and lineage, even when no query gives a row.
    empty = f"SELECT *, {LINEAGE_NULLS} FROM {model}"
    union = " UNION ALL BY NAME ".join([*(f"({q})" for q in queries), empty])
    lists = set(list_columns(spec))
    columns = [
        f"coalesce(list_sort(list_distinct({quoted(c)})), []) AS {quoted(c)}"
        if c in lists
        else quoted(c)
        for c in [*spec.columns, *LINEAGE_COLUMNS]
    ]
    order = ", ".join(f"{quoted(c)} NULLS LAST" for c in gate_order(spec))
    select = f"SELECT {', '.join(columns)} FROM ({union})"
    in_runs = staged_order and len(queries) == 1
    return sorted_rows(con, select, spec, order, table, in_runs)


def _raw(row: pd.Series, columns: list[str]) -> str:
    values = {c: row[c] for c in columns}
    clean = {k: (None if _is_missing(v) else v) for k, v in values.items()}
    return orjson.dumps(clean, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _rejects(frame: pd.DataFrame, reasons: dict[int, str], spec: TableSpec) -> pd.DataFrame:
    rows = []
    for index in sorted(reasons):
        row = cast(pd.Series, frame.loc[index])  # one label of a unique index: one row
        key = "|".join("" if _is_missing(row[c]) else str(row[c]) for c in spec.primary_key)
        rows.append(
            {
                "table_name": spec.name,
                "source": row.get("_source"),
                "record_key": key or None,
                "reason": reasons[index],
                "source_file": row.get("_source_file"),
                "raw": _raw(row, spec.columns),
            }
        )
    return pd.DataFrame(rows, columns=QUARANTINE_COLUMNS) if rows else empty_quarantine()


class Keeper(Protocol):
    """Where the gate puts the rows it keeps, in row order."""

    def append(self, frame: pd.DataFrame) -> None:
        """Rows validated by the model in pandas (coerced to its types)."""

    def insert(self, select: str, table: str) -> None:
        """Rows that live in DuckDB: `select`, of the model's columns in its types, reads the
        rows kept in `table` (`sorted_rows`; the rejected ones flagged `_rejected`)."""


def gate(
    con: duckdb.DuckDBPyConnection,
    rows: Rows,
    spec: TableSpec,
    parents: dict[str, str],
    keep: Keeper,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Quarantine every row that breaks a rule, naming its first broken rule; hand the rest,
    validated by the model (coerced to its types), to `keep`: one chunk at a time as pandas,
    or, for rows in DuckDB in the model's types, as one query that never leaves DuckDB.

    A table-level failure (a missing column, say) is a bug in a builder, not bad input: it
    raises. Returns the quarantine rows, in row order.
    """
    in_sql = in_model_types(con, rows, spec)
    rejects: list[pd.DataFrame] = []
    rejected: list[int] = []
    for part in checked(con, rows, spec, parents, chunk_rows):
        reasons: dict[int, str] = {}
        for breach in part.found:
            if breach.row is None:
                raise ValueError(f"{spec.name}: table-level schema failure: {breach.reason}")
            reasons.setdefault(breach.row, breach.reason)
        if reasons:
            rejects.append(_rejects(part.rows, reasons, spec))
        if in_sql:
            rejected += reasons
            continue
        kept = part.rows.drop(index=list(reasons))[spec.columns]
        if part.validated is not None:  # the rows' one validation (the usual case)
            kept = part.validated.loc[kept.index]
        else:  # some rows failed the model: the others are coerced once more, alone
            kept = spec.model.validate(kept, lazy=True)
        keep.append(kept.reset_index(drop=True))
    if in_sql:
        _keep_in_sql(con, rows, spec, rejected, keep)
    return pd.concat(rejects, ignore_index=True) if rejects else empty_quarantine()


def _keep_in_sql(
    con: duckdb.DuckDBPyConnection, rows: Rows, spec: TableSpec, rejected: list[int], keep: Keeper
) -> None:
    """Every row not rejected, in row order, as the model's coercion would leave it: the
    rejected rows are flagged in the rows' table, the others read by a scan of it, which keeps
    its order (`sorted_rows`), so they are not sorted again."""
    if rows.table is None:
        raise ValueError(f"{spec.name}: the gate keeps rows in SQL only from `sorted_rows`")
    if rejected:
        con.register("_rejected_rows", pa.table({"_row": pa.array(rejected, pa.int64())}))
        try:
            con.execute(
                f"UPDATE {rows.table} SET _rejected = true "
                "WHERE rowid IN (SELECT _row FROM _rejected_rows)"
            )
        finally:
            con.unregister("_rejected_rows")
    written = ", ".join(f"{sql} AS {quoted(c)}" for c, sql in nan_as_null(spec.model).items())
    keep.insert(f"SELECT {written} FROM {rows.table} WHERE NOT _rejected", rows.table)


def kept_in_place(con: duckdb.DuckDBPyConnection, table: str, spec: TableSpec) -> None:
    """Turn the rows' table (`sorted_rows`, the gate done) into the rows `_keep_in_sql`'s query
    gives, in place: NaN made null where the model reads it missing, the rejected rows
    deleted, lineage and the flag dropped. Copying the kept rows into the warehouse table took
    29 s of outcome_results' 83 s at 560 000 studies; sorting straight into a warehouse table
    and keeping it costs less (the builder 74 s, the curated step 157 -> 140 s). The space of
    the dropped columns and deleted rows stays in the file, free for DuckDB to reuse (that
    warehouse 14 % larger; bench/README.md, session 14)."""
    for column in float_columns(spec.model):
        con.execute(f"UPDATE {table} SET {quoted(column)} = NULL WHERE isnan({quoted(column)})")
    con.execute(f"DELETE FROM {table} WHERE _rejected")
    for column in [*LINEAGE_COLUMNS, "_rejected"]:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {quoted(column)}")


@dataclass
class Frames:
    """A `Keeper` holding the kept rows as pandas, validated by the model."""

    con: duckdb.DuckDBPyConnection
    spec: TableSpec
    frames: list[pd.DataFrame]

    def append(self, frame: pd.DataFrame) -> None:
        self.frames.append(frame)

    def insert(self, select: str, table: str) -> None:
        self.frames.append(self.spec.model.validate(read_frame(self.con, select), lazy=True))

    def frame(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True)


def enforce(
    frame: pd.DataFrame | None,
    spec: TableSpec,
    parents: ParentKeys,
    chunk_rows: int = CHUNK_ROWS,
) -> Enforced:
    """The gate on a frame in memory, `parents` giving the parent keys: conform, order, then
    quarantine every row that breaks a rule, with the rule named."""
    con = duckdb.connect()
    try:
        kept = Frames(con, spec, [])
        rows = ordered_frame_rows(con, frame, spec)
        parents_in = register_parents(con, spec, parents)
        rejects = gate(con, rows, spec, parents_in, kept, chunk_rows)
    finally:
        con.close()
    return Enforced(kept.frame(), rejects)


# The blocking asset checks.


def warehouse_parents(spec: TableSpec) -> dict[str, str]:
    """`spec`'s foreign-key parents as curated in the warehouse, by table name."""
    return {fk.ref_table: f"curated.{fk.ref_table}" for fk in spec.foreign_keys}


def check_spec(spec: TableSpec) -> dg.AssetCheckSpec:
    """The blocking check of a curated table, evaluated in the step that writes the table
    (pipelines/assets/curated.py): a failure stops the tables that read it."""
    return dg.AssetCheckSpec(
        f"{spec.name}_matches_schema",
        asset=dg.AssetKey(["curated", spec.name]),
        blocking=True,
        description=f"{spec.name} validates against its Pandera model, its primary key is "
        "unique and its foreign keys resolve.",
    )


def table_check(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> dg.AssetCheckResult:
    """Whether the curated table as stored keeps every rule the gate applied."""
    rows = stored_rows(con, f"curated.{spec.name}")
    problems = all_problem_lines(spec, collected(checked(con, rows, spec, warehouse_parents(spec))))
    check = check_spec(spec)
    return dg.AssetCheckResult(
        asset_key=check.asset_key,
        check_name=check.name,
        passed=not problems,
        metadata={"rows": rows.count, "problems": dg.MetadataValue.json(problems)},
    )

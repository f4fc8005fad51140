"""The working DuckDB database of a build: staging tables per source, curated tables per table.

Layout: `staging.<source>__<table>` holds parsed rows as read (plus lineage columns `_source`,
`_source_file`, `_seq`); `curated.<table>` holds validated rows; `curated.rejects__<table>` holds
what validation turned away. Table names come from code constants, never from input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import repeat
from operator import itemgetter
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from schemas import QUARANTINE, TABLES_BY_NAME
from schemas.arrow import arrow_schema

LINEAGE_COLUMNS = ("_source", "_source_file", "_seq")
_LINEAGE_FIELDS = [
    pa.field("_source", pa.string()),
    pa.field("_source_file", pa.string()),
    pa.field("_seq", pa.int64()),
]


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    """Create the staging and curated schemas."""
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute("CREATE SCHEMA IF NOT EXISTS curated")


def staging_name(source: str, table: str) -> str:
    return f"staging.{source}__{table}"


def drop_staging(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Remove a source's staging tables, so a re-run never appends to stale rows."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' "
        "AND starts_with(table_name, ?)",
        [f"{source}__"],
    ).fetchall()
    for (name,) in rows:
        con.execute(f'DROP TABLE staging."{name}"')


def table_rows(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Rows of the table `name` (qualified as the query needs it)."""
    (rows,) = con.execute(f"SELECT count(*) FROM {name}").fetchone()  # type: ignore[misc]
    return int(rows)


def staging_tables(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Qualified names of every source's staging table for `table`, sorted."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' "
        "AND ends_with(table_name, ?) ORDER BY table_name",
        [f"__{table}"],
    ).fetchall()
    return [f'staging."{name}"' for (name,) in rows]


def _value_type(value: Any) -> pa.DataType:
    if isinstance(value, list | tuple):
        return pa.list_(pa.string())
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


def staging_schema(table: str, rows: list[dict[str, Any]]) -> pa.Schema:
    """Model columns with the model's types, then any extra staging-only keys, then lineage.

    An extra key takes the type of its first non-null value; a key null in every row is left
    out (a later batch cannot add it: the first batch fixes the table's columns).
    """
    spec = QUARANTINE if table == QUARANTINE.name else TABLES_BY_NAME.get(table)
    fields: list[pa.Field] = list(arrow_schema(spec.model)) if spec else []
    known = {f.name for f in fields} | set(LINEAGE_COLUMNS)
    extras: dict[str, pa.DataType] = {}
    for key in sorted(set().union(*map(dict.keys, rows)) - known):
        value = next((row[key] for row in rows if row.get(key) is not None), None)
        if value is not None:
            extras[key] = _value_type(value)
    fields += [pa.field(k, extras[k]) for k in extras]
    return pa.schema([f.with_nullable(True) for f in fields] + _LINEAGE_FIELDS)


def row_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, list[Any]]:
    """The rows' values column by column, for each of `names` that a row holds.

    Rows built by one function share their keys, so they are transposed with C-level
    itemgetter and zip instead of a Python lookup per cell; rows whose keys differ are read
    key by key, a missing key counting as null.
    """
    keys = list(rows[0])
    if len(keys) > 1 and len(set(map(len, rows))) == 1:
        try:
            tuples = list(map(itemgetter(*keys), rows))
        except KeyError:
            pass
        else:
            values = zip(*tuples, strict=True)
            return {k: list(v) for k, v in zip(keys, values, strict=True) if k in names}
    present = set().union(*map(dict.keys, rows))
    return {n: [row.get(n) for row in rows] for n in names if n in present}


class StagingSink:
    """Buffers parsed rows per table and appends them to staging tables in batches.

    Batching keeps memory flat however large the source is: rows are flushed every
    `batch_rows` rows per table. Rows arrive a record's list at a time, and become Arrow
    columns per batch (`row_columns`); lineage columns are added per batch, not per row.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        batch_rows: int = 20_000,
        continued: Sequence[str] = (),
    ):
        """`continued`: tables an earlier run may have written (`setwise.Place`): appended to,
        `_seq` going on from their rows (the rows' keys give the columns, as in that run);
        one it did not write is created as usual."""
        self._con = con
        self._source = source
        self._batch_rows = batch_rows
        self._buffers: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
        self._schemas: dict[str, pa.Schema] = {}
        self._created: set[str] = set()
        self.counts: dict[str, int] = {}
        for table in continued:
            try:
                self.counts[table] = table_rows(con, staging_name(source, table))
            except duckdb.CatalogException:
                continue
            self._created.add(table)

    def add(self, table: str, row: dict[str, Any], source_file: str) -> None:
        """One row of `table`, read from `source_file`."""
        self.add_rows(table, [row], source_file)

    def add_rows(self, table: str, rows: list[dict[str, Any]], source_file: str) -> None:
        """Rows of `table` that one record of `source_file` gave (none is fine)."""
        if not rows:
            return
        self.counts[table] = self.counts.get(table, 0) + len(rows)
        buffered, files = self._buffers.setdefault(table, ([], []))
        buffered += rows
        files += repeat(source_file, len(rows))
        if len(buffered) >= self._batch_rows:
            self._flush(table)

    def close(self) -> None:
        for table in sorted(self._buffers):
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows, files = self._buffers.get(table, ([], []))
        if not rows:
            return
        schema = self._schemas.get(table)
        if schema is None:
            schema = self._schemas[table] = staging_schema(table, rows)
        first = self.counts[table] - len(rows)
        fields = list(schema)[: -len(_LINEAGE_FIELDS)]
        values = row_columns(rows, [f.name for f in fields])
        columns = [
            pa.array(values[f.name], f.type) if f.name in values else pa.nulls(len(rows), f.type)
            for f in fields
        ]
        lineage = [
            pa.array([self._source] * len(rows), pa.string()),
            pa.array(files, pa.string()),
            pa.array(range(first, first + len(rows)), pa.int64()),
        ]
        batch = pa.Table.from_arrays([*columns, *lineage], schema=schema)
        name = staging_name(self._source, table)
        self._con.register("_batch", batch)
        try:
            if table in self._created:
                self._con.execute(f"INSERT INTO {name} SELECT * FROM _batch")
            else:
                self._con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _batch")
                self._created.add(table)
        finally:
            self._con.unregister("_batch")
        rows.clear()
        files.clear()


def read_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> pd.DataFrame:
    """Run a query and return pandas, with list columns as Python lists (not numpy arrays).

    Only LIST and ARRAY columns (their DuckDB type ends in "]") hold arrays to convert.
    """
    relation = con.execute(sql, params or [])
    arrays = [name for name, kind, *_ in relation.description or [] if str(kind).endswith("]")]
    frame = relation.df()
    for column in arrays:
        frame[column] = frame[column].map(
            lambda v: list(v) if hasattr(v, "tolist") and not isinstance(v, str) else v
        )
    return frame


def union_staging(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame | None:
    """Every source's staged rows for `table`, in lineage order; None when no source fed it."""
    names = staging_tables(con, table)
    if not names:
        return None
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {n}" for n in names)
    return read_frame(con, f"SELECT * FROM ({union}) ORDER BY _source, _source_file, _seq")


_BYTES = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
"""The units DuckDB prints a size setting in."""


def size_bytes(size: str) -> int:
    """A size as DuckDB prints a setting (`488.2 MiB`), in bytes."""
    number, unit = size.split()
    return int(float(number) * _BYTES[unit])


def in_kib(size: int) -> str:
    """Bytes as a size setting in whole KiB (DuckDB reads a fraction of a MiB back 0.1 MiB
    short)."""
    return f"{size // 2**10} KiB"


def first_line(error: BaseException | None) -> str:
    """DuckDB's error without its advice: what failed, and how much memory was held."""
    return str(error).strip().partition("\n")[0]


_COMMIT_OUT_OF_MEMORY = re.compile(
    r"Failed to commit: (failed to pin block|could not allocate block|failed to allocate data)"
)


def ran_out_of_memory(kind: str, message: str) -> bool:
    """Whether an error (its class name and message, as Dagster keeps a step's error) is DuckDB
    out of its `memory_limit`: in a statement, or in a commit that could not allocate or pin a
    block to write (a `TransactionException`)."""
    if kind == "OutOfMemoryException":
        return True
    return kind == "TransactionException" and bool(_COMMIT_OUT_OF_MEMORY.search(message))


@contextmanager
def duckdb_setting(con: duckdb.DuckDBPyConnection, name: str, value: object) -> Iterator[None]:
    """DuckDB's `name` setting at `value` for the block, then as before (settings are the
    database's, so every cursor sees them). Put back even when setting it raised: DuckDB
    lowers its `memory_limit` and then raises when it cannot evict enough."""
    (before,) = con.execute("SELECT current_setting(?)", [name]).fetchone()  # type: ignore[misc]
    try:
        con.execute(f"SET {name} = ?", [value])
        yield
    finally:
        con.execute(f"SET {name} = ?", [_as_set(before)])


def _as_set(value: object) -> object:
    """A setting's value as DuckDB printed it, to set it again. DuckDB prints a size cut (not
    rounded) to a tenth of its unit, so set as printed a limit would shrink by a tenth of a
    MiB each time (`488.2 MiB` reads back `488.1 MiB`); set half a tenth above, it prints the
    same again."""
    if isinstance(value, str) and len(parts := value.split()) == 2 and parts[1] in _BYTES:
        return f"{float(parts[0]) + 0.05} {parts[1]}"
    return value


def duckdb_threads(con: duckdb.DuckDBPyConnection, threads: int) -> AbstractContextManager[None]:
    """DuckDB on `threads` threads for the block, then as before."""
    return duckdb_setting(con, "threads", threads)


def write_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Replace a warehouse table with an Arrow table."""
    write_arrow(con, f"CREATE OR REPLACE TABLE {name} AS", table)


def write_arrow(con: duckdb.DuckDBPyConnection, statement: str, rows: pa.Table) -> None:
    """`statement` (CREATE ... AS or INSERT INTO ...) followed by the rows of an Arrow table."""
    con.register("_incoming", rows)
    try:
        con.execute(f"{statement} SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")

"""Classify each distinct text once: registries repeat outcome titles, intervention names,
conditions and time frames across studies, and every classifier here is a pure function of
its inputs, so a column of N values costs one call per distinct value, not N.

`per_distinct` does it for columns in memory; `classify_distinct` for a query in DuckDB: the
distinct input rows are read in batches, classified in Python, and written to a table that
SQL joins back (`matches`), so no column is ever held whole in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from pipelines.warehouse import write_arrow

T = TypeVar("T")

BATCH_ROWS = 50_000
"""Distinct input rows classified at a time."""


def per_distinct(fn: Callable[..., T], *columns: Iterable[Any]) -> list[T]:
    """`[fn(*row) for row in zip(*columns)]`, calling `fn` once per distinct row of values."""
    rows = list(zip(*columns, strict=True))
    found = {row: fn(*row) for row in dict.fromkeys(rows)}
    return [found[row] for row in rows]


def classify_distinct(
    con: duckdb.DuckDBPyConnection,
    table: str,
    query: str,
    fn: Callable[..., Sequence[Any]],
    outputs: pa.Schema,
) -> None:
    """Create the temporary table `table`: each distinct row of `query`'s columns, then the
    columns `fn` returns for it (in `outputs`' order and types), `fn` called once per row."""
    distinct = f"{table}__in"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {distinct} AS "
        f"SELECT row_number() OVER () - 1 AS _n, * FROM (SELECT DISTINCT * FROM ({query}))"
    )
    inputs = con.execute(f"SELECT * EXCLUDE (_n) FROM {distinct} LIMIT 0").to_arrow_table()
    schema = pa.schema([*inputs.schema, *outputs])
    write_arrow(con, f"CREATE OR REPLACE TEMP TABLE {table} AS", schema.empty_table())
    (count,) = con.execute(f"SELECT count(*) FROM {distinct}").fetchone() or (0,)
    for start in range(0, count, BATCH_ROWS):
        batch = con.execute(
            f"SELECT * EXCLUDE (_n) FROM {distinct} WHERE _n >= ? AND _n < ? ORDER BY _n",
            [start, start + BATCH_ROWS],
        ).to_arrow_table()
        found = [fn(*row) for row in zip(*(c.to_pylist() for c in batch.columns), strict=True)]
        columns = [
            pa.array([values[i] for values in found], field.type) for i, field in enumerate(outputs)
        ]
        write_arrow(
            con,
            f"INSERT INTO {table}",
            pa.Table.from_arrays([*batch.columns, *columns], schema=schema),
        )
    con.execute(f"DROP TABLE {distinct}")


def matches(left: str, right: str, columns: Sequence[str]) -> str:
    """A join condition equating `columns` of two relations, null matching null."""
    return " AND ".join(f'{left}."{c}" IS NOT DISTINCT FROM {right}."{c}"' for c in columns)

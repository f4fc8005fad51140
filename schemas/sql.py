"""A Pandera model's column checks as one DuckDB predicate, derived from the model itself.

The gate and the asset checks validate whole tables; Pandera costs a fixed ~20 ms per call and
converts every row to pandas. Most of a model's checks are plain SQL (a null, a value outside a
list, a number out of range, a pattern), so DuckDB finds the rows that may break them and
Pandera validates only those rows (it still names every failure, so reasons do not change).
Checks SQL does not express here (dataframe checks, custom element-wise ones) are left to
Pandera as a `residual` schema run over every row. The predicate may flag a row Pandera passes
(it never misses one Pandera fails): patterns are matched in DuckDB only on printable ASCII,
where RE2 and Python's `re` agree on these classes; any other text is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import pandera.pandas as pa
import pyarrow as pa_arrow

from schemas.arrow import arrow_schema

_BY_ARROW = {
    pa_arrow.string(): "VARCHAR",
    pa_arrow.int64(): "BIGINT",
    pa_arrow.float64(): "DOUBLE",
    pa_arrow.bool_(): "BOOLEAN",
    pa_arrow.date32(): "DATE",
    pa_arrow.timestamp("ns"): "TIMESTAMP_NS",
    pa_arrow.list_(pa_arrow.string()): "VARCHAR[]",
}
_COMPARISONS = {
    "greater_than_or_equal_to": ("min_value", "<"),
    "greater_than": ("min_value", "<="),
    "less_than_or_equal_to": ("max_value", ">"),
    "less_than": ("max_value", ">="),
}
"""Pandera's range checks: the statistic they compare with and the SQL operator of a failure."""
_PRINTABLE_ASCII = r"^[ -~]*$"


def quoted(name: str) -> str:
    """An SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """An SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def duckdb_types(model: type[pa.DataFrameModel]) -> dict[str, str]:
    """Each column's DuckDB type, as DuckDB names it (from the model's Arrow schema)."""
    return {f.name: _BY_ARROW[f.type] for f in arrow_schema(model)}


def float_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """The columns whose NaN Pandera's Float64 reads as missing."""
    return [name for name, kind in duckdb_types(model).items() if kind == "DOUBLE"]


def nan_as_null(model: type[pa.DataFrameModel]) -> dict[str, str]:
    """Each column as written after coercion: NaN as null in `float_columns`."""
    floats = float_columns(model)
    return {
        name: f"CASE WHEN isnan({quoted(name)}) THEN NULL ELSE {quoted(name)} END"
        if name in floats
        else quoted(name)
        for name in duckdb_types(model)
    }


@dataclass(frozen=True)
class Screen:
    """What SQL checks of a model, and what it leaves to Pandera."""

    failures: tuple[tuple[str, str], ...]
    """(column, SQL true for a value that may fail one of the column's checks), per column."""
    residual: pa.DataFrameSchema | None
    """The model's other checks, alone (no coercion, nulls allowed); None when there are none."""
    reads: tuple[str, ...]
    """The columns the residual checks read: their own, and those each dataframe check names
    in its statistics' `reads` (every column when one names none)."""

    @property
    def suspect(self) -> str:
        """True for a row that may fail one of the model's SQL-expressible checks."""
        return " OR ".join(f"({sql})" for _, sql in self.failures) or "false"


def _check_sql(name: str, check: Any, kind: str) -> str | None:
    """A failure of one Pandera column check as SQL (nulls pass, as Pandera ignores them);
    None when it is not expressed here."""
    column, stats = quoted(name), check.statistics or {}
    if check.name == "isin" and all(isinstance(v, str) for v in stats["allowed_values"]):
        values = ", ".join(literal(v) for v in stats["allowed_values"])
        return f"{column} NOT IN ({values})"
    if check.name == "str_matches" and kind == "VARCHAR":
        pattern = literal("^(?:" + str(stats["pattern"]) + ")")
        return (
            f"NOT regexp_matches({column}, {literal(_PRINTABLE_ASCII)}) "
            f"OR NOT regexp_matches({column}, {pattern})"
        )
    if check.name in _COMPARISONS and kind in ("BIGINT", "DOUBLE"):
        statistic, failing = _COMPARISONS[check.name]
        bound = stats[statistic]
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            return f"{column} {failing} {bound!r}"
    if check.name == "is_str_list" and kind == "VARCHAR[]":
        return f"len(list_filter({column}, x -> x IS NULL OR x = '')) > 0"
    return None


@cache
def screen(model: type[pa.DataFrameModel], primary_key: tuple[str, ...]) -> Screen:
    """The model's checks split into one SQL predicate and a residual Pandera schema.

    Uniqueness is left out when it is the primary key's (the gate checks keys in SQL over the
    whole table); any other uniqueness goes to the residual schema.
    """
    schema = model.to_schema()
    kinds = duckdb_types(model)
    failures: list[tuple[str, str]] = []
    residual: dict[str, pa.Column] = {}
    for name, column in schema.columns.items():
        column_sql = quoted(name)
        if not column.nullable:
            failures.append((name, f"{column_sql} IS NULL"))
            if kinds[name] == "DOUBLE":
                failures.append((name, f"isnan({column_sql})"))
        left = []
        for check in column.checks:
            sql = _check_sql(name, check, kinds[name])
            if sql is None:
                left.append(check)
            else:
                failures.append((name, f"{column_sql} IS NOT NULL AND ({sql})"))
        unique = column.unique and primary_key != (name,)
        if left or unique:
            residual[name] = pa.Column(checks=left, nullable=True, unique=unique, required=True)
    table_unique = schema.unique and set(schema.unique) != set(primary_key)
    if not (residual or schema.checks or table_unique):
        return Screen(tuple(failures), None, ())
    kept = pa.DataFrameSchema(
        residual, checks=schema.checks, unique=schema.unique if table_unique else None
    )
    named: list[list[str] | None] = [(c.statistics or {}).get("reads") for c in schema.checks]
    if table_unique or any(n is None for n in named):
        return Screen(tuple(failures), kept, tuple(schema.columns))
    wanted = {*residual, *(c for n in named for c in n or [])}
    return Screen(tuple(failures), kept, tuple(c for c in schema.columns if c in wanted))

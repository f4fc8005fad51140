"""The rules every published table obeys, applied three ways from one definition.

The rules are each table's Pandera model (schemas/) and the key table `schemas.registry.TABLES`
(primary and foreign keys). `breaches` applies them to a frame; from it come the curate gate
(`enforce`: rows that break a rule go to quarantine naming the rule, never dropped silently),
the blocking asset check of every curated table (`asset_check_for`), and the table checks of
`kratom-evidence validate` (`problem_lines`, see pipelines/release/validate.py). Validation is
lazy, so one pass reports every failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import dagster as dg
import duckdb
import orjson
import pandas as pd
import pandera.errors
from dagster_duckdb import DuckDBResource

from pipelines.warehouse import LINEAGE_COLUMNS, read_frame
from schemas import QUARANTINE, TableSpec
from schemas.arrow import arrow_schema
from schemas.fields import NULLABLE_KEY

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


def _null_keys(frame: pd.DataFrame, spec: TableSpec) -> list[Breach]:
    """Every row with a null in a key column that did not opt in to nulls."""
    found = []
    allowed = nullable_key_columns(spec)
    for column in (c for c in spec.primary_key if c not in allowed):
        reason = f"primary key column {column} is null"
        for index in frame.index[frame[column].isna()]:
            found.append(Breach(int(index), PRIMARY_KEY, (column,), NOT_NULL, None, reason))
    return found


def _duplicate_keys(frame: pd.DataFrame, spec: TableSpec) -> list[Breach]:
    """Every row repeating an earlier row's primary key (the first one stays).

    Null counts as a value (SQL's IS NOT DISTINCT FROM): two rows whose keys differ only in
    being null in the same place are duplicates, so a nullable key part still keys one row.
    """
    if not spec.primary_key:
        return []
    columns = list(spec.primary_key)
    reason = f"duplicate primary key ({', '.join(columns)})"
    duplicated = frame.duplicated(columns, keep="first")
    return [
        Breach(int(i), PRIMARY_KEY, spec.primary_key, UNIQUE, None, reason)
        for i in frame.index[duplicated]
    ]


def _schema_reason(case: Any) -> str:
    """A column check names the column and value; a row check (a dataframe check such as
    'a CI contains its estimate') names the check alone, since it spans several columns."""
    if case.schema_context == "DataFrameSchema" and not pd.isna(case.index):
        return f"failed row check {case.check}"
    return f"{case.column}: failed {case.check} (value {case.failure_case!r})"


def _schema_breaches(frame: pd.DataFrame, spec: TableSpec) -> list[Breach]:
    """Pandera's lazy validation, one breach per failure case, in Pandera's order."""
    try:
        lineage = [c for c in LINEAGE_COLUMNS if c in frame.columns]
        spec.model.to_schema().validate(frame.drop(columns=lineage), lazy=True)
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
        return found
    return []


def _foreign_key_breaches(
    frame: pd.DataFrame, spec: TableSpec, parents: ParentKeys, skip: set[int]
) -> list[Breach]:
    """Rows whose non-null foreign key has no parent row; a parent absent from `parents` is
    not checked (a release folder missing that table already reports it)."""
    found = []
    skip = set(skip)
    for fk in spec.foreign_keys:
        keys = parents.get(fk.ref_table)
        if keys is None:
            continue
        columns = frame[list(fk.columns)]
        present = ~columns.isna().any(axis=1).to_numpy()
        tuples = columns[present].itertuples(index=False, name=None)
        for index, values in zip(frame.index[present], tuples, strict=True):
            if index in skip or values in keys:
                continue
            shown = values if len(values) > 1 else values[0]
            reason = f"{', '.join(fk.columns)} {shown!r} not found in {fk.ref_table}"
            found.append(Breach(int(index), FOREIGN_KEY, fk.columns, fk.ref_table, shown, reason))
            skip.add(index)
    return found


def breaches(frame: pd.DataFrame, spec: TableSpec, parents: ParentKeys) -> list[Breach]:
    """Every rule `frame` breaks, in the gate's order: null key parts that may not be null,
    then repeated primary keys among the other rows (the first row of a key stays), then every
    Pandera failure of the rows left, then foreign keys of the rows still left. `frame` must
    have a unique index: it names the rows.
    """
    found = _null_keys(frame, spec)
    found += _duplicate_keys(frame.drop(index=[b.row for b in found]), spec)
    found += _schema_breaches(frame.drop(index=[b.row for b in found]), spec)
    rejected = {b.row for b in found if b.row is not None}
    return found + _foreign_key_breaches(frame, spec, parents, rejected)


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


def enforce(frame: pd.DataFrame | None, spec: TableSpec, parents: ParentKeys) -> Enforced:
    """The gate: conform, then quarantine every row that breaks a rule, with the rule named.

    Of rows sharing a primary key the first in lineage order stays. A table-level failure
    (a missing column, say) is a bug in a builder, not bad input: it raises.
    """
    data = conform(frame, spec)
    order = [*spec.primary_key, "_source", "_source_file", "_seq"]
    data = data.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    reasons: dict[int, str] = {}
    for breach in breaches(data, spec, parents):
        if breach.row is None:
            raise ValueError(f"{spec.name}: table-level schema failure: {breach.reason}")
        reasons.setdefault(breach.row, breach.reason)
    rejects = _rejects(data, reasons, spec)
    kept = data.drop(index=list(reasons))[spec.columns].reset_index(drop=True)
    validated = spec.model.validate(kept, lazy=True)
    return Enforced(validated.reset_index(drop=True), rejects)


# The blocking asset checks.


def warehouse_parents(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> ParentKeys:
    """The keys of `spec`'s foreign-key parents, as curated in the warehouse."""
    parents: ParentKeys = {}
    for fk in spec.foreign_keys:
        columns = ", ".join(fk.ref_columns)
        frame = read_frame(con, f"SELECT {columns} FROM curated.{fk.ref_table}")
        parents[fk.ref_table] = key_set(frame, fk.ref_columns)
    return parents


def asset_check_for(spec: TableSpec) -> dg.AssetChecksDefinition:
    """A blocking check that the curated table keeps every rule the gate applied."""

    @dg.asset_check(
        asset=dg.AssetKey(["curated", spec.name]),
        name=f"{spec.name}_matches_schema",
        blocking=True,
        description=f"{spec.name} validates against its Pandera model, its primary key is "
        "unique and its foreign keys resolve.",
    )
    def check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        with warehouse.get_connection() as con:
            frame = read_frame(con, f"SELECT * FROM curated.{spec.name}")
            problems = all_problem_lines(spec, breaches(frame, spec, warehouse_parents(con, spec)))
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={"rows": len(frame), "problems": dg.MetadataValue.json(problems)},
        )

    return check

"""The publish gate of every table: keys, Pandera validation and foreign keys, with quarantine.

`enforce` never drops a row silently: each rejected row comes back as a quarantine row saying
which rule it broke. Validation is lazy, so one run reports every failure at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import orjson
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from pipelines.warehouse import LINEAGE_COLUMNS
from schemas import QUARANTINE, TableSpec
from schemas.arrow import arrow_schema

QUARANTINE_COLUMNS = QUARANTINE.columns
ParentKeys = dict[str, set[tuple[Any, ...]]]
"""Key tuples of already-curated tables, by table name, for foreign-key checks."""


@dataclass
class Enforced:
    """A table that passed the gate, and the rows that did not."""

    frame: pd.DataFrame
    rejects: pd.DataFrame


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


def _is_missing(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


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


def _schema_failures(frame: pd.DataFrame, spec: TableSpec) -> dict[int, str]:
    """Row index → reason for every Pandera failure (lazy: all failures in one pass)."""
    schema: pa.DataFrameSchema = spec.model.to_schema()
    try:
        schema.validate(frame[spec.columns], lazy=True)
    except pandera.errors.SchemaErrors as errors:
        failures = errors.failure_cases
        reasons: dict[int, str] = {}
        for case in failures.itertuples():
            if case.index is None or pd.isna(case.index):
                raise ValueError(
                    f"{spec.name}: table-level schema failure: {case.check} on "
                    f"{case.column}: {case.failure_case}"
                ) from errors
            reason = f"{case.column}: failed {case.check} (value {case.failure_case!r})"
            reasons.setdefault(int(case.index), reason)
        return reasons
    return {}


def enforce(frame: pd.DataFrame | None, spec: TableSpec, parents: ParentKeys) -> Enforced:
    """Conform, de-duplicate on the primary key, validate, and check foreign keys."""
    data = conform(frame, spec)
    order = [*spec.primary_key, "_source", "_source_file", "_seq"]
    data = data.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    reasons: dict[int, str] = {}
    if spec.primary_key:
        duplicated = data.duplicated(list(spec.primary_key), keep="first")
        for index in data.index[duplicated]:
            reasons[int(index)] = f"duplicate primary key ({', '.join(spec.primary_key)})"
    candidates = data.drop(index=list(reasons))
    for index, reason in _schema_failures(candidates, spec).items():
        reasons.setdefault(index, reason)
    for fk in spec.foreign_keys:
        keys = parents.get(fk.ref_table, set())
        for position, row in data.iterrows():
            index = cast(int, position)  # reset_index above: a RangeIndex
            if index in reasons:
                continue
            values = tuple(row[c] for c in fk.columns)
            if any(_is_missing(v) for v in values):
                continue
            if values not in keys:
                reasons[index] = (
                    f"{', '.join(fk.columns)} {values if len(values) > 1 else values[0]!r} "
                    f"not found in {fk.ref_table}"
                )
    rejects = _rejects(data, reasons, spec)
    kept = data.drop(index=list(reasons))[spec.columns].reset_index(drop=True)
    validated = spec.model.validate(kept, lazy=True)
    return Enforced(validated.reset_index(drop=True), rejects)


def key_set(frame: pd.DataFrame, columns: tuple[str, ...]) -> set[tuple[Any, ...]]:
    """The key tuples of a curated table, for children's foreign-key checks."""
    return set(frame[list(columns)].itertuples(index=False, name=None))

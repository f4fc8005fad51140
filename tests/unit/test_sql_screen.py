"""The models' checks as SQL (schemas/sql.py): valid DuckDB for every table, and never passing
a value Pandera fails, so the gate may leave the rows it does not flag unread."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pandera.errors
import pyarrow as pa
import pytest

from pipelines.warehouse import read_frame
from schemas import QUARANTINE, RELEASED, TableSpec
from schemas.arrow import arrow_schema
from schemas.sql import duckdb_types, screen

TEXTS = [
    "NCT01234567",
    "10.1000/xyz",
    "PMID:123",
    "DOI:10.1/x",
    "W123",
    "CHEMBL25",
    "mitragynine",
    "pc-001",
    "123",
    "",
    " ",
    "123\n",
    "10.1/a\u00a0b",  # a no-break space: not \\S for Python, is for RE2
    "10.1/a\vb",
    "10.1/a\x1cb",
    "\u0661\u0662",  # Arabic-Indic digits: \\d for Python, not for RE2
    "NCT0123456\u0667",
    "x:P1",
    "x:AE12",
    "\u00e9:P1",
    "ABCDEFGHIJKLMN-ABCDEFGHIJ-A",
    "50-00-0",
    None,
]
NUMBERS = [-1, 0, 1, 99, 100, 101, 1799, 1800, 1900, 2100, 2101, None]
VALUES: dict[str, list] = {
    "VARCHAR": TEXTS,
    "BIGINT": NUMBERS,
    "DOUBLE": [*(float(n) for n in NUMBERS if n is not None), 0.5, math.nan, math.inf, None],
    "BOOLEAN": [True, False, None],
    "DATE": [dt.date(2020, 1, 1), None],
    "VARCHAR[]": [[], ["a"], [""], ["a", ""], ["b", "a"], None],
}


def _columns() -> list[tuple[TableSpec, str]]:
    return [(spec, name) for spec in [*RELEASED, QUARANTINE] for name in spec.columns]


@pytest.mark.parametrize("spec", [*RELEASED, QUARANTINE], ids=lambda s: s.name)
def test_every_models_screen_is_valid_duckdb(spec: TableSpec) -> None:
    con = duckdb.connect()
    con.register("_empty", arrow_schema(spec.model).empty_table())
    checks = screen(spec.model, spec.primary_key)
    assert con.execute(f"SELECT count(*) FROM _empty WHERE {checks.suspect}").fetchone() == (0,)
    described = con.execute("DESCRIBE SELECT * FROM _empty").fetchall()
    assert {name: kind for name, kind, *_ in described} == duckdb_types(spec.model)


@pytest.mark.parametrize(
    ("spec", "column"), _columns(), ids=lambda v: getattr(v, "name", None) or str(v)
)
def test_a_value_pandera_fails_is_flagged(spec: TableSpec, column: str) -> None:
    """Each column's values, read from DuckDB as the gate reads them: every value the
    column's Pandera checks fail (its coercion, nulls, its checks) is flagged by the SQL the
    model gives that column, unless the check is one left to Pandera's residual schema."""
    kind = duckdb_types(spec.model)[column]
    field = arrow_schema(spec.model).field(column)
    allowed = [
        v
        for c in spec.model.to_schema().columns[column].checks
        if c.name == "isin"
        for v in c.statistics["allowed_values"]
    ]
    values = [*VALUES[kind], *allowed]
    con = duckdb.connect()
    con.register("_one", pa.table({column: pa.array(values, field.type)}))
    checks = screen(spec.model, spec.primary_key)
    sql = " OR ".join(f"({t})" for c, t in checks.failures if c == column) or "false"
    found = con.execute(f"SELECT coalesce({sql}, false) FROM _one").fetchall()
    flagged = {i for i, (flag,) in enumerate(found) if flag}
    frame = read_frame(con, f'SELECT "{column}" FROM _one')
    try:
        spec.model.to_schema().columns[column].validate(frame, lazy=True)
        failing: set[int] = set()
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        left = checks.residual.columns.get(column) if checks.residual is not None else None
        names = {c.name for c in left.checks} if left is not None else set()
        failing = {
            int(i)
            for i, check in zip(cases["index"], cases["check"], strict=True)
            if str(check).partition("(")[0] not in names
        }
    assert not failing - flagged, [values[i] for i in sorted(failing - flagged)]

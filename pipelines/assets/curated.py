"""Curated layer: one validated table per asset, each guarded by a blocking Pandera check."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pandera.errors
from dagster_duckdb import DuckDBResource

from pipelines import tables
from pipelines.curate import enforce, key_set
from pipelines.resources import ReleaseResource
from pipelines.sources import SOURCES
from pipelines.warehouse import read_frame, write_table
from schemas import QUARANTINE, TABLES, TableSpec
from schemas.arrow import arrow_schema, to_arrow

STATS_TABLE = "curated.table_stats"
Builder = Callable[[duckdb.DuckDBPyConnection, Path], tables.Built]

BUILDERS: dict[str, Builder] = {
    "compounds": tables.build_compounds,
    "compound_targets": tables.build_compound_targets,
    "publications": tables.build_publications,
    "studies": tables.build_studies,
    "study_publications": tables.build_study_publications,
    "conditions": tables.build_conditions,
    "interventions": tables.build_interventions,
    "outcomes": tables.build_outcomes,
    "publication_compounds": tables.build_publication_compounds,
    "evidence_map": tables.build_evidence_map,
}
"""Tables with more to do than union their staged rows."""

READS: dict[str, tuple[str, ...]] = {
    "studies": ("publications",),
    "outcomes": ("publications",),
    "study_publications": ("publications", "studies"),
    "evidence_map": (
        "studies",
        "conditions",
        "interventions",
        "outcomes",
        "study_publications",
        "publication_compounds",
    ),
}
"""Curated tables a builder reads beyond its foreign-key parents."""


def _staged_only(table: str) -> Builder:
    def build(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> tables.Built:
        return tables.Built(tables.staged(con, table))

    return build


def _parent_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> dict[str, set[tuple]]:
    parents: dict[str, set[tuple]] = {}
    for fk in spec.foreign_keys:
        columns = ", ".join(fk.ref_columns)
        frame = read_frame(con, f"SELECT {columns} FROM curated.{fk.ref_table}")
        parents[fk.ref_table] = key_set(frame, fk.ref_columns)
    return parents


def _count_values(column: pd.Series) -> dict[str, int]:
    """Rows per value of a column (a source name), as plain str -> int."""
    return {str(value): int(count) for value, count in column.value_counts().items()}


def _record_stats(
    con: duckdb.DuckDBPyConnection, table: str, built: tables.Built, rejects: pd.DataFrame
) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATS_TABLE} (table_name VARCHAR, source VARCHAR, "
        "rows_in BIGINT, rows_rejected BIGINT)"
    )
    con.execute(f"DELETE FROM {STATS_TABLE} WHERE table_name = ?", [table])
    frame = built.frame
    rows_in = built.rows_in
    if rows_in is None:
        rows_in = _count_values(frame["_source"]) if "_source" in frame else {}
    rejected = _count_values(rejects["source"]) if not rejects.empty else {}
    for source in sorted(set(rows_in) | set(rejected)):
        con.execute(
            f"INSERT INTO {STATS_TABLE} VALUES (?, ?, ?, ?)",
            [table, source, int(rows_in.get(source, 0)), int(rejected.get(source, 0))],
        )


def _curated_asset(spec: TableSpec) -> dg.AssetsDefinition:
    build = BUILDERS.get(spec.name, _staged_only(spec.name))
    parents = sorted({fk.ref_table for fk in spec.foreign_keys} | set(READS.get(spec.name, ())))
    deps = [dg.AssetKey(["staging", s]) for s in SOURCES] + [
        dg.AssetKey(["curated", p]) for p in parents
    ]

    @dg.asset(
        key=["curated", spec.name],
        group_name="curated",
        deps=deps,
        kinds={"duckdb", "pandera"},
        description=spec.description,
        metadata={
            "primary_key": list(spec.primary_key),
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(name, str(field.type))
                    for name, field in zip(
                        arrow_schema(spec.model).names, arrow_schema(spec.model), strict=True
                    )
                ]
            ),
        },
    )
    def curated_table(warehouse: DuckDBResource, release: ReleaseResource) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            built = build(con, release.reference)
            result = enforce(built.frame, spec, _parent_keys(con, spec))
            write_table(con, f"curated.{spec.name}", to_arrow(result.frame, spec.model))
            write_table(
                con,
                f"curated.rejects__{spec.name}",
                to_arrow(result.rejects, QUARANTINE.model),
            )
            _record_stats(con, spec.name, built, result.rejects)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(result.frame),
                "rows_quarantined": len(result.rejects),
            }
        )

    return curated_table


def _check(spec: TableSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["curated", spec.name]),
        name=f"{spec.name}_matches_schema",
        blocking=True,
        description=f"{spec.name} validates against its Pandera model and its foreign keys "
        "resolve.",
    )
    def check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        with warehouse.get_connection() as con:
            frame = read_frame(con, f"SELECT * FROM curated.{spec.name}")
            problems: list[str] = []
            try:
                spec.model.validate(frame, lazy=True)
            except pandera.errors.SchemaErrors as errors:
                problems += [
                    f"{c.column}: {c.check} ({c.failure_case!r})"
                    for c in errors.failure_cases.head(20).itertuples()
                ]
            if spec.primary_key and frame.duplicated(list(spec.primary_key)).any():
                problems.append(f"duplicate primary keys on {spec.primary_key}")
            parents = _parent_keys(con, spec)
            for fk in spec.foreign_keys:
                keys = parents[fk.ref_table]
                values = frame[list(fk.columns)].dropna()
                missing = [v for v in values.itertuples(index=False, name=None) if v not in keys]
                if missing:
                    problems.append(f"{fk.columns} → {fk.ref_table}: {len(missing)} unresolved")
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={"rows": len(frame), "problems": dg.MetadataValue.json(problems)},
        )

    return check


CURATED_ASSETS = [_curated_asset(spec) for spec in TABLES]
CURATED_CHECKS = [_check(spec) for spec in TABLES]

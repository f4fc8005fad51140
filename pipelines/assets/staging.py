"""Staging layer: each source's records parsed into `staging.<source>__<table>` tables.

A source's asset writes several tables; the catalog gets the described columns of each
(schemas/staging.py), the first of the unit's tables as the asset's own column schema, and the
rows staged as its row count.
"""

from collections.abc import Iterable

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pipelines.resources import SnapshotResource
from pipelines.sources import SOURCES
from pipelines.sources.base import SourceUnit
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import ensure_schemas
from schemas import QUARANTINE
from schemas.staging import column_descriptions

STATS_TABLE = "staging.source_stats"


def staged_columns(con: duckdb.DuckDBPyConnection, source: str, table: str) -> dg.TableSchema:
    """The columns of `staging.<source>__<table>` as staged, each with its description."""
    described = column_descriptions(table)
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'staging' AND table_name = ? ORDER BY ordinal_position",
        [f"{source}__{table}"],
    ).fetchall()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, data_type, description=described.get(name, ""))
            for name, data_type in columns
        ]
    )


def _catalog_metadata(
    con: duckdb.DuckDBPyConnection, unit: SourceUnit, stats: StageStats
) -> dict[str, dg.MetadataValue]:
    """Rows staged (all tables), the first table's columns as the asset's, every table's."""
    staged = [*stats.rows, *([QUARANTINE.name] if stats.quarantined else [])]
    schemas = {table: staged_columns(con, unit.name, table) for table in staged}
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(sum(stats.rows.values())),
    }
    if unit.tables[0] in schemas:
        metadata["dagster/column_schema"] = dg.MetadataValue.table_schema(schemas[unit.tables[0]])
    for table, schema in schemas.items():
        metadata[f"columns of staging.{unit.name}__{table}"] = dg.MetadataValue.table_schema(schema)
    return metadata


def staging_asset(unit: SourceUnit) -> dg.AssetsDefinition:
    """One source's records staged from the snapshot, with its counts in `source_stats`."""
    source = unit.name

    @dg.asset(
        key=["staging", source],
        group_name="staging",
        deps=[dg.AssetKey(["raw", source])],
        kinds={"duckdb"},
        description=f"Rows parsed from every {source} record of the snapshot; bad records "
        "quarantined with a reason.",
    )
    def staging_source(
        snapshot_store: SnapshotResource, warehouse: DuckDBResource
    ) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            ensure_schemas(con)
            stats = stage_source(con, snapshot_store.folder, source)
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {STATS_TABLE} (source VARCHAR PRIMARY KEY, "
                "files BIGINT, records_read BIGINT, staged BIGINT, quarantined BIGINT, "
                "duplicates BIGINT, superseded BIGINT)"
            )
            # A warehouse from before --since-last snapshots listed superseded records.
            con.execute(f"ALTER TABLE {STATS_TABLE} ADD COLUMN IF NOT EXISTS superseded BIGINT")
            con.execute(f"DELETE FROM {STATS_TABLE} WHERE source = ?", [source])
            con.execute(
                f"INSERT INTO {STATS_TABLE} (source, files, records_read, staged, quarantined, "
                "duplicates, superseded) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    source,
                    stats.files,
                    stats.records_read,
                    stats.staged,
                    stats.quarantined,
                    stats.duplicates,
                    stats.superseded,
                ],
            )
            catalog = _catalog_metadata(con, unit, stats)
        return dg.MaterializeResult(
            metadata={
                "files": stats.files,
                "records_read": stats.records_read,
                "records_staged": stats.staged,
                "records_quarantined": stats.quarantined,
                "exact_duplicates": stats.duplicates,
                "records_superseded": stats.superseded,
                "rows_by_table": dg.MetadataValue.json(stats.rows),
                **catalog,
            }
        )

    return staging_source


def staging_assets(units: Iterable[SourceUnit]) -> list[dg.AssetsDefinition]:
    """One staging asset per source unit."""
    return [staging_asset(unit) for unit in units]


STAGING_ASSETS = staging_assets(SOURCES.values())

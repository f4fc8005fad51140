"""Staging layer: each source's records parsed into `staging.<source>__<table>` tables."""

from collections.abc import Iterable

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.resources import SnapshotResource
from pipelines.sources import SOURCES
from pipelines.sources.base import SourceUnit
from pipelines.staging import stage_source
from pipelines.warehouse import ensure_schemas

STATS_TABLE = "staging.source_stats"


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
        return dg.MaterializeResult(
            metadata={
                "files": stats.files,
                "records_read": stats.records_read,
                "records_staged": stats.staged,
                "records_quarantined": stats.quarantined,
                "exact_duplicates": stats.duplicates,
                "records_superseded": stats.superseded,
                "rows_by_table": dg.MetadataValue.json(stats.rows),
            }
        )

    return staging_source


def staging_assets(units: Iterable[SourceUnit]) -> list[dg.AssetsDefinition]:
    """One staging asset per source unit."""
    return [staging_asset(unit) for unit in units]


STAGING_ASSETS = staging_assets(SOURCES.values())

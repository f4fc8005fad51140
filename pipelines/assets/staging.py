"""Staging layer: each source's records parsed into `staging.<source>__<table>` tables.

A source's records are staged in one step (one pass over its files), which writes several
tables: each is an asset of its own (`staging/<source>/<table>`, outputs of the source's
multi-asset), so the catalog shows each table's described columns (schemas/staging.py) and
rows, and a curated asset depends on exactly the staged tables it reads. The source's
quarantine table is one of them; its materialization also accounts for every record read.
"""

from collections.abc import Iterable, Iterator

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


def table_key(source: str, table: str) -> dg.AssetKey:
    """The asset of `staging.<source>__<table>`."""
    return dg.AssetKey(["staging", source, table])


def written_tables(unit: SourceUnit) -> tuple[str, ...]:
    """Every staging table a source's step writes: its unit's tables and its quarantine."""
    return (*unit.tables, QUARANTINE.name)


def _table_metadata(
    con: duckdb.DuckDBPyConnection, source: str, table: str, rows: int
) -> dict[str, dg.MetadataValue]:
    """A staged table's rows and, when it was written, its described columns."""
    metadata: dict[str, dg.MetadataValue] = {"dagster/row_count": dg.MetadataValue.int(rows)}
    schema = staged_columns(con, source, table)
    if schema.columns:
        metadata["dagster/column_schema"] = dg.MetadataValue.table_schema(schema)
    return metadata


def _accounting(stats: StageStats) -> dict[str, dg.MetadataValue]:
    """Where every record read went: records_read = staged + quarantined + exact duplicates +
    superseded."""
    return {
        "files": dg.MetadataValue.int(stats.files),
        "records_read": dg.MetadataValue.int(stats.records_read),
        "records_staged": dg.MetadataValue.int(stats.staged),
        "records_quarantined": dg.MetadataValue.int(stats.quarantined),
        "exact_duplicates": dg.MetadataValue.int(stats.duplicates),
        "records_superseded": dg.MetadataValue.int(stats.superseded),
        "rows_by_table": dg.MetadataValue.json(stats.rows),
    }


def _record_stats(con: duckdb.DuckDBPyConnection, stats: StageStats) -> None:
    """The source's counts in `source_stats` (the release manifest's accounting reads them)."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATS_TABLE} (source VARCHAR PRIMARY KEY, "
        "files BIGINT, records_read BIGINT, staged BIGINT, quarantined BIGINT, "
        "duplicates BIGINT, superseded BIGINT)"
    )
    # A warehouse from before --since-last snapshots listed superseded records.
    con.execute(f"ALTER TABLE {STATS_TABLE} ADD COLUMN IF NOT EXISTS superseded BIGINT")
    con.execute(f"DELETE FROM {STATS_TABLE} WHERE source = ?", [stats.source])
    con.execute(
        f"INSERT INTO {STATS_TABLE} (source, files, records_read, staged, quarantined, "
        "duplicates, superseded) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            stats.source,
            stats.files,
            stats.records_read,
            stats.staged,
            stats.quarantined,
            stats.duplicates,
            stats.superseded,
        ],
    )


def staging_asset(unit: SourceUnit) -> dg.AssetsDefinition:
    """One source's records staged from the snapshot: one asset per table its step writes,
    with its counts in `source_stats`."""
    source = unit.name
    raw = dg.AssetKey(["raw", source])
    specs = [
        dg.AssetSpec(
            table_key(source, table),
            group_name="staging",
            deps=[raw],
            kinds={"duckdb"},
            description=f"staging.{source}__{table}: rows parsed from the {source} records of "
            "the snapshot.",
        )
        for table in unit.tables
    ]
    specs.append(
        dg.AssetSpec(
            table_key(source, QUARANTINE.name),
            group_name="staging",
            deps=[raw],
            kinds={"duckdb"},
            description=f"staging.{source}__{QUARANTINE.name}: {source} records that could "
            "not be staged, each with its reason; its metadata accounts for every record read.",
        )
    )

    @dg.multi_asset(name=f"staging_{source}", specs=specs)
    def staging_source(
        snapshot_store: SnapshotResource, warehouse: DuckDBResource
    ) -> Iterator[dg.MaterializeResult]:
        with warehouse.get_connection() as con:
            ensure_schemas(con)
            stats = stage_source(con, snapshot_store.folder, source)
            _record_stats(con, stats)
            rows = {**stats.rows, QUARANTINE.name: stats.quarantined}
            metadata = {
                table: _table_metadata(con, source, table, rows.get(table, 0))
                for table in written_tables(unit)
            }
        metadata[QUARANTINE.name].update(_accounting(stats))
        for table, entries in metadata.items():
            yield dg.MaterializeResult(asset_key=table_key(source, table), metadata=entries)

    return staging_source


def staging_assets(units: Iterable[SourceUnit]) -> list[dg.AssetsDefinition]:
    """One staging multi-asset per source unit."""
    return [staging_asset(unit) for unit in units]


STAGING_ASSETS = staging_assets(SOURCES.values())

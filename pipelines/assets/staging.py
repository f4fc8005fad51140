"""Staging layer: each source's records parsed into `staging.<source>__<table>` tables.

A source's records are staged in one pass over its files, which writes several tables, and
the sources read that way share one step. Each table is an asset of its own
(`staging/<source>/<table>`), so the catalog shows each table's described columns
(schemas/staging.py) and rows, and a curated asset depends on exactly the staged tables it
reads. The source's
quarantine table is one of them; its materialization also accounts for every record read.

A source with a bulk export (ClinicalTrials.gov's whole-registry ZIP) is a graph of steps that
can stage its records in parts side by side (`pipelines/shards.py`; see
docs/running-past-one-machine.md).
"""

from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pipelines import shards
from pipelines.resources import SnapshotResource, WarehouseResource
from pipelines.shards import WAREHOUSE_TAGS, ShardTask, StagedShard
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
    superseded; and, for pages staged in runs by processes of their own, how many and the
    largest one's peak memory (the step's own memory does not show theirs)."""
    processes: dict[str, dg.MetadataValue] = {}
    if stats.process_peaks_mib:
        processes = {
            "staging_processes": dg.MetadataValue.int(len(stats.process_peaks_mib)),
            "staging_process_peak_mib": dg.MetadataValue.float(max(stats.process_peaks_mib)),
        }
    return {
        "files": dg.MetadataValue.int(stats.files),
        "records_read": dg.MetadataValue.int(stats.records_read),
        "records_staged": dg.MetadataValue.int(stats.staged),
        "records_quarantined": dg.MetadataValue.int(stats.quarantined),
        "exact_duplicates": dg.MetadataValue.int(stats.duplicates),
        "records_superseded": dg.MetadataValue.int(stats.superseded),
        "rows_by_table": dg.MetadataValue.json(stats.rows),
        **processes,
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


def _staged(
    con: duckdb.DuckDBPyConnection, unit: SourceUnit, stats: StageStats
) -> dict[str, dict[str, dg.MetadataValue]]:
    """Record a source's counts in `source_stats`; the metadata of each table it wrote."""
    source = unit.name
    _record_stats(con, stats)
    rows = {**stats.rows, QUARANTINE.name: stats.quarantined}
    metadata = {
        table: _table_metadata(con, source, table, rows.get(table, 0))
        for table in written_tables(unit)
    }
    metadata[QUARANTINE.name].update(_accounting(stats))
    return metadata


def _description(source: str, table: str) -> str:
    if table == QUARANTINE.name:
        return (
            f"staging.{source}__{table}: {source} records that could not be staged, each with "
            "its reason; its metadata accounts for every record read."
        )
    return f"staging.{source}__{table}: rows parsed from the {source} records of the snapshot."


def staging_asset(units: list[SourceUnit]) -> dg.AssetsDefinition:
    """The sources read in one pass each, staged from the snapshot in one step: one asset per
    table each source's pass writes, with its counts in `source_stats`. A subset stages only
    the sources of the selected tables."""
    specs = [
        dg.AssetSpec(
            table_key(unit.name, table),
            group_name="staging",
            deps=[dg.AssetKey(["raw", unit.name])],
            kinds={"duckdb"},
            description=_description(unit.name, table),
        )
        for unit in units
        for table in written_tables(unit)
    ]

    @dg.multi_asset(name="staging", specs=specs, op_tags=WAREHOUSE_TAGS, can_subset=True)
    def staging_sources(
        context: dg.AssetExecutionContext,
        snapshot_store: SnapshotResource,
        warehouse: DuckDBResource,
    ) -> Iterator[dg.MaterializeResult]:
        selected = context.selected_asset_keys
        with warehouse.get_connection() as con:
            ensure_schemas(con)
            for unit in units:
                keys = {table: table_key(unit.name, table) for table in written_tables(unit)}
                if not selected & set(keys.values()):
                    continue
                stats = stage_source(con, snapshot_store.folder, unit.name)
                for table, entries in _staged(con, unit, stats).items():
                    if keys[table] in selected:
                        yield dg.MaterializeResult(asset_key=keys[table], metadata=entries)

    return staging_sources


class StagingParts(dg.Config):
    """How a source with a bulk export is staged: in `parts` steps, or in one."""

    parts: int = 1
    """Parts of the records (a bulk archive alone in runs of members, one beside other files
    by key hash, page files in runs of files), each staged by a step of its own into its own
    DuckDB file, in parallel under a multiprocess or cluster executor, then combined; 1: one
    step stages the whole source straight into the warehouse (see `StagingProcesses`)."""


class StagingProcesses(dg.Config):
    """How the combine step stages the whole source when it was not split into steps."""

    processes: int = 1
    """Parts staging it side by side from this step, each on a thread of its own
    (`shards.stage_here`): the step's own into the warehouse, the others into files appended
    after. One part already runs its statements on two cores (`setwise.STATEMENT_CURSORS`),
    which pays best on two (bench/README.md, lead session 9)."""

    part_mib: int = shards.PART_MIB
    """Page files of more than this many MiB are staged in runs of about this size, each by a
    fresh process, one after the other, straight into the warehouse (`shards.stage_runs`): the
    staging's memory stays that of one run, whatever the number of pages (bench/README.md,
    Sessions 22 and 23). 0: one pass in the step's process."""


def sharded_staging_asset(unit: SourceUnit) -> dg.AssetsDefinition:
    """A source whose snapshot may hold its whole registry (a bulk archive), staged in parts.

    A graph of steps: plan (op config `parts`), one step per part writing its own DuckDB
    file, then combine into the warehouse's staging tables, one output per staged table. With
    one part (the default) the plan yields none and the combine step stages the whole source:
    in one pass, or for pages past `part_mib` in runs by fresh processes while it holds the
    warehouse closed (`WarehouseResource.released`).
    """
    source = unit.name
    tables = written_tables(unit)

    @dg.op(
        name=f"plan_{source}",
        ins={"raw": dg.In(dg.Nothing)},
        out=dg.DynamicOut(ShardTask),
        tags=WAREHOUSE_TAGS,
    )
    def plan_parts(
        config: StagingParts, snapshot_store: SnapshotResource, warehouse: DuckDBResource
    ) -> Iterator[dg.DynamicOutput[ShardTask]]:
        settings = warehouse.settings() if isinstance(warehouse, WarehouseResource) else {}
        tasks = shards.plan(
            source, snapshot_store.folder, Path(warehouse.database), config.parts, settings
        )
        for task in tasks:
            yield dg.DynamicOutput(task, mapping_key=f"part_{task.index}")

    @dg.op(name=f"stage_{source}_part")
    def stage_part(task: ShardTask) -> StagedShard:
        return shards.stage_shard(task)

    @dg.op(
        name=f"combine_{source}",
        out={table: dg.Out(dg.Nothing) for table in tables},
        tags=WAREHOUSE_TAGS,
    )
    def combine_parts(
        config: StagingProcesses,
        snapshot_store: SnapshotResource,
        warehouse: DuckDBResource,
        parts: list[StagedShard],
    ) -> Iterator[dg.Output[None]]:
        folder = snapshot_store.folder
        held = warehouse if isinstance(warehouse, WarehouseResource) else None
        settings = held.settings() if held else {}
        database = Path(warehouse.database)
        runs = (
            [] if parts else shards.plan_runs(source, folder, database, settings, config.part_mib)
        )
        stats = None
        if runs:
            with held.released() if held else nullcontext():
                stats = shards.stage_runs(runs)
        with warehouse.get_connection() as con:
            ensure_schemas(con)
            if parts:
                stats = shards.combine(con, source, parts, folder)
            elif stats is None:
                stats = shards.stage_here(con, folder, source, database, config.processes, settings)
            metadata = _staged(con, unit, stats)
        for table, entries in metadata.items():
            yield dg.Output(None, output_name=table, metadata=entries)

    @dg.graph_multi_asset(
        name=f"staging_{source}",
        group_name="staging",
        ins={"raw": dg.AssetIn(["raw", source], dagster_type=dg.Nothing)},
        outs={
            table: dg.AssetOut(
                key=table_key(source, table),
                kinds={"duckdb"},
                description=_description(source, table),
                dagster_type=dg.Nothing,
            )
            for table in tables
        },
    )
    def staging_source(raw: None) -> dict[str, object]:
        staged = combine_parts(plan_parts(raw).map(stage_part).collect())
        return dict(zip(tables, staged, strict=True))

    return staging_source


def staging_assets(units: Iterable[SourceUnit]) -> list[dg.AssetsDefinition]:
    """The sources staged in one pass, as one step; each source with a bulk export as a graph
    of its own (its parts may run side by side)."""
    units = list(units)
    whole = [unit for unit in units if unit.bulk is None]
    parted = [sharded_staging_asset(unit) for unit in units if unit.bulk is not None]
    return [staging_asset(whole), *parted] if whole else parted


STAGING_ASSETS = staging_assets(SOURCES.values())

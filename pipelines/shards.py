"""Staging one source in parts: each part in its own process and DuckDB file, then combined.

DuckDB lets one process write a database file at a time, so parts staged in parallel each
write a file of their own (`<warehouse stem>.shards/<source>-<i>-of-<n>.duckdb`); the combine
step then copies their tables into the warehouse, shard by shard, with `_seq` moved past the
rows of the shards before it (lineage order stays unique per source and table). Records are
split by a hash of their key (`snapshot.Shard`), so the de-duplication of one pass holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.snapshot import Shard
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import drop_staging, ensure_schemas

WAREHOUSE_TAGS = {"kratom-evidence/warehouse": "opens"}
"""Op tag of the steps that open the warehouse: a parallel run lets one of them run at a time
(DuckDB lets one process write a database file), while the parts of a sharded source, each
writing a file of its own, run side by side (`pipelines.build.STAGE_JOB`)."""


@dataclass(frozen=True)
class ShardTask:
    """What one parallel step stages: which part of which source, from where, into which file."""

    source: str
    snapshot_dir: str
    shard: Shard
    folder: str
    """Where the part files go (beside the warehouse, on storage every worker sees)."""
    settings: tuple[tuple[str, str], ...] = ()
    """The warehouse's DuckDB configuration (its `memory_limit` above all), so that a part's
    own connection is capped like the warehouse's: uncapped, DuckDB may hold up to 80 % of
    RAM in each part process."""

    @property
    def path(self) -> Path:
        return Path(self.folder) / f"{self.source}-{self.shard.index}-of-{self.shard.count}.duckdb"


@dataclass(frozen=True)
class StagedShard:
    """A staged part: its file and what staging it did."""

    path: str
    stats: StageStats = field(compare=False)


def shard_folder(warehouse: Path) -> Path:
    """The folder of a warehouse's part files: `warehouse.shards/` beside `warehouse.duckdb`."""
    return warehouse.with_name(f"{warehouse.stem}.shards")


def plan(
    source: str,
    snapshot_dir: Path,
    warehouse: Path,
    count: int,
    settings: Mapping[str, object] | None = None,
) -> list[ShardTask]:
    """The parts of a source to stage in parallel, each connecting with the warehouse's DuckDB
    `settings`; none when `count` is 1 (the combine step then stages the whole source into
    the warehouse itself, with no copy)."""
    if count <= 1:
        return []
    folder = str(shard_folder(warehouse))
    config = tuple(sorted((str(k), str(v)) for k, v in (settings or {}).items()))
    return [
        ShardTask(source, str(snapshot_dir), Shard(i, count), folder, config) for i in range(count)
    ]


def stage_shard(task: ShardTask) -> StagedShard:
    """Stage one part into a fresh DuckDB file of its own."""
    path = task.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path), config=dict(task.settings))
    try:
        ensure_schemas(con)
        stats = stage_source(con, Path(task.snapshot_dir), task.source, task.shard)
    finally:
        con.close()
    return StagedShard(str(path), stats)


def combine(
    con: duckdb.DuckDBPyConnection, source: str, parts: Sequence[StagedShard]
) -> StageStats:
    """Copy every part's staging tables into the warehouse's, then delete the part files.

    Tables are unioned by column name (a staging-only column one part never saw is null in
    its rows); `_seq` is offset by the rows of the parts before, so it stays unique.
    """
    drop_staging(con, source)
    aliases = [f"shard_{i}" for i in range(len(parts))]
    for alias, part in zip(aliases, parts, strict=True):
        con.execute(f"ATTACH '{_quoted(part.path)}' AS {alias} (READ_ONLY)")
    try:
        for table in _tables(con, source, aliases):
            selects = []
            offset = 0
            for alias in aliases:
                name = f'{alias}.staging."{table}"'
                if not _exists(con, alias, table):
                    continue
                selects.append(f"SELECT * REPLACE (_seq + {offset} AS _seq) FROM {name}")
                offset += _count(con, name)
            union = " UNION ALL BY NAME ".join(selects)
            con.execute(f'CREATE TABLE staging."{table}" AS {union}')
    finally:
        for alias in aliases:
            con.execute(f"DETACH {alias}")
    for part in parts:
        Path(part.path).unlink(missing_ok=True)
    return total([part.stats for part in parts])


def total(parts: Sequence[StageStats]) -> StageStats:
    """The stats of a source staged in parts, as one pass would count them."""
    stats = StageStats(parts[0].source, files=parts[0].files)
    for part in parts:
        stats.records_read += part.records_read
        stats.staged += part.staged
        stats.quarantined += part.quarantined
        stats.duplicates += part.duplicates
        stats.superseded += part.superseded
        for table, rows in part.rows.items():
            stats.rows[table] = stats.rows.get(table, 0) + rows
    stats.rows = dict(sorted(stats.rows.items()))
    return stats


def _tables(con: duckdb.DuckDBPyConnection, source: str, aliases: list[str]) -> list[str]:
    """Every staging table of `source` any part wrote, sorted."""
    found: set[str] = set()
    for alias in aliases:
        rows = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? "
            "AND table_schema = 'staging' AND starts_with(table_name, ?)",
            [alias, f"{source}__"],
        ).fetchall()
        found.update(name for (name,) in rows)
    return sorted(found)


def _exists(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? "
            "AND table_schema = 'staging' AND table_name = ?",
            [alias, table],
        ).fetchone()[0]  # type: ignore[index]
    )


def _count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    (rows,) = con.execute(f"SELECT count(*) FROM {name}").fetchone()  # type: ignore[misc]
    return int(rows)


def _quoted(path: str) -> str:
    return path.replace("'", "''")

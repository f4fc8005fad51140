"""Release layer: publish the curated tables as a versioned folder and a DuckLake snapshot.

The asset assembles what a release holds (tables in key order, quarantine, accounting) and hands
it to the build service's publish step (`pipelines/build.py`), the one that chooses the version.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import dagster as dg
import duckdb
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from pipelines.assets.curated import CURATED_KEYS, row_count
from pipelines.assets.curated import STATS_TABLE as TABLE_STATS
from pipelines.assets.staging import STATS_TABLE as SOURCE_STATS
from pipelines.assets.staging import table_key
from pipelines.build import publish_tables
from pipelines.normalize.literature_studies import paper_accounting
from pipelines.release.publish import Batches, DataDir, PublishResult, ReleaseTable
from pipelines.resources import ReleaseResource, SnapshotResource
from pipelines.sources import SOURCES
from pipelines.warehouse import duckdb_setting
from schemas import QUARANTINE, TABLES
from schemas.arrow import arrow_schema

ROWS_PER_BATCH = 122_880
"""Rows per batch read from the warehouse (and per Parquet row group of a large table)."""


EVICTING_LIMIT = "1MB"
"""The warehouse's `memory_limit` for the instant that evicts its cached table blocks."""
READING_LIMIT = "64MB"
"""The warehouse's `memory_limit` while the release reads it. Each table is scanned once, yet
DuckDB keeps the blocks it read until its limit wants the room: with the build's 512MB what the
release read of 200 000 studies grew to 203 MiB (and to the whole limit on a larger warehouse)
beside the files being written (the step's reading phase 667-717 MiB; 541-580 with 32MB or
64MB, the same CPU: bench/README.md, h9c)."""


@contextmanager
def reading_limit(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The warehouse under READING_LIMIT for the block, then its limit as before. Should DuckDB
    hold memory it cannot evict (it then raises, having set the lower limit), the block runs
    under the limit as before."""
    with con.cursor() as cursor:
        (before,) = cast(
            tuple[str], cursor.execute("SELECT current_setting('memory_limit')").fetchone()
        )
        try:
            cursor.execute("SET memory_limit = ?", [READING_LIMIT])
        except duckdb.OutOfMemoryException:
            cursor.execute("SET memory_limit = ?", [before])
        try:
            yield
        finally:
            cursor.execute("SET memory_limit = ?", [before])


def evict_cache(con: duckdb.DuckDBPyConnection) -> None:
    """Let the warehouse's DuckDB drop the table blocks it cached while the release read them.

    DuckDB keeps blocks it read until its `memory_limit` needs the room, and the publish
    session is another DuckDB with a limit of its own (`PUBLISH_MEMORY`): the two added up
    in one process (200 000 studies: 202 MiB cached, never read again). A lower limit evicts
    them; the limit is then put back (as DuckDB prints it, to 0.1 MiB)."""
    # Memory DuckDB cannot evict stays; it raises, yet has set the lower limit (put back).
    with (
        con.cursor() as cursor,
        suppress(duckdb.OutOfMemoryException),
        duckdb_setting(cursor, "memory_limit", EVICTING_LIMIT),
    ):
        pass


class Reads:
    """The warehouse's streams of one release, counted as they are made (all before the first
    is read): when the last one ends the warehouse is read no more, and its cache is let go
    (`evict_cache`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con
        self._open = 0
        self._lock = threading.Lock()

    def made(self) -> None:
        with self._lock:
            self._open += 1

    def ended(self) -> None:
        with self._lock:
            self._open -= 1
            last = self._open == 0
        if last:
            evict_cache(self._con)


def streamed(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    schema: pa.Schema | None = None,
    reads: Reads | None = None,
) -> Batches:
    """A query's rows as a stream opened when the table is written, on a cursor of its own
    (the publish step writes two tables at once), closed at the stream's end (counted in
    `reads`)."""
    if reads is not None:
        reads.made()

    def batches() -> pa.RecordBatchReader:
        cursor = con.cursor()
        reader = cursor.execute(sql).to_arrow_reader(ROWS_PER_BATCH)

        def read() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                cursor.close()
                if reads is not None:
                    reads.ended()

        stream = pa.RecordBatchReader.from_batches(reader.schema, read())
        return stream if schema is None else stream.cast(schema)

    return batches


def curated_batches(
    con: duckdb.DuckDBPyConnection, name: str, reads: Reads | None = None
) -> Batches:
    """A curated table as stored, streamed when written: in primary-key order, since the gate
    inserts its rows in that order (`rules.sorted_rows`) and DuckDB scans a table in insertion
    order. No sort here: it was 0.45 CPU s of the release step at 20 000 studies, for the same
    files."""
    return streamed(con, f"SELECT * FROM curated.{name}", reads=reads)


def quarantine_batches(con: duckdb.DuckDBPyConnection, reads: Reads | None = None) -> ReleaseTable:
    """Every rejected record: bad records from staging and rows the gate turned away."""
    names = [
        f'{schema}."{table}"'
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE "
            "(table_schema = 'staging' AND ends_with(table_name, '__quarantine')) OR "
            "(table_schema = 'curated' AND starts_with(table_name, 'rejects__')) "
            "ORDER BY table_schema, table_name"
        ).fetchall()
    ]
    columns = ", ".join(QUARANTINE.columns)
    schema = arrow_schema(QUARANTINE.model)
    if not names:
        return schema.empty_table()
    union = " UNION ALL ".join(f"SELECT {columns} FROM {n}" for n in names)
    sql = f"SELECT * FROM ({union}) ORDER BY table_name, source, source_file, record_key, raw"
    return streamed(con, sql, schema, reads)


def accounting(con: duckdb.DuckDBPyConnection, out_rows: dict[str, int]) -> dict[str, object]:
    """Rows in = rows out + rows quarantined (per source also exact duplicates and superseded
    records), per source and per table; raises if not."""
    per_source = {
        str(source): {
            "files": int(files),
            "records_read": int(read),
            "records_staged": int(staged),
            "records_quarantined": int(quarantined),
            "exact_duplicates": int(duplicates),
            "records_superseded": int(superseded or 0),
        }
        for source, files, read, staged, quarantined, duplicates, superseded in con.execute(
            "SELECT source, files, records_read, staged, quarantined, duplicates, superseded "
            f"FROM {SOURCE_STATS} ORDER BY source"
        ).fetchall()
    }
    for source, counts in per_source.items():
        if counts["records_read"] != (
            counts["records_staged"]
            + counts["records_quarantined"]
            + counts["exact_duplicates"]
            + counts["records_superseded"]
        ):
            raise RuntimeError(f"{source}: records read do not add up: {counts}")
    by_table: dict[str, dict[str, dict[str, int]]] = {}
    for table, source, rows_in, rejected in con.execute(
        f"SELECT table_name, source, rows_in, rows_rejected FROM {TABLE_STATS} "
        "ORDER BY table_name, source"
    ).fetchall():
        by_table.setdefault(str(table), {})[str(source)] = {
            "rows_in": int(rows_in),
            "rows_quarantined": int(rejected),
        }
    per_table: dict[str, dict[str, object]] = {}
    for name, rows_out in out_rows.items():
        by_source = by_table.get(name, {})
        rows_in = sum(part["rows_in"] for part in by_source.values())
        rejected = sum(part["rows_quarantined"] for part in by_source.values())
        merged = rows_in - rejected - rows_out
        if merged < 0:
            raise RuntimeError(f"{name}: more rows out than in ({rows_in} in, {rows_out} out)")
        per_table[name] = {
            "rows_in": rows_in,
            "rows_out": rows_out,
            "rows_quarantined": rejected,
            "rows_merged": merged,
            "by_source": by_source,
        }
    return {"sources": per_source, "tables": per_table, "literature": literature_books(con)}


def literature_books(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """What became of each PMID paper (studies, reports, not studies, unclassified ids)."""
    rows = con.execute(
        "SELECT publication_id, outcome FROM curated.literature_papers ORDER BY publication_id"
    ).fetchall()
    return paper_accounting({"publication_id": pid, "outcome": out} for pid, out in rows)


def release_metadata(result: PublishResult) -> dict[str, dg.MetadataValue]:
    """The catalog's view of a publish: version, links to its report and manifest, rows."""
    folder = result.folder
    links = (
        {
            "folder": dg.MetadataValue.path(str(folder)),
            "report": dg.MetadataValue.path(str(folder / "report.html")),
            "manifest": dg.MetadataValue.path(str(folder / "manifest.json")),
        }
        if folder is not None
        else {"folder": dg.MetadataValue.text("")}
    )
    return {
        "version": dg.MetadataValue.text(result.version or ""),
        "previous_version": dg.MetadataValue.text(result.previous or ""),
        "published": dg.MetadataValue.bool(result.version is not None),
        "message": dg.MetadataValue.text(result.message),
        **links,
        "rows": dg.MetadataValue.json(result.rows),
    }


def publish_release(
    con: duckdb.DuckDBPyConnection,
    snapshot_dir: Path,
    outputs: DataDir,
    created_at: str,
    release_version: str | None,
) -> PublishResult:
    """Publish the curated tables and the quarantine of the warehouse, each streamed from
    `con` into its Parquet file: the tables by rows, the largest first, so that the two
    writing threads end together (the quarantine, not counted, first). The warehouse holds
    little of what it read (`reading_limit`), and lets go of it once the last is read
    (`Reads`), before the publish session's DuckDB fills with the record history."""
    rows = {spec.name: row_count(con, spec.name) for spec in TABLES}
    books = accounting(con, rows)
    reads = Reads(con)
    tables: dict[str, ReleaseTable] = {QUARANTINE.name: quarantine_batches(con, reads)}
    for name in sorted(rows, key=lambda table: (-rows[table], table)):
        tables[name] = curated_batches(con, name, reads)
    with reading_limit(con):
        return publish_tables(outputs, tables, snapshot_dir, books, created_at, release_version)


@dg.asset(
    key=["release", "published"],
    group_name="release",
    # Every curated asset, working tables too: the accounting reads curated.literature_papers;
    # and every source's staged quarantine, which the quarantine table gathers.
    deps=[*CURATED_KEYS, *(table_key(s, QUARANTINE.name) for s in SOURCES)],
    kinds={"parquet", "duckdb"},
    description="The release: Parquet files + manifest in data/releases/<version>/ and one "
    "DuckLake snapshot in data/lake/ tagged with the version.",
)
def published_release(
    context: dg.AssetExecutionContext,
    snapshot_store: SnapshotResource,
    warehouse: DuckDBResource,
    release: ReleaseResource,
) -> dg.MaterializeResult:
    created_at = release.created_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with warehouse.get_connection() as con:
        result = publish_release(
            con, snapshot_store.folder, release.outputs, created_at, release.release_version
        )
    context.log.info(result.message)
    return dg.MaterializeResult(metadata=release_metadata(result))

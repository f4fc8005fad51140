"""Publishing a release: Parquet files + manifest in a folder, and one DuckLake snapshot.

Order makes a crash harmless: the folder is written under a temporary name, then the catalog
commits (one transaction), then the folder is renamed into place. The catalog is the truth: a
version is published when its `releases` row is committed. `recover` (datadir.py) finishes a
rename a crash interrupted, removes unfinished `.incoming-*` folders and the data files of a
transaction that never committed, and refuses a release folder the catalog does not list: a
published version is never changed or overwritten (docs/releases-and-time-travel.md): no folder
is deleted or reused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import digests
from pipelines.release import catalog, history
from pipelines.release.datadir import (
    INCOMING_PREFIX,
    VERSION_PATTERN,
    DataDir,
    PublishError,
    exclusive,
    folder_versions,
    recover,
)
from pipelines.release.diff import CatalogRelease, FolderRelease, ReleaseTables
from pipelines.snapshot import SnapshotInfo
from pipelines.streams import read_ahead
from schemas import HISTORY, SCHEMA_VERSION

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}
SOFTWARE = ("dagster", "duckdb", "pandera", "pyarrow", "pandas", "httpx", "kratom-evidence")
PAUSE_ENV = "KRATOM_EVIDENCE_PAUSE_AT"
"""Test hook: the publish step (parquet-written, incoming-renamed, catalog-before-commit,
catalog-committed) at which to leave a marker file and wait to be killed (crash tests)."""


Documents = Callable[[dict[str, Any], ReleaseTables | None], None]
"""Writes the rest of a release folder's documentation, given its manifest and the previous
release (its folder, or the catalog when another machine published it)."""
Describer = Callable[[Path, Mapping[str, Any]], Documents]
"""Starts documenting a release folder from its written tables and heading (the manifest's
version, created_at, snapshot), beside the record history; returns what writes the rest."""


def pause_marker(data_dir: DataDir, point: str) -> Path:
    """The file a paused build leaves so a crash test knows where it stands."""
    return data_dir.root / f".paused-{point}"


def _pause_if_asked(data_dir: DataDir, point: str) -> None:
    """Test hook: with KRATOM_EVIDENCE_PAUSE_AT=point, leave a marker and wait to be killed."""
    if os.environ.get(PAUSE_ENV) != point:
        return
    marker = pause_marker(data_dir, point)
    written = marker.with_name(f"{marker.name}.{os.getpid()}")
    written.write_text(str(os.getpid()), encoding="utf-8")
    written.replace(marker)  # a test polling for the marker never reads it half-written
    while True:
        time.sleep(1)


def base_version(captured_at: date) -> str:
    return captured_at.strftime("%Y.%m.%d")


def check_requested(version: str, taken: set[str]) -> None:
    """Refuse a malformed version or one already published (versions are never overwritten)."""
    if not VERSION_PATTERN.match(version):
        raise PublishError(f"version {version!r} is not YYYY.MM.DD[.N]")
    if version in taken:
        raise PublishError(
            f"release {version} is already published and is never overwritten; "
            "choose another version"
        )


def next_version(base: str, taken: set[str]) -> str:
    """`base` if free, else the next free `base.N` (N from 1)."""
    if base not in taken:
        return base
    n = 1
    while f"{base}.{n}" in taken:
        n += 1
    return f"{base}.{n}"


def sha256_file(path: Path) -> str:
    """The file's SHA-256 as hex (`digests.file_sha256`: the publish threads hash files beside
    threads that hold the GIL)."""
    return digests.file_sha256(path).hex()


def write_parquet(table: pa.Table, path: Path) -> str:
    """Write deterministically (fixed options, no pandas metadata); return the file's sha256."""
    pq.write_table(table.replace_schema_metadata(None), path, **PARQUET_OPTIONS)
    return sha256_file(path)


Batches: TypeAlias = Callable[[], pa.RecordBatchReader]
"""A table to publish as a stream of record batches in its final order, opened when it is
written: a whole registry's tables are never held in memory at once."""
ReleaseTable: TypeAlias = pa.Table | Batches


ROW_GROUP_ROWS = 122_880
"""Rows per Parquet row group of a streamed table (the last may hold fewer)."""


def _row_groups(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """The stream regrouped into one-chunk tables of ROW_GROUP_ROWS rows (the last fewer), so
    a file's bytes do not depend on how its source cut the batches."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= ROW_GROUP_ROWS:
            rows = pa.Table.from_batches(held, schema).combine_chunks()
            yield rows.slice(0, ROW_GROUP_ROWS)
            rest = rows.slice(ROW_GROUP_ROWS)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, schema).combine_chunks()


def write_batches(batches: pa.RecordBatchReader, path: Path) -> str:
    """Write a stream as `write_parquet` writes a table, in row groups of ROW_GROUP_ROWS (a
    table of fewer rows gives the same bytes); return the file's sha256."""
    schema = batches.schema.remove_metadata()
    stream = (batch.replace_schema_metadata(None) for batch in batches)
    with pq.ParquetWriter(path, schema, **PARQUET_OPTIONS) as writer:
        written = False
        for group in _row_groups(stream, schema):
            writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
            written = True
        if not written:
            writer.write_table(schema.empty_table())  # one empty row group, as write_table does
    return sha256_file(path)


def write_table(table: ReleaseTable, path: Path) -> str:
    """Write a table or a stream of batches to Parquet; return the file's sha256."""
    if isinstance(table, pa.Table):
        return write_parquet(table, path)
    return write_batches(table(), path)


PUBLISH_THREADS = 2
"""Threads of the publish step: tables written two at a time, then the record history beside
the report's charts and the catalog's registration of the tables (DuckDB, pyarrow's Parquet
writer and hashlib let go of the GIL while they work)."""


def _writing(
    pool: ThreadPoolExecutor, tables: Mapping[str, ReleaseTable], folder: Path
) -> dict[str, Future[str]]:
    """Each table written to `folder` by the pool, in the mapping's order (the largest first
    keeps both threads busy to the end); each file's sha256 by name, to come."""
    return {
        name: pool.submit(write_table, table, folder / f"{name}.parquet")
        for name, table in tables.items()
    }


def software_versions() -> dict[str, str]:
    versions = {}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


@dataclass(frozen=True)
class PublishResult:
    """What a publish did: the version, or None when nothing changed."""

    version: str | None
    previous: str | None
    folder: Path | None
    rows: dict[str, int]
    message: str


HISTORY_NAMES = frozenset(spec.name for spec in HISTORY)


def _content_hashes(tables_sha256: dict[str, str]) -> dict[str, str]:
    """A release's table hashes without the history tables, which change with every version."""
    return {name: digest for name, digest in tables_sha256.items() if name not in HISTORY_NAMES}


def _previous_release(
    con: duckdb.DuckDBPyConnection, data_dir: DataDir, previous: catalog.ReleaseRecord | None
) -> ReleaseTables | None:
    """The previous release's folder, else the catalog as of its snapshot (time travel).

    With a shared catalog, the previous release may have been published on another machine:
    its folder is not here, but its tables are in the catalog.
    """
    if previous is None:
        return None
    folder = data_dir.releases / previous.version
    if folder.is_dir():
        return FolderRelease(folder)
    return CatalogRelease(con, previous.version, previous.snapshot_id)


def _write_history(
    con: duckdb.DuckDBPyConnection, before: ReleaseTables | None, folder: Path, version: str
) -> dict[str, str]:
    """Write the history tables of `version` into `folder`, continued from the previous
    release's, from the tables already written there; return their sha256 by name."""
    current = FolderRelease(folder)
    tables = {name: current.scan(name) for name in history.FOLLOWED}
    prior = history.scans_of(before) if before is not None else None
    return history.written_history(
        con,
        prior,
        history.Scans(version, tables),
        version,
        lambda name, batches: write_batches(_read_ahead(batches), folder / f"{name}.parquet"),
    )


def _read_ahead(batches: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """A history stream whose next batch DuckDB makes (and `history` checks) while this one is
    encoded into Parquet: on one thread the two took turns."""
    return pa.RecordBatchReader.from_batches(
        batches.schema, read_ahead(iter(batches), "history-read")
    )


PUBLISH_MEMORY = "192MB"
"""DuckDB's memory for the publish step (history joins, catalog writes): fixed, so the step's
memory does not grow with the release; larger sorts and joins spill to disk. The history's
sort fills it beside report.html: at 256MB the step alone peaked at 872-898 MiB for 200 000
studies, at 192MB 802-817 (600 000: 889 against 791-844), the same CPU; 128MB also passes at
200 000 (bench/README.md, lead session 11)."""


def _bound_memory(con: duckdb.DuckDBPyConnection, spill_dir: Path) -> None:
    con.execute(f"SET memory_limit = '{PUBLISH_MEMORY}'")
    con.execute(f"SET temp_directory = '{spill_dir}'")


def _parquet_shape(path: Path) -> tuple[int, list[str]]:
    """Rows and column names of a written Parquet file, from its footer."""
    metadata = pq.read_metadata(path)
    return metadata.num_rows, metadata.schema.to_arrow_schema().names


def _written_paths(
    con: duckdb.DuckDBPyConnection, data_dir: DataDir, folder: Path, tables: Iterable[str]
) -> list[Path]:
    """What a publish wrote on this machine: the release folder's files, the folder and
    `releases/`; the data files of the release's tables (and `releases`) in a local data path,
    with their folders; a local catalog's file and folder."""
    written = [*sorted(folder.iterdir()), folder, data_dir.releases]
    names = [*tables, catalog.RELEASES_TABLE]
    files = [Path(f) for f in catalog.table_files(con, names) if "://" not in f]
    written += [*files, *sorted({f.parent for f in files})]
    if not data_dir.lake.is_postgres:
        local = Path(data_dir.lake.catalog.removeprefix("ducklake:"))
        written += [local, local.parent]
    return written


def _synced(paths: Iterable[Path]) -> None:
    """fsync each file and folder, so the release is on disk when the build says so; not
    os.sync, which also waits for every other process's writes (seconds on a busy machine)."""
    for path in paths:
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _snapshot_section(info: SnapshotInfo, snapshot_sha256: str) -> dict[str, Any]:
    return {
        "captured_at": info.captured_at.isoformat(),
        "method": info.method,
        "topic": info.topic,
        "sha256": snapshot_sha256,
        # Only a refresh that carried a failed source over says so, so manifests of every
        # other release keep their exact bytes.
        **({"carried_from": info.carried_from} if info.carried_from else {}),
    }


def _table_entries(
    files: Mapping[str, Path], hashes: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """The manifest's `tables`: each file's rows and columns (from its footer), hash, bytes."""
    entries = {}
    for name, path in files.items():
        count, columns = _parquet_shape(path)
        entries[name] = {
            "file": f"{name}.parquet",
            "rows": count,
            "columns": columns,
            "sha256": hashes[name],
            "bytes": path.stat().st_size,
        }
    return entries


def publish(
    data_dir: DataDir,
    tables: Mapping[str, ReleaseTable],
    info: SnapshotInfo,
    snapshot_sha256: str,
    accounting: dict[str, object],
    created_at: str,
    requested_version: str | None = None,
    describe: Describer | None = None,
) -> PublishResult:
    """Publish `tables` (name → Arrow table or stream of batches, quarantine included) as the
    next release. Each is written to its Parquet file and read from there on (history, the
    catalog, the report), so none need be held in memory.

    `describe(folder, heading)` starts the release's documentation files (data dictionary,
    data package, changes, report) once the tables are written, and returns what writes the
    rest given the manifest and the previous release, before the folder is published. The
    history tables (record_versions, removed_records) are added here once the version is
    known, continued from the previous release (its folder, else the catalog by time travel);
    they never count when deciding whether anything changed, since they would differ with
    every version.

    Two threads (`PUBLISH_THREADS`): the tables are written two at a time, in the mapping's
    order, while the catalog is opened; then the record history runs here while the pool
    starts the documentation (the report's charts) and registers the tables' files in the
    catalog's open transaction; the history tables, and any table the catalog must copy
    (never beside the history: both would share the session's memory), follow them there
    while the documentation is finished. The order that makes a crash harmless is kept:
    folder, catalog transaction, rename, commit, rename.
    """
    with exclusive(data_dir):
        recover(data_dir)
        data_dir.lake_dir.mkdir(parents=True, exist_ok=True)
        data_dir.releases.mkdir(parents=True, exist_ok=True)
        staging = data_dir.releases / f"{INCOMING_PREFIX}pending"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="publish") as pool:
            writing = _writing(pool, tables, staging)
            try:
                con = catalog.connect(data_dir.lake)
            except BaseException:
                _cancelled(writing.values())
                raise
            try:
                return _publish_written(
                    pool,
                    con,
                    data_dir,
                    staging,
                    writing,
                    info,
                    snapshot_sha256,
                    accounting,
                    created_at,
                    requested_version,
                    describe,
                )
            except BaseException:
                _cancelled(writing.values())
                raise
            finally:
                con.close()


def _cancelled(futures: Iterable[Future[Any]]) -> None:
    """Cancel what has not started; wait for what has (its thread still uses the files)."""
    for future in futures:
        future.cancel()
    wait(futures)


def _publish_written(
    pool: ThreadPoolExecutor,
    con: duckdb.DuckDBPyConnection,
    data_dir: DataDir,
    staging: Path,
    writing: Mapping[str, Future[str]],
    info: SnapshotInfo,
    snapshot_sha256: str,
    accounting: dict[str, object],
    created_at: str,
    requested_version: str | None,
    describe: Describer | None,
) -> PublishResult:
    """`publish` once the tables are being written into `staging` and the catalog is open."""
    _bound_memory(con, data_dir.spill_dir)
    releases = catalog.list_releases(con)
    taken = {r.version for r in releases} | folder_versions(data_dir.releases)
    previous = releases[0] if releases else None
    if requested_version:
        check_requested(requested_version, taken)
    hashes = {name: written.result() for name, written in sorted(writing.items())}
    _pause_if_asked(data_dir, "parquet-written")
    if (
        previous is not None
        and _content_hashes(previous.tables_sha256) == hashes
        and not requested_version
    ):
        rows = {name: _parquet_shape(staging / f"{name}.parquet")[0] for name in hashes}
        shutil.rmtree(staging)
        return PublishResult(
            None,
            previous.version,
            data_dir.releases / previous.version,
            rows,
            f"nothing changed since release {previous.version}: no new version published",
        )
    version = requested_version or next_version(base_version(info.captured_at), taken)
    before = _previous_release(con, data_dir, previous)
    heading = {
        "version": version,
        "schema_version": SCHEMA_VERSION,
        "created_at": created_at,
        "previous_version": previous.version if previous else None,
        "snapshot": _snapshot_section(info, snapshot_sha256),
    }
    documents = pool.submit(describe, staging, heading) if describe is not None else None
    started: list[Future[Any]] = [documents] if documents is not None else []
    writer = con.cursor()
    try:
        tables = {name: staging / f"{name}.parquet" for name in sorted(hashes)}
        opened = pool.submit(catalog.begin_release, writer, tables, data_dir.lake.data_path)
        started.append(opened)
        try:
            history = _write_history(con, before, staging, version)
            hashes.update(history)
            snapshot_id, copies = opened.result()
            histories = {name: staging / f"{name}.parquet" for name in sorted(history)}
            added = pool.submit(
                catalog.add_tables, writer, {**copies, **histories}, data_dir.lake.data_path
            )
            started.append(added)
            files = {name: staging / f"{name}.parquet" for name in sorted(hashes)}
            entries = _table_entries(files, hashes)
            manifest = {
                **heading,
                "tables": entries,
                "accounting": accounting,
                "software": software_versions(),
            }
            (staging / "manifest.json").write_text(
                json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            if documents is not None:
                documents.result()(manifest, before)
            added.result()
            incoming = data_dir.releases / f"{INCOMING_PREFIX}{version}"
            staging.rename(incoming)
            _pause_if_asked(data_dir, "incoming-renamed")
            rows = {name: entry["rows"] for name, entry in entries.items()}
            catalog.commit_release(
                writer,
                snapshot_id,
                version,
                created_at,
                rows,
                hashes,
                before_commit=lambda: _pause_if_asked(data_dir, "catalog-before-commit"),
            )
        except BaseException:
            _cancelled(started)  # nothing runs on `writer` any more
            with suppress(Exception):  # ended already when the catalog's writes or commit failed
                opened.result()
                writer.execute("ROLLBACK")
            raise
    finally:
        writer.close()
    _pause_if_asked(data_dir, "catalog-committed")
    final = data_dir.releases / version
    incoming.rename(final)
    _synced(_written_paths(con, data_dir, final, rows))
    return PublishResult(
        version,
        previous.version if previous else None,
        final,
        rows,
        f"published release {version}",
    )

"""Staging one source in parts: each part into a DuckDB file of its own, then combined; or in
runs of files, each straight into the warehouse by a fresh process.

DuckDB lets one process write a database file at a time, so parts staged side by side (by step
processes of a parallel run, or by threads of the combine step: `stage_here`) each write a
file of their own (`<warehouse stem>.shards/<source>-<i>-of-<n>.duckdb`); the combine
step then copies their tables into the warehouse, shard by shard, with `_seq` moved past the
rows of the shards before it (lineage order stays unique per source and table). Pages past
`PART_MIB` are staged in runs one after the other instead (`stage_runs`), each by a fresh
process into the warehouse itself, which the step closes meanwhile: no row is written twice.

Page files are dealt to parts in runs of consecutive files (`snapshot.file_shards`), and a bulk
archive that is the source's one file in runs of consecutive members (`snapshot.Shard.runs`,
chosen by a member's place in the central directory before it is read): no part parses
another's records, and the parts' rows, in part order, are one pass's rows in its order; a key
two parts both read would be de-duplicated differently, so then the combine stages the source
in one pass. An archive beside other files is split by a hash of the key each member's name
announces, so the de-duplication of one pass holds (its rows in another order).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import resource
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from pipelines.setwise import WHOLE_SOURCE, Place
from pipelines.snapshot import Shard, file_shards, source_files
from pipelines.sources import SOURCES
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import drop_staging, duckdb_threads, ensure_schemas, table_rows
from schemas.registry import TABLES_BY_NAME

APPEND_TABLES = 2
"""Tables the combine appends at once (`_append_all`)."""
_log = logging.getLogger(__name__)
PART_MIB = 384
"""The most MiB of page files one process stages.

A process's memory grows with the batches it has staged, not only with one batch: DuckDB's
allocator and glibc's heap keep pages it freed (bench/README.md, Sessions 21 and 22). A source
larger than this is staged in runs of about this size, each by a fresh process, one after the
other (`stage_runs`), so its peak is one run's whatever the source's size; 20 000 real-shape
studies from pages (about 360 MB) stay one pass in the step's own process."""
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
    index: int = 0
    count: int = 1
    """This part's place among the source's parts (its file name and step key)."""
    into: str = ""
    """The warehouse, for a run staged straight into it after the runs before (`stage_runs`);
    empty: a file of the part's own."""

    @property
    def path(self) -> Path:
        if self.into:
            return Path(self.into)
        return Path(self.folder) / f"{self.source}-{self.index}-of-{self.count}.duckdb"

    @property
    def place(self) -> Place:
        """Where a run stands among the source's runs; a part file holds a whole staging."""
        if not self.into:
            return WHOLE_SOURCE
        return Place(first=self.index == 0, last=self.index + 1 == self.count)


@dataclass(frozen=True)
class StagedShard:
    """A staged part: its file, what staging it did, and which records it read."""

    path: str
    stats: StageStats = field(compare=False)
    shard: Shard = field(default=Shard(), compare=False)
    process: int = field(default=0, compare=False)
    """The process that staged it (`stage_runs` logs it with the process's peak memory)."""


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
    `settings`; none when `count` is 1 or the files make one part (the combine step then
    stages the whole source into the warehouse itself, with no copy). A bulk archive alone
    is split in runs of members, one beside other files by key, pages in runs of files."""
    if count <= 1:
        return []
    shards = _split(snapshot_dir, source, count)
    if len(shards) <= 1:
        return []
    folder = str(shard_folder(warehouse))
    config = tuple(sorted((str(k), str(v)) for k, v in (settings or {}).items()))
    return [
        ShardTask(source, str(snapshot_dir), shard, folder, config, i, len(shards))
        for i, shard in enumerate(shards)
    ]


def _split(snapshot_dir: Path, source: str, count: int) -> list[Shard]:
    """Parts by runs of members for a bulk archive alone, by key for an archive beside other
    files, else by runs of files."""
    files = source_files(snapshot_dir, source)
    if _only_archive(files, source):
        return [Shard(i, count, runs=True) for i in range(count)]
    if _has_archive(files, source):
        return [Shard(i, count) for i in range(count)]
    return file_shards(snapshot_dir, source, count)


def _has_archive(files: Sequence[Path], source: str) -> bool:
    bulk = SOURCES[source].bulk
    return bulk is not None and any(path.suffix == bulk.suffix for path in files)


def _only_archive(files: Sequence[Path], source: str) -> bool:
    """Whether the source's one file is a bulk archive (the registry's whole export)."""
    return len(files) == 1 and _has_archive(files, source)


def bounded_parts(snapshot_dir: Path, source: str, part_mib: int = PART_MIB) -> int:
    """How many runs of files of at most `part_mib` the source's pages are staged in
    (`plan_runs`): 1 when `part_mib` is 0 or the source has a bulk archive, which is read in
    smaller batches under a lowered DuckDB limit (`setwise.ARCHIVE_HELD_BYTES`) and which runs
    would each walk whole: 560 000 studies took 583 s in runs against 427 in one pass, for a
    peak of 845 against 889 MiB (bench/README.md, Session 22)."""
    files = source_files(snapshot_dir, source)
    if part_mib <= 0 or _has_archive(files, source):
        return 1
    total = sum(path.stat().st_size for path in files)
    return max(1, -(-total // (part_mib * 2**20)))


def stage_shard(task: ShardTask) -> StagedShard:
    """Stage one part into a fresh DuckDB file of its own, or a run into the warehouse."""
    path = task.path
    if not task.into:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    con = duckdb.connect(str(path), config=dict(task.settings))
    try:
        con.execute("SET enable_progress_bar = false")  # a worker's bar would only be noise
        ensure_schemas(con)
        stats = stage_source(con, Path(task.snapshot_dir), task.source, task.shard, task.place)
    finally:
        con.close()
    return StagedShard(str(path), stats, task.shard)


def stage_here(
    con: duckdb.DuckDBPyConnection,
    snapshot_dir: Path,
    source: str,
    warehouse: Path,
    processes: int,
    settings: Mapping[str, object] | None = None,
) -> StageStats:
    """Stage a source into the warehouse from this step, `processes` parts at once.

    This thread stages the first part straight into the warehouse while each other part is
    staged by a thread of this process into a DuckDB file (and database) of its own; their
    rows are then appended (`combine`), so only the later parts' rows are written twice.
    DuckDB releases the GIL while a statement runs, so the parts use as many cores as a
    child process did, without its start and imports (about a CPU second) and its own
    interpreter's memory (bench/README.md, h7s). With one part this is `stage_source`, which
    itself runs a batch's statements on two cores (`setwise.STATEMENT_CURSORS`): on two cores
    one part pays best (bench/README.md, lead session 9).
    """
    tasks = plan(source, snapshot_dir, warehouse, processes, settings)
    if not tasks:
        return stage_source(con, snapshot_dir, source)
    try:
        with ThreadPoolExecutor(len(tasks) - 1, thread_name_prefix="stage-part") as pool:
            later = [pool.submit(stage_shard, task) for task in tasks[1:]]
            first = stage_source(con, snapshot_dir, source, tasks[0].shard)
            parts = [future.result() for future in later]
        return combine(con, source, parts, snapshot_dir, first)
    finally:
        for task in tasks[1:]:
            task.path.unlink(missing_ok=True)


def plan_runs(
    source: str,
    snapshot_dir: Path,
    warehouse: Path,
    settings: Mapping[str, object] | None = None,
    part_mib: int = PART_MIB,
) -> list[ShardTask]:
    """The runs of files of at most about `part_mib` that stage a source's pages into the
    warehouse (`stage_runs`); none when one run holds them all (`bounded_parts`)."""
    count = bounded_parts(snapshot_dir, source, part_mib)
    return [
        replace(task, into=str(warehouse))
        for task in plan(source, snapshot_dir, warehouse, count, settings)
    ]


def stage_runs(runs: Sequence[ShardTask]) -> StageStats:
    """Stage a source in runs of files, each straight into the warehouse by a fresh process
    that exits when its run is staged, one at a time, so no process stages more than one
    run's batches (`PART_MIB`). The warehouse must be closed by this process meanwhile. Each
    run appends to the tables and seen keys the one before left: the tables and counts are
    one pass's, row for row."""
    staged = stage_in_processes(runs)
    for task, run in zip(runs, staged, strict=True):
        _log.info(
            "%s: run %d of %d staged by process %d, peak %.0f MiB",
            task.source,
            task.index + 1,
            task.count,
            run.process,
            max(run.stats.process_peaks_mib),
        )
    return total([run.stats for run in staged])


def stage_in_processes(tasks: Sequence[ShardTask]) -> list[StagedShard]:
    """Stage each part in a fresh process of its own, one at a time, in part order.

    The processes fork from a server that has imported staging once (`forkserver`: about
    0.75 s of imports not paid per part), not from this process with Dagster's state. Each
    ends with its part, its memory given back whole; the next one is started while a part
    stages, so a part's exit (about a second with DuckDB's memory to unmap) and the next
    one's start are off the path. A part that fails raises its error here; a process that
    dies (killed for its memory) raises `StagingProcessError`; a part file left is deleted
    (a run staged into the warehouse leaves its rows, which the next staging drops).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    staged: list[StagedShard] = []
    waiting: _Part | None = None
    try:
        for number, task in enumerate(tasks):
            current = waiting or _Part(context)
            current.send(task)
            waiting = _Part(context) if number + 1 < len(tasks) else None
            staged.append(current.result(task))
        return staged
    except BaseException:
        for task in tasks:
            if not task.into:
                task.path.unlink(missing_ok=True)
        raise
    finally:
        if waiting is not None:
            waiting.stop()


class StagingProcessError(RuntimeError):
    """A process staging a part ended without a result."""


class _Part:
    """A process that stages one part it is sent, sends back what it staged, and exits."""

    def __init__(self, context: multiprocessing.context.ForkServerContext) -> None:
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_stage_sent, args=(child,), daemon=True)
        self._process.start()
        child.close()

    def send(self, task: ShardTask) -> None:
        try:
            self._connection.send(task)
        except OSError:  # it died before the part was sent: a broken pipe
            raise self._died(task) from None

    def result(self, task: ShardTask) -> StagedShard:
        try:
            ok, value = self._connection.recv()
        except (EOFError, OSError):  # its end closed, or reset, as it died
            raise self._died(task) from None
        finally:
            self._connection.close()
        self._process.join()
        if not ok:
            raise value
        return value

    def _died(self, task: ShardTask) -> StagingProcessError:
        self._process.join()
        return StagingProcessError(
            f"{task.source}: the process staging part {task.index + 1} of {task.count} "
            f"ended without a result (exit code {self._process.exitcode})"
        )

    def stop(self) -> None:
        """End a process that was never sent a part."""
        self._connection.close()  # its recv() ends with EOFError, and it exits
        self._process.join()


def _stage_sent(connection: multiprocessing.connection.Connection) -> None:
    """In the part's process: stage the part sent, send back the result or the error."""
    try:
        task = connection.recv()
    except EOFError:
        return  # stopped before a part was sent
    try:
        staged = stage_shard(task)
        # This process staged only this part: its peak is the part's (a part staged on a
        # thread of the step, `stage_here`, has no peak of its own).
        staged.stats.process_peaks_mib = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
        outcome: tuple[bool, object] = (True, replace(staged, process=os.getpid()))
    except Exception as exc:  # sent back and raised in the step
        outcome = (False, exc)
    connection.send(outcome)
    connection.close()
    # The part's DuckDB file is closed and its result sent: end without the interpreter's
    # teardown, which with DuckDB and a run's memory took about a second.
    os._exit(0)


def combine(
    con: duckdb.DuckDBPyConnection,
    source: str,
    parts: Sequence[StagedShard],
    snapshot_dir: Path,
    first: StageStats | None = None,
) -> StageStats:
    """Append every part's staging tables to the warehouse's, then delete the part files.

    `first`: what staging the part the warehouse already holds did (`stage_here`); None: the
    warehouse holds none of the source, its staging tables are dropped first. A part's rows
    follow the rows before them with `_seq` moved past those (it stays unique and in one
    pass's order for runs of files or members); a staging-only column a part never saw is null
    in its rows. Parts of runs that share a key are not combined: the source is staged again
    in one pass (one pass keeps a repeated key's first record and counts or quarantines the
    others).
    """
    if first is None:
        drop_staging(con, source)
    (main,) = con.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
    aliases = [f"shard_{i}" for i in range(len(parts))]
    again = False
    try:
        for alias, part in zip(aliases, parts, strict=True):
            con.execute(f"ATTACH '{_quoted(part.path)}' AS {alias} (READ_ONLY)")
        in_order = any(part.shard.files is not None or part.shard.runs for part in parts)
        catalogs = [main, *aliases] if first is not None else aliases
        again = in_order and _shared_keys(con, source, catalogs)
        if not again:
            _append_all(con, main, aliases, _tables(con, source, aliases))
    finally:
        for alias in aliases:
            con.execute(f"DETACH DATABASE IF EXISTS {alias}")
        for part in parts:
            Path(part.path).unlink(missing_ok=True)
    if again:
        return stage_source(con, snapshot_dir, source)
    return total([*([first] if first else []), *(part.stats for part in parts)])


def _append_all(
    con: duckdb.DuckDBPyConnection, main: str, aliases: list[str], tables: list[str]
) -> None:
    """Every part's rows of each table after the warehouse's, `APPEND_TABLES` tables at once
    (the largest first), each on a cursor of its own and one DuckDB thread: a second thread
    inside one append ran a third of it for a fifth more CPU, two tables at once split it
    about in half (bench/README.md, h7s)."""
    sizes = {
        table: sum(
            table_rows(con, f'{a}.staging."{table}"') for a in aliases if _exists(con, a, table)
        )
        for table in tables
    }

    def append(table: str) -> None:
        cursor = con.cursor()
        try:
            for alias in aliases:
                if _exists(cursor, alias, table):
                    _append(cursor, main, alias, table)
        finally:
            cursor.close()

    with (
        duckdb_threads(con, 1),
        ThreadPoolExecutor(APPEND_TABLES, thread_name_prefix="combine") as pool,
    ):
        list(pool.map(append, sorted(tables, key=lambda t: -sizes[t])))


def _append(con: duckdb.DuckDBPyConnection, main: str, alias: str, table: str) -> None:
    """A part's rows of `table` after the warehouse's, `_seq` moved past them (the table is
    created from the part's when the warehouse has none; a column it lacks is added)."""
    name = f'{alias}.staging."{table}"'
    if not _exists(con, main, table):
        con.execute(f'CREATE TABLE staging."{table}" AS SELECT * FROM {name}')
        return
    have = set(_columns(con, main, table))
    for column, kind in _columns(con, alias, table).items():
        if column not in have:
            con.execute(f'ALTER TABLE staging."{table}" ADD COLUMN "{column}" {kind}')
    offset = table_rows(con, f'staging."{table}"')
    con.execute(
        f'INSERT INTO staging."{table}" BY NAME '
        f"SELECT * REPLACE (_seq + {offset} AS _seq) FROM {name}"
    )


def _shared_keys(con: duckdb.DuckDBPyConnection, source: str, aliases: list[str]) -> bool:
    """Whether two parts read a record of the same key: staged (the primary table's key) or
    quarantined with it. Keys are compared by their letters and digits alone, a coarser test
    than one pass's (which compares keys as read, the tables hold them stripped), so a key a
    pass would see twice is never missed."""
    unit = SOURCES[source]
    (column,) = TABLES_BY_NAME[unit.primary_table].primary_key
    selects = []
    for part, alias in enumerate(aliases):
        for table, key in ((unit.primary_table, column), ("quarantine", "record_key")):
            if _exists(con, alias, f"{source}__{table}"):
                selects.append(
                    f"SELECT {part} AS part, regexp_replace({key}, '[^A-Za-z0-9]', '', 'g') AS k "
                    f'FROM {alias}.staging."{source}__{table}" WHERE {key} IS NOT NULL'
                )
    if not selects:
        return False
    (shared,) = con.execute(
        f"SELECT count(*) FROM (SELECT k FROM ({' UNION ALL '.join(selects)}) "
        "GROUP BY k HAVING count(DISTINCT part) > 1)"
    ).fetchone()  # type: ignore[misc]
    return bool(shared)


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
        stats.process_peaks_mib += part.process_peaks_mib
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


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> dict[str, str]:
    """A staging table's columns and their types, in order."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = ? "
        "AND table_schema = 'staging' AND table_name = ? ORDER BY ordinal_position",
        [catalog, table],
    ).fetchall()
    return dict(rows)


def _quoted(path: str) -> str:
    return path.replace("'", "''")

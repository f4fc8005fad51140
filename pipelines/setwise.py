"""Set-wise staging: a JSON source's records flattened in DuckDB, a batch at a time.

A batch is a page file (or several small ones; DuckDB reads them itself) or up to
`BATCH_RECORDS` members of a bulk archive (their texts as one Arrow column). DuckDB parses each
record once, with one explicit structure of the fields staging reads (`from_json`); each
staging table is one SQL statement per batch over the unit's `SetwiseStaging` parts. Python
runs per batch, per distinct value, and per record only where a decision needs it (a key seen
before, a bad record's reason and raw text), never per staged row.

The semantics are record-by-record staging's (`pipelines.staging`): a file DuckDB does not read
as a page of objects is read by the unit's own reader, which raises the same
`SnapshotFormatError` (or reads it); every record read ends staged, quarantined with the reason
`parse` would give, counted as an exact duplicate or as superseded; a key seen again with other
content keeps the first; `_seq` follows record order, then row order within a record; the
staging tables get the columns and types of the record-by-record sink. A record's sha256
fingerprint is computed only where its key comes again or SNAPSHOT.json lists it off-topic.

DuckDB's JSON reader accepts a little beyond strict JSON that the unit's reader refuses
(trailing commas, NaN and Infinity, integers beyond 64 bits kept as digits): such a file is
staged here instead of stopping staging. The registry sends none of these.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import logging
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import bulkzip, snapshot
from pipelines.snapshot import member_record, off_topic_records, superseded_records
from pipelines.sources.base import BATCH_DB, SetwiseStaging, SourceUnit, SqlSide
from pipelines.sources.relevance import OFF_TOPIC_REASON
from pipelines.streams import read_ahead
from pipelines.warehouse import (
    StagingSink,
    duckdb_setting,
    duckdb_threads,
    first_line,
    in_kib,
    size_bytes,
    staging_name,
    staging_schema,
    table_rows,
)
from schemas import QUARANTINE

BATCH_RECORDS = 5000
"""Archive members (or records of a file the unit's reader reads) per batch, at most."""
BATCH_BYTES = 48 * 1024 * 1024
"""Archive members per batch while their texts add up to less than this: a batch's texts
and their parsed records are what staging holds, so this bounds its memory (bench/README.md)."""
ARCHIVE_HELD_BYTES = 2 * BATCH_BYTES
"""What reading an archive holds outside DuckDB's memory: a batch's texts as Arrow, and its
JSON documents while DuckDB parses them. DuckDB's `memory_limit` is lowered by it while a run
reads an archive, so an archive stages in the memory pages do (pages are read and parsed by
DuckDB, within its limit): 200 000 studies from the ZIP alone peaked at 902 MiB with 512MB,
851 with 416MB, at the same CPU time (bench/README.md, lead session 10)."""
ARCHIVE_LEAST_LIMIT = 384 * 2**20
"""The lowest `memory_limit` that lowering leaves: 20 000 studies from the ZIP staged at 384MB
in the CPU time they took at 512MB."""
PARSE_ROWS = 512
"""Records parsed at once from texts: DuckDB scans an Arrow table a record batch at a time (a
vector never spans two), and `from_json` holds a vector's parsed records, about 0.1 MiB each
for a real study; a vector of 2 048 pushed the batch's tables out to disk (bench/README.md,
lead session 9)."""
GROUP_BYTES = 100 * 1024 * 1024
"""Page files read in one batch while their sizes add up to no more than this."""
WHOLE_FILE_BYTES = 32 * 1024 * 1024
"""A larger file is streamed by the unit's reader in batches instead of read whole."""
FLUSH_ROWS = 122_880
"""One of DuckDB's row groups: a staging table's buffer is written a whole number of row
groups at a time (the rest kept for the next), which DuckDB writes straight into the file,
compressed once. A smaller insert, or the part of one beyond its last whole row group, goes
through the WAL and is compressed at a checkpoint, then again with the next rows appended to
its row group (bench/README.md)."""
THREADS = 1
"""DuckDB threads per statement while staging: a batch's tables are a row group or so each,
which DuckDB does not split between threads (bench/README.md)."""
STATEMENT_CURSORS = 2
"""Cursors running a batch's table statements side by side, each statement on one thread: one
pass uses both cores while holding one batch (bench/README.md, lead session 9)."""
_FIRST_KEY = re.compile(rb'\A[ \t\r\n]*\{[ \t\r\n]*"([^"\\]*)"')
_PARSED = "_sw_parsed"
_TEXTS = "_sw_texts"
_PROBLEMS = "_sw_problems"
_SKIP = "_sw_skip"
_SEEN = "_sw_seen"
_KEYS = "_sw_keys"
_T = TypeVar("_T")
LOG = logging.getLogger(__name__)


class Stats(Protocol):
    """The counts staging reports (`pipelines.staging.StageStats`)."""

    records_read: int
    staged: int
    quarantined: int
    duplicates: int
    superseded: int
    rows: dict[str, int]


@dataclass(frozen=True)
class Place:
    """Where a run stands among runs that stage one source into one database, one process
    after another (`pipelines.shards.stage_runs`): a later run appends to the staging tables
    and the seen keys the runs before it left there, so the runs decide and number every
    record as one pass would; only the last drops what no run filled."""

    first: bool = True
    last: bool = True


WHOLE_SOURCE = Place()
"""One run stages the whole source (or the part it is given)."""


@dataclass(slots=True)
class _Seen:
    """A key's record as staging keeps it in mind (`staged`: its rows are in the tables)."""

    rec: int
    """The record's number in the run (`_rec`)."""
    origin: str
    staged: bool
    path: Path
    index: int
    """The record's place in its file (an archive member is found by its name in `origin`)."""


@dataclass
class _Batch:
    """A batch's records in its `parsed` table (`_i`, `_origin`, `_announced`, `_index`, `doc`,
    `_key`, `_id`, `_drop`), their texts in `texts` (`_i`, `_text`: the Arrow column they were
    parsed from, not a copy) unless they are whole page files, which are read again where a
    record's text is needed."""

    count: int
    paths: dict[str, Path]
    """Where each `_origin` (a file, or an archive for `file/member` origins) is read."""
    parsed: str
    """Its table in `BATCH_DB` (one of two: the next batch is read while this one is staged)."""
    texts: pa.Table | None = None
    members: dict[int, tuple[str, str | None]] | None = None
    """(member, announced key) by `_i` of an archive batch; None for a file's records."""
    bad: list[tuple[int, str | None, str, str, str]] = field(default_factory=list)
    """Members that are not records: (`_i`, announced key, reason, origin, raw)."""

    def text(self, i: int) -> str:
        """The text of the record `_i` of a batch read from texts."""
        assert self.texts is not None
        found = self.texts.filter(pc.equal(self.texts["_i"], i))
        return str(found["_text"][0])


def stage(
    con: duckdb.DuckDBPyConnection,
    snapshot_dir: Path,
    unit: SourceUnit,
    shard: snapshot.Shard,
    stats: Stats,
    place: Place = WHOLE_SOURCE,
) -> None:
    """Stage `unit`'s snapshot files into its staging tables, updating `stats` (its `rows`:
    the rows this run added)."""
    spec = unit.setwise
    assert spec is not None
    setups = [part.setup for part in spec.parts if part.setup is not None]
    con.execute(f"ATTACH ':memory:' AS {BATCH_DB}")
    turns = Turns()
    staged = False
    try:
        lowered = _archive_limit(con, snapshot_dir, unit, shard)
        with (
            duckdb_setting(con, "memory_limit", lowered) if lowered else nullcontext(),
            duckdb_threads(con, THREADS),
            _Cursors(con, setups, STATEMENT_CURSORS, turns) as cursors,
            duckdb_setting(con, "search_path", cursors.search_path),
        ):
            staging = taking_turns(con, turns)
            for setup in setups:
                setup(staging)
            run = _Run(staging, snapshot_dir, unit, spec, shard, stats, cursors, place)
            reader = _Reader(cursors.open(), snapshot_dir, unit, run.writer.structure, shard)
            # Each batch is read (parsed on the reader's own cursor) while the one before is
            # staged: at most two batches are held.
            with closing(read_ahead(reader.batches(), "staging-read")) as batches:
                for batch in batches:
                    run.batch(batch)
            run.finish()
        staged = True
    finally:
        if place.last or not staged:  # a failed run ends the source's staging
            for name in (_SEEN, _KEYS):
                con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(f"DETACH DATABASE IF EXISTS {BATCH_DB}")


def _archive_limit(
    con: duckdb.DuckDBPyConnection, snapshot_dir: Path, unit: SourceUnit, shard: snapshot.Shard
) -> str | None:
    """DuckDB's `memory_limit` for a run that reads an archive: as set, less
    `ARCHIVE_HELD_BYTES`, but not below `ARCHIVE_LEAST_LIMIT`; None for a run that reads none,
    or when that is not lower."""
    bulk = unit.bulk
    files = snapshot.shard_files(snapshot_dir, unit.name, shard)
    if bulk is None or not any(path.suffix == bulk.suffix for path in files):
        return None
    (limit,) = cast(tuple[str], con.execute("SELECT current_setting('memory_limit')").fetchone())
    whole = size_bytes(limit)
    lowered = max(ARCHIVE_LEAST_LIMIT, whole - ARCHIVE_HELD_BYTES)
    return in_kib(lowered) if lowered < whole else None


def _search_path(con: duckdb.DuckDBPyConnection) -> str:
    """Unqualified names found in the database staged into, then in `BATCH_DB`."""
    (database,) = con.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
    quoted = database.replace('"', '""')
    return f'"{quoted}".main,{BATCH_DB}.main'


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first row of a query, its result read to the end: a SELECT's result left open
    keeps its connection's transaction open, and with it every version of the batch tables
    replaced since (a reader cursor waiting while a batch is staged held them all, and DuckDB
    spilled them; bench/README.md, lead session 9)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


class Turns:
    """Staging's statements run side by side (a batch's on the cursors, the next batch's read
    on a cursor of its own, the batch's decisions on the connection) under one DuckDB
    `memory_limit`: two large ones can need more than it while each fits alone (a 200 000-study
    build from pages failed so, once in three runs; bench/README.md, session 20). A statement
    that runs out of memory runs again alone, once every statement beside it has ended; out
    of memory alone, its error stands. A failed statement changed nothing (each runs in its
    own transaction), so running it again is safe. Not so one whose *commit* ran out of memory
    (a `TransactionException`): DuckDB 1.5.5 rolls that back, but a table appended to again
    afterwards holds wrong rows (a staging table once had copies of earlier rows in place of
    4 795 of its own; bench/README.md, Session 25), so its error ends staging."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._alone = False

    @contextmanager
    def beside(self) -> Iterator[None]:
        """A statement's turn beside any others (none runs alone meanwhile)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._alone)
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        """A statement's turn with no other running."""
        with self._changed:
            self._changed.wait_for(lambda: not self._alone and self._running == 0)
            self._alone = True
        try:
            yield
        finally:
            with self._changed:
                self._alone = False
                self._changed.notify_all()


class _TakingTurns:
    """A connection or cursor whose statements take their `Turns`; all else is its own."""

    def __init__(self, con: duckdb.DuckDBPyConnection, turns: Turns) -> None:
        self._con = con
        self._turns = turns

    def execute(self, query: str, parameters: object = None) -> duckdb.DuckDBPyConnection:
        return self._in_turn(lambda: self._con.execute(query, parameters))

    def register(self, view_name: str, python_object: object) -> duckdb.DuckDBPyConnection:
        """Registering an Arrow table creates a view, which needs DuckDB memory too."""
        return self._in_turn(lambda: self._con.register(view_name, python_object))

    def _in_turn(self, call: Callable[[], _T]) -> _T:
        try:
            with self._turns.beside():
                return call()
        except duckdb.OutOfMemoryException as error:
            LOG.warning(
                "a staging statement ran out of DuckDB memory beside others; running it again "
                "alone (%s)",
                first_line(error),
            )
        with self._turns.alone():
            return call()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def taking_turns(con: duckdb.DuckDBPyConnection, turns: Turns) -> duckdb.DuckDBPyConnection:
    """`con` with its statements taking `turns` (`Turns`), for the code that takes a connection."""
    return cast(duckdb.DuckDBPyConnection, _TakingTurns(con, turns))


class _Cursors:
    """Cursors of the staging connection, each set up as the connection is (the parts' macros,
    the search path), their statements taking `turns`: `count` of them run a batch's
    statements side by side, a thread each (DuckDB releases the GIL while a statement runs).
    All are opened by the connection's own thread, which DuckDB's connection needs."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        setups: list[Callable[[Any], None]],
        count: int,
        turns: Turns,
    ) -> None:
        self._con = con
        self._setups = setups
        self._turns = turns
        self.search_path = _search_path(con)
        self._opened: list[duckdb.DuckDBPyConnection] = []
        self._idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        for _ in range(count):
            self._idle.put(self.open())
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="staging-sql")

    def __enter__(self) -> _Cursors:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown()
        for cursor in self._opened:
            cursor.close()

    def open(self) -> duckdb.DuckDBPyConnection:
        """A cursor set up as the connection is, closed with the others."""
        raw = self._con.cursor()
        self._opened.append(raw)
        cursor = taking_turns(raw, self._turns)
        cursor.execute("SET search_path = ?", [self.search_path])
        for setup in self._setups:
            setup(cursor)
        return cursor

    def run(self, task: Callable[[duckdb.DuckDBPyConnection, _T], None], items: list[_T]) -> None:
        """`task(cursor, item)` for every item, side by side; the first error is raised."""
        for future in [self._pool.submit(self._call, task, item) for item in items]:
            future.result()

    def _call(self, task: Callable[[duckdb.DuckDBPyConnection, _T], None], item: _T) -> None:
        cursor = self._idle.get()
        try:
            task(cursor, item)
        finally:
            self._idle.put(cursor)


# --- reading: files and archive members into _sw_parsed ----------------------------------------


class _Reader:
    """A source's snapshot files as batches, in file and record order."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        snapshot_dir: Path,
        unit: SourceUnit,
        structure: str,
        shard: snapshot.Shard,
    ) -> None:
        assert unit.setwise is not None
        self.con = con
        self.snapshot_dir = snapshot_dir
        self.unit = unit
        self.spec: SetwiseStaging = unit.setwise
        self.structure = structure
        self.shard = shard
        self.slot = 0
        """Which of the two parsed tables the next batch is read into."""
        top = orjson.loads(structure)
        self.any_field = " OR ".join(f'doc."{k}" IS NOT NULL' for k in top)
        """True for a record DuckDB read as an object with at least one field staging reads
        (`_object`; a record without is read again by the unit's reader)."""

    @property
    def parsed(self) -> str:
        return f"{_PARSED}_{self.slot}"

    def batches(self) -> Iterator[_Batch]:
        """The batches, each in the other parsed table than the one before."""
        for batch in self._batches():
            yield batch
            self.slot ^= 1

    def _batches(self) -> Iterator[_Batch]:
        group: list[tuple[Path, str, bool]] = []
        size = 0
        for path in snapshot.shard_files(self.snapshot_dir, self.unit.name, self.shard):
            name = path.relative_to(self.snapshot_dir).as_posix()
            bulk = self.unit.bulk
            kind = None if bulk and path.suffix == bulk.suffix else self._page_kind(path)
            single = kind == "record"
            full = size + path.stat().st_size > GROUP_BYTES
            if group and (kind is None or full or single != group[0][2]):
                yield from self._pages(group)
                group, size = [], 0
            if kind is not None:
                group.append((path, name, single))
                size += path.stat().st_size
            elif bulk is not None and path.suffix == bulk.suffix:
                yield from self._members(path, name)
            else:
                yield from self._python(path, name)
        if group:
            yield from self._pages(group)

    def _page_kind(self, path: Path) -> str | None:
        """'page' or 'record' by the file's first key; None when the unit's reader must read
        it (too large to hold whole, or not an object whose first key says what it is)."""
        if path.stat().st_size > WHOLE_FILE_BYTES:
            return None
        with path.open("rb") as f:
            found = _FIRST_KEY.match(f.read(4096))
        first = found.group(1).decode() if found else None
        if first in self.spec.page_keys:
            return "page"
        return "record" if first in self.spec.record_keys else None

    def _pages(self, group: list[tuple[Path, str, bool]]) -> Iterator[_Batch]:
        """Page files (or one-record files: a group holds one kind) read by DuckDB in one
        statement; files it cannot read as pages of objects are read again one by one, then
        by the unit's reader."""
        if group[0][2]:
            records = f"[try(from_json(content, '{self.structure}'))]"
        else:
            page = orjson.dumps({self.spec.page_list: [orjson.loads(self.structure)]}).decode()
            records = f"coalesce(try(from_json(content, '{page}')).{self.spec.page_list}, [NULL])"
        paths = [str(path) for path, _, _ in group]
        try:
            self._parse(
                f"""SELECT list_extract(?::VARCHAR[], list_position(?::VARCHAR[], filename))
                    AS _origin, NULL::VARCHAR AS _announced,
                    generate_subscripts(l, 1) - 1 AS _index, unnest(l) AS doc
                FROM (SELECT filename, {records} AS l FROM read_text(?))""",
                [[name for _, name, _ in group], paths, paths],
            )
            # Left open (fetchone, not `_first`): the reader's transaction then holds the batch
            # tables replaced while this batch is staged, which DuckDB spills instead of freeing;
            # measured 0.3 s faster at 20 000 pages for 40 MiB more (bench/README.md, session 9).
            row = self.con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE NOT _object) FROM {self.parsed}"
            ).fetchone()
        except duckdb.OutOfMemoryException as error:  # even alone: smaller, then record by record
            LOG.warning(
                "%s parsed whole did not fit DuckDB's memory_limit; reading %s (%s)",
                ", ".join(name for _, name, _ in group),
                "a page at a time" if len(group) > 1 else "its records one by one",
                first_line(error),
            )
            row = None
        except duckdb.TransactionException:
            raise  # a commit that failed: not a page DuckDB cannot read (`Turns`)
        except duckdb.Error:
            row = None
        if row is not None and not row[1]:
            if self.shard.count > 1:
                self._keep_shard()
            yield _Batch(int(row[0]), {name: path for path, name, _ in group}, self.parsed)
        elif len(group) > 1:
            for one in group:
                yield from self._pages([one])
        else:
            yield from self._python(*group[0][:2])

    def _parse(self, records_sql: str, params: list[Any], numbered: bool = False) -> None:
        """`_sw_parsed` from a SELECT of `_origin`, `_announced`, `_index`, `doc` in record
        order (and `_i` when `numbered`), with each record's `_i` (its place in the batch),
        key, id and `_drop` flag."""
        spec = self.spec
        numbers = "" if numbered else "row_number() OVER () - 1 AS _i, "
        self.con.execute(
            f"""CREATE OR REPLACE TABLE {BATCH_DB}.{self.parsed} AS
            SELECT *, {spec.id_sql} AS _id, false AS _drop FROM (
                SELECT *, {spec.key_sql} AS _key,
                    coalesce(doc IS NOT NULL AND ({self.any_field}), false) AS _object
                FROM (SELECT {numbers}* FROM ({records_sql})))""",
            params,
        )

    def _python(self, path: Path, name: str) -> Iterator[_Batch]:
        """A file read by the unit's own reader (which raises SnapshotFormatError for one not
        in the format), its records handed to DuckDB as texts."""
        records = self.unit.iter_records(path)
        done = 0
        while chunk := list(itertools.islice(records, BATCH_RECORDS)):
            texts = _Texts()
            for record in chunk:
                texts.add(orjson.dumps(record))
            count = len(texts)
            column = texts.column()
            assert column is not None  # orjson writes UTF-8
            del chunk, texts  # the batch holds its texts alone (`_Run.batch` lets them go)
            batch = _Batch(count, {name: path}, self.parsed)
            batch.texts = self._load(column, [name] * count, [None] * count, first_index=done)
            del column
            done += count
            if self.shard.count > 1:
                self._keep_shard()
            yield batch

    def _members(self, path: Path, name: str) -> Iterator[_Batch]:
        """An archive's members in batches of up to `BATCH_RECORDS` members or `BATCH_BYTES`
        of text: texts to parse, and members that are not records. Each member's bytes are
        copied into the batch's one text buffer as it is read, then let go."""
        bulk = self.unit.bulk
        assert bulk is not None
        members = snapshot.archive_members(path, bulk, self.shard)
        while True:
            found: dict[int, tuple[str, str | None]] = {}
            batch = _Batch(0, {name: path}, self.parsed, members=found)
            texts = _Texts()
            origins: list[str] = []
            keys: list[str | None] = []
            index: list[int] = []
            for i, (member, key, body, problem) in enumerate(members):
                origin = f"{name}/{member}"
                if problem is None and not member.endswith(bulk.member_suffix):
                    problem = f"archive member {member} is not a {bulk.member_suffix} record"
                if problem is not None or body is None:
                    raw = "" if body is None else body.decode("utf-8", errors="replace")
                    batch.bad.append((i, key, problem or "unreadable member", origin, raw))
                else:
                    texts.add(body)
                    origins.append(origin)
                    keys.append(key)
                    index.append(i)
                    found[i] = (member, key)
                del body
                if i + 1 >= BATCH_RECORDS or texts.size >= BATCH_BYTES:
                    break
            batch.count = len(found) + len(batch.bad)
            if not batch.count:
                return
            column = texts.column()
            if column is None:
                column, kept = self._undecodable(batch, texts, origins)
                origins = [origins[n] for n in kept]
                keys = [keys[n] for n in kept]
                index = [index[n] for n in kept]
            del texts
            batch.texts = self._load(column, origins, keys, index)
            del column  # the batch holds its texts alone (`_Run.batch` lets them go)
            self._check_members(batch)
            yield batch

    def _undecodable(
        self, batch: _Batch, texts: _Texts, origins: list[str]
    ) -> tuple[pa.StringArray, list[int]]:
        """A batch's texts without the members that are not UTF-8 (each quarantined with
        the reason the unit's reader gives), and the rows kept."""
        assert batch.members is not None
        kept = _Texts()
        rows = []
        positions = list(batch.members)
        for row, body in enumerate(texts.bodies()):
            i = positions[row]
            try:
                body.decode()
            except UnicodeDecodeError:
                member, key = batch.members.pop(i)
                problem = member_record(self.unit, member, key, body)[1]
                raw = body.decode("utf-8", errors="replace")
                batch.bad.append((i, key, problem or "unreadable member", origins[row], raw))
                continue
            kept.add(body)
            rows.append(row)
        column = kept.column()
        assert column is not None
        batch.bad.sort()
        return column, rows

    def _load(
        self,
        texts: pa.StringArray,
        origins: list[str],
        announced: list[str | None],
        positions: list[int] | None = None,
        first_index: int = 0,
    ) -> pa.Table:
        """`_sw_texts` and the parsed table from record texts: `_i` from `positions` (by
        default 0, 1, ...), `_index` the record's place in its file (from `first_index`).
        `_sw_texts` is the Arrow table itself (returned), registered until the next batch's:
        the texts are held once, in record batches of `PARSE_ROWS` (slices, not copies)."""
        positions = positions if positions is not None else list(range(len(texts)))
        table = pa.table(
            {
                "_i": pa.array(positions, pa.int64()),
                "_origin": pa.array(origins, pa.string()),
                "_announced": pa.array(announced, pa.string()),
                "_index": pa.array([first_index + p for p in positions], pa.int64()),
                "_text": texts,
            }
        )
        table = pa.Table.from_batches(table.to_batches(max_chunksize=PARSE_ROWS))
        self.con.register(_TEXTS, table)
        self._parse(
            f"""SELECT _i, _origin, _announced, _index,
                try(from_json(_text, '{self.structure}')) AS doc
            FROM {_TEXTS}""",
            [],
            numbered=True,
        )
        return table

    def _keep_shard(self) -> None:
        """Only this shard's records of a file (an archive's members are chosen by name)."""
        rows = self.con.execute(f"SELECT _i, _key FROM {self.parsed}").fetchall()
        other = [i for i, key in rows if not self.shard.holds(key)]
        if other:
            self.con.execute(
                f"DELETE FROM {self.parsed} WHERE _i IN (SELECT unnest(?::BIGINT[]))", [other]
            )

    def _check_members(self, batch: _Batch) -> None:
        """Members DuckDB did not read as a record, or whose record's key is not the one
        their name announces: the unit's own reader says what is wrong (or that nothing is)."""
        assert batch.members is not None
        odd = self.con.execute(
            f"SELECT _i FROM {self.parsed} WHERE NOT _object "
            "OR (_key IS NOT NULL AND _key IS DISTINCT FROM _announced) ORDER BY _i"
        ).fetchall()
        dropped = []
        for (i,) in odd:
            member, key = batch.members[i]
            text = batch.text(i)
            problem = member_record(self.unit, member, key, text.encode())[1]
            if problem is not None:
                batch.bad.append((i, key, problem, f"{next(iter(batch.paths))}/{member}", text))
                dropped.append(i)
        if dropped:
            self.con.execute(
                f"DELETE FROM {self.parsed} WHERE _i IN (SELECT unnest(?::BIGINT[]))", [dropped]
            )
        batch.bad.sort()


class _Texts:
    """Record texts appended one at a time into one buffer, read by DuckDB as one Arrow
    column over that buffer: a batch's texts are held once (no list of bytes objects, no
    Python strings, no copy by pyarrow)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array.array("i", [0])  # Arrow's int32 offsets: a batch stays under 2 GiB

    def __len__(self) -> int:
        return len(self._ends) - 1

    @property
    def size(self) -> int:
        """Bytes held."""
        return len(self._data)

    def add(self, text: bytes) -> None:
        self._data += text
        self._ends.append(len(self._data))

    def bodies(self) -> Iterator[bytes]:
        """Each text's bytes, in order."""
        view = memoryview(self._data)
        for start, end in itertools.pairwise(self._ends):
            yield bytes(view[start:end])

    def column(self) -> pa.StringArray | None:
        """The texts as an Arrow string column over the buffer (no copy); None when one of
        them is not UTF-8."""
        column = pa.Array.from_buffers(
            pa.string(), len(self), [None, pa.py_buffer(self._ends), pa.py_buffer(self._data)]
        )
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            return None
        return column


# --- one batch: decisions and rows -------------------------------------------------------------


class _Run:
    """One staging run: keys seen so far, the rows written per table, the counts."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        snapshot_dir: Path,
        unit: SourceUnit,
        spec: SetwiseStaging,
        shard: snapshot.Shard,
        stats: Stats,
        cursors: _Cursors,
        place: Place,
    ) -> None:
        self.con = con
        self.unit = unit
        self.spec = spec
        self.stats = stats
        self.place = place
        self.superseded = superseded_records(snapshot_dir)
        self.off_topic = off_topic_records(snapshot_dir).get(unit.name, {})
        self.seen = _SeenKeys(con, snapshot_dir, unit.name, place.first)
        self.fingerprints: dict[int, str] = {}
        """sha256 by `_rec` of the records whose key came again or is listed off-topic."""
        self.next_rec = self.seen.next_rec()
        self.quarantine = StagingSink(
            con, unit.name, continued=() if place.first else (QUARANTINE.name,)
        )
        self.cursors = cursors
        self.writer = _Writer(con, unit.name, spec, cursors, place.first)
        self.records = _Records(con, unit)

    def batch(self, batch: _Batch) -> None:
        """Decide each record's fate, then write the staged records' rows."""
        con, spec = self.con, self.spec
        offset = self.next_rec
        self.next_rec += batch.count
        read = _first(con, f"SELECT count(*) FROM {batch.parsed}")
        self.stats.records_read += (read[0] if read else 0) + len(batch.bad)
        if any(name in self.superseded for name in batch.paths):
            self._supersede(batch)
        con.execute(
            f"CREATE OR REPLACE VIEW {BATCH_DB}.{spec.docs} AS "
            f"SELECT {offset} + _i AS _rec, _origin AS _source_file, _id AS nct, doc, _i "
            f"FROM {BATCH_DB}.{batch.parsed} WHERE _id IS NOT NULL AND NOT _drop"
        )
        preparations = [part.prepare for part in spec.parts if part.prepare is not None]
        self.cursors.run(lambda cursor, prepare: prepare(cursor), preparations)
        problems = " UNION ALL ".join(
            f"({part.problems_sql()})" for part in spec.parts if self._may_break(part)
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {BATCH_DB}.{_PROBLEMS} AS "
            "SELECT _rec, arg_min(reason, list_prepend(_rank::INTEGER, _pos)) AS reason "
            f"FROM ({problems}) GROUP BY _rec"
        )
        self.records.batch(batch, offset)
        skip, quarantined = self._decide(batch, offset)
        self._write_quarantine(batch, offset, quarantined)
        batch.texts = None  # read by no statement: the next batch's are held meanwhile
        con.execute(
            f"CREATE OR REPLACE TABLE {BATCH_DB}.{_SKIP} AS SELECT unnest(?::BIGINT[]) AS _rec",
            [sorted(skip)],
        )
        self.writer.write()

    def _may_break(self, part: SqlSide) -> bool:
        """Whether a record of this batch may break one of the part's rules: its screen (if
        it has one) kept any."""
        if part.screen is None:
            return True
        found = _first(self.con, f"SELECT EXISTS (FROM {part.screen})")
        return bool(found and found[0])

    def _supersede(self, batch: _Batch) -> None:
        """Leave out (and count) records the snapshot lists as superseded in their file."""
        pairs = [(name, key) for name in batch.paths for key in self.superseded.get(name, ())]
        file = "_origin" if batch.members is None else "?"
        params: list[Any] = [] if batch.members is None else [next(iter(batch.paths))]
        gone = self.con.execute(
            f"""UPDATE {batch.parsed} SET _drop = true
            FROM (SELECT unnest(?::VARCHAR[]) AS f, unnest(?::VARCHAR[]) AS k) s
            WHERE NOT _drop AND {file} = s.f AND _key = s.k""",
            [[n for n, _ in pairs], [k for _, k in pairs], *params],
        ).fetchone()
        self.stats.superseded += gone[0] if gone else 0

    def _decide(
        self, batch: _Batch, offset: int
    ) -> tuple[set[int], dict[int, tuple[str | None, str]]]:
        """Which records the tables leave out (duplicates and quarantined ones) and why each
        quarantined one is: record-by-record staging's rules, run in Python only for keys that
        come again or are listed off-topic."""
        con = self.con
        rows = con.execute(
            f"SELECT {offset} + _i, _key, _origin, _index FROM {batch.parsed} "
            "WHERE NOT _drop ORDER BY _i"
        ).to_arrow_table()
        recs, keys, origins, indexes = (column.to_pylist() for column in rows.columns)
        reasons: dict[int, str] = dict(
            con.execute(f"SELECT _rec, reason FROM {_PROBLEMS}").fetchall()
        )
        for i, key in con.execute(
            f"SELECT _i, _key FROM {batch.parsed} WHERE _id IS NULL AND NOT _drop"
        ).fetchall():
            reasons[offset + i] = self.spec.id_problem(key) or f"record key {key!r} is not an id"
        keyed = [k for k in keys if k is not None]
        present = set(keyed)
        special = self.seen.among(present) | (present & self.off_topic.keys())
        if len(present) < len(keyed):
            special |= {k for k, n in Counter(keyed).items() if n > 1}
        self.seen.batch(batch, offset)
        skip: set[int] = set()
        quarantined: dict[int, tuple[str | None, str]] = {}
        for rec, key, origin, index in zip(recs, keys, origins, indexes, strict=True):
            reason = reasons.get(rec)
            if key is not None and key in special:
                entry = _Seen(rec, origin, False, _path(batch.paths, origin), index)
                reason, duplicate = self._again(key, entry, reason)
                if duplicate:
                    self.stats.duplicates += 1
                    skip.add(rec)
                    continue
            elif key is not None:
                self.seen.add(key, rec, staged=reason is None)
            if reason is None:
                self.stats.staged += 1
            else:
                quarantined[rec] = (key, reason)
                skip.add(rec)
        self.seen.commit()
        return skip, quarantined

    def _again(self, key: str, entry: _Seen, reason: str | None) -> tuple[str | None, bool]:
        """A record of this batch whose key came before or is listed off-topic: (its reason,
        is a duplicate)."""
        previous = self.seen.get(key)
        if previous is not None and self._fingerprint(previous) == self._fingerprint(entry, True):
            return None, True
        if reason is None and self.off_topic.get(key) == self._fingerprint(entry, True):
            reason = OFF_TOPIC_REASON
        if reason is None and previous is not None and previous.staged:
            reason = (
                f"record {key} appears again with different content; "
                f"kept the first, from {previous.origin}"
            )
        if previous is None or not previous.staged:
            self.seen.add(key, entry.rec, staged=reason is None)
        return reason, False

    def _fingerprint(self, entry: _Seen, current: bool = False) -> str:
        """sha256 of the record as the unit's `raw` writes it, as record-by-record staging
        takes it (the `current` record from this batch's texts, else read again from its file)."""
        found = self.fingerprints.get(entry.rec)
        if found is None:
            record = self.records.get(entry.rec) if current else self.records.again(entry)
            found = hashlib.sha256(self.unit.raw(record).encode()).hexdigest()
            self.fingerprints[entry.rec] = found
        return found

    def _write_quarantine(
        self, batch: _Batch, offset: int, quarantined: dict[int, tuple[str | None, str]]
    ) -> None:
        """Quarantine rows in record order: members that are not records, records with a reason."""
        origins = {}
        if quarantined:
            origins = dict(
                self.con.execute(
                    f"SELECT {offset} + _i, _origin FROM {batch.parsed} "
                    "WHERE _i IN (SELECT unnest(?::BIGINT[]))",
                    [[rec - offset for rec in quarantined]],
                ).fetchall()
            )
        rows = [(offset + i, key, reason, raw, origin) for i, key, reason, origin, raw in batch.bad]
        rows += [
            (rec, key, *self._reason_and_raw(batch, offset, rec, reason), origins[rec])
            for rec, (key, reason) in quarantined.items()
        ]
        for _, key, reason, raw, origin in sorted(rows, key=lambda r: r[0]):
            self.stats.quarantined += 1
            self.quarantine.add(
                "quarantine",
                {
                    "table_name": self.unit.primary_table,
                    "source": self.unit.name,
                    "record_key": key,
                    "reason": reason,
                    "source_file": origin,
                    "raw": raw,
                },
                origin,
            )

    def _reason_and_raw(self, batch: _Batch, offset: int, rec: int, reason: str) -> tuple[str, str]:
        """A quarantined record's reason and raw text. An archive member that DuckDB read
        but the unit's reader refuses (NaN, a trailing comma) gets that reader's reason and
        its own text, as record-by-record staging gives it."""
        if batch.members is None:
            return reason, self.unit.raw(self.records.get(rec))
        text = self.records.text(rec)
        member, announced = batch.members[rec - offset]
        record, problem = member_record(self.unit, member, announced, text.encode())
        return (problem, text) if problem is not None else (reason, self.unit.raw(record))

    def finish(self) -> None:
        self.quarantine.close()
        self.writer.finish(self.place.last)
        self.stats.rows = {t: n for t, n in sorted(self.writer.added().items()) if n}


def _path(paths: dict[str, Path], origin: str) -> Path:
    """The file (or archive) a record was read from, by the names of the files read."""
    if origin in paths:
        return paths[origin]
    return next(path for name, path in paths.items() if origin.startswith(f"{name}/"))


class _SeenKeys:
    """The keys staging has kept a record of, each with its record's `_rec` and whether it was
    staged, and where each keyed record was read (`_origin`, `_index`): tables of the database
    staged into, on disk once checkpointed, so staging's memory does not grow with the records
    (a Python dict of the keys took about 140 bytes a key, 75 MB at 560 000; bench/README.md,
    lead session 9). A batch's keys are matched against them in one statement; the batch's own
    decisions are kept in Python until it is decided (`commit`)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, snapshot_dir: Path, source: str, fresh: bool
    ) -> None:
        """`fresh`: new tables; else the ones the runs before this one left (`Place`)."""
        self._con = con
        self._batch: dict[str, int] = {}
        """Key -> its record's `_rec` << 1 | staged, decided in this batch."""
        self._paths = {
            path.relative_to(snapshot_dir).as_posix(): path
            for path in snapshot.source_files(snapshot_dir, source)
        }
        """Every file of the source by its name: a key may come again from an earlier run's."""
        if fresh:
            con.execute(
                f"CREATE OR REPLACE TABLE {_SEEN} (_rec BIGINT, _origin VARCHAR, _index BIGINT)"
            )
            con.execute(f"CREATE OR REPLACE TABLE {_KEYS} (_key VARCHAR, _packed BIGINT)")

    def next_rec(self) -> int:
        """The first record number free: past every record a run before this one kept."""
        row = _first(self._con, f"SELECT coalesce(max(_rec) + 1, 0) FROM {_SEEN}")
        return int(row[0]) if row else 0

    def among(self, keys: set[str]) -> set[str]:
        """The keys of `keys` with a record kept (asked before a batch is decided)."""
        rows = self._con.execute(
            f"SELECT _key FROM {_KEYS} WHERE _key IN (SELECT unnest(?::VARCHAR[]))", [list(keys)]
        ).fetchall()
        return {key for (key,) in rows}

    def batch(self, batch: _Batch, offset: int) -> None:
        """Note where this batch's keyed records were read, before any of them is decided."""
        self._con.execute(
            f"INSERT INTO {_SEEN} SELECT {offset} + _i, _origin, _index FROM {batch.parsed} "
            "WHERE _key IS NOT NULL AND NOT _drop"
        )

    def add(self, key: str, rec: int, staged: bool) -> None:
        """Keep `rec` as the record of `key` (replacing any other)."""
        self._batch[key] = rec << 1 | staged

    def get(self, key: str) -> _Seen | None:
        packed = self._batch.get(key)
        if packed is None:
            row = _first(self._con, f"SELECT _packed FROM {_KEYS} WHERE _key = ?", [key])
            if row is None:
                return None
            packed = int(row[0])
        rec = packed >> 1
        row = _first(self._con, f"SELECT _origin, _index FROM {_SEEN} WHERE _rec = ?", [rec])
        assert row is not None
        origin, index = row
        return _Seen(rec, origin, bool(packed & 1), _path(self._paths, origin), index)

    def commit(self) -> None:
        """The batch's decisions into the keys' table (a key decided again replaces its row)."""
        if not self._batch:
            return
        keys, packed = list(self._batch), list(self._batch.values())
        self._con.execute(
            f"DELETE FROM {_KEYS} WHERE _key IN (SELECT unnest(?::VARCHAR[]))", [keys]
        )
        self._con.execute(
            f"INSERT INTO {_KEYS} SELECT unnest(?::VARCHAR[]), unnest(?::BIGINT[])", [keys, packed]
        )
        self._batch.clear()


class _Records:
    """Records as Python objects, for the few decisions that need one: from this batch's texts,
    or read again by the unit's reader from their file (the last file read is kept)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, unit: SourceUnit) -> None:
        self._con = con
        self._unit = unit
        self._batch: _Batch | None = None
        self._offset = 0
        self._file: tuple[Path, list[Any]] | None = None

    def batch(self, batch: _Batch, offset: int) -> None:
        self._batch, self._offset = batch, offset

    def get(self, rec: int) -> Any:
        """A record of the current batch."""
        assert self._batch is not None
        i = rec - self._offset
        if self._batch.texts is not None:
            return orjson.loads(self.text(rec))
        found = _first(
            self._con, f"SELECT _origin, _index FROM {self._batch.parsed} WHERE _i = ?", [i]
        )
        assert found is not None
        return self._in_file(self._batch.paths[found[0]], found[1])

    def text(self, rec: int) -> str:
        """The text of a record of the current batch read as text (an archive member)."""
        assert self._batch is not None
        return self._batch.text(rec - self._offset)

    def again(self, entry: _Seen) -> Any:
        """A record of an earlier batch."""
        bulk = self._unit.bulk
        if bulk is not None and entry.path.suffix == bulk.suffix:
            member = entry.origin.split(f"{bulk.suffix}/", 1)[1]
            with bulkzip.Archive(entry.path) as archive:
                found = next(m for m in archive.members() if m.name == member)
                return bulk.read_member(archive.read(found))
        return self._in_file(entry.path, entry.index)

    def _in_file(self, path: Path, index: int) -> Any:
        if self._file is None or self._file[0] != path:
            self._file = (path, list(self._unit.iter_records(path)))
        return self._file[1][index]


# --- writing the tables ------------------------------------------------------------------------


class _Writer:
    """The staging tables of one run: created with the record-by-record sink's columns and
    types, a batch's rows appended in `_seq` order (record, part, row within the record).

    A batch's tables are written side by side, a table at a time per cursor (`_Cursors`), the
    largest of the last batch first. A batch's rows go to an in-memory buffer per table (a
    table in `BATCH_DB`: no WAL, no compression), moved into the staging table a whole number
    of row groups (`FLUSH_ROWS`) at a time, the rest at the end. An insert per batch was logged,
    compressed at a checkpoint, and the table's last row group compressed again at every
    later checkpoint: with small batches (an archive's) that was a quarter of staging's CPU
    time; a row group's worth moved with a part of the next had that part compressed twice
    (bench/README.md). A buffer holds less than a row group between batches, whatever the
    number of records."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        spec: SetwiseStaging,
        cursors: _Cursors,
        fresh: bool = True,
    ) -> None:
        """`fresh`: new staging tables; else the rows of the runs before this one follow."""
        self.con = con
        self.cursors = cursors
        self.source = source
        self.spec = spec
        merged = merge_structures([part.structure for part in spec.parts])
        self.structure = orjson.dumps(merged).decode()
        self.tables: dict[str, list[int]] = {}
        for n, part in enumerate(spec.parts):
            for table in part.tables_sql():
                self.tables.setdefault(table, []).append(n)
        self.counts: dict[str, int] = {t: 0 for t in self.tables}
        self.buffered: dict[str, int] = {}
        """Rows of each table in its buffer, not yet in the staging table."""
        self.last: dict[str, int] = {t: 0 for t in self.tables}
        """Rows of each table in the last batch (the order tables are written in)."""
        for table in self.tables:
            if fresh:
                self._create(table)
            else:
                self.counts[table] = table_rows(con, staging_name(source, table))
                self._empty_buffer(con, table)
        self.before = dict(self.counts)
        """Rows the runs before this one wrote."""

    def _create(self, table: str) -> None:
        """An empty staging table: the model's columns and types (`staging_schema`), then the
        staging-only columns, then lineage."""
        schema = staging_schema(table, [])
        extras = self.spec.extra_columns.get(table, {})
        columns = [f'"{n}"' for n in schema.names[:-3]]
        columns += [f'NULL::{extras[n]} AS "{n}"' for n in sorted(extras)]
        columns += [f'"{n}"' for n in schema.names[-3:]]
        self.con.register("_sw_empty", pa.Table.from_batches([], schema=schema))
        try:
            self.con.execute(
                f"CREATE OR REPLACE TABLE {staging_name(self.source, table)} AS "
                f"SELECT {', '.join(columns)} FROM _sw_empty"
            )
        finally:
            self.con.unregister("_sw_empty")
        self._empty_buffer(self.con, table)

    def _empty_buffer(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """A new, empty buffer (dropped and made again rather than emptied by DELETE, which
        keeps the deleted rows' memory)."""
        con.execute(
            f"CREATE OR REPLACE TABLE {BATCH_DB}.{_buffer(table)} AS "
            f"SELECT * FROM {staging_name(self.source, table)} LIMIT 0"
        )
        self.buffered[table] = 0

    def write(self) -> None:
        """Append this batch's rows of every table, leaving out the records in `_sw_skip`."""
        self.cursors.run(self._write, sorted(self.tables, key=lambda t: -self.last[t]))

    def _write(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """Append this batch's rows of one table."""
        selects = [
            f"SELECT *, {n} AS _part FROM ({self.spec.parts[n].tables_sql()[table]})"
            for n in self.tables[table]
        ]
        union = " UNION ALL BY NAME ".join(selects)
        # One sort: `row_number() OVER ()` numbers the rows in the order the sorted
        # subquery gives them (DuckDB keeps row order through a projection and an empty
        # OVER), where a window ordered by the key would sort a second time.
        inserted = con.execute(
            f"""INSERT INTO {BATCH_DB}.{_buffer(table)} BY NAME
            SELECT * EXCLUDE (_rec, _pos, _part),
                {self.counts[table]} + row_number() OVER () - 1 AS _seq
            FROM (
                SELECT t.*, '{self.source}' AS _source, d._source_file
                FROM ({union}) t
                JOIN (SELECT _rec, _source_file FROM {self.spec.docs}
                      WHERE _rec NOT IN (SELECT _rec FROM {_SKIP})) d USING (_rec)
                ORDER BY t._rec, t._part, t._pos)"""
        ).fetchone()
        rows = inserted[0] if inserted else 0
        self.last[table] = rows
        self.counts[table] += rows
        self.buffered[table] += rows
        if self.buffered[table] >= FLUSH_ROWS:
            self._flush(con, table)

    def _flush(self, con: duckdb.DuckDBPyConnection, table: str, every: bool = False) -> None:
        """Move a table's buffered rows into its staging table (in `_seq` order): the whole
        row groups they fill, the rest kept buffered (or `every` row, at the end), so each
        row group is written once, compressed, while the table grows."""
        buffered = self.buffered[table]
        written = buffered if every else buffered - buffered % FLUSH_ROWS
        if not written:
            return
        buffer = f"{BATCH_DB}.{_buffer(table)}"
        first_kept = self.counts[table] - buffered + written
        con.execute(
            f"INSERT INTO {staging_name(self.source, table)} "
            f"SELECT * FROM {buffer} WHERE _seq < {first_kept}"
        )
        if written == buffered:
            self._empty_buffer(con, table)
            return
        # The rest in a new buffer: a DELETE would keep the written rows' memory.
        con.execute(
            f"CREATE OR REPLACE TABLE {buffer} AS SELECT * FROM {buffer} WHERE _seq >= {first_kept}"
        )
        self.buffered[table] = buffered - written

    def added(self) -> dict[str, int]:
        """Rows this run wrote, per table."""
        return {table: count - self.before[table] for table, count in self.counts.items()}

    def finish(self, last: bool = True) -> None:
        """Flush every buffer; then, after the `last` run, drop tables no record gave a row,
        and staging-only columns null in every row."""
        self.cursors.run(lambda con, table: self._flush(con, table, every=True), list(self.tables))
        if not last:
            return
        for table, count in self.counts.items():
            name = staging_name(self.source, table)
            if not count:
                self.con.execute(f"DROP TABLE {name}")
                continue
            for column in sorted(self.spec.extra_columns.get(table, {})):
                row = _first(self.con, f'SELECT count("{column}") FROM {name}')
                if row and not row[0]:
                    self.con.execute(f'ALTER TABLE {name} DROP COLUMN "{column}"')


def _buffer(table: str) -> str:
    """The table (in `BATCH_DB`) holding a staging table's rows not yet written."""
    return f"_sw_rows_{table}"


def merge_structures(structures: list[dict[str, Any]]) -> dict[str, Any]:
    """One `from_json` structure reading every field any of `structures` reads.

    Raises:
        ValueError: two structures give one field different types.
    """
    merged: dict[str, Any] = {}
    for structure in structures:
        merged = _merge(merged, structure, "")
    return merged


def _merge(a: Any, b: Any, path: str) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merge(a[key], value, f"{path}.{key}") if key in a else value
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 1:
        return [_merge(a[0], b[0], f"{path}[]")]
    if a == b:
        return a
    raise ValueError(f"structure field {path or '.'}: {a!r} and {b!r} disagree")

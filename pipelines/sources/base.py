"""What every source module shares: the source unit, parsed rows and the two kinds of bad input."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import orjson

from pipelines.http import RateLimit, require_json
from pipelines.sources.serving import Emulation

if TYPE_CHECKING:
    from pipelines.sources.relevance import Screen

TableRows = dict[str, list[dict[str, Any]]]
"""Rows parsed from one record, by table name. Row keys are the table's model columns
(a missing key means null, or [] for a list column); dates are `datetime.date`."""


class SnapshotFormatError(ValueError):
    """A whole snapshot file is not in its source's format: the build stops, naming the file."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[SnapshotFormatError], tuple[Path, str]]:
        """Pickled as its path and problem: a part staged in another process raises it."""
        return (type(self), (self.path, self.problem))


class RecordError(ValueError):
    """One record inside a good file cannot be parsed: it goes to quarantine with this reason."""


def load_json_file(path: Path) -> Any:
    """A whole snapshot file parsed as JSON; malformed JSON is an error naming the file."""
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise SnapshotFormatError(path, f"not JSON: {exc}") from exc


def raw_json(record: Any) -> str:
    """A JSON record as sorted-key JSON text: its fingerprint and its quarantine `raw`."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str).decode()


def count_items(body: Any, *keys: str) -> int:
    """Length of the list at `keys` inside a JSON body; 0 when it is not there."""
    node = body
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return len(node) if isinstance(node, list) else 0


def slug(query: str) -> str:
    """File-name form of a query: `Mitragyna speciosa` -> `mitragyna-speciosa`."""
    return re.sub(r"[^a-z0-9]+", "-", query.casefold()).strip("-") or "query"


def query_prefix(query: str) -> str:
    """Prefix of a query's recorded pages: two queries page through the same file names."""
    return f"{slug(query)}__"


# --- live: what a refresh needs from a source ------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Contact e-mail and API keys; repr hides them so they never land in a log or traceback."""

    email: str | None = field(default=None, repr=False)
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Source name -> its API key (a source whose unit names `LiveSource.api_key_env`)."""

    def key(self, source: str) -> str | None:
        """`source`'s API key; None when none is given."""
        return self.api_keys.get(source) or None

    def secrets(self) -> list[str]:
        """The values that must never be written anywhere."""
        return [s for s in (self.email, *self.api_keys.values()) if s]


class PageClient(Protocol):
    """The client a source's pager talks to: gets, each optionally recorded under a name."""

    base_url: str

    def get_bytes(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> bytes: ...

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any: ...


class ClientFactory(Protocol):
    """Makes a recording client: page names get `prefix`, requests get `fixed` (by path)."""

    def __call__(
        self, prefix: str = "", fixed: Mapping[str, Mapping[str, Any]] | None = None
    ) -> PageClient: ...


class Pacer(Protocol):
    """A source's own pacing, told of every response (e.g. PubChem's throttling header)."""

    def on_response(self, response: httpx.Response) -> None: ...


def _no_warning(message: str) -> None:
    return None


@dataclass(frozen=True)
class LiveRun:
    """One source's share of a refresh: what to ask, how to page, how to report progress."""

    client: ClientFactory
    work: Sequence[Any]
    """Topic queries, or compound ids for a source that is asked by id."""
    page_size: int | None
    """Records per page or batch; None keeps the source's own."""
    advance: Callable[[int], None]
    """Called after each query, batch or page; raises to stop the source between them."""
    pacer: Any = None
    """What `LiveSource.pacer` made for this run, if anything."""
    warn: Callable[[str], None] = _no_warning
    """Reports what the refresh should flag without failing (search_strategy.json `warnings`
    and stderr), e.g. fewer records recorded than the source announced."""
    screen: Screen | None = None
    """The relevance rule and its counts, for a source whose search needs one (Crossref,
    OpenAlex); None: every hit is kept."""


def count_mismatch(query: str, announced: Any, received: int, field_name: str) -> str | None:
    """The completeness warning of one query: the hit count the source announced (`field_name`,
    e.g. ClinicalTrials.gov `totalCount`, Europe PMC `hitCount`, Crossref `total-results`)
    against the records recorded; None when they agree or nothing usable was announced."""
    if not isinstance(announced, int) or isinstance(announced, bool) or announced == received:
        return None
    return f"query {query!r}: {field_name} announced {announced}, {received} recorded"


class RestartQuery(Exception):
    """A resumed query reached the end of the pages an earlier run recorded: going on would
    follow that run's cursor, which the server has let expire. The client has dropped those
    pages and starts the query again from its first page (see `LiveSource.state_expires`)."""


def dig_value(body: Any, keys: Sequence[str]) -> Any:
    """The value at `keys` inside a JSON body; None when a step is missing."""
    node = body
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def paged_fetch(
    pages: Callable[[Any, str, int], Iterable[Any]],
    items: tuple[str, ...],
    page_size: int,
    total: tuple[str, ...] | None = None,
) -> Callable[[LiveRun], dict[str, int]]:
    """The fetch of a source searched page by page as JSON: each query through its own
    prefixed client, hits counted at `items` of every page; a query the client restarts
    (`RestartQuery`: a resumed run must not follow an expired cursor) is walked again.

    With `total` (where the first page announces the query's hit count), a query whose
    recorded records differ from that count gets a completeness warning (`count_mismatch`).
    """

    def walk(client: PageClient, query: str, size: int) -> tuple[Any, int]:
        announced: Any = None
        received = 0
        for number, body in enumerate(pages(client, query, size)):
            if number == 0 and total is not None:
                announced = dig_value(body, total)
            received += count_items(body, *items)
        return announced, received

    def fetch(run: LiveRun) -> dict[str, int]:
        hits: dict[str, int] = {}
        for query in run.work:
            client = run.client(query_prefix(query))
            size = run.page_size or page_size
            try:
                announced, received = walk(client, query, size)
            except RestartQuery:
                announced, received = walk(client, query, size)
            hits[query] = received
            if total is not None:
                warning = count_mismatch(query, announced, received, ".".join(total))
                if warning is not None:
                    run.warn(warning)
            run.advance(1)
        return hits

    return fetch


def check_json(response: httpx.Response) -> None:
    """A 2xx body must be JSON (an HTML error page or a cut-off body is retried)."""
    require_json(response)


def or_combined(queries: Sequence[str]) -> str:
    """Queries as one boolean search: `(a) OR (b)`."""
    return " OR ".join(f"({query})" for query in queries)


def _no_params(creds: Credentials) -> dict[str, str]:
    return {}


def _no_rate_limit(creds: Credentials) -> RateLimit | None:
    return None


def _always_filtered(creds: Credentials) -> str | None:
    return None


def _never_keyless(creds: Credentials) -> bool:
    return False


@dataclass(frozen=True)
class VersionFeed:
    """An endpoint naming the source's current data release: a new answer asks for a refresh
    (`pipelines/automation.py` makes one sensor per source that has one)."""

    path: str
    """Request path under the source's base URL."""
    stamp: Callable[[bytes], str]
    """The release stamp in an answer's body; raises ValueError when the body has none."""


ChangeFilter = Callable[[str, date, date], tuple[str, dict[str, dict[str, str]]]]
"""(query, since, until) -> (query, extra parameters by request path) asking only for records
changed in that window."""


@dataclass(frozen=True)
class LiveSource:
    """How a refresh asks a source: where, paging, politeness and the --since-last filter."""

    base_url: str
    fetch: Callable[[LiveRun], dict[str, int]]
    """Pages through the run's work with its clients; returns hits per query (or per kind)."""
    emulator_path: str
    """Where the source sits under one `serve-snapshot` base URL (`--base-url all=URL`)."""
    min_interval: Callable[[Credentials], float]
    """Seconds between request starts (stretched by the refresh's pace)."""
    check_body: Callable[[httpx.Response], None] = check_json
    """Raises InvalidBody when a 2xx body is not what this source answers (then retried)."""
    rate_limit: Callable[[Credentials], RateLimit | None] = _no_rate_limit
    """A published per-window limit, enforced as a sliding window."""
    retry_statuses: frozenset[int] = frozenset()
    """Statuses retried with back-off for this source on top of 429 and 5xx (e.g. the 403 of
    a filtering proxy in front of the API), still within the client's bounded tries."""
    default_params: Callable[[Credentials], dict[str, str]] = _no_params
    """Contact and key parameters sent with every request."""
    pacer: Callable[[], Pacer] | None = None
    """A pacer shared by the client (told of every response) and `fetch` (`LiveRun.pacer`)."""
    compound_ids: Callable[[Sequence[Mapping[str, str]]], list[Any]] | None = None
    """Asked by id: the ids to ask from the rows of compounds.csv. None: asked by topic query
    (topic_queries.csv rows of this source)."""
    combine: Callable[[Sequence[str]], str] = or_combined
    """All topic queries as one search, so an unchanged source costs one request."""
    changed_since: ChangeFilter | None = None
    """The change filter --since-last sends; None: the source has no change feed."""
    state_expires: bool = False
    """The server's paging state (cursor) expires: a resumed refresh restarts a query that an
    earlier run left half-way instead of following the cursor in its last recorded page."""
    unfiltered_note: Callable[[Credentials], str | None] = _always_filtered
    """Why the change filter cannot be sent with these credentials (the combined query is then
    asked in full and search_strategy.json says this note); None when it can."""
    keyless: Callable[[Credentials], bool] = _never_keyless
    """True when these credentials lack the API key the source needs for real use: its search
    then keeps to the keyless budget of search_bounds.csv."""
    api_key_env: str | None = None
    """The environment variable that holds the source's API key (`Credentials.key(name)`; the
    CLI and the Dagster resource read it, `.env.example` lists it); None: the source takes no
    key."""

    version: VersionFeed | None = None
    """Where the source says its data changed; None: only the weekly schedule refreshes it."""


# --- the unit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicationRank:
    """Where a literature source stands when the records of one work are merged into one
    publications row (`pipelines/normalize/dedup.py`): rank 0 is trusted first, ties go by name."""

    bibliographic: int
    """Rank for identifiers, title, journal, language, authors, dates and term lists."""
    metrics: int
    """Rank for cited_by_count and is_open_access."""


def _no_replacements(record: Any) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class BulkExport:
    """A source's full bulk export kept whole in its snapshot folder: an archive of one record
    per member (e.g. ClinicalTrials.gov's ZIP of one v2 study JSON per study), read in place
    member by member (`pipelines.snapshot.source_records`), never extracted to disk."""

    suffix: str
    """The archive's file suffix in the source folder (besides the unit's own `suffix`)."""
    member_suffix: str
    """Every member holding a record ends so; another member is quarantined, not skipped."""
    read_member: Callable[[bytes], Any]
    """One member's bytes -> its record; ValueError with a reason for one that is not a record."""
    member_key: Callable[[str], str | None]
    """The record key a member's path announces (checked against the record's own key), read
    without decompressing it so a shard skips other shards' members cheaply; None: none."""


BATCH_DB = "setwise_batch"
"""The in-memory database a set-wise staging run attaches for its batch's tables (the parsed
records, the per-value maps, the row buffers): every cursor of the run reads them, where a TEMP
table is its own connection's alone. Unqualified names find them after the database staged into
(`pipelines.setwise`)."""


@dataclass(frozen=True)
class SqlSide:
    """One part of a source's set-wise staging (`pipelines.setwise`): SQL over a batch's parsed
    records (the spec's `docs` table: `_rec`, `_source_file`, the record's id, `doc`)."""

    structure: dict[str, Any]
    """The fields this part reads, in `from_json` structure notation (object = dict, array =
    one-element list, leaf = DuckDB type name); merged with the other parts' into one."""
    problems_sql: Callable[[], str]
    """SELECT `_rec`, `_rank`, `_pos` (INTEGER[]), `reason`: why a record cannot be staged; a
    record's first reason by (`_rank`, `_pos`) is the one the record-by-record parser raises."""
    tables_sql: Callable[[], dict[str, str]]
    """Table -> SELECT of its columns, `_rec` and `_pos` (INTEGER[], row order in the record)."""
    prepare: Callable[[Any], None] | None = None
    """Called with the connection once per batch before the SQL runs: Python per distinct
    value of the batch (maps the SQL joins), where SQL reads a value differently."""
    setup: Callable[[Any], None] | None = None
    """Called with the connection once per staging run (macros, functions)."""
    screen: str | None = None
    """A table `prepare` fills with the batch's records that may break a rule (`_rec`, a
    superset): when it is empty, `problems_sql` is not run for the batch."""


@dataclass(frozen=True)
class SetwiseStaging:
    """How a JSON source is staged set-wise in DuckDB instead of record by record (`parse`)."""

    docs: str
    """The batch's parsed records, as the parts' SQL names them."""
    key_sql: str
    """SQL over `doc` giving the record key exactly as `record_key` would (NULL: none)."""
    id_sql: str
    """SQL over `_key` giving the id the tables use, NULL when the key is not a valid id."""
    id_problem: Callable[[str | None], str | None]
    """Why a record whose `id_sql` is NULL cannot be staged (from its key)."""
    parts: tuple[SqlSide, ...]
    """In row order: a table fed by two parts gets the first part's rows of a record first."""
    page_list: str
    """The field of a page file listing its records."""
    page_keys: frozenset[str]
    """First keys of a page file."""
    record_keys: frozenset[str]
    """First keys of a file holding one record (and keys a record must have one of)."""
    extra_columns: dict[str, dict[str, str]]
    """Staging-only columns per table (after the model's; a column null in every row is
    dropped, as the record-by-record sink leaves it out): name -> DuckDB type."""


@dataclass(frozen=True)
class SourceUnit:
    """Everything the pipeline knows about one source, in the source's own module.

    Snapshot reading, staging, refresh, the emulator and the asset factories loop over the
    registered units (`pipelines.sources.SOURCES`) and never name a source themselves.
    """

    name: str
    """The snapshot folder, the `staging.<name>__<table>` prefix and the asset key part."""
    suffix: str
    """The one file suffix of the source's snapshot files (another is an error)."""
    iter_records: Callable[[Path], Iterator[Any]]
    """A snapshot file's records, streamed; a file not in the format raises SnapshotFormatError."""
    record_key: Callable[[Any], str | None]
    """A record's key, for de-duplication, quarantine and `supersedes`; None when absent."""
    parse: Callable[[Any], TableRows]
    """One record -> rows by table; pure. A bad record raises RecordError."""
    primary_table: str
    """The table a quarantined record of this source would have fed."""
    tables: tuple[str, ...]
    """Every staged table `parse` can return rows for (`staging.<name>__<table>`), each an
    asset `staging/<name>/<table>`: the curated tables that read one depend on that asset."""
    raw: Callable[[Any], str] = raw_json
    """A record as text, for its fingerprint and the quarantine table's `raw` column."""
    replaces: Callable[[Any], Iterable[str]] = _no_replacements
    """Keys of older records a record stands in for besides its own (e.g. merged ids)."""
    live: LiveSource | None = None
    """How a refresh asks the source; None: a snapshot-only source, carried over from the
    previous snapshot by every refresh."""
    emulation: Emulation | None = None
    """How `serve-snapshot` serves the source's files with its paging (a live source's only)."""
    bulk: BulkExport | None = None
    """The source's full bulk export as a snapshot file kind; None: pages and records only."""
    setwise: SetwiseStaging | None = None
    """Stage set-wise in DuckDB (`pipelines.setwise`) rather than through `parse` per record."""
    publication: PublicationRank | None = None
    """A literature source: its `publications` rows are merged with the other literature
    sources' by this rank, and its name is a value of publications.sources. None: not one."""

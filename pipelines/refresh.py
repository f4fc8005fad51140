"""Live refresh: query every source, record every body into a new snapshot, then build from it.

The snapshot is `DATA/snapshots/<UTC stamp>/` in the bundled layout. It says `"complete": false`
until the last body is written, so `build` refuses a refresh that stopped half-way. Beside the
source folders sit `requests.jsonl` (every attempt, secrets redacted) and `search_strategy.json`
(each query with its hit count per source). Secrets arrive as arguments, never from the
environment here, and never reach a file or a log line.

`--since-last` asks each source only for what changed since the last complete recorded snapshot
(one OR-combined query per source with the source's own change filter), then carries that
snapshot's files over byte for byte and lists in SNAPSHOT.json `supersedes` every carried record
a changed one replaces: the new folder is again a complete snapshot of bodies as returned.
OpenAlex only filters on `from_updated_date` for requests with an API key, so without
`OPENALEX_API_KEY` it is asked its OR-combined query unfiltered (search_strategy.json says so).
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from defusedxml import ElementTree as SafeET

from pipelines import paths, snapshot
from pipelines.http import (
    InvalidBody,
    RateLimit,
    RequestLogEntry,
    ResponseRecorder,
    SourceError,
    SourceHttp,
    require_json,
)
from pipelines.sources import (
    SOURCES,
    chembl,
    clinicaltrials,
    crossref,
    europepmc,
    openalex,
    pubchem,
    pubmed,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

LIVE_SOURCES: tuple[str, ...] = (
    "clinicaltrials",
    "pubmed",
    "europepmc",
    "openalex",
    "crossref",
    "pubchem",
    "chembl",
)
"""Sources with an API, in the order they are reported."""

LIVE_BASE_URLS: dict[str, str] = {
    "clinicaltrials": clinicaltrials.BASE_URL,
    "pubmed": pubmed.BASE_URL,
    "europepmc": europepmc.BASE_URL,
    "openalex": openalex.BASE_URL,
    "crossref": crossref.BASE_URL,
    "pubchem": "https://pubchem.ncbi.nlm.nih.gov",
    "chembl": "https://www.ebi.ac.uk/chembl",
}
EMULATOR_PATHS: dict[str, str] = {
    "clinicaltrials": "/clinicaltrials",
    "pubmed": "/pubmed",
    "europepmc": "/europepmc/rest",
    "openalex": "/openalex",
    "crossref": "/crossref",
    "pubchem": "/pubchem",
    "chembl": "/chembl",
}
"""Where each source sits under one `serve-snapshot` base URL (`--base-url all=URL`)."""

MIN_INTERVALS: dict[str, float] = {
    "clinicaltrials": clinicaltrials.MIN_INTERVAL,
    "pubmed": pubmed.MIN_INTERVAL,
    "europepmc": europepmc.MIN_INTERVAL,
    "openalex": openalex.MIN_INTERVAL,
    "crossref": crossref.MIN_INTERVAL,
    "pubchem": pubchem.MIN_INTERVAL,
    "chembl": 0.1,
}
TOPIC = "kratom"
REQUEST_LOG = "requests.jsonl"
SEARCH_STRATEGY = "search_strategy.json"
INCREMENTAL_FROM = "incremental_from"
"""SNAPSHOT.json key of a --since-last snapshot: the stamp (folder name) of its base."""
SEARCH_SOURCES: tuple[str, ...] = ("clinicaltrials", "pubmed", "europepmc", "openalex", "crossref")
"""Sources searched by topic query; each has a change filter --since-last uses."""
OPENALEX_UNFILTERED = (
    "since-last without OPENALEX_API_KEY: OpenAlex filters on from_updated_date only for "
    "requests with an API key, so its combined query was asked in full"
)
"""search_strategy.json `note` of OpenAlex in a --since-last run without a key."""

logger = logging.getLogger("kratom_evidence.refresh")

Advance = Callable[[int], None]


class RefreshError(RuntimeError):
    """The refresh cannot run as asked (bad --base-url, no queries)."""


class _Cancelled(RuntimeError):
    """Another source failed for good: stop this one between queries."""


@dataclass(frozen=True)
class Credentials:
    """Contact e-mail and API keys; repr hides them so they never land in a log or traceback."""

    email: str | None = field(default=None, repr=False)
    ncbi_api_key: str | None = field(default=None, repr=False)
    openalex_api_key: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        """The values that must never be written anywhere."""
        return [s for s in (self.email, self.ncbi_api_key, self.openalex_api_key) if s]


@dataclass(frozen=True)
class HttpSettings:
    """Client knobs; tests shorten them, a real refresh keeps the polite defaults."""

    timeout: float = 30.0
    max_tries: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    pace: float = 1.0
    """Factor on every source's minimum interval: 1 for real APIs, 0 against a local emulator."""
    page_size: int | None = None
    """Records per page or batch for every source; None keeps each source's own. Tests shrink
    it so every paging protocol turns several pages on a few records."""


@dataclass
class SourceOutcome:
    """What one source's fetch did: hits per query, pages recorded, the client's request log."""

    source: str
    hits: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    requests: int = 0
    retries: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    cancelled: bool = False
    """Stopped early because another source failed; `error` then names that."""


@dataclass(frozen=True)
class RefreshResult:
    """The recorded snapshot and what each source did."""

    snapshot_dir: Path
    outcomes: dict[str, SourceOutcome]

    @property
    def complete(self) -> bool:
        """True when every source finished."""
        return all(o.error is None for o in self.outcomes.values())

    @property
    def first_error(self) -> str | None:
        """The failure that stopped the refresh (not a source cancelled because of it)."""
        failed = [o for o in self.outcomes.values() if o.error is not None and not o.cancelled]
        return failed[0].error if failed else None


def parse_base_urls(values: Sequence[str]) -> dict[str, str]:
    """`SOURCE=URL` and `all=URL` overrides -> base URL per live source (live defaults else).

    `all=URL` points every source at one `serve-snapshot` emulator, each under its own path;
    a `SOURCE=URL` given as well wins for that source and is used as is.
    """
    urls = dict(LIVE_BASE_URLS)
    explicit: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise RefreshError(f"--base-url wants SOURCE=URL, got {value!r}")
        if name == "all":
            urls.update({s: url.rstrip("/") + EMULATOR_PATHS[s] for s in LIVE_SOURCES})
        elif name in LIVE_SOURCES:
            explicit[name] = url.rstrip("/")
        else:
            raise RefreshError(f"--base-url: unknown source {name!r} (one of all, {LIVE_SOURCES})")
    return {**urls, **explicit}


def load_queries(reference_dir: Path) -> dict[str, list[str]]:
    """Topic queries per source from `topic_queries.csv`, in file order."""
    queries: dict[str, list[str]] = {}
    with (reference_dir / "topic_queries.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            queries.setdefault(row["source"].strip(), []).append(row["query"].strip())
    return queries


def load_compound_ids(reference_dir: Path) -> tuple[list[int], list[str]]:
    """PubChem CIDs and ChEMBL ids of the curated compounds (blank cells skipped)."""
    with (reference_dir / "compounds.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    cids = sorted({int(r["pubchem_cid"]) for r in rows if r["pubchem_cid"].strip().isdigit()})
    chembl_ids = sorted({r["chembl_id"].strip() for r in rows if r["chembl_id"].strip()})
    return cids, chembl_ids


def snapshot_stamp(now: datetime) -> str:
    """Folder name of a recorded snapshot: UTC, sortable, no colons."""
    return now.strftime("%Y%m%dT%H%M%SZ")


def write_info(
    folder: Path,
    captured_at: str,
    *,
    complete: bool,
    notes: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """SNAPSHOT.json; `complete: false` makes `snapshot.read_info` refuse the folder.

    `extra` adds keys beyond the contract's (captured_at_utc, incremental_from, compound_ids).
    """
    info = {
        **(extra or {}),
        "captured_at": captured_at,
        "topic": TOPIC,
        "method": "recorded",
        "complete": complete,
        "notes": notes,
    }
    path = folder / snapshot.INFO_FILE
    temp = path.with_suffix(".json.part")
    temp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temp.replace(path)


def previous_registries(snapshots_dir: Path, exclude: Path) -> Path:
    """registries/ of the newest complete recorded snapshot that has one, else the bundled one."""
    if snapshots_dir.is_dir():
        for folder in sorted(snapshots_dir.iterdir(), reverse=True):
            if folder == exclude or not (folder / "registries").is_dir():
                continue
            try:
                snapshot.read_info(folder)
            except snapshot.SnapshotError:
                continue
            return folder / "registries"
    return paths.BUNDLED_SNAPSHOT / "registries"


@dataclass(frozen=True)
class Delta:
    """How a --since-last run asks a source: extra parameters per request path, page names.

    Pages are named `<name>-NNNN<suffix>` (the name holds the new snapshot's stamp), so they
    never collide with the files carried over from the base snapshot.
    """

    name: str
    params: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


class _RecordingClient:
    """The pagers' client view of a SourceHttp: record names get a query prefix, bodies checked.

    Two queries page through the same file names (`search-0001.json`); a prefix keeps both. A
    2xx body that is not the right format (an HTML error page, a cut-off body) is retried.
    With a `Delta`, every request gets its change filter and every page a delta name; `fixed`
    parameters (by request path) go with every request too.
    """

    def __init__(
        self,
        http: SourceHttp,
        prefix: str,
        validate: Callable[[httpx.Response], None],
        delta: Delta | None = None,
        fixed: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.http = http
        self.base_url = http.base_url
        self.prefix = prefix
        self.validate = validate
        self.delta = delta
        self.fixed = fixed or {}
        self.pages = 0

    def _name(self, record_as: str | None) -> str | None:
        if record_as is None:
            return None
        self.pages += 1
        if self.delta is not None:
            return f"{self.delta.name}-{self.pages:04d}{Path(record_as).suffix}"
        return f"{self.prefix}{record_as}"

    def _params(self, path: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
        changed = self.delta.params.get(path, {}) if self.delta is not None else {}
        extra = {**self.fixed.get(path, {}), **changed}
        return {**(params or {}), **extra} if extra else params

    def _recorded(self, name: str | None) -> bytes | None:
        """The body an earlier, interrupted run of this snapshot already recorded, if any."""
        recorder = self.http.recorder
        if name is None or recorder is None:
            return None
        path = recorder.path_for(self.http.source, name)
        return path.read_bytes() if path.is_file() else None

    def get_bytes(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> bytes:
        name = self._name(record_as)
        recorded = self._recorded(name)
        if recorded is not None:
            return recorded
        params = self._params(path, params)
        return self.http.get_bytes(path, params, record_as=name, validate=self.validate)

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any:
        name = self._name(record_as)
        recorded = self._recorded(name)
        if recorded is not None:
            return orjson.loads(recorded)
        return self.http.get_json(path, self._params(path, params), record_as=name)


def _json_body(response: httpx.Response) -> None:
    require_json(response)


def _pubmed_body(response: httpx.Response) -> None:
    """efetch XML must parse and be a <PubmedArticleSet>; esearch answers JSON."""
    if response.url.path.endswith(pubmed.ESEARCH_PATH):
        require_json(response)
        return
    try:
        root = SafeET.fromstring(response.content, forbid_dtd=False)
    except Exception as exc:
        raise InvalidBody(f"not efetch XML ({type(exc).__name__})") from None
    if root.tag != pubmed.ROOT_TAG:
        raise InvalidBody(f"root is <{root.tag}>, not <{pubmed.ROOT_TAG}>")


def _query_prefix(query: str) -> str:
    return f"{clinicaltrials.slug(query)}__"


def _count_json(body: Any, *keys: str) -> int:
    node = body
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return len(node) if isinstance(node, list) else 0


def fetch_clinicaltrials(
    http: SourceHttp,
    queries: Sequence[str],
    advance: Advance,
    delta: Delta | None = None,
    page_size: int | None = None,
) -> SourceOutcome:
    """Every query's study pages (the pager already names pages by query slug)."""
    out = SourceOutcome("clinicaltrials")
    fixed = {clinicaltrials.STUDIES_PATH: {"pageSize": page_size}} if page_size else None
    client = _RecordingClient(http, "", _json_body, delta, fixed)
    for query in queries:
        hits = 0
        for body in clinicaltrials.iter_pages(client, query):
            hits += _count_json(orjson.loads(body), "studies")
        out.hits[query] = hits
        advance(1)
    out.pages = client.pages
    return out


def fetch_pubmed(
    http: SourceHttp,
    queries: Sequence[str],
    advance: Advance,
    delta: Delta | None = None,
    page_size: int | None = None,
) -> SourceOutcome:
    """esearch + efetch batches per query; pages prefixed by query."""
    out = SourceOutcome("pubmed")
    for query in queries:
        client = _RecordingClient(http, _query_prefix(query), _pubmed_body, delta)
        hits = 0
        for body in pubmed.iter_efetch_pages(client, query, page_size or pubmed.EFETCH_BATCH):
            hits += pubmed.count_records(body)
        out.hits[query] = hits
        out.pages += client.pages
        advance(1)
    return out


def _fetch_paged_json(
    source: str,
    pager: JsonPager,
    http: SourceHttp,
    queries: Sequence[str],
    advance: Advance,
    delta: Delta | None = None,
    page_size: int | None = None,
) -> SourceOutcome:
    out = SourceOutcome(source)
    for query in queries:
        client = _RecordingClient(http, _query_prefix(query), _json_body, delta)
        pages = pager.pages(client, query, page_size or pager.page_size)
        out.hits[query] = sum(_count_json(body, *pager.items) for body in pages)
        out.pages += client.pages
        advance(1)
    return out


def fetch_pubchem(
    http: SourceHttp,
    cids: Sequence[int],
    pacer: pubchem.ThrottlePacer,
    advance: Advance,
    delta: Delta | None = None,
    page_size: int | None = None,
) -> SourceOutcome:
    """Property tables and synonym lists of the curated CIDs, batched."""
    out = SourceOutcome("pubchem")
    client = _RecordingClient(http, "", _json_body, delta)
    batch = page_size or pubchem.BATCH_SIZE
    for body in pubchem.fetch_compounds(client, cids, pacer, batch):
        out.hits["properties" if "PropertyTable" in body else "synonyms"] = _count_json(
            body, "PropertyTable", "Properties"
        ) or _count_json(body, "InformationList", "Information")
        advance(1)
    out.pages = client.pages
    return out


def fetch_chembl(
    http: SourceHttp,
    chembl_ids: Sequence[str],
    advance: Advance,
    delta: Delta | None = None,
    page_size: int | None = None,
) -> SourceOutcome:
    """Activity pages of the curated molecules, following page_meta.next."""
    out = SourceOutcome("chembl")
    client = _RecordingClient(http, "", _json_body, delta)
    hits = 0
    for body in chembl.iter_activity_pages(client, chembl_ids, page_size or chembl.PAGE_LIMIT):
        hits += _count_json(body, "activities")
        advance(1)
    out.hits["molecule_chembl_id__in"] = hits
    out.pages = client.pages
    return out


def _default_params(source: str, creds: Credentials) -> dict[str, str]:
    """Contact and key parameters a source asks on every request."""
    if source == "pubmed":
        params = {"tool": pubmed.TOOL}
        if creds.email:
            params["email"] = creds.email
        if creds.ncbi_api_key:
            params["api_key"] = creds.ncbi_api_key
        return params
    if source == "openalex" and creds.email:
        return openalex.default_params(creds.email, creds.openalex_api_key)
    if source == "openalex" and creds.openalex_api_key:
        return {"api_key": creds.openalex_api_key}
    if source == "crossref" and creds.email:
        return crossref.default_params(creds.email)
    return {}


def _min_interval(source: str, creds: Credentials) -> float:
    if source == "pubmed":
        return pubmed.min_interval(creds.ncbi_api_key)
    return MIN_INTERVALS[source]


def _rate_limit(source: str, creds: Credentials, pace: float) -> RateLimit | None:
    """The published per-second limits (NCBI, PubChem) as sliding windows, stretched by pace."""
    if source == "pubmed":
        return pubmed.rate_limit(creds.ncbi_api_key).scaled(pace)
    if source == "pubchem":
        return pubchem.RATE_LIMIT.scaled(pace)
    return None


def _total_units(source: str, queries: Mapping[str, list[str]]) -> int | None:
    if source in ("pubchem", "chembl"):
        return None
    return len(queries.get(source, []))


@dataclass
class _Plan:
    queries: dict[str, list[str]]
    cids: list[int]
    chembl_ids: list[str]
    delta: dict[str, Delta] = field(default_factory=dict)
    """Per source, the change filter and page names of a --since-last run (empty: full run)."""
    page_size: int | None = None
    """`HttpSettings.page_size`: None keeps each source's own."""
    notes: dict[str, str] = field(default_factory=dict)
    """Per source, how this run asked it when that differs from the usual (search strategy)."""


@dataclass(frozen=True)
class JsonPager:
    """A search source paged as JSON: its pager, where a page keeps its records, its page size."""

    pages: Callable[[Any, str, int], Iterable[Any]]
    items: tuple[str, ...]
    page_size: int


_JSON_PAGERS: dict[str, JsonPager] = {
    "europepmc": JsonPager(
        europepmc.iter_search_pages, ("resultList", "result"), europepmc.PAGE_SIZE
    ),
    "openalex": JsonPager(openalex.iter_works_pages, ("results",), openalex.PER_PAGE),
    "crossref": JsonPager(crossref.iter_works_pages, ("message", "items"), crossref.ROWS),
}


def _run_source(
    source: str, http: SourceHttp, plan: _Plan, pacer: pubchem.ThrottlePacer, advance: Advance
) -> SourceOutcome:
    queries = plan.queries.get(source, [])
    delta, size = plan.delta.get(source), plan.page_size
    if source == "clinicaltrials":
        return fetch_clinicaltrials(http, queries, advance, delta, size)
    if source == "pubmed":
        return fetch_pubmed(http, queries, advance, delta, size)
    if source in _JSON_PAGERS:
        return _fetch_paged_json(source, _JSON_PAGERS[source], http, queries, advance, delta, size)
    if delta is not None and not (plan.cids if source == "pubchem" else plan.chembl_ids):
        return SourceOutcome(source)
    if source == "pubchem":
        return fetch_pubchem(http, plan.cids, pacer, advance, delta, size)
    return fetch_chembl(http, plan.chembl_ids, advance, delta, size)


def combined_query(source: str, queries: Sequence[str]) -> str:
    """All topic queries of a source as one search, so an unchanged source costs one request.

    ClinicalTrials.gov (Essie), PubMed, Europe PMC and OpenAlex `search` take boolean OR with
    parentheses; Crossref's `query` has no boolean syntax but ranks works matching any word, so
    its words are simply joined.
    """
    if source == "crossref":
        return " ".join(queries)
    return " OR ".join(f"({query})" for query in queries)


def delta_request(
    source: str, query: str, since: date, until: date
) -> tuple[str, dict[str, dict[str, str]]]:
    """(query, extra parameters by request path) asking `source` only for records changed since.

    Names, from each source's documentation (confirmed with the docs search where it had them):
    ClinicalTrials.gov API v2 `filter.advanced=AREA[LastUpdatePostDate]RANGE[since,MAX]`;
    E-utilities esearch `datetype=mdat&mindate&maxdate` (YYYY/MM/DD, both required); Europe PMC
    search syntax field `UPDATE_DATE:[a TO b]` (europepmc.org/searchsyntax); OpenAlex works filter
    `from_updated_date` (docs.openalex.org filter-works; the live API wants an API key for it,
    see `incremental_plan`);
    Crossref works filter `from-update-date` (REST API filters, "currently the same as
    from-deposit-date").
    """
    if source == "clinicaltrials":
        advanced = f"AREA[LastUpdatePostDate]RANGE[{since.isoformat()},MAX]"
        return query, {clinicaltrials.STUDIES_PATH: {"filter.advanced": advanced}}
    if source == "pubmed":
        window = {"mindate": since.strftime("%Y/%m/%d"), "maxdate": until.strftime("%Y/%m/%d")}
        return query, {pubmed.ESEARCH_PATH: {"datetype": "mdat", **window}}
    if source == "europepmc":
        return f"({query}) AND (UPDATE_DATE:[{since.isoformat()} TO {until.isoformat()}])", {}
    if source == "openalex":
        return query, {openalex.WORKS_PATH: {"filter": f"from_updated_date:{since.isoformat()}"}}
    if source == "crossref":
        return query, {crossref.WORKS_PATH: {"filter": f"from-update-date:{since.isoformat()}"}}
    raise RefreshError(f"{source} has no change filter")


def last_recorded(snapshots_dir: Path) -> Path | None:
    """The newest complete snapshot a refresh recorded: the base of `--since-last`."""
    if not snapshots_dir.is_dir():
        return None
    for folder in sorted(snapshots_dir.iterdir(), reverse=True):
        try:
            info = snapshot.read_info(folder)
        except snapshot.SnapshotError:
            continue
        if info.method == "recorded":
            return folder
    return None


def _since(base_info: Mapping[str, Any]) -> date:
    """The day the base refresh started: `captured_at_utc` when it has one, else captured_at."""
    stamp = str(base_info.get("captured_at_utc") or base_info["captured_at"])
    return date.fromisoformat(stamp[:10])


def incremental_plan(
    queries: Mapping[str, list[str]],
    cids: Sequence[int],
    chembl_ids: Sequence[str],
    base_info: Mapping[str, Any],
    until: date,
    name: str,
    *,
    openalex_key: bool = False,
) -> _Plan:
    """One change-filtered query per searched source; PubChem/ChEMBL only for new compound ids.

    Neither PubChem nor ChEMBL has a change feed: their files are carried over, and only ids the
    base snapshot did not ask for (per its SNAPSHOT.json `compound_ids`) are fetched. OpenAlex
    refuses `from_updated_date` without an API key, so without `openalex_key` it gets its
    combined query unfiltered: every hit is recorded again and supersedes its carried copy.
    """
    since = _since(base_info)
    plan = _Plan({}, [], [])
    for source in SEARCH_SOURCES:
        if queries.get(source):
            query, params = delta_request(
                source, combined_query(source, queries[source]), since, until
            )
            if source == "openalex" and not openalex_key:
                params = {}
                plan.notes[source] = OPENALEX_UNFILTERED
            plan.queries[source] = [query]
            plan.delta[source] = Delta(name, params)
    asked = base_info.get("compound_ids") or {}
    plan.cids = [c for c in cids if c not in set(asked.get("pubchem", []))]
    plan.chembl_ids = [c for c in chembl_ids if c not in set(asked.get("chembl", []))]
    plan.delta["pubchem"] = plan.delta["chembl"] = Delta(name)
    return plan


def _progress(console: Console | None) -> Progress:
    """The bar: per source its units (queries, or batches and pages), requests and retries.

    Without a console given it draws on stderr, and only on a terminal.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    target = console if console is not None else Console(stderr=True)
    return Progress(
        TextColumn("{task.description:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[requests]:>5} requests"),
        TextColumn("{task.fields[retries]:>3} retries"),
        TimeElapsedColumn(),
        console=target,
        disable=not target.is_terminal,
    )


class SourceProgress:
    """One progress task per live source, in report order, fed by the clients' request logs."""

    def __init__(self, bar: Progress, queries: Mapping[str, list[str]]) -> None:
        self.bar = bar
        self.tasks = {
            source: bar.add_task(source, total=_total_units(source, queries), requests=0, retries=0)
            for source in LIVE_SOURCES
        }
        self._counts = {source: [0, 0] for source in LIVE_SOURCES}
        self._done = dict.fromkeys(LIVE_SOURCES, 0)
        self._lock = threading.Lock()

    def advance(self, source: str, units: int) -> None:
        """A query, batch or page of `source` is done (called from that source's thread)."""
        self._done[source] += units
        self.bar.advance(self.tasks[source], units)

    def attempt(self, source: str, entry: RequestLogEntry) -> None:
        """One request attempt ended; a failed one will (mostly) be retried."""
        with self._lock:
            counts = self._counts[source]
            counts[0] += 1
            counts[1] += entry.problem is not None
            requests, retries = counts
        self.bar.update(self.tasks[source], requests=requests, retries=retries)

    def finish(self, outcome: SourceOutcome) -> None:
        """The source's final counts; a source that finished shows a full bar."""
        task = self.tasks[outcome.source]
        fields: dict[str, Any] = {"requests": outcome.requests, "retries": outcome.retries}
        if outcome.error is None:
            done = self._done[outcome.source]
            fields.update(total=done, completed=done)
        else:
            fields["description"] = f"{outcome.source} (stopped)"
        self.bar.update(task, **fields)


def _log_hooks(
    write: Callable[[RequestLogEntry], None], progress: SourceProgress | None, source: str
) -> Callable[[RequestLogEntry], None]:
    """The client's request-log hook: the line in requests.jsonl, then the progress counts."""
    if progress is None:
        return write

    def note(entry: RequestLogEntry) -> None:
        write(entry)
        progress.attempt(source, entry)

    return note


def unfinished_snapshot(snapshots_dir: Path) -> Path | None:
    """The newest recorded snapshot when a refresh left it incomplete: the one to resume."""
    if not snapshots_dir.is_dir():
        return None
    folders = sorted(p for p in snapshots_dir.iterdir() if (p / snapshot.INFO_FILE).is_file())
    if not folders:
        return None
    info = json.loads((folders[-1] / snapshot.INFO_FILE).read_text(encoding="utf-8"))
    return folders[-1] if info.get("complete") is False else None


def _open_snapshot(
    data_dir: Path, now: datetime, base: Path | None
) -> tuple[Path, str, dict[str, Any]]:
    """(folder, captured_at, extra SNAPSHOT.json keys): resume or start a snapshot.

    An unfinished snapshot is resumed only by a run of the same kind (full, or incremental from
    the same base): a full run never mixes its pages with a delta's.
    """
    incremental_from = base.name if base is not None else None
    folder = unfinished_snapshot(data_dir / "snapshots")
    if folder is not None:
        info = json.loads((folder / snapshot.INFO_FILE).read_text(encoding="utf-8"))
        if info.get(INCREMENTAL_FROM) == incremental_from:
            for temp in folder.glob("*/.*.part"):
                temp.unlink()
            extra = {k: info[k] for k in ("captured_at_utc", INCREMENTAL_FROM) if k in info}
            return folder, str(info["captured_at"]), extra
    folder = data_dir / "snapshots" / snapshot_stamp(now)
    folder.mkdir(parents=True, exist_ok=False)
    captured_at = now.date().isoformat()
    extra = {"captured_at_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if incremental_from is not None:
        extra[INCREMENTAL_FROM] = incremental_from
    write_info(folder, captured_at, complete=False, notes="refresh in progress", extra=extra)
    return folder, captured_at, extra


def refresh(
    data_dir: Path,
    base_urls: Mapping[str, str],
    creds: Credentials,
    now: datetime,
    *,
    settings: HttpSettings = HttpSettings(),
    reference_dir: Path = paths.REFERENCE_DIR,
    show_progress: bool = True,
    since_last: bool = False,
    console: Console | None = None,
) -> RefreshResult:
    """Record every live source into `data_dir/snapshots/<stamp>/`; complete only if all finish.

    Sources run concurrently, each inside its own client and pace. A source that fails for good
    leaves the snapshot marked incomplete; the result carries its one-line error. The next run
    resumes that snapshot: every page already recorded is read back, not fetched again.
    With `since_last`, only what changed since the last complete recorded snapshot is fetched,
    and that snapshot's files are carried over unchanged (see `merge_base`). The progress bar
    (one task per source with its requests and retries) draws on `console`, by default stderr
    when it is a terminal: piped stderr carries nothing but errors.
    """
    base = last_recorded(data_dir / "snapshots") if since_last else None
    if since_last and base is None:
        raise RefreshError(
            f"--since-last: no complete recorded snapshot in {data_dir / 'snapshots'}; "
            "run a full refresh first"
        )
    folder, captured_at, extra = _open_snapshot(data_dir, now, base)
    queries = load_queries(reference_dir)
    cids, chembl_ids = load_compound_ids(reference_dir)
    delta_name = f"delta-{folder.name}"
    if base is None:
        plan = _Plan(queries, cids, chembl_ids)
    else:
        base_info = json.loads((base / snapshot.INFO_FILE).read_text(encoding="utf-8"))
        plan = incremental_plan(
            queries,
            cids,
            chembl_ids,
            base_info,
            now.date(),
            delta_name,
            openalex_key=creds.openalex_api_key is not None,
        )
        for source, note in plan.notes.items():
            logger.info("%s: %s", source, note)
    plan.page_size = settings.page_size
    recorder = ResponseRecorder(folder)
    pacer = pubchem.ThrottlePacer()
    request_log = RequestLog(folder)
    progress = SourceProgress(_progress(console), queries) if show_progress else None
    clients = {
        source: SourceHttp(
            source,
            base_urls[source],
            min_interval=_min_interval(source, creds) * settings.pace,
            rate_limit=_rate_limit(source, creds, settings.pace),
            max_tries=settings.max_tries,
            timeout=httpx.Timeout(settings.timeout),
            backoff_base=settings.backoff_base,
            backoff_cap=settings.backoff_cap,
            default_params=_default_params(source, creds),
            recorder=recorder,
            on_response=pacer.on_response if source == "pubchem" else None,
            on_log=_log_hooks(request_log.writer(source), progress, source),
        )
        for source in LIVE_SOURCES
    }
    outcomes: dict[str, SourceOutcome] = {}
    stop = threading.Event()

    def work(source: str) -> SourceOutcome:
        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(source, n)
            if stop.is_set():
                raise _Cancelled(f"{source}: stopped because another source failed")

        try:
            outcome = _run_source(source, clients[source], plan, pacer, advance)
        except _Cancelled as exc:
            outcome = SourceOutcome(source, error=str(exc), cancelled=True)
        except (SourceError, ValueError) as exc:
            stop.set()
            outcome = SourceOutcome(source, error=_one_line(exc, creds))
        http = clients[source]
        outcome.requests, outcome.retries = http.requests_sent, http.retries
        outcome.log = [asdict(entry) for entry in http.log]
        if progress is not None:
            progress.finish(outcome)
        return outcome

    try:
        if progress is not None:
            progress.bar.start()
        with ThreadPoolExecutor(max_workers=len(LIVE_SOURCES)) as pool:
            for outcome in pool.map(work, LIVE_SOURCES):
                outcomes[outcome.source] = outcome
    finally:
        if progress is not None:
            progress.bar.stop()
        for http in clients.values():
            http.close()
        request_log.close()
    _write_strategy(folder, outcomes, captured_at, plan.notes)
    result = RefreshResult(folder, outcomes)
    if result.complete:
        notes = "Recorded by kratom-evidence refresh from: " + ", ".join(
            f"{s}={_scheme_host(base_urls[s])}" for s in LIVE_SOURCES
        )
        if base is None:
            registries = previous_registries(data_dir / "snapshots", folder)
            shutil.copytree(registries, folder / "registries")
        else:
            from pipelines.staging import SUPERSEDES

            carried = merge_base(folder, base, delta_name)
            extra = {**extra, SUPERSEDES: carried.supersedes}
            notes = (
                f"Incremental from {base.name}: records changed since then, as recorded, with "
                f"that snapshot's {carried.files} files carried over byte for byte; "
                f"{carried.superseded} of their records are superseded (listed under "
                f"{SUPERSEDES!r}, skipped by the build). " + notes
            )
        compound_ids = {"pubchem": cids, "chembl": chembl_ids}
        write_info(
            folder,
            captured_at,
            complete=True,
            notes=notes,
            extra={**extra, "compound_ids": compound_ids},
        )
    return result


@dataclass(frozen=True)
class Carried:
    """What carrying a base snapshot over did, and what it leaves superseded."""

    files: int
    supersedes: dict[str, list[str]]
    """Relative file -> keys of its records that newer records replace (SNAPSHOT.json)."""

    @property
    def superseded(self) -> int:
        """How many records of carried files the build skips."""
        return sum(len(keys) for keys in self.supersedes.values())


def superseded_keys(folder: Path, source: str, delta_name: str) -> set[str]:
    """Keys of the records this run recorded for `source`, plus the NCT ids they replace.

    Only the delta pages count (named `<delta_name>-NNNN`), never a file already carried over.
    A ClinicalTrials.gov study listing an old id in `nctIdAliases` supersedes that id's record.
    """
    parser = SOURCES[source]
    keys: set[str] = set()
    for path in snapshot.source_files(folder, source):
        if not path.name.startswith(f"{delta_name}-"):
            continue
        for record in parser.iter_records(path):
            key = parser.record_key(record)
            if key is not None:
                keys.add(key)
            if source == "clinicaltrials":
                keys.update(nct_aliases(record))
    return keys


def nct_aliases(study: Any) -> list[str]:
    """Old NCT ids a study was registered under (`identificationModule.nctIdAliases`)."""
    protocol = study.get("protocolSection") if isinstance(study, dict) else None
    ident = protocol.get("identificationModule") if isinstance(protocol, dict) else None
    aliases = ident.get("nctIdAliases") if isinstance(ident, dict) else None
    return [a for a in aliases if isinstance(a, str)] if isinstance(aliases, list) else []


def merge_base(folder: Path, base: Path, delta_name: str) -> Carried:
    """Carry every source file of `base` into `folder` byte for byte; list what is superseded.

    A snapshot holds bodies exactly as the sources returned them, so no carried file is
    rewritten: the records this run's delta pages replace (same key, or an old NCT id in
    `nctIdAliases`) are listed per file instead, on top of what the base already listed.
    """
    from pipelines.staging import superseded_records

    supersedes = {name: set(keys) for name, keys in superseded_records(base).items()}
    files = 0
    for source in SOURCES:
        drop = superseded_keys(folder, source, delta_name) if source != "registries" else set()
        for path in snapshot.source_files(base, source):
            target = folder / source / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            files += 1
            if not drop:
                continue
            parser = SOURCES[source]
            hit = {key for r in parser.iter_records(path) if (key := parser.record_key(r)) in drop}
            if hit:
                supersedes.setdefault(f"{source}/{path.name}", set()).update(hit)
    return Carried(files, {name: sorted(keys) for name, keys in sorted(supersedes.items())})


def _scheme_host(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode()}{parts.path}"


def _one_line(exc: Exception, creds: Credentials) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in creds.secrets():
        text = text.replace(secret, "***")
    return text


class RequestLog:
    """requests.jsonl: one line per attempt, written as it happens and flushed at once, so a
    refresh that is killed keeps the log of what it asked; a resumed run appends its own."""

    def __init__(self, folder: Path) -> None:
        self._handle = (folder / REQUEST_LOG).open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def writer(self, source: str) -> Callable[[RequestLogEntry], None]:
        """The client hook that logs `source`'s attempts."""

        def write(entry: RequestLogEntry) -> None:
            line = json.dumps({"source": source, **asdict(entry)}, sort_keys=True) + "\n"
            with self._lock:
                self._handle.write(line)
                self._handle.flush()

        return write

    def close(self) -> None:
        self._handle.close()


def busiest_window(starts: Sequence[float], window: float = 1.0) -> int:
    """Most request starts inside any half-open span of `window` seconds: the politeness audit."""
    ordered = sorted(starts)
    best = low = 0
    for high, start in enumerate(ordered):
        while start - ordered[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def _timing(log: Sequence[Mapping[str, Any]]) -> dict[str, float | int]:
    """Busiest second and seconds from first request start to last answer, from a request log."""
    if not log:
        return {"busiest_second": 0, "seconds": 0.0}
    first = min(e["started_at"] for e in log)
    last = max(e["started_at"] + e["elapsed"] for e in log)
    busiest = busiest_window([e["started_at"] for e in log])
    return {"busiest_second": busiest, "seconds": round(last - first, 3)}


def _write_strategy(
    folder: Path,
    outcomes: Mapping[str, SourceOutcome],
    captured_at: str,
    notes: Mapping[str, str],
) -> None:
    """search_strategy.json: the search as data, each query with its hit count per source.

    `note` says when a source was asked differently from the usual (null otherwise).
    """
    doc = {
        "captured_at": captured_at,
        "topic": TOPIC,
        "sources": {
            source: {
                "queries": [{"query": q, "hits": n} for q, n in outcome.hits.items()],
                "pages": outcome.pages,
                "requests": outcome.requests,
                "retries": outcome.retries,
                "error": outcome.error,
                "cancelled": outcome.cancelled,
                "note": notes.get(source),
                **_timing(outcome.log),
            }
            for source, outcome in outcomes.items()
        },
    }
    (folder / SEARCH_STRATEGY).write_text(
        json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

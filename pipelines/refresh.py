"""Live refresh: query every source, record every body into a new snapshot, then build from it.

The snapshot is `DATA/snapshots/<UTC stamp>/` in the bundled layout. It says `"complete": false`
until the last body is written, so `build` refuses a refresh that stopped half-way. Beside the
source folders sit `requests.jsonl` (every attempt, secrets redacted) and `search_strategy.json`
(each query with its hit count per source). Secrets arrive as arguments, never from the
environment here, and never reach a file or a log line.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from defusedxml import ElementTree as SafeET

from pipelines import paths, snapshot
from pipelines.http import InvalidBody, ResponseRecorder, SourceError, SourceHttp, require_json
from pipelines.sources import chembl, clinicaltrials, crossref, europepmc, openalex, pubchem, pubmed

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


def write_info(folder: Path, captured_at: str, *, complete: bool, notes: str) -> None:
    """SNAPSHOT.json; `complete: false` makes `snapshot.read_info` refuse the folder."""
    info = {
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


class _RecordingClient:
    """The pagers' client view of a SourceHttp: record names get a query prefix, bodies checked.

    Two queries page through the same file names (`search-0001.json`); a prefix keeps both. A
    2xx body that is not the right format (an HTML error page, a cut-off body) is retried.
    """

    def __init__(
        self, http: SourceHttp, prefix: str, validate: Callable[[httpx.Response], None]
    ) -> None:
        self.http = http
        self.base_url = http.base_url
        self.prefix = prefix
        self.validate = validate
        self.pages = 0

    def _name(self, record_as: str | None) -> str | None:
        if record_as is None:
            return None
        self.pages += 1
        return f"{self.prefix}{record_as}"

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
        return self.http.get_bytes(path, params, record_as=name, validate=self.validate)

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any:
        name = self._name(record_as)
        recorded = self._recorded(name)
        if recorded is not None:
            return orjson.loads(recorded)
        return self.http.get_json(path, params, record_as=name)


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
    http: SourceHttp, queries: Sequence[str], advance: Advance
) -> SourceOutcome:
    """Every query's study pages (the pager already names pages by query slug)."""
    out = SourceOutcome("clinicaltrials")
    client = _RecordingClient(http, "", _json_body)
    for query in queries:
        hits = 0
        for body in clinicaltrials.iter_pages(client, query):
            hits += _count_json(orjson.loads(body), "studies")
        out.hits[query] = hits
        advance(1)
    out.pages = client.pages
    return out


def fetch_pubmed(http: SourceHttp, queries: Sequence[str], advance: Advance) -> SourceOutcome:
    """esearch + efetch batches per query; pages prefixed by query."""
    out = SourceOutcome("pubmed")
    for query in queries:
        client = _RecordingClient(http, _query_prefix(query), _pubmed_body)
        hits = 0
        for body in pubmed.iter_efetch_pages(client, query):
            root = SafeET.fromstring(body, forbid_dtd=False)
            hits += sum(1 for child in root if child.tag in pubmed.RECORD_TAGS)
        out.hits[query] = hits
        out.pages += client.pages
        advance(1)
    return out


def _fetch_paged_json(
    source: str,
    pager: Callable[[Any, str], Iterable[Any]],
    items: tuple[str, ...],
    http: SourceHttp,
    queries: Sequence[str],
    advance: Advance,
) -> SourceOutcome:
    out = SourceOutcome(source)
    for query in queries:
        client = _RecordingClient(http, _query_prefix(query), _json_body)
        out.hits[query] = sum(_count_json(body, *items) for body in pager(client, query))
        out.pages += client.pages
        advance(1)
    return out


def fetch_pubchem(
    http: SourceHttp, cids: Sequence[int], pacer: pubchem.ThrottlePacer, advance: Advance
) -> SourceOutcome:
    """Property tables and synonym lists of the curated CIDs, batched."""
    out = SourceOutcome("pubchem")
    client = _RecordingClient(http, "", _json_body)
    for body in pubchem.fetch_compounds(client, cids, pacer):
        out.hits["properties" if "PropertyTable" in body else "synonyms"] = _count_json(
            body, "PropertyTable", "Properties"
        ) or _count_json(body, "InformationList", "Information")
        advance(1)
    out.pages = client.pages
    return out


def fetch_chembl(http: SourceHttp, chembl_ids: Sequence[str], advance: Advance) -> SourceOutcome:
    """Activity pages of the curated molecules, following page_meta.next."""
    out = SourceOutcome("chembl")
    client = _RecordingClient(http, "", _json_body)
    hits = 0
    for body in chembl.iter_activity_pages(client, chembl_ids):
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


def _total_units(source: str, queries: Mapping[str, list[str]]) -> int | None:
    if source in ("pubchem", "chembl"):
        return None
    return len(queries.get(source, []))


@dataclass
class _Plan:
    queries: dict[str, list[str]]
    cids: list[int]
    chembl_ids: list[str]


def _run_source(
    source: str, http: SourceHttp, plan: _Plan, pacer: pubchem.ThrottlePacer, advance: Advance
) -> SourceOutcome:
    queries = plan.queries.get(source, [])
    if source == "clinicaltrials":
        return fetch_clinicaltrials(http, queries, advance)
    if source == "pubmed":
        return fetch_pubmed(http, queries, advance)
    if source == "europepmc":
        return _fetch_paged_json(
            source, europepmc.iter_search_pages, ("resultList", "result"), http, queries, advance
        )
    if source == "openalex":
        return _fetch_paged_json(
            source, openalex.iter_works_pages, ("results",), http, queries, advance
        )
    if source == "crossref":
        return _fetch_paged_json(
            source, crossref.iter_works_pages, ("message", "items"), http, queries, advance
        )
    if source == "pubchem":
        return fetch_pubchem(http, plan.cids, pacer, advance)
    return fetch_chembl(http, plan.chembl_ids, advance)


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


def unfinished_snapshot(snapshots_dir: Path) -> Path | None:
    """The newest recorded snapshot when a refresh left it incomplete: the one to resume."""
    if not snapshots_dir.is_dir():
        return None
    folders = sorted(p for p in snapshots_dir.iterdir() if (p / snapshot.INFO_FILE).is_file())
    if not folders:
        return None
    info = json.loads((folders[-1] / snapshot.INFO_FILE).read_text(encoding="utf-8"))
    return folders[-1] if info.get("complete") is False else None


def _open_snapshot(data_dir: Path, now: datetime) -> tuple[Path, str]:
    """(folder, captured_at): resume an unfinished snapshot, else start a new one."""
    folder = unfinished_snapshot(data_dir / "snapshots")
    if folder is not None:
        info = json.loads((folder / snapshot.INFO_FILE).read_text(encoding="utf-8"))
        for temp in folder.glob("*/.*.part"):
            temp.unlink()
        return folder, str(info["captured_at"])
    folder = data_dir / "snapshots" / snapshot_stamp(now)
    folder.mkdir(parents=True, exist_ok=False)
    captured_at = now.date().isoformat()
    write_info(folder, captured_at, complete=False, notes="refresh in progress")
    return folder, captured_at


def refresh(
    data_dir: Path,
    base_urls: Mapping[str, str],
    creds: Credentials,
    now: datetime,
    *,
    settings: HttpSettings = HttpSettings(),
    reference_dir: Path = paths.REFERENCE_DIR,
    show_progress: bool = True,
) -> RefreshResult:
    """Record every live source into `data_dir/snapshots/<stamp>/`; complete only if all finish.

    Sources run concurrently, each inside its own client and pace. A source that fails for good
    leaves the snapshot marked incomplete; the result carries its one-line error. The next run
    resumes that snapshot: every page already recorded is read back, not fetched again.
    """
    folder, captured_at = _open_snapshot(data_dir, now)
    queries = load_queries(reference_dir)
    cids, chembl_ids = load_compound_ids(reference_dir)
    plan = _Plan(queries, cids, chembl_ids)
    recorder = ResponseRecorder(folder)
    pacer = pubchem.ThrottlePacer()
    clients = {
        source: SourceHttp(
            source,
            base_urls[source],
            min_interval=_min_interval(source, creds) * settings.pace,
            max_tries=settings.max_tries,
            timeout=httpx.Timeout(settings.timeout),
            backoff_base=settings.backoff_base,
            backoff_cap=settings.backoff_cap,
            default_params=_default_params(source, creds),
            recorder=recorder,
            on_response=pacer.on_response if source == "pubchem" else None,
        )
        for source in LIVE_SOURCES
    }
    outcomes: dict[str, SourceOutcome] = {}
    progress = _progress() if show_progress else None
    stop = threading.Event()

    def work(source: str) -> SourceOutcome:
        task = (
            progress.add_task(source, total=_total_units(source, queries))
            if progress is not None
            else None
        )

        def advance(n: int) -> None:
            if progress is not None and task is not None:
                progress.advance(task, n)
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
        return outcome

    try:
        if progress is not None:
            progress.start()
        with ThreadPoolExecutor(max_workers=len(LIVE_SOURCES)) as pool:
            for outcome in pool.map(work, LIVE_SOURCES):
                outcomes[outcome.source] = outcome
    finally:
        if progress is not None:
            progress.stop()
        for http in clients.values():
            http.close()
    _write_request_log(folder, outcomes)
    _write_strategy(folder, outcomes, captured_at)
    result = RefreshResult(folder, outcomes)
    if result.complete:
        shutil.copytree(previous_registries(data_dir / "snapshots", folder), folder / "registries")
        notes = "Recorded by kratom-evidence refresh from: " + ", ".join(
            f"{s}={_scheme_host(base_urls[s])}" for s in LIVE_SOURCES
        )
        write_info(folder, captured_at, complete=True, notes=notes)
    return result


def _scheme_host(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode()}{parts.path}"


def _one_line(exc: Exception, creds: Credentials) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in creds.secrets():
        text = text.replace(secret, "***")
    return text


def _write_request_log(folder: Path, outcomes: Mapping[str, SourceOutcome]) -> None:
    """requests.jsonl: one line per attempt, per source; a resumed run appends its own."""
    buffer = io.StringIO()
    for source in LIVE_SOURCES:
        outcome = outcomes.get(source)
        for entry in outcome.log if outcome else []:
            buffer.write(json.dumps({"source": source, **entry}, sort_keys=True) + "\n")
    with (folder / REQUEST_LOG).open("a", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())


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


def _write_strategy(folder: Path, outcomes: Mapping[str, SourceOutcome], captured_at: str) -> None:
    """search_strategy.json: the search as data, each query with its hit count per source."""
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
                **_timing(outcome.log),
            }
            for source, outcome in outcomes.items()
        },
    }
    (folder / SEARCH_STRATEGY).write_text(
        json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

"""Crossref: `/works` cursor paging with `mailto` (polite pool), and parsing of work records.

Crossref is the DOI registry: it knows every DOI's title, container, dates, type and the
updates (retractions, corrections) registered against it, but no PMID and no MeSH.

A search asks `query.bibliographic` in relevance order. Crossref matches any word of it, so each
hit goes through the relevance screen (`pipelines.sources.relevance`) and paging stops at the
bounds of data/reference/search_bounds.csv. Since 1 December 2025 list requests are limited to
3 a second with `mailto` (the polite pool) and 1 a second without
(https://www.crossref.org/blog/announcing-changes-to-rest-api-rate-limits/); the client keeps
to that and to whatever the `x-rate-limit-*` headers announce (`pipelines.http`).
"""

from __future__ import annotations

import html
import itertools
import re
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

import orjson

from pipelines.http import RateLimit
from pipelines.normalize.dedup import normalize_doi
from pipelines.sources import serving
from pipelines.sources.base import (
    Credentials,
    LiveRun,
    LiveSource,
    PublicationRank,
    RecordError,
    RestartQuery,
    SnapshotFormatError,
    SourceUnit,
    TableRows,
    load_json_file,
    query_prefix,
    raw_json,
)
from pipelines.sources.pubmed import date_from_parts
from pipelines.sources.relevance import Screen, words

SOURCE = "crossref"
TABLES = ("publications",)
"""Every staged table `parse_record` can return rows for."""
BASE_URL = "https://api.crossref.org"
WORKS_PATH = "/works"
ROWS = 1000
LIST_LIMITS = {"polite": 3, "public": 1}
"""List requests a second per pool (https://www.crossref.org/blog/announcing-changes-to-rest-api-rate-limits/)."""
WINDOW = 1.1
"""The one-second window, with a margin for jitter between our clock and the server's."""
POLITE_LIMIT = RateLimit(LIST_LIMITS["polite"], WINDOW)
PUBLIC_LIMIT = RateLimit(LIST_LIMITS["public"], WINDOW)
MIN_INTERVAL = WINDOW / LIST_LIMITS["polite"]
"""Seconds between request starts in the polite pool: evenly spread, never a burst of three."""
TOTAL = "total-results"
"""Where a /works page announces the query's hit count (every page; the first one is read)."""
KNOWN = "known DOIs"
"""search_strategy.json query name of the works asked by DOI (`look_up`)."""
LOOKUP_BATCH = 50
"""DOIs per `filter=doi:…` request: one list request, well inside URL length limits."""
SCREENED_FIELDS = ("title", "subtitle", "container-title", "short-container-title", "subject")
"""Where a work must name a topic term (with its abstract) to be kept."""

CROSSREF_TYPES: dict[str, str] = {
    "journal-article": "Journal Article",
    "book-chapter": "Book Chapter",
    "proceedings-article": "Congress",
    "posted-content": "Preprint",
    "dataset": "Dataset",
}
"""Crossref work types -> PubMed publication-type names, where one clearly corresponds."""

DATE_FIELDS = ("published-print", "issued", "published-online", "published")
RETRACTION_TYPES = ("retraction", "removal", "withdrawal")
CORRECTION_TYPES = ("correction", "erratum", "corrigendum")

_TAG = re.compile(r"<[^>]+>")


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Items of a `/works` list page, or the one work of a `/works/{doi}` body.

    Raises:
        SnapshotFormatError: not JSON or not a Crossref work / work-list message.
    """
    body = load_json_file(path)
    message = body.get("message") if isinstance(body, dict) else None
    kind = body.get("message-type") if isinstance(body, dict) else None
    if kind == "work-list" and isinstance(message, dict) and isinstance(message.get("items"), list):
        yield from message["items"]
    elif kind == "work" and isinstance(message, dict):
        yield message
    else:
        raise SnapshotFormatError(path, "not a Crossref work or work-list message")


def raw(record: Any) -> str:
    """A work as sorted-key JSON without `score`: Crossref scores a work against the query that
    found it, so one work found by two queries differs only there and is the same record."""
    if isinstance(record, dict) and "score" in record:
        record = {k: v for k, v in record.items() if k != "score"}
    return raw_json(record)


def record_key(record: dict[str, Any]) -> str | None:
    """`DOI:<doi>` of a work."""
    doi = normalize_doi(record.get("DOI")) if isinstance(record, dict) else None
    return f"DOI:{doi}" if doi else None


def parse_record(record: dict[str, Any]) -> TableRows:
    """One Crossref work -> a publications row (staging keys: abstract, update links).

    Raises:
        RecordError: not an object, or no DOI, or a DOI that is not one (no `10.` prefix).
    """
    if not isinstance(record, dict):
        raise RecordError("item is not a JSON object")
    doi = normalize_doi(record.get("DOI"))
    if doi is None and record.get("DOI") not in (None, ""):
        raise RecordError(f"DOI {record['DOI']!r} is not a DOI (10.<prefix>/<suffix>)")
    if doi is None:
        raise RecordError("work has no DOI")
    published, precision = _date(record)
    updates = _updates(record.get("updated-by"))
    notices = _updates(record.get("update-to"))
    crossref_type = record.get("type")
    return {
        "publications": [
            {
                "publication_id": f"DOI:{doi}",
                "pmid": None,
                "pmcid": None,
                "doi": doi,
                "openalex_id": None,
                "title": _first_text(record.get("title")),
                "journal": _first_text(record.get("short-container-title"))
                or _first_text(record.get("container-title")),
                "year": published.year if published else None,
                "publication_date": published,
                "publication_date_precision": precision,
                "first_author": _first_author(record.get("author")),
                "publication_types": [CROSSREF_TYPES[crossref_type]]
                if crossref_type in CROSSREF_TYPES
                else [],
                "mesh_terms": [],
                "keywords": [],
                "language": language_code(record.get("language")),
                "is_open_access": None,
                "cited_by_count": None,
                "is_retracted": bool(updates["retraction"]),
                "sources": [SOURCE],
                "abstract": _clean(record.get("abstract")),
                "retracted_by": updates["retraction"],
                "retracts": notices["retraction"],
                "corrected_by": updates["correction"],
                "corrects": notices["correction"],
            }
        ]
    }


ISO_639_1_TO_PUBMED: dict[str, str] = {
    "en": "eng",
    "de": "ger",
    "fr": "fre",
    "es": "spa",
    "it": "ita",
    "pt": "por",
    "nl": "dut",
    "ru": "rus",
    "zh": "chi",
    "ja": "jpn",
    "ko": "kor",
    "th": "tha",
    "ms": "may",
    "id": "ind",
    "tr": "tur",
    "pl": "pol",
}
"""Two-letter codes (Crossref, OpenAlex) -> the three-letter codes PubMed uses."""


def language_code(value: Any) -> str | None:
    """A language code in PubMed's three-letter form where known, else as given."""
    if not isinstance(value, str) or not value.strip():
        return None
    code = value.strip().lower()
    return ISO_639_1_TO_PUBMED.get(code, code)


def _clean(value: Any) -> str | None:
    """Text without JATS/HTML tags and entities, whitespace collapsed."""
    if not isinstance(value, str):
        return None
    text = " ".join(html.unescape(_TAG.sub(" ", value)).split())
    return text or None


def _first_text(values: Any) -> str | None:
    """Crossref gives titles as lists: the first non-empty one."""
    if isinstance(values, str):
        return _clean(values)
    for value in values if isinstance(values, list) else []:
        text = _clean(value)
        if text:
            return text
    return None


def _date(record: dict[str, Any]) -> tuple[Any, str | None]:
    """The print date, else issued/online: `date-parts` [[y], [y, m] or [y, m, d]]."""
    for name in DATE_FIELDS:
        value = record.get(name)
        parts = value.get("date-parts") if isinstance(value, dict) else None
        if not parts or not isinstance(parts[0], list) or not parts[0] or parts[0][0] is None:
            continue
        rest: list[str | None] = [str(p) for p in parts[0][1:3]] + [None, None]
        published, precision = date_from_parts(str(parts[0][0]), rest[0], rest[1])
        if published is not None:
            return published, precision
    return None, None


def _first_author(authors: Any) -> str | None:
    """'Family Initials' of the author marked first (else the first listed)."""
    if not isinstance(authors, list) or not authors:
        return None
    ordered = sorted(
        (a for a in authors if isinstance(a, dict)),
        key=lambda a: a.get("sequence") != "first",
    )
    for author in ordered:
        family = _clean(author.get("family"))
        if family:
            initials = initials_of(author.get("given"))
            return f"{family} {initials}" if initials else family
        name = _clean(author.get("name"))
        if name:
            return name
    return None


def initials_of(given: Any) -> str | None:
    """'Kirsten E.' -> 'KE'; 'Jean-Paul' -> 'JP'."""
    if not isinstance(given, str):
        return None
    letters = [part[0].upper() for part in re.split(r"[\s.\-]+", given) if part]
    return "".join(letters) or None


def _updates(items: Any) -> dict[str, list[str]]:
    """`updated-by` / `update-to` entries -> provisional ids by kind (retraction, correction)."""
    found: dict[str, set[str]] = {"retraction": set(), "correction": set()}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        doi = normalize_doi(item.get("DOI"))
        kind = str(item.get("type", "")).lower()
        if doi and kind in RETRACTION_TYPES:
            found["retraction"].add(f"DOI:{doi}")
        elif doi and kind in CORRECTION_TYPES:
            found["correction"].add(f"DOI:{doi}")
    return {key: sorted(values) for key, values in found.items()}


class JsonClient(Protocol):
    """The part of the shared client (`pipelines.http.SourceHttp`) the pager uses."""

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any: ...


def default_params(mailto: str) -> dict[str, str]:
    """`mailto` on every request puts us in Crossref's polite pool."""
    return {"mailto": mailto}


def iter_works_pages(http: JsonClient, query: str, rows: int = ROWS) -> Iterator[dict[str, Any]]:
    """`/works` pages for `query.bibliographic`, best first, with deep-paging cursors, until a
    page has no items (or the caller stops asking).

    An empty page ends the walk even when it carries a next-cursor: that is how Crossref says
    the results ran out, so no cursor is followed from an empty page. Pages are recorded as
    crossref/works-NNNN.json (the last, empty page too: it is what the source answered).
    """
    cursor: str | None = "*"
    for number in itertools.count(1):
        params = {
            "query.bibliographic": query,
            "sort": "score",
            "order": "desc",
            "rows": rows,
            "cursor": cursor,
        }
        body = http.get_json(WORKS_PATH, params, record_as=f"works-{number:04d}.json")
        yield body
        message = body.get("message") if isinstance(body, dict) else None
        items = message.get("items") if isinstance(message, dict) else None
        cursor = message.get("next-cursor") if isinstance(message, dict) else None
        if not items or not cursor:
            return


def screened_texts(record: Any) -> list[str | None]:
    """A work's title, subtitle, containers, subjects and abstract: what the screen reads."""
    if not isinstance(record, dict):
        return []
    texts: list[str | None] = [_clean(record.get("abstract"))]
    for name in SCREENED_FIELDS:
        value = record.get(name)
        texts.extend(_clean(v) for v in (value if isinstance(value, list) else [value]))
    return texts


def _judge_page(screen: Screen, query: str, body: Any, first: bool) -> bool:
    """Screen every item of a page; True when paging should stop after it. The `first` page
    of a search (and every look-up batch) announces its hits in `total-results`."""
    message = body.get("message") if isinstance(body, dict) else None
    if first and isinstance(message, dict):
        screen.announce(query, message.get(TOTAL))
    items = message.get("items") if isinstance(message, dict) else None
    items = items if isinstance(items, list) else []
    kept = sum(
        screen.judge(query, record_key(item), _doi(item), raw(item), screened_texts(item))
        for item in items
    )
    scores = [
        float(item["score"])
        for item in items
        if isinstance(item, dict) and isinstance(item.get("score"), int | float)
    ]
    return screen.page_done(query, kept, len(items), scores)


def _doi(record: Any) -> str | None:
    return normalize_doi(record.get("DOI")) if isinstance(record, dict) else None


def search(http: JsonClient, query: str, rows: int, screen: Screen) -> int:
    """Page through `query` until the results end or the screen says stop; hits seen."""
    for number, body in enumerate(iter_works_pages(http, query, rows)):
        if _judge_page(screen, query, body, first=number == 0):
            break
    return screen.tally(query).seen


def look_up(http: JsonClient, dois: Sequence[str], screen: Screen) -> int:
    """Known DOIs no search returned, asked `LOOKUP_BATCH` at a time with the `doi` filter
    (one list request per batch, no 404 for a DOI Crossref no longer has); hits seen."""
    for number, start in enumerate(range(0, len(dois), LOOKUP_BATCH), 1):
        batch = dois[start : start + LOOKUP_BATCH]
        params = {"filter": ",".join(f"doi:{doi}" for doi in batch), "rows": len(batch)}
        body = http.get_json(WORKS_PATH, params, record_as=f"works-{number:04d}.json")
        _judge_page(screen, KNOWN, body, first=True)
    return screen.tally(KNOWN).seen


def fetch(run: LiveRun) -> dict[str, int]:
    """Each topic query through its own prefixed client, screened and bounded, then the known
    DOIs no search returned; hits seen per query. A query whose works seen differ from the
    `total-results` Crossref announced, though no bound stopped it, gets a completeness
    warning (`Screen.shortfall`)."""
    screen = run.screen or Screen.keep_all()
    hits: dict[str, int] = {}
    for query in run.work:
        client = run.client(query_prefix(query))
        try:
            hits[query] = search(client, query, run.page_size or ROWS, screen)
        except RestartQuery:  # a resumed query must not follow an expired cursor
            screen.restart(query)
            hits[query] = search(client, query, run.page_size or ROWS, screen)
        _warn_shortfall(run, screen, query)
        run.advance(1)
    missing = [doi for doi in screen.relevance.lookup if doi not in screen.seen_dois]
    if missing:
        client = run.client(query_prefix(KNOWN))
        try:
            hits[KNOWN] = look_up(client, missing, screen)
        except RestartQuery:
            screen.restart(KNOWN)
            hits[KNOWN] = look_up(client, missing, screen)
        _warn_shortfall(run, screen, KNOWN)
    return hits


def _warn_shortfall(run: LiveRun, screen: Screen, query: str) -> None:
    warning = screen.shortfall(query, TOTAL)
    if warning is not None:
        run.warn(warning)


def live_params(creds: Credentials) -> dict[str, str]:
    """`mailto` when a contact is given (Crossref's polite pool)."""
    return default_params(creds.email) if creds.email else {}


def rate_limit(creds: Credentials) -> RateLimit:
    """3 list requests a second in the polite pool (`mailto`), 1 in the public pool."""
    return POLITE_LIMIT if creds.email else PUBLIC_LIMIT


def min_interval(creds: Credentials) -> float:
    """Requests spread evenly over the pool's window."""
    limit = rate_limit(creds)
    return limit.window / limit.requests


def combine(queries: Sequence[str]) -> str:
    """Crossref's queries have no boolean syntax but rank works matching any word."""
    return " ".join(queries)


def changed_since(query: str, since: date, until: date) -> tuple[str, dict[str, dict[str, str]]]:
    """The works filter `from-update-date` (REST API filters: "currently the same as
    from-deposit-date")."""
    return query, {WORKS_PATH: {"filter": f"from-update-date:{since.isoformat()}"}}


# --- served by the emulator -------------------------------------------------------------------


def updated(work: dict[str, Any]) -> str:
    """`deposited` date of a work: Crossref's from-update-date is "currently the same"."""
    deposited = work.get("deposited") if isinstance(work, dict) else None
    if not isinstance(deposited, dict):
        return ""
    stamp = deposited.get("date-time")
    if isinstance(stamp, str) and stamp:
        return stamp[:10]
    parts = (deposited.get("date-parts") or [[]])[0]
    if len(parts) == 3 and all(isinstance(p, int) for p in parts):
        return f"{parts[0]:04d}-{parts[1]:02d}-{parts[2]:02d}"
    return ""


def _served_works(doc: Any) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    message = doc.get("message", {})
    return list(message["items"]) if "items" in message else [message]


def cursor_invalid(cursor: str) -> serving.Reply:
    """Crossref's answer to a cursor it does not hold (expired after five minutes unused, or
    never issued): 404 `resource-failure` / `cursor-invalid`, the envelope of its real answer."""
    failure = {"type": "cursor-invalid", "value": cursor, "message": "Cursor is invalid"}
    body = {"status": "failed", "message-type": "resource-failure", "message": [failure]}
    return serving.Reply(404, orjson.dumps(body))


@dataclass
class Served:
    """The works the emulator serves, and the list requests each pool made in the last second."""

    works: list[dict[str, Any]]
    arrivals: dict[str, deque[float]] = field(
        default_factory=lambda: {pool: deque() for pool in LIST_LIMITS}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, pool: str, limit: int, now: float | None) -> bool:
        """Whether a list request of `pool` arriving `now` is within `limit` in the last
        second (counted when admitted: a refused one does not use up the allowance); always,
        for a request that did not come over the wire."""
        if now is None:
            return True
        with self.lock:
            recent = self.arrivals[pool]
            while recent and now - recent[0] >= 1.0:
                recent.popleft()
            if len(recent) >= limit:
                return False
            recent.append(now)
            return True


def load_served(files: Sequence[tuple[Path, serving.Keep]]) -> Served:
    """Every served work of the snapshot, in file order."""
    return Served(serving.json_records(_served_works)(files))


def _bibliographic(work: dict[str, Any]) -> str:
    """What `query.bibliographic` searches: titles, containers, authors, ISSNs and years
    (https://api.crossref.org/swagger-ui/index.html, /works `query.bibliographic`)."""
    parts: list[str | None] = []
    for name in ("title", "subtitle", "container-title", "short-container-title", "ISSN"):
        value = work.get(name)
        parts.extend(_clean(v) for v in (value if isinstance(value, list) else [value]))
    for author in work.get("author") or []:
        if isinstance(author, dict):
            parts.extend(_clean(author.get(k)) for k in ("given", "family", "name"))
    published, _ = _date(work)
    parts.append(str(published.year) if published else None)
    return " ".join(words(p) for p in parts if p)


def _scored(works: list[dict[str, Any]], query: str, plain: bool) -> list[dict[str, Any]]:
    """Works sharing any word with `query`, best first, each with a `score` as Crossref adds:
    here 20 times the share of the query's words it has (a stand-in for Crossref's own
    Elasticsearch score; only the order and the ratios matter to the client). A plain `query`
    also searches abstracts and subjects."""
    asked = list(dict.fromkeys(words(query).split()))
    scored: list[tuple[float, dict[str, Any]]] = []
    for work in works:
        text = _bibliographic(work)
        if plain:
            text += " ".join(words(t) for t in screened_texts(work) if t)
        found = sum(f" {word} " in text for word in asked)
        if asked and found:
            scored.append((round(20.0 * found / len(asked), 3), work))
    scored.sort(key=lambda pair: -pair[0])
    return [{**work, "score": score} for score, work in scored]


def _by_doi(works: list[dict[str, Any]], expression: str) -> list[dict[str, Any]] | None:
    """The works a `doi:` filter names (several `doi:` filters are ORed); None when the filter
    is not a DOI filter."""
    parts = [part.partition(":") for part in expression.split(",")]
    if not all(name.strip() == "doi" and value for name, _, value in parts):
        return None
    wanted = {normalize_doi(value.strip()) for _, _, value in parts}
    return [w for w in works if _doi(w) in wanted]


def _validation_failure(kind: str, value: str, text: str) -> serving.Reply:
    """Crossref's 400 envelope (`message-type: validation-failure`, a list of problems), as in
    the recorded bodies of ../shared/samples/crossref."""
    problem = {"type": kind, "value": value, "message": text}
    body = {"status": "failed", "message-type": "validation-failure", "message": [problem]}
    return serving.Reply(400, orjson.dumps(body))


def _limit_headers(limit: int) -> tuple[tuple[str, str], ...]:
    """The headers Crossref announces its limit in, on every answer."""
    return (("x-rate-limit-limit", str(limit)), ("x-rate-limit-interval", "1s"))


def _one_work(served: Served, request: serving.Request) -> serving.Reply:
    """/works/{doi}: the work in Crossref's `work` envelope; a field query is refused with
    Crossref's `parameter-not-allowed` 400 and an unknown DOI gets its plain-text 404 (both as
    in the recorded bodies of ../shared/samples/crossref). A single record is not a list
    request, so the list limit does not count it."""
    if any(name.startswith("query") for name in request.params):
        text = "This route does not support field query parameters"
        return _validation_failure("parameter-not-allowed", "query.*", text)
    doi = normalize_doi(unquote(request.path[len(WORKS_PATH) + 1 :]))
    work = next((w for w in served.works if doi is not None and _doi(w) == doi), None)
    if work is None:
        return serving.Reply(404, b"Resource not found.", "text/plain")
    head = {"status": "ok", "message-type": "work", "message-version": "1.0.0"}
    return serving.json_reply({**head, "message": work})


def answer(served: Served, request: serving.Request) -> serving.Reply:
    """/works with deep-paging cursors, like Crossref: `query.bibliographic` (or `query`) keeps
    works sharing any word with it, best first; a `doi:` filter names works; past the end, a page
    with no items. More list requests a second than the pool allows get a 429. /works/{doi}
    answers one work (`_one_work`)."""
    params = request.params
    pool = "polite" if params.get("mailto") else "public"
    limit = LIST_LIMITS[pool] * request.rate_scale
    headers = _limit_headers(limit)
    if request.path.startswith(WORKS_PATH + "/"):
        return replace(_one_work(served, request), headers=headers)
    if request.path != WORKS_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    if not served.admit(pool, limit, request.arrived):
        return serving.Reply(429, b"Too Many Requests", "text/plain", headers)
    rows = params.get("rows", "20")
    if not rows.isdigit() or int(rows) > ROWS:
        text = f"Integer specified as {rows} but must be an integer from 0 to {ROWS}."
        return replace(_validation_failure("integer-not-valid", rows, text), headers=headers)
    works = served.works
    expression = params.get("filter")
    named = _by_doi(works, expression) if expression else None
    if named is not None:
        works = named
    else:
        try:
            since = serving.since_filter(expression, "from-update-date")
        except ValueError as exc:
            return serving.error_reply(400, str(exc))
        if since is not None:
            works = [w for w in works if serving.within(updated(w), since, "MAX")]
    query = params.get("query.bibliographic") or params.get("query")
    if query:
        works = _scored(works, query, plain="query.bibliographic" not in params)
    size = int(rows)
    cursor, searched = params.get("cursor"), serving.search_key(params, "cursor")
    if cursor not in (None, "*") and not request.state.alive(SOURCE, searched, cursor):
        return replace(cursor_invalid(cursor), headers=headers)
    start = serving.offset(cursor)
    items = works[start : start + size]
    next_cursor = serving.token(start + len(items))
    request.state.issue(SOURCE, searched, next_cursor)
    message = {
        "facets": {},
        "total-results": len(works),
        "items": items,
        "items-per-page": size,
        "next-cursor": next_cursor,
    }
    head = {"status": "ok", "message-type": "work-list", "message-version": "1.0.0"}
    return replace(serving.json_reply({**head, "message": message}), headers=headers)


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".json",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_record,
    primary_table="publications",
    tables=TABLES,
    raw=raw,
    live=LiveSource(
        base_url=BASE_URL,
        fetch=fetch,
        emulator_path="/crossref",
        state_expires=True,
        min_interval=min_interval,
        rate_limit=rate_limit,
        default_params=live_params,
        combine=combine,
        changed_since=changed_since,
    ),
    emulation=serving.Emulation(load_served, answer),
    publication=PublicationRank(bibliographic=2, metrics=2),
)
"""Crossref works, as the pipeline sees them."""

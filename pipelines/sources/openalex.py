"""OpenAlex: `/works` search with cursor paging (`mailto`, optional `api_key`), and parsing.

OpenAlex is the reference for citation counts and open-access status; its ids link a work
to its PMID, PMCID and DOI, which is what lets the merge join it to the other sources.

`search` matches titles, abstracts and full text (https://developers.openalex.org/guides/searching),
so every hit goes through the relevance screen (`pipelines.sources.relevance`), as Crossref's do.
Since 13 February 2026 an API key is required for real use: without one OpenAlex allows $0.01 of
usage a day, and a search costs $1 per 1,000 calls, so about ten search requests
(https://developers.openalex.org/guides/authentication). Without `OPENALEX_API_KEY` the client
asks at most that many (search_bounds.csv `keyless_searches`), says so in one line, and stops
OpenAlex, never the refresh, when the budget is spent or OpenAlex refuses with a 429 ("Daily
limit exceeded", https://developers.openalex.org/api-reference/errors).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import orjson

from pipelines.http import PagingError, SourceError, page_url
from pipelines.normalize.dedup import (
    normalize_doi,
    normalize_openalex_id,
    normalize_pmcid,
    normalize_pmid,
    provisional_id,
)
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
from pipelines.sources.crossref import initials_of, language_code
from pipelines.sources.relevance import Screen, words

SOURCE = "openalex"
TABLES = ("publications",)
"""Every staged table `parse_record` can return rows for."""
BASE_URL = "https://api.openalex.org"
WORKS_PATH = "/works"
PER_PAGE = 100
MIN_INTERVAL = 0.1
"""10 requests a second: OpenAlex allows 100 (https://developers.openalex.org/api-reference/authentication)."""
KEYLESS_SEARCHES = 10
"""Search requests a day without an API key: $0.01 of usage at $1 per 1,000 searches."""
SCORE = "relevance_score"
TOTAL = "meta.count"
"""Where a /works page announces the search's hit count (read on its first page)."""
"""What OpenAlex adds to each result of a search: the work's relevance to that search."""

OPENALEX_TYPES: dict[str, str] = {
    "article": "Journal Article",
    "review": "Review",
    "letter": "Letter",
    "editorial": "Editorial",
    "erratum": "Published Erratum",
    "retraction": "Retraction of Publication",
    "preprint": "Preprint",
    "book-chapter": "Book Chapter",
}
"""OpenAlex work types -> PubMed publication-type names."""


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Works of a `/works` page (`{"meta", "results"}`) or the one work of `/works/{id}`.

    Raises:
        SnapshotFormatError: not JSON, or neither a works page nor a work.
    """
    body = load_json_file(path)
    if isinstance(body, dict) and isinstance(body.get("results"), list) and "meta" in body:
        yield from body["results"]
    elif isinstance(body, dict) and normalize_openalex_id(str(body.get("id") or "")):
        yield body
    else:
        raise SnapshotFormatError(path, "not an OpenAlex works page or work")


def raw(record: Any) -> str:
    """A work as sorted-key JSON without `relevance_score`, which belongs to the search that
    found it: the same work from two searches is the same record."""
    if isinstance(record, dict) and SCORE in record:
        record = {k: v for k, v in record.items() if k != SCORE}
    return raw_json(record)


def record_key(record: dict[str, Any]) -> str | None:
    """`OPENALEX:W<n>` of a work."""
    work_id = normalize_openalex_id(record.get("id")) if isinstance(record, dict) else None
    return f"OPENALEX:{work_id}" if work_id else None


def parse_record(record: dict[str, Any]) -> TableRows:
    """One OpenAlex work -> a publications row (staging key: abstract).

    Raises:
        RecordError: not an object, or no OpenAlex id, or an id that is not a work id (W<n>).
    """
    if not isinstance(record, dict):
        raise RecordError("work is not a JSON object")
    work_id = normalize_openalex_id(record.get("id"))
    if work_id is None and record.get("id") not in (None, ""):
        raise RecordError(f"OpenAlex id {record['id']!r} is not a work id (W<n>)")
    if work_id is None:
        raise RecordError("work has no OpenAlex id")
    ids = _dict(record.get("ids"))
    pmid = normalize_pmid(ids.get("pmid"))
    doi = normalize_doi(record.get("doi") or ids.get("doi"))
    published, precision = _date(record)
    access = _dict(record.get("open_access"))
    return {
        "publications": [
            {
                "publication_id": provisional_id(pmid, doi, work_id),
                "pmid": pmid,
                "pmcid": normalize_pmcid(ids.get("pmcid")),
                "doi": doi,
                "openalex_id": work_id,
                "title": _text(record.get("title")) or _text(record.get("display_name")),
                "journal": _journal(record),
                "year": published.year if published else _year(record),
                "publication_date": published,
                "publication_date_precision": precision,
                "first_author": _first_author(record.get("authorships")),
                "publication_types": [OPENALEX_TYPES[record["type"]]]
                if record.get("type") in OPENALEX_TYPES
                else [],
                "mesh_terms": _mesh(record.get("mesh")),
                "keywords": [],
                "language": language_code(record.get("language")),
                "is_open_access": access.get("is_oa")
                if isinstance(access.get("is_oa"), bool)
                else None,
                "cited_by_count": record.get("cited_by_count")
                if isinstance(record.get("cited_by_count"), int)
                else None,
                "is_retracted": record.get("is_retracted") is True,
                "sources": [SOURCE],
                "abstract": abstract_from_index(record.get("abstract_inverted_index")),
                "retracts": [],
                "retracted_by": [],
                "corrects": [],
                "corrected_by": [],
            }
        ]
    }


def abstract_from_index(index: Any) -> str | None:
    """Rebuild the abstract OpenAlex ships as {word: [positions]}."""
    if not isinstance(index, dict) or not index:
        return None
    placed: dict[int, str] = {}
    for word, positions in index.items():
        for position in positions if isinstance(positions, list) else []:
            if isinstance(position, int):
                placed[position] = word
    return " ".join(placed[p] for p in sorted(placed)) or None


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _year(record: dict[str, Any]) -> int | None:
    year = record.get("publication_year")
    return year if isinstance(year, int) else None


def _date(record: dict[str, Any]) -> tuple[date | None, str | None]:
    """publication_date is a full ISO date in OpenAlex; publication_year when it is missing."""
    text = record.get("publication_date")
    if isinstance(text, str):
        try:
            return date.fromisoformat(text), "day"
        except ValueError:
            pass
    year = _year(record)
    return (date(year, 1, 1), "year") if year else (None, None)


def _journal(record: dict[str, Any]) -> str | None:
    """primary_location.source.display_name (host_venue in older responses)."""
    location = record.get("primary_location")
    source = location.get("source") if isinstance(location, dict) else None
    if isinstance(source, dict) and _text(source.get("display_name")):
        return _text(source.get("display_name"))
    venue = record.get("host_venue")
    return _text(venue.get("display_name")) if isinstance(venue, dict) else None


def _first_author(authorships: Any) -> str | None:
    """'Surname Initials' from the first author's display name ('Kirsten E. Smith')."""
    if not isinstance(authorships, list):
        return None
    ordered = sorted(
        (a for a in authorships if isinstance(a, dict)),
        key=lambda a: a.get("author_position") != "first",
    )
    for authorship in ordered:
        author = authorship.get("author")
        name = _text(author.get("display_name")) if isinstance(author, dict) else None
        if name:
            *given, family = name.split(" ")
            initials = initials_of(" ".join(given))
            return f"{family} {initials}" if initials else family
    return None


def _mesh(items: Any) -> list[str]:
    seen: dict[str, None] = {}
    for item in items if isinstance(items, list) else []:
        name = _text(item.get("descriptor_name")) if isinstance(item, dict) else None
        if name:
            seen.setdefault(name, None)
    return list(seen)


class JsonClient(Protocol):
    """The part of the shared client (`pipelines.http.SourceHttp`) the pager uses."""

    base_url: str

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any: ...


def default_params(mailto: str, api_key: str | None = None) -> dict[str, str]:
    """`mailto` (polite pool) on every request, and the API key when one is configured."""
    params = {"mailto": mailto}
    if api_key:
        params["api_key"] = api_key
    return params


def iter_works_pages(
    http: JsonClient,
    search: str,
    per_page: int = PER_PAGE,
    spend: Callable[[], bool] = lambda: True,
) -> Iterator[dict[str, Any]]:
    """`/works` pages for `search`, following `meta.next_cursor` until it is null, or until
    `spend` says no request is left (the keyless budget).

    An empty page that still carries a cursor is followed; a cursor already used is a loop: an
    error naming the source and URL. Pages are recorded as openalex/works-NNNN.json.
    """
    cursor = "*"
    used = {cursor}
    for number in itertools.count(1):
        if not spend():
            return
        params: dict[str, Any] = {"search": search, "per-page": per_page, "cursor": cursor}
        body = http.get_json(WORKS_PATH, params, record_as=f"works-{number:04d}.json")
        yield body
        meta = body.get("meta") if isinstance(body, dict) else None
        next_cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
        if not next_cursor:
            return
        if next_cursor in used:
            raise PagingError(
                f"{SOURCE}: page {number} ({page_url(http.base_url, WORKS_PATH, params)}): "
                f"next_cursor {next_cursor!r} goes back to a page already fetched"
            )
        used.add(next_cursor)
        cursor = next_cursor


def screened_texts(record: Any) -> list[str | None]:
    """A work's title, abstract, source name, keywords and topics: what the screen reads."""
    if not isinstance(record, dict):
        return []
    texts = [
        _text(record.get("title")),
        _text(record.get("display_name")),
        abstract_from_index(record.get("abstract_inverted_index")),
        _journal(record),
    ]
    for name in ("keywords", "topics"):
        items = record.get(name)
        for item in items if isinstance(items, list) else []:
            texts.append(_text(item.get("display_name")) if isinstance(item, dict) else None)
    return texts


def _judge_page(screen: Screen, query: str, body: Any, first: bool) -> bool:
    """Screen every work of a page; True when paging should stop after it. The `first` page
    announces the search's hits in `meta.count`."""
    meta = body.get("meta") if isinstance(body, dict) else None
    if first and isinstance(meta, dict):
        screen.announce(query, meta.get("count"))
    results = body.get("results") if isinstance(body, dict) else None
    works = results if isinstance(results, list) else []
    kept = 0
    for work in works:
        ids = _dict(work.get("ids")) if isinstance(work, dict) else {}
        doi = normalize_doi(work.get("doi") or ids.get("doi")) if isinstance(work, dict) else None
        kept += screen.judge(query, record_key(work), doi, raw(work), screened_texts(work))
    scores = [
        float(w[SCORE])
        for w in works
        if isinstance(w, dict) and isinstance(w.get(SCORE), int | float)
    ]
    return screen.page_done(query, kept, len(works), scores)


def search(http: JsonClient, query: str, per_page: int, screen: Screen) -> int:
    """Page through `query` until the results end, the screen says stop or the keyless
    budget is spent; hits seen."""
    pages = iter_works_pages(http, query, per_page, lambda: screen.spend(query))
    for number, body in enumerate(pages):
        if _judge_page(screen, query, body, first=number == 0):
            break
    return screen.tally(query).seen


def fetch(run: LiveRun) -> dict[str, int]:
    """Each topic query through its own prefixed client, screened and bounded; hits seen.

    Without an API key (a keyless budget in the screen) OpenAlex stops, with a note, when the
    budget is spent or OpenAlex answers 429: the refresh goes on with what was recorded.
    """
    screen = run.screen or Screen.keep_all()
    hits: dict[str, int] = {}
    for query in run.work:
        if screen.budget == 0:
            break
        client = run.client(query_prefix(query))
        try:
            try:
                hits[query] = search(client, query, run.page_size or PER_PAGE, screen)
            except RestartQuery:  # a resumed query must not follow an expired cursor
                screen.restart(query)
                hits[query] = search(client, query, run.page_size or PER_PAGE, screen)
        except SourceError as exc:
            if screen.budget is None or "HTTP 429" not in str(exc):
                raise
            screen.note = f"OpenAlex refused keyless searches (HTTP 429, daily limit): {exc}"
            screen.tally(query).stopped = "keyless budget spent (HTTP 429)"
            hits[query] = screen.tally(query).seen
            break
        warning = screen.shortfall(query, TOTAL)
        if warning is not None:
            run.warn(warning)
        run.advance(1)
    asked = len(hits)
    if screen.budget is not None and screen.note is None:
        budget = screen.relevance.budget
        screen.note = KEYLESS_NOTE.format(budget=budget, asked=asked, total=len(run.work))
    return hits


KEYLESS_NOTE = (
    "no OPENALEX_API_KEY: OpenAlex allows about {budget} search requests a day without one "
    "(https://developers.openalex.org/guides/authentication); asked {asked} of {total} queries "
    "within that budget"
)
"""The one line a keyless refresh says about OpenAlex (stderr and search_strategy.json)."""


def _dict(value: Any) -> dict[str, Any]:
    """The value when it is an object, else an empty one (absent or malformed field)."""
    return value if isinstance(value, dict) else {}


OPENALEX_UNFILTERED = (
    "since-last without OPENALEX_API_KEY: OpenAlex filters on from_updated_date only for "
    "requests with an API key, so its combined query was asked in full"
)
"""search_strategy.json `note` of OpenAlex in a --since-last run without a key."""


def live_params(creds: Credentials) -> dict[str, str]:
    """`mailto` (the polite pool) and `api_key` when given."""
    key = creds.key(SOURCE)
    if creds.email:
        return default_params(creds.email, key)
    return {"api_key": key} if key else {}


def changed_since(query: str, since: date, until: date) -> tuple[str, dict[str, dict[str, str]]]:
    """The works filter `from_updated_date` (docs.openalex.org filter-works)."""
    return query, {WORKS_PATH: {"filter": f"from_updated_date:{since.isoformat()}"}}


def keyless(creds: Credentials) -> bool:
    """Asked without an API key: the keyless daily budget applies."""
    return not creds.key(SOURCE)


def unfiltered_note(creds: Credentials) -> str | None:
    """The live API refuses `from_updated_date` without an API key."""
    return None if creds.key(SOURCE) else OPENALEX_UNFILTERED


# --- served by the emulator -------------------------------------------------------------------


def updated(work: dict[str, Any]) -> str:
    """`updated_date` of a work, as a day."""
    return str(work.get("updated_date") or "")[:10]


def _served_works(doc: Any) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    return list(doc["results"]) if "results" in doc else [doc]


@dataclass
class Served:
    """The works the emulator serves, and the keyless search requests it has answered."""

    works: list[dict[str, Any]]
    keyless_searches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def charge_keyless(self) -> bool:
        """Count one keyless search; False once the day's budget is spent."""
        with self.lock:
            if self.keyless_searches >= KEYLESS_SEARCHES:
                return False
            self.keyless_searches += 1
            return True


def load_served(files: Sequence[tuple[Path, serving.Keep]]) -> Served:
    """Every served work of the snapshot, in file order."""
    return Served(serving.json_records(_served_works)(files))


_TOKEN = re.compile(r'\(|\)|"[^"]*"|[^\s()"]+')
Match = Callable[[str], bool]
"""A search's predicate on a work's searched text (in `words` form)."""


def _both(left: Match, right: Match) -> Match:
    return lambda text: left(text) and right(text)


def _either(left: Match, right: Match) -> Match:
    return lambda text: left(text) or right(text)


def _not(inner: Match) -> Match:
    return lambda text: not inner(text)


def _has(phrase: str) -> Match:
    wanted = words(phrase)
    return lambda text: bool(wanted.strip()) and wanted in text


class _Search:
    """A `search` expression as OpenAlex documents it: AND, OR, NOT (upper case), parentheses,
    double-quoted phrases; words not joined by an operator are ANDed
    (https://developers.openalex.org/guides/searching). Words match whole words, without the
    stemming OpenAlex adds."""

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = _TOKEN.findall(text)
        self.at = 0

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> str:
        self.at += 1
        return self.tokens[self.at - 1]

    def any_of(self) -> Match:
        """Terms joined by OR (the whole expression, or one in parentheses)."""
        match = self._all_of()
        while self._peek() == "OR":
            self._take()
            match = _either(match, self._all_of())
        return match

    def _all_of(self) -> Match:
        match = self._one()
        while self._peek() not in (None, "OR", ")"):
            if self._peek() == "AND":
                self._take()
            match = _both(match, self._one())
        return match

    def _one(self) -> Match:
        token = self._take() if self._peek() is not None else ""
        if token == "NOT":
            return _not(self._one())
        if token == "(":
            inner = self.any_of()
            if self._peek() == ")":
                self._take()
            return inner
        return _has(token.strip('"'))


def _searched(work: dict[str, Any]) -> str:
    """What `search` reads of a served work: title and abstract (full text is not served)."""
    parts = [_text(work.get("title")) or _text(work.get("display_name"))]
    parts.append(abstract_from_index(work.get("abstract_inverted_index")))
    return " ".join(words(p) for p in parts if p)


def _matching(works: list[dict[str, Any]], search: str) -> list[dict[str, Any]]:
    """Works the search matches, best first, each with a `relevance_score`: here the number of
    the search's words it has (a stand-in for OpenAlex's own score; the client reads only
    order and ratios)."""
    matches = _Search(search).any_of()
    asked = [w for w in words(search.replace('"', " ")).split() if w not in {"and", "or", "not"}]
    scored = []
    for work in works:
        text = _searched(work)
        if matches(text):
            scored.append((float(sum(f" {w} " in text for w in set(asked))), work))
    scored.sort(key=lambda pair: -pair[0])
    return [{**work, SCORE: score} for score, work in scored]


def _key_required() -> serving.Reply:
    """OpenAlex's refusal of `from_updated_date` without `api_key`.

    The filter is documented as needing an API key; the exact live answer was not seen. A 403
    with OpenAlex's documented error body (`error` and `message`) is what the emulator sends,
    and like any final 4xx it stops the client at once.
    """
    message = "The from_updated_date filter requires an API key (api_key parameter)."
    return serving.Reply(403, orjson.dumps({"error": "Forbidden", "message": message}))


def _cursor_invalid(cursor: str) -> serving.Reply:
    """A cursor OpenAlex no longer holds: a 400 in its documented error envelope (`error`,
    `message`, as its real 400 answers have); the exact live wording was not seen."""
    message = f"cursor {cursor!r} is invalid or has expired; start again from cursor=*"
    return serving.Reply(
        400, orjson.dumps({"error": "Invalid query parameters error.", "message": message})
    )


def _daily_limit() -> serving.Reply:
    """A 429 once the keyless day's searches are spent ("Daily limit exceeded" with the
    documented `error` / `message` body, https://developers.openalex.org/api-reference/errors)."""
    message = "Daily limit exceeded: searches without an API key are spent for today."
    body = {"error": "Rate limit exceeded", "message": message}
    return serving.Reply(429, orjson.dumps(body))


def answer(served: Served, request: serving.Request) -> serving.Reply:
    """/works with cursor paging: like OpenAlex, every page with results carries a
    next_cursor, and the end is a page with no results and a null one. `search` keeps the
    works it matches, best first; over the wire, keyless searches beyond the day's budget
    get a 429."""
    params = request.params
    if request.path != WORKS_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    try:
        since = serving.since_filter(params.get("filter"), "from_updated_date")
    except ValueError as exc:
        return serving.error_reply(400, str(exc))
    if since is not None and not params.get("api_key"):
        return _key_required()
    search = params.get("search")
    keyless_search = bool(search) and not params.get("api_key") and request.arrived is not None
    if keyless_search and not served.charge_keyless():
        return _daily_limit()
    works = served.works
    if since is not None:
        works = [w for w in works if serving.within(updated(w), since, "MAX")]
    if search:
        works = _matching(works, search)
    size = serving.int_param(params, "per-page", 25) or 25
    cursor, searched = params.get("cursor"), serving.search_key(params, "cursor")
    if cursor not in (None, "*") and not request.state.alive(SOURCE, searched, cursor):
        return _cursor_invalid(cursor)
    start = serving.offset(cursor)
    items = works[start : start + size]
    next_cursor = serving.token(start + len(items)) if items else None
    if next_cursor is not None:
        request.state.issue(SOURCE, searched, next_cursor)
    meta: dict[str, Any] = {"count": len(works), "per_page": size, "next_cursor": next_cursor}
    return serving.json_reply({"meta": meta, "results": items})


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
        emulator_path="/openalex",
        state_expires=True,
        min_interval=lambda creds: MIN_INTERVAL,
        default_params=live_params,
        changed_since=changed_since,
        unfiltered_note=unfiltered_note,
        keyless=keyless,
        api_key_env="OPENALEX_API_KEY",
    ),
    emulation=serving.Emulation(load_served, answer),
    # The reference for cited_by_count and is_open_access; last for bibliographic fields.
    publication=PublicationRank(bibliographic=3, metrics=0),
)
"""OpenAlex works, as the pipeline sees them."""

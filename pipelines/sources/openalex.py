"""OpenAlex: `/works` search with cursor paging (`mailto`, optional `api_key`), and parsing.

OpenAlex is the reference for citation counts and open-access status; its ids link a work
to its PMID, PMCID and DOI, which is what lets the merge join it to the other sources.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import orjson

from pipelines.http import PagingError, page_url
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
    LiveSource,
    PublicationRank,
    RecordError,
    SnapshotFormatError,
    SourceUnit,
    TableRows,
    load_json_file,
    paged_fetch,
)
from pipelines.sources.crossref import initials_of, language_code

SOURCE = "openalex"
TABLES = ("publications",)
"""Every staged table `parse_record` can return rows for."""
BASE_URL = "https://api.openalex.org"
WORKS_PATH = "/works"
PER_PAGE = 100
MIN_INTERVAL = 0.1
"""OpenAlex allows 10 requests per second."""

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
    http: JsonClient, search: str, per_page: int = PER_PAGE
) -> Iterator[dict[str, Any]]:
    """`/works` pages for `search`, following `meta.next_cursor` until it is null.

    An empty page that still carries a cursor is followed; a cursor already used is a loop: an
    error naming the source and URL. Pages are recorded as openalex/works-NNNN.json.
    """
    cursor = "*"
    used = {cursor}
    for number in itertools.count(1):
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
    if creds.email:
        return default_params(creds.email, creds.openalex_api_key)
    return {"api_key": creds.openalex_api_key} if creds.openalex_api_key else {}


def changed_since(query: str, since: date, until: date) -> tuple[str, dict[str, dict[str, str]]]:
    """The works filter `from_updated_date` (docs.openalex.org filter-works)."""
    return query, {WORKS_PATH: {"filter": f"from_updated_date:{since.isoformat()}"}}


def unfiltered_note(creds: Credentials) -> str | None:
    """The live API refuses `from_updated_date` without an API key."""
    return None if creds.openalex_api_key else OPENALEX_UNFILTERED


# --- served by the emulator -------------------------------------------------------------------


def updated(work: dict[str, Any]) -> str:
    """`updated_date` of a work, as a day."""
    return str(work.get("updated_date") or "")[:10]


def _served_works(doc: Any) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    return list(doc["results"]) if "results" in doc else [doc]


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


def answer(works: list[dict[str, Any]], request: serving.Request) -> serving.Reply:
    """/works with cursor paging: like OpenAlex, every page with results carries a
    next_cursor, and the end is a page with no results and a null one."""
    params = request.params
    if request.path != WORKS_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    try:
        since = serving.since_filter(params.get("filter"), "from_updated_date")
    except ValueError as exc:
        return serving.error_reply(400, str(exc))
    if since is not None and not params.get("api_key"):
        return _key_required()
    if since is not None:
        works = [w for w in works if serving.within(updated(w), since, "MAX")]
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
    live=LiveSource(
        base_url=BASE_URL,
        fetch=paged_fetch(iter_works_pages, ("results",), PER_PAGE),
        emulator_path="/openalex",
        state_expires=True,
        min_interval=lambda creds: MIN_INTERVAL,
        default_params=live_params,
        changed_since=changed_since,
        unfiltered_note=unfiltered_note,
    ),
    emulation=serving.Emulation(serving.json_records(_served_works), answer),
    # The reference for cited_by_count and is_open_access; last for bibliographic fields.
    publication=PublicationRank(bibliographic=3, metrics=0),
)
"""OpenAlex works, as the pipeline sees them."""

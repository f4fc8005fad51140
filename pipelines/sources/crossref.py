"""Crossref: `/works` cursor paging with `mailto` (polite pool), and parsing of work records.

Crossref is the DOI registry: it knows every DOI's title, container, dates, type and the
updates (retractions, corrections) registered against it, but no PMID and no MeSH.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import orjson

from pipelines.normalize.dedup import normalize_doi
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
from pipelines.sources.pubmed import date_from_parts

SOURCE = "crossref"
TABLES = ("publications",)
"""Every staged table `parse_record` can return rows for."""
BASE_URL = "https://api.crossref.org"
WORKS_PATH = "/works"
ROWS = 1000
MIN_INTERVAL = 0.1
"""Crossref's polite pool allows about 10 requests per second."""

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
    """`/works` pages for `query` with deep-paging cursors, until a page has no items.

    An empty page ends the walk even when it carries a next-cursor: that is how Crossref says
    the results ran out, so no cursor is followed from an empty page. Pages are recorded as
    crossref/works-NNNN.json (the last, empty page too: it is what the source answered).
    """
    cursor: str | None = "*"
    for number in itertools.count(1):
        params = {"query": query, "rows": rows, "cursor": cursor}
        body = http.get_json(WORKS_PATH, params, record_as=f"works-{number:04d}.json")
        yield body
        message = body.get("message") if isinstance(body, dict) else None
        items = message.get("items") if isinstance(message, dict) else None
        cursor = message.get("next-cursor") if isinstance(message, dict) else None
        if not items or not cursor:
            return


def live_params(creds: Credentials) -> dict[str, str]:
    """`mailto` when a contact is given (Crossref's polite pool)."""
    return default_params(creds.email) if creds.email else {}


def combine(queries: Sequence[str]) -> str:
    """Crossref's `query` has no boolean syntax but ranks works matching any word."""
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


def answer(works: list[dict[str, Any]], request: serving.Request) -> serving.Reply:
    """/works with deep-paging cursors; past the end, a page with no items."""
    params = request.params
    if request.path != WORKS_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    try:
        since = serving.since_filter(params.get("filter"), "from-update-date")
    except ValueError as exc:
        return serving.error_reply(400, str(exc))
    if since is not None:
        works = [w for w in works if serving.within(updated(w), since, "MAX")]
    size = serving.int_param(params, "rows", 20) or 20
    cursor, searched = params.get("cursor"), serving.search_key(params, "cursor")
    if cursor not in (None, "*") and not request.state.alive(SOURCE, searched, cursor):
        return cursor_invalid(cursor)
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
    return serving.json_reply({**head, "message": message})


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
        fetch=paged_fetch(iter_works_pages, ("message", "items"), ROWS),
        emulator_path="/crossref",
        state_expires=True,
        min_interval=lambda creds: MIN_INTERVAL,
        default_params=live_params,
        combine=combine,
        changed_since=changed_since,
    ),
    emulation=serving.Emulation(serving.json_records(_served_works), answer),
    publication=PublicationRank(bibliographic=2, metrics=2),
)
"""Crossref works, as the pipeline sees them."""

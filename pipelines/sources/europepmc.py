"""Europe PMC: REST search pages (format=json, resultType=core), cursorMark paging, parsing.

Core results carry PMID, PMCID, DOI, publication types, MeSH, keywords, the abstract and
comment/correction links; lite results (same envelope, fewer fields) parse too, with what
they have.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from pipelines.http import PagingError, page_url
from pipelines.normalize.dedup import normalize_doi, normalize_pmcid, normalize_pmid, provisional_id
from pipelines.sources import serving
from pipelines.sources.base import (
    LiveSource,
    PublicationRank,
    RecordError,
    SnapshotFormatError,
    SourceUnit,
    TableRows,
    load_json_file,
    paged_fetch,
)
from pipelines.sources.pubmed import date_from_parts, parse_text_date

SOURCE = "europepmc"
TABLES = ("publications",)
"""Every staged table `parse_record` can return rows for."""
BASE_URL = "https://www.ebi.ac.uk/europepmc/webservices/rest"
SEARCH_PATH = "/search"
PAGE_SIZE = 1000
MIN_INTERVAL = 0.1
"""Europe PMC publishes no rate; a tenth of a second keeps a harvest polite."""

RETRACTED_BY = ("Retraction in", "Retraction and republication in")
RETRACTS = ("Retraction of", "Retraction and republication of")
CORRECTED_BY = ("Erratum in",)
CORRECTS = ("Erratum for",)

_TAG = re.compile(r"<[^>]+>")


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The `resultList.result` items of one search page.

    Raises:
        SnapshotFormatError: not JSON, or no `resultList.result` list.
    """
    page = load_json_file(path)
    results = page.get("resultList", {}).get("result") if isinstance(page, dict) else None
    if not isinstance(results, list):
        raise SnapshotFormatError(path, "not a Europe PMC search page (no resultList.result)")
    yield from results


def record_key(record: dict[str, Any]) -> str | None:
    """`<source>:<id>` as Europe PMC names the record (MED:123, PMC:PMC123, PPR:PPR1)."""
    if not isinstance(record, dict) or not record.get("id"):
        return None
    return f"{record.get('source', '?')}:{record['id']}"


def parse_record(record: dict[str, Any]) -> TableRows:
    """One search result -> a publications row (staging keys: abstract, retraction links).

    Raises:
        RecordError: not an object; neither PMID nor DOI (no id a publication can take); a PMID
            that is not digits or a DOI that is not a DOI (an id is never guessed from those).
    """
    if not isinstance(record, dict):
        raise RecordError("result is not a JSON object")
    raw_pmid, raw_doi = record.get("pmid"), record.get("doi")
    if raw_pmid not in (None, "") and not str(raw_pmid).strip().isdigit():
        raise RecordError(f"PMID {raw_pmid!r} is not numeric")
    pmid = normalize_pmid(raw_pmid)
    doi = normalize_doi(raw_doi)
    if doi is None and raw_doi not in (None, ""):
        raise RecordError(f"DOI {raw_doi!r} is not a DOI (10.<prefix>/<suffix>)")
    publication_id = provisional_id(pmid, doi, None)
    if publication_id is None:
        raise RecordError("no PMID or DOI: the record cannot be identified as a publication")
    published, precision = _date(record)
    types = _pub_types(record)
    links = _comment_links(record)
    return {
        "publications": [
            {
                "publication_id": publication_id,
                "pmid": pmid,
                "pmcid": normalize_pmcid(record.get("pmcid")),
                "doi": doi,
                "openalex_id": None,
                "title": _clean(record.get("title")),
                "journal": _journal(record),
                "year": published.year if published else _int(record.get("pubYear")),
                "publication_date": published,
                "publication_date_precision": precision,
                "first_author": _first_author(record),
                "publication_types": types,
                "mesh_terms": _strings(
                    h.get("descriptorName")
                    for h in _items(record, "meshHeadingList", "meshHeading")
                ),
                "keywords": _strings(_items(record, "keywordList", "keyword")),
                "language": record.get("language") or None,
                "is_open_access": _yes_no(record.get("isOpenAccess")),
                "cited_by_count": None,
                "is_retracted": bool(links["retracted_by"])
                or "retracted publication" in {t.lower() for t in types},
                "sources": [SOURCE],
                "abstract": _clean(record.get("abstractText")),
                **links,
            }
        ]
    }


def _items(record: dict[str, Any], outer: str, inner: str) -> list[Any]:
    """Europe PMC wraps lists twice: {"meshHeadingList": {"meshHeading": [...]}}."""
    wrapper = record.get(outer)
    items = wrapper.get(inner) if isinstance(wrapper, dict) else None
    return items if isinstance(items, list) else []


def _strings(values: Any) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        text = _clean(value) if isinstance(value, str) else None
        if text:
            seen.setdefault(text, None)
    return list(seen)


def _clean(value: Any) -> str | None:
    """Text without inline HTML tags or entities, whitespace collapsed."""
    if not isinstance(value, str):
        return None
    text = " ".join(html.unescape(_TAG.sub(" ", value)).split())
    return text or None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _yes_no(value: Any) -> bool | None:
    return {"Y": True, "N": False}.get(value) if isinstance(value, str) else None


def _date(record: dict[str, Any]) -> tuple[Any, str | None]:
    """Print date as the journal gives it ("2020 Jun", "2020 Jun 29"), else the year."""
    info = _dict(record.get("journalInfo"))
    text = info.get("dateOfPublication")
    if isinstance(text, str) and text.strip():
        published, precision = parse_text_date(text)
        if published is not None:
            return published, precision
    year = info.get("yearOfPublication") or record.get("pubYear")
    if year and str(year).isdigit():
        month = info.get("monthOfPublication")
        return date_from_parts(str(year), str(month) if month else None, None)
    return None, None


def _journal(record: dict[str, Any]) -> str | None:
    """ISO abbreviation, else MEDLINE abbreviation, else title (lite: journalTitle)."""
    info = record.get("journalInfo")
    journal = info.get("journal") if isinstance(info, dict) else None
    if isinstance(journal, dict):
        for key in ("isoabbreviation", "medlineAbbreviation", "title"):
            text = _clean(journal.get(key))
            if text:
                return text
    return _clean(record.get("journalTitle"))


def _first_author(record: dict[str, Any]) -> str | None:
    """'Surname Initials' from authorList (core), else the head of authorString (lite)."""
    for author in _items(record, "authorList", "author"):
        if not isinstance(author, dict):
            continue
        last = _clean(author.get("lastName"))
        if last:
            initials = _clean(author.get("initials"))
            return f"{last} {initials}" if initials else last
        name = _clean(author.get("collectiveName")) or _clean(author.get("fullName"))
        if name:
            return name
    names = _clean(record.get("authorString"))
    if names:
        return names.split(",")[0].rstrip(".").strip() or None
    return None


def _pub_types(record: dict[str, Any]) -> list[str]:
    """pubTypeList.pubType (core), else the '; '-joined pubType string (lite)."""
    types = _strings(_items(record, "pubTypeList", "pubType"))
    if types:
        return types
    text = record.get("pubType")
    return _strings(text.split(";")) if isinstance(text, str) else []


def _comment_links(record: dict[str, Any]) -> dict[str, list[str]]:
    """Retraction and erratum links from commentCorrectionList, as provisional ids."""
    kinds = (
        ("retracted_by", RETRACTED_BY),
        ("retracts", RETRACTS),
        ("corrected_by", CORRECTED_BY),
        ("corrects", CORRECTS),
    )
    found: dict[str, set[str]] = {key: set() for key, _ in kinds}
    for item in _items(record, "commentCorrectionList", "commentCorrection"):
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type", ""))
        pmid = normalize_pmid(item.get("id")) if item.get("source") == "MED" else None
        for key, names in kinds:
            if kind in names and pmid:
                found[key].add(f"PMID:{pmid}")
    return {key: sorted(values) for key, values in found.items()}


class JsonClient(Protocol):
    """The part of the shared client (`pipelines.http.SourceHttp`) the pager uses."""

    base_url: str

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any: ...


def iter_search_pages(
    http: JsonClient, query: str, page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Core search pages for `query`, following cursorMark.

    Stops when the cursor repeats (Europe PMC hands back its own cursor on the last page), when
    there is no nextCursorMark, or when results run out: a page with an empty result list, or
    hitCount records received. A cursor that goes back to an earlier page is a loop: an error
    naming the source and URL. Pages are recorded as europepmc/search-NNNN.json.
    """
    cursor = "*"
    used = {cursor}
    received = 0
    for number in itertools.count(1):
        params: dict[str, Any] = {
            "query": query,
            "format": "json",
            "resultType": "core",
            "pageSize": page_size,
            "cursorMark": cursor,
        }
        body = http.get_json(SEARCH_PATH, params, record_as=f"search-{number:04d}.json")
        yield body
        results = _page_results(body)
        received += len(results)
        if not results or _all_received(body, received):
            return
        next_cursor = body.get("nextCursorMark") if isinstance(body, dict) else None
        if not next_cursor or next_cursor == cursor:
            return
        if next_cursor in used:
            raise PagingError(
                f"{SOURCE}: page {number} ({page_url(http.base_url, SEARCH_PATH, params)}): "
                f"nextCursorMark {next_cursor!r} goes back to a page already fetched"
            )
        used.add(next_cursor)
        cursor = next_cursor


def _page_results(body: Any) -> list[Any]:
    """The page's result list; empty when the page has none (the end of the results)."""
    results = _dict(_dict(body).get("resultList")).get("result")
    return results if isinstance(results, list) else []


def _all_received(body: Any, received: int) -> bool:
    """True once as many records arrived as the page's hitCount announces."""
    hits = _dict(body).get("hitCount")
    return isinstance(hits, int) and not isinstance(hits, bool) and received >= hits


def _dict(value: Any) -> dict[str, Any]:
    """The value when it is an object, else an empty one (absent or malformed field)."""
    return value if isinstance(value, dict) else {}


def changed_since(query: str, since: date, until: date) -> tuple[str, dict[str, dict[str, str]]]:
    """The search syntax field `UPDATE_DATE:[a TO b]` (europepmc.org/searchsyntax)."""
    return f"({query}) AND (UPDATE_DATE:[{since.isoformat()} TO {until.isoformat()}])", {}


# --- served by the emulator -------------------------------------------------------------------

_UPDATE_RANGE = re.compile(r"^UPDATE_DATE:\[\s*([\w-]+)\s+TO\s+([\w-]+)\s*\]$")


def updated(record: dict[str, Any]) -> str:
    """Latest of the dates a core result carries about its own record (revision, indexing)."""
    return max(str(record.get(k) or "") for k in ("dateOfRevision", "firstIndexDate"))


def _served_results(doc: Any) -> list[Any]:
    return list(doc.get("resultList", {}).get("result", [])) if isinstance(doc, dict) else []


def _fielded(token: str) -> serving.Match | None:
    """`UPDATE_DATE:[a TO b]`, the one field the refresh sends, as a date-window test."""
    window = _UPDATE_RANGE.match(token)
    if window is None:
        return None
    low, high = window.group(1), window.group(2)
    return lambda doc: serving.within(updated(doc.record), low, high)


def _expired(cursor: str) -> serving.Reply:
    """A cursorMark this server no longer knows: Europe PMC publishes no error body for it, so
    the emulator answers like its other bad requests, a 400 naming the parameter."""
    message = f"cursorMark {cursor!r} is not valid (expired or never issued)"
    return serving.error_reply(400, message)


def answer(results: list[serving.Doc], request: serving.Request) -> serving.Reply:
    """/search with cursorMark; the last page hands back its own cursor again.

    `query` is read with Europe PMC's search syntax (AND by default between words, quoted
    phrases, OR/NOT, `UPDATE_DATE:[a TO b]`: https://europepmc.org/searchsyntax); a cursor
    lives `Expiry.ttl` seconds after it was handed out for this query.
    """
    params = request.params
    if request.path != SEARCH_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    query = params.get("query", "")
    try:
        found = [doc.record for doc in serving.search(results, query, request.topics, _fielded)]
    except serving.QuerySyntaxError as exc:
        return serving.error_reply(400, str(exc))
    cursor = params.get("cursorMark", "*")
    if cursor != "*" and not request.state.alive(SOURCE, query, cursor):
        return _expired(cursor)
    size = serving.int_param(params, "pageSize", 25) or 25
    items, nxt = serving.page(found, serving.offset(cursor), size)
    next_cursor = serving.token(nxt) if nxt is not None else cursor
    request.state.issue(SOURCE, query, next_cursor)
    asked = {"queryString": query, "cursorMark": cursor, "pageSize": size}
    return serving.json_reply(
        {
            "hitCount": len(found),
            "nextCursorMark": next_cursor,
            "request": {**asked, "resultType": params.get("resultType", "lite")},
            "resultList": {"result": items},
        }
    )


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
        fetch=paged_fetch(
            iter_search_pages, ("resultList", "result"), PAGE_SIZE, total=("hitCount",)
        ),
        emulator_path="/europepmc/rest",
        state_expires=True,
        min_interval=lambda creds: MIN_INTERVAL,
        changed_since=changed_since,
    ),
    emulation=serving.Emulation(serving.json_docs(_served_results), answer),
    publication=PublicationRank(bibliographic=1, metrics=1),
)
"""Europe PMC core search results, as the pipeline sees them."""

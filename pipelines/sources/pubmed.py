"""PubMed: E-utilities paging (esearch with history, efetch XML in batches) and safe parsing.

efetch XML is read incrementally: each `<PubmedArticle>` (or `<PubmedBookArticle>`) is handed
out as soon as it is complete and detached from the tree, so memory stays flat, and any entity
declaration or external reference in the document stops the parse (defusedxml's guards, run on
the prolog, where alone they can occur). Real efetch output starts with a DOCTYPE naming NLM's
public DTD and no internal subset: that parses, and the DTD is never fetched.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder, XMLParser, tostring

import httpx
import orjson
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from defusedxml.ElementTree import DefusedXMLParser

from pipelines.http import InvalidBody, RateLimit
from pipelines.normalize.dedup import normalize_doi, normalize_pmcid, normalize_pmid
from pipelines.sources import serving
from pipelines.sources.base import (
    Credentials,
    LiveRun,
    LiveSource,
    PageClient,
    PublicationRank,
    RecordError,
    SnapshotFormatError,
    SourceUnit,
    TableRows,
    query_prefix,
    require_json,
)

SOURCE = "pubmed"
TABLES = ("publications", "study_publications")
"""Every staged table `parse_record` can return rows for."""
BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
ESEARCH_PATH = "/esearch.fcgi"
EFETCH_PATH = "/efetch.fcgi"
EFETCH_BATCH = 500
"""Articles per efetch request: NCBI allows up to 10,000; 500 keeps each body a few MB."""
ESEARCH_CAP = 9_999
"""Records one PubMed search pages through: "ESearch can only retrieve the first 10,000 records"
(https://www.ncbi.nlm.nih.gov/books/NBK25499/), and the live error says `retstart` cannot be
larger than 9998. A query over it is split by publication date (`date_ranges`)."""
FIRST_DAY = date(1800, 1, 1)
LAST_DAY = date(3000, 12, 31)
"""The publication-date span a split query starts from: PubMed's oldest records are from the
late 18th century, and 3000 is its usual stand-in for "up to now and forthcoming"."""
TOOL = "kratom-evidence"
RATE_MARGIN = 1.05
"""A window a little over one second: at exactly 1 s, network jitter lets NCBI count one more."""
RATE_LIMIT = RateLimit(3, RATE_MARGIN)
"""NCBI: at most 3 requests per second without an API key..."""
RATE_LIMIT_WITH_KEY = RateLimit(10, RATE_MARGIN)
"""...and at most 10 with one."""
CATCH_UP = 0.5
"""Spacing between starts as a share of 1/limit: well below 1, so the client can catch up after
a slow answer or a busy moment at up to twice the rate; the window still caps every second."""
MIN_INTERVAL = CATCH_UP / RATE_LIMIT.requests
MIN_INTERVAL_WITH_KEY = CATCH_UP / RATE_LIMIT_WITH_KEY.requests
ROOT_TAG = "PubmedArticleSet"
RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle")
PROLOG_CHUNK = 64 * 1024
"""Bytes read at a time while checking the prolog: efetch files start with it."""
FEED_CHUNK = 16 * 1024
"""Bytes fed to the parser between two hand-outs of complete records: about one real record,
so that few elements are alive at a time (64 kB and more measured slower on real records)."""
_RECORD_START = re.compile(rb"<(?:PubmedArticle|PubmedBookArticle)[\s>]")

MONTHS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_TEXT_DATE = re.compile(r"(\d{4})(?:[\s/-]+([A-Za-z]{3,})\.?)?(?:\s+(\d{1,2})\b)?")

RETRACTED_BY = ("RetractionIn", "RetractionAndRepublicationIn")
RETRACTS = ("RetractionOf", "RetractionAndRepublicationOf")
CORRECTED_BY = ("ErratumIn",)
CORRECTS = ("ErratumFor",)
LINK_OF_REF_TYPE: dict[str, str] = {
    ref_type: link
    for link, ref_types in (
        ("retracted_by", RETRACTED_BY),
        ("retracts", RETRACTS),
        ("corrected_by", CORRECTED_BY),
        ("corrects", CORRECTS),
    )
    for ref_type in ref_types
}
"""CommentsCorrections RefType -> the staging-only links column it fills."""

TRIAL_DATABANKS: dict[str, re.Pattern[str]] = {
    "ClinicalTrials.gov": re.compile(r"^NCT\d{8}$"),
    "ISRCTN": re.compile(r"^ISRCTN\d{8}$"),
    "ANZCTR": re.compile(r"^ACTRN\d{14}$"),
}
"""DataBankList banks that are trial registries, with the accession form a study id takes."""


def iter_records(path: Path) -> Iterator[Element]:
    """Stream the records of one efetch file: every child of `<PubmedArticleSet>`.

    Children other than articles (e.g. `DeleteCitation`) are yielded too, so that
    `parse_record` can send them to quarantine instead of silently dropping them. The prolog is
    checked first (`_refuse_entities`); the body is then built by ElementTree's C parser and C
    tree builder without parse events (two events per element, each a Python step, were most
    of the parse's Python time): the file is fed in chunks, and after each chunk every child of
    the root but the last is complete, so it is handed out and detached from the tree.

    Raises:
        SnapshotFormatError: not well-formed, another root, or entity declarations / external
            references (refused before anything is expanded or read).
    """
    builder = TreeBuilder()
    # A tree builder hands out its root only when the parse ends: this element holds it.
    document = builder.start("document", {})
    try:
        _refuse_entities(path)
        parser = XMLParser(target=builder)
        with path.open("rb") as handle:
            while chunk := handle.read(FEED_CHUNK):
                parser.feed(chunk)
                if len(document):
                    yield from _detach_children(_root(path, document), keep=1)
        parser.close()
    except DefusedXmlException as exc:
        raise SnapshotFormatError(
            path, f"unsafe XML refused ({type(exc).__name__}: {exc})"
        ) from exc
    except SyntaxError as exc:
        raise SnapshotFormatError(path, f"not well-formed XML: {exc}") from exc
    if not len(document):
        raise SnapshotFormatError(path, "empty document")
    yield from _detach_children(_root(path, document), keep=0)


def _root(path: Path, document: Element) -> Element:
    """The document's root element, which must be `<PubmedArticleSet>`."""
    root = document[0]
    if root.tag != ROOT_TAG:
        raise SnapshotFormatError(path, f"root element is <{root.tag}>, not <{ROOT_TAG}>")
    return root


def _detach_children(root: Element, keep: int) -> Iterator[Element]:
    """Yield the root's children in document order, each removed from the tree first, all but
    the last `keep` (while the parse goes on, the last child may still be open)."""
    while len(root) > keep:
        record = root[0]
        del root[0]
        yield record


class _RootReached(Exception):
    """The prolog is over: no entity can be declared after the root element starts."""


def _refuse_entities(path: Path) -> None:
    """Read the prolog with defusedxml's guards, stopping at the root element's start tag.

    Entities can only be declared in the DOCTYPE's internal subset, before the root element,
    and an external reference needs such a declaration (the external DTD is never read), so
    defusedxml's handlers on the prolog refuse exactly what they would refuse on the whole file.
    """
    guard = DefusedXMLParser(forbid_dtd=False, forbid_entities=True, forbid_external=True)

    def reached(*_: object) -> None:
        raise _RootReached

    guard.parser.StartElementHandler = reached
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(PROLOG_CHUNK):
                guard.feed(chunk)
    except _RootReached:
        return


def record_key(record: Element) -> str | None:
    """`PMID:<n>` of a record, for quarantine and logs."""
    text = _findtext(record, "MedlineCitation/PMID") or _findtext(record, "BookDocument/PMID")
    pmid = normalize_pmid(text) if _is_digits(text) else None
    return f"PMID:{pmid}" if pmid else None


def _is_digits(text: str | None) -> bool:
    """A PMID element holds ASCII digits only; anything else is not a PMID to normalise."""
    stripped = (text or "").strip()
    return stripped.isascii() and stripped.isdigit()


def record_raw(record: Element) -> str:
    """The record as XML text, for the quarantine table's `raw` column."""
    return tostring(record, encoding="unicode")


def parse_record(record: Element) -> TableRows:
    """One `<PubmedArticle>` or `<PubmedBookArticle>` -> publications (+ study_publications).

    Pure: no I/O. The publications row carries the staging-only keys `abstract`, `retracts`,
    `retracted_by`, `corrects` and `corrected_by` (provisional ids `PMID:<n>`).

    Raises:
        RecordError: not an article, or no PMID.
    """
    if record.tag == "PubmedArticle":
        row = _article_row(record)
    elif record.tag == "PubmedBookArticle":
        row = _book_row(record)
    else:
        raise RecordError(f"<{record.tag}> is not a PubMed article")
    links = [
        {
            "study_id": accession,
            "publication_id": row["publication_id"],
            "link_type": "report",
            "link_source": "pubmed_databank",
        }
        for accession in _trial_accessions(record)
    ]
    return {"publications": [row], "study_publications": links}


def _article_row(record: Element) -> dict[str, Any]:
    citation = _require(record, "MedlineCitation")
    article = _require(citation, "Article")
    pmid = _pmid(citation.findtext("PMID"))
    journal = article.find("Journal")
    pub_date = _find(journal, "JournalIssue/PubDate") if journal is not None else None
    published, precision = parse_pub_date(pub_date)
    if published is None:
        published, precision = parse_pub_date(article.find("ArticleDate"))
    id_list = _find(record, "PubmedData/ArticleIdList")
    doi = _article_id(id_list, "doi") or _elocation_doi(article)
    corrections = _all(citation, "CommentsCorrectionsList/CommentsCorrections")
    types = _texts(article, "PublicationTypeList/PublicationType")
    return {
        "publication_id": f"PMID:{pmid}",
        "pmid": pmid,
        "pmcid": normalize_pmcid(_article_id(id_list, "pmc")),
        "doi": doi,
        "openalex_id": None,
        "title": _text(article.find("ArticleTitle")) or _text(article.find("VernacularTitle")),
        "journal": _journal(citation, journal),
        "year": published.year if published else None,
        "publication_date": published,
        "publication_date_precision": precision,
        "first_author": _first_author(article.find("AuthorList")),
        "publication_types": types,
        "mesh_terms": _texts(citation, "MeshHeadingList/MeshHeading/DescriptorName"),
        "keywords": _texts(citation, "KeywordList/Keyword"),
        "language": article.findtext("Language"),
        "is_open_access": None,
        "cited_by_count": None,
        "is_retracted": _is_retracted(corrections, types),
        "sources": [SOURCE],
        "abstract": _abstract(article.find("Abstract")),
        **_comments(corrections),
    }


def _book_row(record: Element) -> dict[str, Any]:
    document = _require(record, "BookDocument")
    pmid = _pmid(document.findtext("PMID"))
    book = document.find("Book")
    published, precision = parse_pub_date(book.find("PubDate") if book is not None else None)
    id_list = _find(record, "PubmedBookData/ArticleIdList")
    authors = document.find("AuthorList")
    if authors is None and book is not None:
        authors = book.find("AuthorList")
    return {
        "publication_id": f"PMID:{pmid}",
        "pmid": pmid,
        "pmcid": normalize_pmcid(_article_id(id_list, "pmc")),
        "doi": normalize_doi(_article_id(id_list, "doi")),
        "openalex_id": None,
        "title": _text(document.find("ArticleTitle"))
        or (_text(book.find("BookTitle")) if book is not None else None),
        "journal": None,
        "year": published.year if published else None,
        "publication_date": published,
        "publication_date_precision": precision,
        "first_author": _first_author(authors),
        "publication_types": _texts(document, "PublicationType"),
        "mesh_terms": [],
        "keywords": _texts(document, "KeywordList/Keyword"),
        "language": document.findtext("Language"),
        "is_open_access": None,
        "cited_by_count": None,
        "is_retracted": False,
        "sources": [SOURCE],
        "abstract": _abstract(document.find("Abstract")),
        "retracts": [],
        "retracted_by": [],
        "corrects": [],
        "corrected_by": [],
    }


def _require(parent: Element, path: str) -> Element:
    found = parent.find(path)
    if found is None:
        raise RecordError(f"<{parent.tag}> has no <{path}>")
    return found


def _pmid(value: str | None) -> str:
    if value and value.strip() and not _is_digits(value):
        raise RecordError(f"PMID {value.strip()!r} is not numeric")
    pmid = normalize_pmid(value)
    if not pmid:
        raise RecordError("record has no PMID")
    return pmid


def _all(parent: Element, path: str) -> list[Element]:
    """The elements at a child path such as `A/B/C`, in document order.

    ElementTree's find, findall and findtext run in C for a single tag only; a longer path, and
    iterfind always, go through its Python path engine. One C findall per step instead.
    """
    found = [parent]
    for tag in path.split("/"):
        found = [child for element in found for child in element.findall(tag)]
    return found


def _find(parent: Element, path: str) -> Element | None:
    """The first element at a child path (as Element.find)."""
    found = _all(parent, path)
    return found[0] if found else None


def _findtext(parent: Element, path: str) -> str | None:
    """The text of the first element at a child path: "" when it has none, None when there is
    no such element (as Element.findtext)."""
    found = _find(parent, path)
    return None if found is None else found.text or ""


def _text(element: Element | None) -> str | None:
    """All text inside an element (inline <i>, <sub>, ... included), whitespace collapsed."""
    if element is None:
        return None
    text = "".join(element.itertext()) if len(element) else element.text or ""
    return " ".join(text.split()) or None


def _texts(parent: Element, path: str) -> list[str]:
    """Distinct non-empty texts at `path`, in document order."""
    seen: dict[str, None] = {}
    for element in _all(parent, path):
        text = _text(element)
        if text:
            seen.setdefault(text, None)
    return list(seen)


def _journal(citation: Element, journal: Element | None) -> str | None:
    """ISO abbreviation, else the MEDLINE title abbreviation, else the full title."""
    if journal is not None:
        iso = _text(journal.find("ISOAbbreviation"))
        if iso:
            return iso
    medline_ta = _text(_find(citation, "MedlineJournalInfo/MedlineTA"))
    if medline_ta:
        return medline_ta
    return _text(journal.find("Title")) if journal is not None else None


def _first_author(authors: Element | None) -> str | None:
    """'Surname Initials' of the first valid author, or the collective name."""
    if authors is None:
        return None
    for author in authors.findall("Author"):
        if author.get("ValidYN") == "N":
            continue
        last = _text(author.find("LastName"))
        if last:
            initials = _text(author.find("Initials"))
            return f"{last} {initials}" if initials else last
        collective = _text(author.find("CollectiveName"))
        if collective:
            return collective
    return None


def _abstract(abstract: Element | None) -> str | None:
    """Abstract text; structured sections become 'LABEL: text' paragraphs."""
    if abstract is None:
        return None
    parts = []
    for section in abstract.findall("AbstractText"):
        text = _text(section)
        if not text:
            continue
        label = section.get("Label")
        parts.append(f"{label}: {text}" if label else text)
    return "\n".join(parts) or None


def _article_id(id_list: Element | None, id_type: str) -> str | None:
    if id_list is None:
        return None
    for element in id_list.findall("ArticleId"):
        if element.get("IdType") == id_type and element.text and element.text.strip():
            value = element.text.strip()
            return normalize_doi(value) if id_type == "doi" else value
    return None


def _elocation_doi(article: Element) -> str | None:
    for element in article.findall("ELocationID"):
        if element.get("EIdType") == "doi" and element.get("ValidYN", "Y") == "Y":
            return normalize_doi(element.text)
    return None


def _comments(corrections: list[Element]) -> dict[str, list[str]]:
    """Retraction and erratum links from CommentsCorrections, as provisional ids."""
    found: dict[str, set[str]] = {
        link: set() for link in ("retracted_by", "retracts", "corrected_by", "corrects")
    }
    for item in corrections:
        link = LINK_OF_REF_TYPE.get(item.get("RefType", ""))
        pmid = normalize_pmid(item.findtext("PMID")) if link else None
        if link and pmid:
            found[link].add(f"PMID:{pmid}")
    return {key: sorted(values) for key, values in found.items()}


def _is_retracted(corrections: list[Element], publication_types: list[str]) -> bool:
    """A RetractionIn link (with or without the notice's PMID) or the Retracted type."""
    return any(item.get("RefType") in RETRACTED_BY for item in corrections) or (
        "Retracted Publication" in publication_types
    )


def _trial_accessions(record: Element) -> list[str]:
    """Trial registry accession numbers from DataBankList, in the form a study id takes."""
    accessions: dict[str, None] = {}
    for bank in _all(record, "MedlineCitation/Article/DataBankList/DataBank"):
        pattern = TRIAL_DATABANKS.get((bank.findtext("DataBankName") or "").strip())
        if pattern is None:
            continue
        for number in _all(bank, "AccessionNumberList/AccessionNumber"):
            value = (number.text or "").strip().upper()
            if pattern.match(value):
                accessions.setdefault(value, None)
    return list(accessions)


def parse_pub_date(element: Element | None) -> tuple[date | None, str | None]:
    """A PubDate-like element -> (first day of the period, precision).

    Handles Year/Month/Day (month as number or name), Year + Season (year precision: seasons
    differ by hemisphere), and MedlineDate text ("2019 Mar-Apr", "1998 Dec-1999 Jan").
    """
    if element is None:
        return None, None
    medline = element.findtext("MedlineDate")
    if medline:
        return parse_text_date(medline)
    year = (element.findtext("Year") or "").strip()
    if not year.isdigit():
        return None, None
    return date_from_parts(year, element.findtext("Month"), element.findtext("Day"))


def date_from_parts(
    year: str, month: str | None, day: str | None
) -> tuple[date | None, str | None]:
    """(date, precision) from text parts; an invalid month or day lowers the precision."""
    try:
        y = int(year)
    except ValueError:
        return None, None
    m = _month(month)
    if m is None:
        return date(y, 1, 1), "year"
    if day and day.strip().isdigit():
        try:
            return date(y, m, int(day)), "day"
        except ValueError:
            pass
    return date(y, m, 1), "month"


def parse_text_date(text: str) -> tuple[date | None, str | None]:
    """Free-text dates: '2019 Mar-Apr' -> 2019-03-01 month; '2000 Spring' -> 2000 year."""
    match = _TEXT_DATE.search(text)
    if not match:
        return None, None
    year, month, day = match.groups()
    if _month(month) is None:
        day = None
    return date_from_parts(year, month, day)


def _month(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        number = int(value)
        return number if 1 <= number <= 12 else None
    return MONTHS.get(value[:3].lower())


@dataclass(frozen=True)
class SearchResult:
    """What esearch with usehistory=y hands back: a hit count and the server-side result set."""

    count: int
    webenv: str
    query_key: str
    dropped: tuple[str, ...] = ()
    """Phrases PubMed left out of the search (`errorlist.phrasesnotfound`) though it ran."""


class SearchError(ValueError):
    """esearch answered without a usable history (an error message, or no WebEnv), or a query
    cannot be split under the esearch cap."""


def min_interval(api_key: str | None) -> float:
    """Seconds between request starts, just under NCBI's 1/3 s (1/10 s with an API key)."""
    return MIN_INTERVAL_WITH_KEY if api_key else MIN_INTERVAL


def rate_limit(api_key: str | None) -> RateLimit:
    """NCBI's limit: 3 requests in any second, or 10 with an API key."""
    return RATE_LIMIT_WITH_KEY if api_key else RATE_LIMIT


def count_records(body: bytes) -> int:
    """Articles in an efetch body already checked to be a well-formed <PubmedArticleSet>.

    Counting start tags is exact there (records never nest) and spares a second full parse
    in the fetch thread, where CPU time delays the next paced request.
    """
    return len(_RECORD_START.findall(body))


def default_params(email: str, api_key: str | None = None, tool: str = TOOL) -> dict[str, str]:
    """Parameters NCBI asks on every E-utilities request; the key only when there is one."""
    params = {"tool": tool, "email": email}
    if api_key:
        params["api_key"] = api_key
    return params


def esearch(http: PageClient, term: str) -> SearchResult:
    """Run the query once and keep the result on NCBI's history server.

    The esearch body is not recorded: it is not an efetch document, and the snapshot's
    pubmed/ folder holds only those. A body with an `ERROR` or an `error` never gets here: the
    client's body check has it retried (see `check_body`).
    """
    params = {"db": "pubmed", "term": term, "usehistory": "y", "retmode": "json", "retmax": 0}
    body = http.get_json(ESEARCH_PATH, params, record_as=None)
    result = body.get("esearchresult") if isinstance(body, dict) else None
    if not isinstance(result, dict) or result.get("ERROR") or not result.get("webenv"):
        problem = result.get("ERROR") if isinstance(result, dict) else "no esearchresult"
        raise SearchError(f"PubMed esearch for {term!r} failed: {problem or 'no WebEnv'}")
    errors = result.get("errorlist")
    dropped = errors.get("phrasesnotfound") if isinstance(errors, dict) else None
    return SearchResult(
        int(result.get("count", 0)),
        result["webenv"],
        str(result["querykey"]),
        tuple(str(p) for p in dropped) if isinstance(dropped, list) else (),
    )


def in_dates(term: str, low: date, high: date) -> str:
    """`term` restricted to publications dated `low`..`high` (the `[dp]` range syntax)."""
    return f"({term}) AND ({low:%Y/%m/%d}:{high:%Y/%m/%d}[dp])"


def date_ranges(
    http: PageClient, term: str, cap: int, low: date = FIRST_DAY, high: date = LAST_DAY
) -> Iterator[tuple[str, SearchResult]]:
    """(term, its search) for consecutive publication-date ranges of at most `cap` hits each.

    A range over the cap is halved until each part fits, oldest first; empty ranges are left
    out. A single day still over the cap cannot be split further: a SearchError says so.
    """
    sub = in_dates(term, low, high)
    found = esearch(http, sub)
    if found.count == 0:
        return
    if found.count <= cap:
        yield sub, found
        return
    if low == high:
        raise SearchError(
            f"PubMed query {term!r} has {found.count} records published on {low:%Y-%m-%d}, "
            f"over the {cap} one search can page through: narrow the query"
        )
    middle = low + (high - low) // 2
    yield from date_ranges(http, term, cap, low, middle)
    yield from date_ranges(http, term, cap, middle + timedelta(days=1), high)


def searches(
    http: PageClient, term: str, cap: int, warn: Callable[[str], None]
) -> Iterator[SearchResult]:
    """The searches that together cover every hit of `term`: the query itself when its count
    is within `cap`, else its publication-date ranges (`date_ranges`).

    Warns when PubMed dropped phrases from the query, and when the date ranges add up to a
    count other than the whole query's (records without a usable publication date).
    """
    found = esearch(http, term)
    if found.dropped:
        warn(f"query {term!r}: PubMed left out phrases it did not find: {list(found.dropped)}")
    if found.count <= cap:
        yield found
        return
    covered = 0
    for _, part in date_ranges(http, term, cap):
        covered += part.count
        yield part
    if covered != found.count:
        warn(
            f"query {term!r}: count announced {found.count}, "
            f"{covered} in its publication-date ranges"
        )


def iter_efetch_pages(
    http: PageClient,
    term: str,
    batch: int = EFETCH_BATCH,
    cap: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[bytes]:
    """efetch XML bodies for every hit of `term`, `batch` articles at a time.

    Each body is recorded as pubmed/efetch-NNNN.xml. Paging uses the history server
    (WebEnv + query_key) with retstart/retmax, so the result set cannot shift between pages.
    A query over the esearch cap (`cap`, default ESEARCH_CAP) is fetched range by range of
    publication dates. The history is opened anew by every run: a resumed refresh never
    follows a WebEnv an earlier run got (they expire on NCBI's side).
    """
    number = itertools.count(1)
    limit = cap if cap is not None else ESEARCH_CAP
    for found in searches(http, term, limit, warn or _ignore):
        for retstart in range(0, found.count, batch):
            params = {
                "db": "pubmed",
                "query_key": found.query_key,
                "WebEnv": found.webenv,
                "retstart": retstart,
                "retmax": batch,
                "retmode": "xml",
            }
            name = f"efetch-{next(number):04d}.xml"
            yield http.get_bytes(EFETCH_PATH, params, record_as=name)


def _ignore(message: str) -> None:
    return None


def check_body(response: httpx.Response) -> None:
    """efetch XML must parse and be a <PubmedArticleSet>; esearch answers JSON without `ERROR`.

    E-utilities answers a transient backend failure inside a 200 (`esearchresult.ERROR`, e.g.
    "Search Backend failed") and throttles a client over its rate (429, documented at
    https://nlmportal.dynamics365portals.us/kbArticle/?pn=KA-05510) with the body
    `{"error": "API rate limit exceeded", ...}` (a recorded one is in the shared samples): both
    raise InvalidBody, so the client retries them with back-off, within its bounded tries,
    instead of ending the refresh.
    """
    if response.url.path.endswith(ESEARCH_PATH):
        body = require_json(response)
        problem = _eutils_error(body)
        if problem is not None:
            raise InvalidBody(problem)
        return
    if response.content.lstrip().startswith(b"{"):
        problem = _eutils_error(require_json(response))
        raise InvalidBody(problem or "JSON where efetch XML was expected")
    try:
        root = SafeET.fromstring(response.content, forbid_dtd=False)
    except Exception as exc:
        raise InvalidBody(f"not efetch XML ({type(exc).__name__})") from None
    if root.tag != ROOT_TAG:
        raise InvalidBody(f"root is <{root.tag}>, not <{ROOT_TAG}>")


def _eutils_error(body: Any) -> str | None:
    """The error an E-utilities JSON body carries (throttling or esearch ERROR), if any."""
    if not isinstance(body, dict):
        return "esearch body is not a JSON object"
    if isinstance(body.get("error"), str):
        return f"E-utilities: {body['error']}"
    result = body.get("esearchresult")
    if isinstance(result, dict) and result.get("ERROR"):
        return f"esearch ERROR: {' '.join(str(result['ERROR']).split())}"
    return None


def live_params(creds: Credentials) -> dict[str, str]:
    """`tool` always; `email` and `api_key` when given (E-utilities usage guidelines)."""
    params = {"tool": TOOL}
    if creds.email:
        params["email"] = creds.email
    key = creds.key(SOURCE)
    if key:
        params["api_key"] = key
    return params


def fetch(run: LiveRun) -> dict[str, int]:
    """esearch + efetch batches per query, pages prefixed by query; articles per query."""
    hits: dict[str, int] = {}
    for query in run.work:
        client = run.client(query_prefix(query))
        pages = iter_efetch_pages(client, query, run.page_size or EFETCH_BATCH, warn=run.warn)
        hits[query] = sum(count_records(body) for body in pages)
        run.advance(1)
    return hits


def changed_since(query: str, since: date, until: date) -> tuple[str, dict[str, dict[str, str]]]:
    """esearch `datetype=mdat&mindate&maxdate` (YYYY/MM/DD, both required)."""
    window = {"mindate": since.strftime("%Y/%m/%d"), "maxdate": until.strftime("%Y/%m/%d")}
    return query, {ESEARCH_PATH: {"datetype": "mdat", **window}}


# --- served by the emulator -------------------------------------------------------------------

DEFAULT_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>]*>")
_WEBENV = "MCID_"
_DATE_RANGE = re.compile(r"^(\d{4}(?:/\d{1,2}){0,2}):(\d{4}(?:/\d{1,2}){0,2})\[(?:dp|pdat)\]$")
_CAP_ERROR = (
    "Search Backend failed: Exception:\n'retstart' cannot be larger than {last}. For PubMed, "
    "ESearch can only retrieve the first {cap} records matching the query."
)
"""The in-band esearch error past the cap, as E-utilities words it (at HTTP 200)."""


@dataclass
class Served:
    """The efetch records of a snapshot as the emulator serves them."""

    articles: list[bytes] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    """Per article, its modification date (YYYY-MM-DD, empty when the XML carries none)."""
    published: list[str] = field(default_factory=list)
    """Per article, its publication date (ISO, as precise as PubDate is; `[dp]` ranges)."""
    docs: list[serving.Doc] = field(default_factory=list)
    """Per article, its text to search; `record` is the article's index."""
    doctype: str = DEFAULT_DOCTYPE
    allowance: serving.Allowance = field(default_factory=serving.Allowance)
    """Requests per second per caller (NCBI's limit), over the wire."""


def article_bytes(element: Element) -> bytes:
    """One efetch record as it sits in an emulated <PubmedArticleSet>."""
    element.tail = "\n"
    return tostring(element, encoding="utf-8", xml_declaration=False)


def efetch_document(doctype: str, articles: Sequence[bytes]) -> bytes:
    """An efetch XML body around `articles`, in the layout every emulated page has."""
    head = [b'<?xml version="1.0" ?>\n', doctype.encode(), b"\n<PubmedArticleSet>\n"]
    return b"".join([*head, *articles, b"</PubmedArticleSet>\n"])


def modified_date(record: Element) -> str:
    """When NCBI last changed the record (`datetype=mdat`): DateRevised, else DateCompleted."""
    for tag in ("DateRevised", "DateCompleted"):
        parts = [
            record.findtext(f"MedlineCitation/{tag}/{p}") or "" for p in ("Year", "Month", "Day")
        ]
        if all(p.strip().isdigit() for p in parts):
            year, month, day = (int(p) for p in parts)
            return f"{year:04d}-{month:02d}-{day:02d}"
    return ""


def published_date(record: Element) -> str:
    """The journal issue's publication date (`[dp]`) as an ISO day; a date given only to the
    year or month counts as its first day, so consecutive day ranges never both find it."""
    published, _ = parse_pub_date(
        record.find("MedlineCitation/Article/Journal/JournalIssue/PubDate")
    )
    return published.isoformat() if published is not None else ""


def load_served(files: Sequence[tuple[Path, serving.Keep]]) -> Served:
    """Every kept record of the efetch files, with the last file's DOCTYPE."""
    served = Served()
    for path, keep in files:
        body = path.read_bytes()
        doctype = _DOCTYPE.search(body)
        if doctype:
            served.doctype = doctype.group(0).decode()
        for child in SafeET.fromstring(body, forbid_dtd=False):
            if keep(child):
                served.docs.append(serving.Doc.of(len(served.articles), " ".join(child.itertext())))
                served.modified.append(modified_date(child))
                served.published.append(published_date(child))
                served.articles.append(article_bytes(child))
    return served


def _window(params: dict[str, str]) -> tuple[str, str] | None:
    """esearch `datetype=mdat&mindate&maxdate` as an ISO date pair; None when not filtered."""
    low, high = params.get("mindate"), params.get("maxdate")
    if low is None and high is None:
        return None
    if params.get("datetype") != "mdat" or not low or not high:
        raise ValueError("datetype=mdat with both mindate and maxdate is all this emulator filters")
    return _slash_day(low), _slash_day(high)


def _slash_day(value: str) -> str:
    parts = value.strip().split("/")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"not an E-utilities date: {value!r}")
    return "-".join([f"{int(parts[0]):04d}", *(f"{int(p):02d}" for p in parts[1:])])


def _fielded(served: Served) -> serving.Fielded:
    """`YYYY/MM/DD:YYYY/MM/DD[dp]` in a term: a publication-date range."""

    def read(token: str) -> serving.Match | None:
        found = _DATE_RANGE.match(token)
        if found is None:
            return None
        low, high = _slash_day(found.group(1)), _slash_day(found.group(2))

        def match(doc: serving.Doc) -> bool:
            day = served.published[doc.record]
            return bool(day) and low <= day[: len(low)] and day[: len(high)] <= high

        return match

    return read


def _hits(
    served: Served, term: str, window: tuple[str, str] | None, topics: Sequence[str]
) -> list[int]:
    """Indexes of the articles `term` finds, inside the `mdat` window when there is one."""
    found = [doc.record for doc in serving.search(served.docs, term, topics, _fielded(served))]
    if window is None:
        return found
    return [i for i in found if serving.within(served.modified[i], *window)]


def _webenv(term: str, window: tuple[str, str] | None) -> str:
    """The history of one search, named by what it searched (so efetch can page it again)."""
    asked = orjson.dumps([term, *(window or ())])
    return _WEBENV + base64.urlsafe_b64encode(asked).decode().rstrip("=")


def _search_of(webenv: str) -> tuple[str, tuple[str, str] | None] | None:
    """(term, window) a WebEnv this emulator handed out stands for; None for a foreign one."""
    if not webenv.startswith(_WEBENV):
        return None
    code = webenv[len(_WEBENV) :]
    try:
        asked = orjson.loads(base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(asked, list) or len(asked) not in (1, 3):
        return None
    return str(asked[0]), (str(asked[1]), str(asked[2])) if len(asked) == 3 else None


def _esearch_error(message: str) -> serving.Reply:
    """E-utilities' in-band failure: HTTP 200 with `esearchresult.ERROR`."""
    return serving.json_reply({"esearchresult": {"ERROR": message}})


def _history_lost() -> serving.Reply:
    """efetch with a WebEnv the server no longer holds (expired, or never handed out)."""
    return serving.Reply(400, b"<ERROR>Unable to obtain query #1</ERROR>", "text/xml")


KEYLESS_CALLER = "127.0.0.1"
"""Who a request without `api_key` is counted as: NCBI counts those per IP address."""
LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"
"""NCBI states the caller's limit and what is left of it on every E-utilities answer (seen in
answers quoted at https://github.com/mtisza1/Cenote-Taker2/issues/18 and read by
https://github.com/sckott/pytaxize/pull/69)."""


def answer(served: Served, request: serving.Request) -> serving.Reply:
    """E-utilities behind NCBI's rate limit: 3 requests a second per IP address without an API
    key, 10 per key with one (https://support.nlm.nih.gov/kbArticle/?pn=KA-05510); beyond it a
    429 with E-utilities' throttling body, `{"error": "API rate limit exceeded", "api-key",
    "count", "limit"}` (a recorded one is in the shared samples). Every answer states the limit
    in NCBI's `X-RateLimit-*` headers."""
    key = request.params.get("api_key")
    limit = rate_limit(key).requests * request.rate_scale
    caller = key or KEYLESS_CALLER
    admitted, count = served.allowance.take(caller, limit, request.arrived)
    remaining = max(limit - count, 0)
    headers = ((LIMIT_HEADER, str(limit)), (REMAINING_HEADER, str(remaining)))
    if not admitted:
        body = {"error": "API rate limit exceeded", "api-key": caller}
        body |= {"count": str(count), "limit": str(limit)}
        return serving.Reply(429, orjson.dumps(body), headers=headers)
    return replace(_eutils_answer(served, request), headers=headers)


def _eutils_answer(served: Served, request: serving.Request) -> serving.Reply:
    """esearch (usehistory=y, JSON) and efetch (retstart/retmax, XML).

    esearch finds the articles whose text the term matches (PubMed ANDs words by default;
    `[dp]` date ranges are read) inside a `datetype=mdat` window; the WebEnv names that search,
    lives `Expiry.ttl` seconds, and efetch pages its hits up to `result_cap` records.
    """
    params = request.params
    cap = request.result_cap
    if request.path == ESEARCH_PATH:
        term = params.get("term", "")
        try:
            window = _window(params)
            hits = _hits(served, term, window, request.topics)
        except ValueError as exc:
            return _esearch_error(str(exc))
        if cap is not None and serving.int_param(params, "retstart", 0) >= cap:
            return _esearch_error(_CAP_ERROR.format(last=cap - 1, cap=f"{cap:,}"))
        webenv = _webenv(term, window)
        request.state.issue(SOURCE, webenv)
        result = {
            "count": str(len(hits)),
            "retmax": "0",
            "retstart": "0",
            "idlist": [],
            "querykey": "1",
            "webenv": webenv,
        }
        header = {"type": "esearch", "version": "0.3"}
        return serving.json_reply({"header": header, "esearchresult": result})
    if request.path != EFETCH_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    webenv = params.get("WebEnv", "")
    search = _search_of(webenv)
    if search is None or params.get("query_key") != "1":
        return _history_lost()
    if not request.state.alive(SOURCE, webenv):
        return _history_lost()
    start = serving.int_param(params, "retstart", 0)
    if cap is not None and start >= cap:
        message = _CAP_ERROR.format(last=cap - 1, cap=f"{cap:,}")
        return serving.Reply(400, f"<ERROR>{message}</ERROR>".encode(), "text/xml")
    try:
        hits = _hits(served, search[0], search[1], request.topics)
    except ValueError:
        return _history_lost()
    stop = start + serving.int_param(params, "retmax", 20)
    if cap is not None:
        stop = min(stop, cap)
    body = efetch_document(served.doctype, [served.articles[i] for i in hits[start:stop]])
    return serving.Reply(200, body, "text/xml; charset=UTF-8")


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".xml",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_record,
    primary_table="publications",
    tables=TABLES,
    raw=record_raw,
    live=LiveSource(
        base_url=BASE_URL,
        fetch=fetch,
        emulator_path="/pubmed",
        min_interval=lambda creds: min_interval(creds.key(SOURCE)),
        check_body=check_body,
        rate_limit=lambda creds: rate_limit(creds.key(SOURCE)),
        default_params=live_params,
        changed_since=changed_since,
        api_key_env="NCBI_API_KEY",
    ),
    emulation=serving.Emulation(load_served, answer),
    # First for bibliographic fields (indexed records); PubMed gives no citation counts.
    publication=PublicationRank(bibliographic=0, metrics=3),
)
"""PubMed through E-utilities (esearch history + efetch XML), as the pipeline sees it."""

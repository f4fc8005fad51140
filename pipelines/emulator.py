"""An offline stand-in for every live source: serves a snapshot over each source's real protocol.

`kratom-evidence serve-snapshot DIR` answers any search with every record of that source in the
snapshot, paged the way the real API pages (ClinicalTrials.gov pageToken, E-utilities history,
Europe PMC cursorMark, OpenAlex and Crossref cursors, PubChem only the asked CIDs, ChEMBL
page_meta.next).
A change-window filter (what `refresh --since-last` sends) narrows that to the records whose own
date field lies in the window; a record without one counts as unchanged. Like the live API,
OpenAlex refuses `from_updated_date` unless the request carries an `api_key`.
With `faults` it answers a seeded share of requests the way real APIs fail, so a refresh can be
tested against 429s, 5xx, resets, stalls, cut-off bodies and HTML error pages.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree.ElementTree import Element, tostring

import orjson
from defusedxml import ElementTree as SafeET

from pipelines import snapshot
from pipelines.sources import SOURCES

FAULT_KINDS: tuple[str, ...] = (
    "http500",
    "http502",
    "http503",
    "http429_seconds",
    "http429_date",
    "reset",
    "stall",
    "truncated",
    "html200",
)
"""Ways a real API fails; each faulted request gets one, chosen by the seeded generator."""

DEFAULT_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>]*>")
_WEBENV = "MCID_emulator"
_HTML_ERROR = b"<html><head><title>502 Bad Gateway</title></head><body>busy</body></html>"


@dataclass
class SnapshotRecords:
    """Every record of a snapshot, per source, in file order; what the emulator serves."""

    captured_at: str
    records: dict[str, list[Any]] = field(default_factory=dict)
    pubchem_properties: list[dict[str, Any]] = field(default_factory=list)
    pubchem_synonyms: list[dict[str, Any]] = field(default_factory=list)
    pubmed_articles: list[bytes] = field(default_factory=list)
    pubmed_modified: list[str] = field(default_factory=list)
    """Per article, its modification date (YYYY-MM-DD, empty when the XML carries none)."""
    pubmed_doctype: str = DEFAULT_DOCTYPE

    def of(self, source: str) -> list[Any]:
        """Records of a JSON source; none when the snapshot has no such folder."""
        return self.records.get(source, [])


def _json_items(source: str, doc: Any) -> list[Any]:
    """The records inside one JSON body of `source` (a list page or a single record)."""
    if not isinstance(doc, dict):
        return []
    if source == "clinicaltrials":
        return list(doc["studies"]) if "studies" in doc else [doc]
    if source == "europepmc":
        return list(doc.get("resultList", {}).get("result", []))
    if source == "openalex":
        return list(doc["results"]) if "results" in doc else [doc]
    if source == "crossref":
        message = doc.get("message", {})
        return list(message["items"]) if "items" in message else [message]
    if source == "chembl":
        return list(doc.get("activities", []))
    return []


def load_snapshot(snapshot_dir: Path) -> SnapshotRecords:
    """Read every record of every served source of `snapshot_dir` into memory.

    A record SNAPSHOT.json lists as superseded (a `--since-last` snapshot) is not served: the
    newer record that replaces it is.
    """
    from pipelines.snapshot import superseded_records

    info = json.loads((snapshot_dir / snapshot.INFO_FILE).read_text(encoding="utf-8"))
    loaded = SnapshotRecords(captured_at=str(info["captured_at"]))
    superseded = superseded_records(snapshot_dir)

    def current(source: str, path: Path) -> Callable[[Any], bool]:
        gone = superseded.get(f"{source}/{path.name}", frozenset())
        return lambda record: not gone or SOURCES[source].record_key(record) not in gone

    for source in ("clinicaltrials", "europepmc", "openalex", "crossref", "chembl"):
        for path in snapshot.source_files(snapshot_dir, source):
            doc = json.loads(path.read_bytes())
            kept = filter(current(source, path), _json_items(source, doc))
            loaded.records.setdefault(source, []).extend(kept)
    for path in snapshot.source_files(snapshot_dir, "pubchem"):
        doc = json.loads(path.read_bytes())
        keep = current("pubchem", path)
        for key, items, target in (
            ("PropertyTable", "Properties", loaded.pubchem_properties),
            ("InformationList", "Information", loaded.pubchem_synonyms),
        ):
            target.extend(i for i in doc.get(key, {}).get(items, []) if keep({key: {items: [i]}}))
    for path in snapshot.source_files(snapshot_dir, "pubmed"):
        body = path.read_bytes()
        doctype = _DOCTYPE.search(body)
        if doctype:
            loaded.pubmed_doctype = doctype.group(0).decode()
        keep = current("pubmed", path)
        for child in SafeET.fromstring(body, forbid_dtd=False):
            if keep(child):
                loaded.pubmed_modified.append(pubmed_modified(child))
                loaded.pubmed_articles.append(article_bytes(child))
    return loaded


def article_bytes(element: Element) -> bytes:
    """One efetch record as it sits in an emulated <PubmedArticleSet>."""
    element.tail = "\n"
    return tostring(element, encoding="utf-8", xml_declaration=False)


def efetch_document(doctype: str, articles: Sequence[bytes]) -> bytes:
    """An efetch XML body around `articles`, in the layout every emulated page has."""
    head = [b'<?xml version="1.0" ?>\n', doctype.encode(), b"\n<PubmedArticleSet>\n"]
    return b"".join([*head, *articles, b"</PubmedArticleSet>\n"])


def pubmed_modified(record: Element) -> str:
    """When NCBI last changed the record (`datetype=mdat`): DateRevised, else DateCompleted."""
    for tag in ("DateRevised", "DateCompleted"):
        parts = [
            record.findtext(f"MedlineCitation/{tag}/{p}") or "" for p in ("Year", "Month", "Day")
        ]
        if all(p.strip().isdigit() for p in parts):
            year, month, day = (int(p) for p in parts)
            return f"{year:04d}-{month:02d}-{day:02d}"
    return ""


def crossref_updated(work: dict[str, Any]) -> str:
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


def europepmc_updated(record: dict[str, Any]) -> str:
    """Latest of the dates a core result carries about its own record (revision, indexing)."""
    dates = [str(record.get(k) or "") for k in ("dateOfRevision", "firstIndexDate")]
    return max(dates)


def openalex_updated(work: dict[str, Any]) -> str:
    """`updated_date` of a work, as a day."""
    return str(work.get("updated_date") or "")[:10]


def within(value: str, low: str, high: str) -> bool:
    """An ISO date inside [low, high] (either bound may be MIN / MAX); no date is outside."""
    if not value:
        return False
    return (low == "MIN" or value >= low) and (high == "MAX" or value[: len(high)] <= high)


def since_filter(expression: str | None, name: str) -> str | None:
    """The date of a `filter=<name>:<date>` parameter (OpenAlex, Crossref); None without one.

    Any other filter is refused with a ValueError rather than silently ignored.
    """
    if not expression:
        return None
    since = None
    for part in expression.split(","):
        key, _, value = part.partition(":")
        if key.strip() != name or not _ISO_DAY.match(value.strip()):
            raise ValueError(f"unsupported filter {part!r}")
        since = value.strip()[:10]
    return since


def _pubmed_window(params: dict[str, str]) -> tuple[str, str] | None:
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


@dataclass(frozen=True)
class Reply:
    """What the handler sends: status, headers and body."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(doc: Any) -> Reply:
    """A JSON answer, encoded compactly and fast: an emulator that is slow to answer would
    show up as the client's lost throughput."""
    return Reply(200, orjson.dumps(doc))


def _error(status: int, message: str) -> Reply:
    return Reply(status, json.dumps({"error": message}).encode(), "application/json")


def _int(params: dict[str, str], name: str, default: int) -> int:
    try:
        return max(0, int(params.get(name, default)))
    except ValueError:
        return default


def _token(offset: int) -> str:
    return f"o{offset}"


def _offset(token: str | None) -> int:
    if not token or token == "*" or not token.startswith("o") or not token[1:].isdigit():
        return 0
    return int(token[1:])


def _page(items: list[Any], offset: int, size: int) -> tuple[list[Any], int | None]:
    """Items from `offset` and the next offset, None on the last page."""
    end = offset + size
    return items[offset:end], (end if end < len(items) else None)


_RANGE = re.compile(r"^AREA\[(\w+)\]RANGE\[([\w-]+),\s*([\w-]+)\]$")
_UPDATE_RANGE = re.compile(r"UPDATE_DATE:\[\s*([\w-]+)\s+TO\s+([\w-]+)\s*\]")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DATE_FIELDS = {
    "LastUpdatePostDate": "lastUpdatePostDateStruct",
    "StudyFirstPostDate": "studyFirstPostDateStruct",
    "ResultsFirstPostDate": "resultsFirstPostDateStruct",
    "StartDate": "startDateStruct",
}


def study_filter(expression: str | None) -> Callable[[dict[str, Any]], bool]:
    """A ClinicalTrials.gov `filter.advanced` date range (`AREA[LastUpdatePostDate]RANGE[a,b]`).

    Bounds are ISO dates or MIN / MAX; other Essie expressions are refused with a ValueError.
    """
    if not expression:
        return lambda study: True
    match = _RANGE.match(expression.strip())
    if match is None or match.group(1) not in _DATE_FIELDS:
        raise ValueError(f"unsupported filter.advanced {expression!r}")
    struct, low, high = _DATE_FIELDS[match.group(1)], match.group(2), match.group(3)

    def keep(study: dict[str, Any]) -> bool:
        status = study.get("protocolSection", {}).get("statusModule", {})
        return within(str(status.get(struct, {}).get("date") or ""), low, high)

    return keep


def _by_cid(entries: list[dict[str, Any]], cids: Sequence[int]) -> list[dict[str, Any]]:
    """The entries of the asked CIDs, in the order asked (each CID once, as PUG REST answers)."""
    held: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        cid = entry.get("CID") if isinstance(entry, dict) else None
        if isinstance(cid, int | str) and str(cid).isdigit():
            held.setdefault(int(cid), []).append(entry)
    return [entry for cid in dict.fromkeys(cids) for entry in held.get(cid, [])]


def _not_found() -> Reply:
    """PUG REST's answer when none of the asked CIDs exists."""
    fault = {"Code": "PUGREST.NotFound", "Message": "No records found for the given CID(s)"}
    return Reply(404, orjson.dumps({"Fault": fault}))


def _openalex_key_required() -> Reply:
    """OpenAlex's refusal of `from_updated_date` without `api_key`.

    The filter is documented as needing an API key; the exact live answer was not seen. A 403
    with OpenAlex's documented error body (`error` and `message`) is what this emulator sends,
    and like any final 4xx it stops the client at once.
    """
    message = "The from_updated_date filter requires an API key (api_key parameter)."
    return Reply(403, orjson.dumps({"error": "Forbidden", "message": message}))


class SnapshotApi:
    """The request router: pure answers from loaded records, no sockets."""

    def __init__(self, data: SnapshotRecords) -> None:
        self.data = data
        self.routes: dict[str, Callable[[str, dict[str, str]], Reply]] = {
            "clinicaltrials": self.clinicaltrials,
            "pubmed": self.pubmed,
            "europepmc": self.europepmc,
            "openalex": self.openalex,
            "crossref": self.crossref,
            "pubchem": self.pubchem,
            "chembl": self.chembl,
        }

    def answer(self, target: str) -> Reply:
        """The reply to a GET of `target` (path and query)."""
        parts = urlsplit(target)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        source, _, rest = parts.path.lstrip("/").partition("/")
        route = self.routes.get(source)
        if route is None:
            return _error(404, f"no source {source!r} here")
        return route("/" + rest, params)

    def clinicaltrials(self, path: str, params: dict[str, str]) -> Reply:
        """GET /api/v2/studies (pageToken paging) and /api/v2/version."""
        if path == "/api/v2/version":
            stamp = f"{self.data.captured_at}T00:00:00"
            return _json({"apiVersion": "2.0.0-emulator", "dataTimestamp": stamp})
        if path != "/api/v2/studies":
            return _error(404, f"unknown path {path}")
        size = _int(params, "pageSize", 10) or 10
        try:
            keep = study_filter(params.get("filter.advanced"))
        except ValueError as exc:
            return _error(400, str(exc))
        studies = [s for s in self.data.of("clinicaltrials") if keep(s)]
        items, nxt = _page(studies, _offset(params.get("pageToken")), size)
        doc: dict[str, Any] = {"studies": items}
        if nxt is not None:
            doc["nextPageToken"] = _token(nxt)
        if params.get("countTotal") == "true":
            doc["totalCount"] = len(studies)
        return _json(doc)

    def pubmed(self, path: str, params: dict[str, str]) -> Reply:
        """E-utilities esearch (usehistory=y, JSON) and efetch (retstart/retmax, XML).

        A `datetype=mdat` window travels inside the WebEnv, so efetch pages the same hits.
        """
        if path == "/esearch.fcgi":
            try:
                window = _pubmed_window(params)
            except ValueError as exc:
                return _json({"esearchresult": {"ERROR": str(exc)}})
            webenv = _WEBENV if window is None else f"{_WEBENV}:{window[0]}:{window[1]}"
            result = {
                "count": str(len(self._pubmed_hits(window))),
                "retmax": "0",
                "retstart": "0",
                "idlist": [],
                "querykey": "1",
                "webenv": webenv,
            }
            return _json({"header": {"type": "esearch", "version": "0.3"}, "esearchresult": result})
        if path != "/efetch.fcgi":
            return _error(404, f"unknown path {path}")
        webenv = params.get("WebEnv", "")
        base, _, window_text = webenv.partition(":")
        low, _, high = window_text.partition(":")
        if base != _WEBENV or params.get("query_key") != "1" or bool(window_text) != bool(high):
            return Reply(400, b"<ERROR>Unable to obtain query #1</ERROR>", "text/xml")
        hits = self._pubmed_hits((low, high) if window_text else None)
        start = _int(params, "retstart", 0)
        articles = hits[start : start + _int(params, "retmax", 20)]
        body = efetch_document(self.data.pubmed_doctype, articles)
        return Reply(200, body, "text/xml; charset=UTF-8")

    def _pubmed_hits(self, window: tuple[str, str] | None) -> list[bytes]:
        if window is None:
            return self.data.pubmed_articles
        pairs = zip(self.data.pubmed_articles, self.data.pubmed_modified, strict=True)
        return [article for article, day in pairs if within(day, *window)]

    def europepmc(self, path: str, params: dict[str, str]) -> Reply:
        """rest/search with cursorMark; the last page hands back its own cursor again."""
        if path != "/rest/search":
            return _error(404, f"unknown path {path}")
        records = self.data.of("europepmc")
        window = _UPDATE_RANGE.search(params.get("query", ""))
        if window is not None:
            low, high = window.group(1), window.group(2)
            records = [r for r in records if within(europepmc_updated(r), low, high)]
        cursor = params.get("cursorMark", "*")
        size = _int(params, "pageSize", 25) or 25
        items, nxt = _page(records, _offset(cursor), size)
        request = {"queryString": params.get("query", ""), "cursorMark": cursor, "pageSize": size}
        return _json(
            {
                "hitCount": len(records),
                "nextCursorMark": _token(nxt) if nxt is not None else cursor,
                "request": {**request, "resultType": params.get("resultType", "lite")},
                "resultList": {"result": items},
            }
        )

    def openalex(self, path: str, params: dict[str, str]) -> Reply:
        """/works with cursor paging: like OpenAlex, every page with results carries a
        next_cursor, and the end is a page with no results and a null one."""
        if path != "/works":
            return _error(404, f"unknown path {path}")
        try:
            since = since_filter(params.get("filter"), "from_updated_date")
        except ValueError as exc:
            return _error(400, str(exc))
        if since is not None and not params.get("api_key"):
            return _openalex_key_required()
        records = self.data.of("openalex")
        if since is not None:
            records = [r for r in records if within(openalex_updated(r), since, "MAX")]
        size = _int(params, "per-page", 25) or 25
        offset = _offset(params.get("cursor"))
        items = records[offset : offset + size]
        meta: dict[str, Any] = {
            "count": len(records),
            "per_page": size,
            "next_cursor": _token(offset + len(items)) if items else None,
        }
        return _json({"meta": meta, "results": items})

    def crossref(self, path: str, params: dict[str, str]) -> Reply:
        """/works with deep-paging cursors; past the end, a page with no items."""
        if path != "/works":
            return _error(404, f"unknown path {path}")
        try:
            since = since_filter(params.get("filter"), "from-update-date")
        except ValueError as exc:
            return _error(400, str(exc))
        records = self.data.of("crossref")
        if since is not None:
            records = [r for r in records if within(crossref_updated(r), since, "MAX")]
        size = _int(params, "rows", 20) or 20
        offset = _offset(params.get("cursor"))
        items = records[offset : offset + size]
        message = {
            "facets": {},
            "total-results": len(records),
            "items": items,
            "items-per-page": size,
            "next-cursor": _token(offset + len(items)),
        }
        head = {"status": "ok", "message-type": "work-list", "message-version": "1.0.0"}
        return _json({**head, "message": message})

    def pubchem(self, path: str, params: dict[str, str]) -> Reply:
        """PUG REST /rest/pug/compound/cid/<cids>/property/<names>/JSON and /synonyms/JSON.

        Like PUG REST, only the asked CIDs come back, in the order asked; a CID the snapshot
        does not hold is left out, and when none is held the answer is a 404 PUGREST.NotFound.
        """
        match = re.fullmatch(
            r"/rest/pug/compound/cid/([\d,]+)/(property/[A-Za-z,]+|synonyms)/JSON", path
        )
        if match is None:
            return _error(400, f"unsupported PUG REST path {path}")
        asked = [int(c) for c in match.group(1).split(",") if c]
        if match.group(2) == "synonyms":
            found = _by_cid(self.data.pubchem_synonyms, asked)
            return _json({"InformationList": {"Information": found}}) if found else _not_found()
        found = _by_cid(self.data.pubchem_properties, asked)
        return _json({"PropertyTable": {"Properties": found}}) if found else _not_found()

    def chembl(self, path: str, params: dict[str, str]) -> Reply:
        """/api/data/activity.json with limit/offset and page_meta.next from the host root."""
        if path != "/api/data/activity.json":
            return _error(404, f"unknown path {path}")
        records = self.data.of("chembl")
        limit = _int(params, "limit", 20) or 20
        items, nxt = _page(records, _int(params, "offset", 0), limit)
        next_link = None
        if nxt is not None:
            next_link = "/chembl/api/data/activity.json?" + urlencode(
                {**params, "limit": limit, "offset": nxt}
            )
        meta = {
            "limit": limit,
            "offset": _int(params, "offset", 0),
            "next": next_link,
            "previous": None,
            "total_count": len(records),
        }
        return _json({"activities": items, "page_meta": meta})


@dataclass
class FaultPlan:
    """Which requests fail and how: seeded by (seed, URL, how often that URL was asked).

    Keyed by URL rather than arrival order, so concurrent clients see the same faults run to run.
    """

    rate: float = 0.0
    seed: int = 0
    stall_seconds: float = 30.0
    retry_after_seconds: int = 1
    kinds: Sequence[str] = FAULT_KINDS
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    injected: list[tuple[str, str]] = field(default_factory=list)

    def fault_for(self, target: str) -> str | None:
        """The fault to answer this request with, or None for a clean answer."""
        if self.rate <= 0:
            return None
        with self._lock:
            nth = self._seen.get(target, 0)
            self._seen[target] = nth + 1
        digest = hashlib.sha256(f"{self.seed}\0{target}\0{nth}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        if rng.random() >= self.rate:
            return None
        kind = rng.choice(list(self.kinds))
        with self._lock:
            self.injected.append((kind, target))
        return kind


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        fault = self.server.faults.fault_for(self.path)
        reply = self.server.api.answer(self.path)
        if fault is None:
            self._send(reply)
        else:
            self._fail(fault, reply)

    def _send(self, reply: Reply, body: bytes | None = None) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body if body is None else body)

    def _fail(self, kind: str, reply: Reply) -> None:
        faults = self.server.faults
        if kind.startswith("http5"):
            self._send(_error(int(kind[4:]), "emulated server error"))
        elif kind == "http429_seconds":
            retry = str(faults.retry_after_seconds)
            self._send(Reply(429, b"Too Many Requests", "text/plain", (("Retry-After", retry),)))
        elif kind == "http429_date":
            when = datetime.now(UTC) + timedelta(seconds=faults.retry_after_seconds)
            header = (("Retry-After", format_datetime(when, usegmt=True)),)
            self._send(Reply(429, b"Too Many Requests", "text/plain", header))
        elif kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif kind == "stall":
            time.sleep(faults.stall_seconds)
            self.close_connection = True
        elif kind == "truncated":
            self._send(reply, reply.body[: len(reply.body) // 2])
            self.close_connection = True
        else:
            self._send(Reply(200, _HTML_ERROR, "text/html"))

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the client keeps the request log."""


class EmulatorServer(ThreadingHTTPServer):
    """A threaded loopback server answering for every source of one snapshot."""

    daemon_threads = True

    def __init__(self, api: SnapshotApi, faults: FaultPlan, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.api = api
        self.faults = faults
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: give it to `refresh --base-url all=...`."""
        return f"http://127.0.0.1:{self.server_address[1]}"


def make_server(
    snapshot_dir: Path,
    *,
    port: int = 0,
    faults: float = 0.0,
    seed: int = 0,
    stall_seconds: float = 30.0,
    retry_after_seconds: int = 1,
) -> EmulatorServer:
    """A server (not yet serving) for `snapshot_dir`; port 0 picks a free one."""
    plan = FaultPlan(faults, seed, stall_seconds, retry_after_seconds)
    return EmulatorServer(SnapshotApi(load_snapshot(snapshot_dir)), plan, port)


@contextmanager
def running(server: EmulatorServer) -> Iterator[EmulatorServer]:
    """Serve in a daemon thread for the length of a `with` block (tests), then shut down."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

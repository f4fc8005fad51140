"""An empty page that still carries a next token must never make a live pager loop forever.

Each pager runs on the shared client against a loopback server speaking its source's paging.
An empty page with a fresh token is followed to the real next page (Crossref and Europe PMC
excepted: their empty page is the end, "results run out"); a token that leads back to a page
already fetched stops with one error naming the source and the URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from literature_loopback import client
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.http import PagingError
from pipelines.sources import chembl, crossref, europepmc, openalex
from pipelines.sources import clinicaltrials as ct

Pages = dict[str, tuple[list[Any], str | None]]
"""Token the request carries -> (items on that page, next token or None)."""

NCT_IDS = ("NCT05812001", "NCT06072170")
PMIDS = ("36924284", "32607084")
DOIS = ("10.1002/hup.2582", "10.1002/cpt.2891")
MOLECULES = ["CHEMBL299031"]


def _study(nct: str) -> dict[str, Any]:
    return {"protocolSection": {"identificationModule": {"nctId": nct}}}


def _through_empty(first: list[Any], last: list[Any], start: str) -> Pages:
    """start -> first page (token t2) -> empty page (token t3) -> last page (no token)."""
    return {start: (first, "t2"), "t2": ([], "t3"), "t3": (last, None)}


def _looping(first: list[Any], start: str, back_to: str) -> Pages:
    """start -> first page (token t2) -> empty page whose token leads back to `back_to`."""
    return {start: (first, "t2"), "t2": ([], back_to)}


class Server:
    """Serves `pages` by the token in `param`, rendering each with `render`; counts requests."""

    def __init__(
        self,
        pages: Pages,
        param: str,
        start: str,
        render: Callable[[list[Any], str | None, str], dict[str, Any]],
    ) -> None:
        self.pages, self.param, self.start, self.render = pages, param, start, render
        self.tokens: list[str] = []

    def __call__(self, request: Request) -> Response:
        token = request.args.get(self.param, self.start)
        self.tokens.append(token)
        items, next_token = self.pages[token]
        body = self.render(items, next_token, token)
        return Response(json.dumps(body), mimetype="application/json")


def _ctgov(items: list[Any], token: str | None, _: str) -> dict[str, Any]:
    return {"studies": items, **({"nextPageToken": token} if token else {})}


def _europepmc(items: list[Any], token: str | None, current: str) -> dict[str, Any]:
    # Europe PMC's last page hands back its own cursor.
    return {"nextCursorMark": token or current, "resultList": {"result": items}}


def _openalex(items: list[Any], token: str | None, _: str) -> dict[str, Any]:
    return {"meta": {"next_cursor": token}, "results": items}


def _crossref(items: list[Any], token: str | None, _: str) -> dict[str, Any]:
    return {"message-type": "work-list", "message": {"items": items, "next-cursor": token}}


def _chembl(items: list[Any], token: str | None, _: str) -> dict[str, Any]:
    link = f"/chembl/api/data/activity.json?offset={token}" if token else None
    return {"activities": items, "page_meta": {"next": link}}


def _serve(httpserver: HTTPServer, path: str, server: Server) -> None:
    httpserver.expect_request(path).respond_with_handler(server)


# --- ClinicalTrials.gov: nextPageToken --------------------------------------------------------


def test_ctgov_follows_an_empty_page_to_the_next(httpserver: HTTPServer, tmp_path: Path) -> None:
    pages = _through_empty([_study(NCT_IDS[0])], [_study(NCT_IDS[1])], "")
    server = Server(pages, "pageToken", "", _ctgov)
    _serve(httpserver, ct.STUDIES_PATH, server)

    summary = ct.fetch_all(client(ct.SOURCE, httpserver.url_for(""), tmp_path), ["kratom"])

    assert server.tokens == ["", "t2", "t3"]
    assert (summary.pages, summary.nct_ids) == (3, NCT_IDS)


@pytest.mark.parametrize("back_to", ["t2", "t1"], ids=["repeats-itself", "cycle-of-two"])
def test_ctgov_token_leading_back_is_an_error_naming_source_and_url(
    httpserver: HTTPServer, tmp_path: Path, back_to: str
) -> None:
    pages = _looping([_study(NCT_IDS[0])], "", back_to)
    if back_to == "t1":
        pages["t1"] = ([_study(NCT_IDS[1])], "t2")  # t2 -> t1 -> t2 again
    server = Server(pages, "pageToken", "", _ctgov)
    _serve(httpserver, ct.STUDIES_PATH, server)
    http = client(ct.SOURCE, httpserver.url_for(""), tmp_path)

    with pytest.raises(PagingError) as raised:
        list(ct.iter_pages(http, "kratom"))

    message = str(raised.value)
    assert message.startswith("clinicaltrials: ")
    assert httpserver.url_for(ct.STUDIES_PATH) in message and "nextPageToken repeats" in message
    assert len(server.tokens) == (2 if back_to == "t2" else 3)


# --- Europe PMC: cursorMark -------------------------------------------------------------------


def _epmc(pmid: str) -> dict[str, str]:
    return {"id": pmid, "source": "MED", "pmid": pmid}


def test_europepmc_empty_page_with_a_new_cursor_ends_the_walk(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Results ran out: an empty page's cursor is not followed (docs/refresh-and-politeness.md)."""
    server = Server(
        _through_empty([_epmc(PMIDS[0])], [_epmc(PMIDS[1])], "*"), "cursorMark", "*", _europepmc
    )
    _serve(httpserver, europepmc.SEARCH_PATH, server)

    http = client(europepmc.SOURCE, httpserver.url_for(""), tmp_path)
    pages = list(europepmc.iter_search_pages(http, "kratom"))

    assert server.tokens == ["*", "t2"]
    assert [r["pmid"] for p in pages for r in p["resultList"]["result"]] == [PMIDS[0]]


def test_europepmc_stops_once_hit_count_records_arrived(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A page that completes hitCount ends the walk even when it offers a new cursor."""

    def render(items: list[Any], token: str | None, current: str) -> dict[str, Any]:
        return {"hitCount": 2, **_europepmc(items, token, current)}

    pages: Pages = {"*": ([_epmc(PMIDS[0])], "t2"), "t2": ([_epmc(PMIDS[1])], "t3")}
    server = Server(pages, "cursorMark", "*", render)
    _serve(httpserver, europepmc.SEARCH_PATH, server)

    http = client(europepmc.SOURCE, httpserver.url_for(""), tmp_path)
    pages_seen = list(europepmc.iter_search_pages(http, "kratom"))

    assert server.tokens == ["*", "t2"]
    assert [r["pmid"] for p in pages_seen for r in p["resultList"]["result"]] == list(PMIDS)


def test_europepmc_cursor_back_to_an_earlier_page_is_an_error(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    pages: Pages = {"*": ([_epmc(PMIDS[0])], "t2"), "t2": ([_epmc(PMIDS[1])], "*")}
    server = Server(pages, "cursorMark", "*", _europepmc)
    _serve(httpserver, europepmc.SEARCH_PATH, server)
    http = client(europepmc.SOURCE, httpserver.url_for(""), tmp_path)

    with pytest.raises(PagingError, match=r"^europepmc: page 2 \(http://") as raised:
        list(europepmc.iter_search_pages(http, "kratom"))

    assert httpserver.url_for(europepmc.SEARCH_PATH) in str(raised.value)
    assert "cursorMark=t2" in str(raised.value)
    assert server.tokens == ["*", "t2"]


# --- OpenAlex: meta.next_cursor ---------------------------------------------------------------


def _work(doi: str) -> dict[str, str]:
    return {"doi": f"https://doi.org/{doi}"}


def test_openalex_follows_an_empty_page_with_a_cursor(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    server = Server(
        _through_empty([_work(DOIS[0])], [_work(DOIS[1])], "*"), "cursor", "*", _openalex
    )
    _serve(httpserver, openalex.WORKS_PATH, server)

    http = client(openalex.SOURCE, httpserver.url_for(""), tmp_path)
    pages = list(openalex.iter_works_pages(http, "kratom"))

    assert server.tokens == ["*", "t2", "t3"]
    assert [w["doi"] for p in pages for w in p["results"]] == [_work(d)["doi"] for d in DOIS]


def test_openalex_repeated_cursor_is_an_error(httpserver: HTTPServer, tmp_path: Path) -> None:
    server = Server(_looping([_work(DOIS[0])], "*", "t2"), "cursor", "*", _openalex)
    _serve(httpserver, openalex.WORKS_PATH, server)
    http = client(openalex.SOURCE, httpserver.url_for(""), tmp_path)

    with pytest.raises(PagingError, match=r"^openalex: page 2 \(http://") as raised:
        list(openalex.iter_works_pages(http, "kratom"))

    assert httpserver.url_for(openalex.WORKS_PATH) in str(raised.value)
    assert server.tokens == ["*", "t2"]


# --- Crossref: next-cursor --------------------------------------------------------------------


def test_crossref_empty_page_with_a_cursor_ends_the_walk(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Crossref says "no more results" with an empty page; its cursor is not followed."""
    pages = _through_empty([{"DOI": DOIS[0]}], [{"DOI": DOIS[1]}], "*")
    server = Server(pages, "cursor", "*", _crossref)
    _serve(httpserver, crossref.WORKS_PATH, server)

    http = client(crossref.SOURCE, httpserver.url_for(""), tmp_path)
    pages_seen = list(crossref.iter_works_pages(http, "kratom"))

    assert server.tokens == ["*", "t2"]
    assert [p["message"]["items"] for p in pages_seen] == [[{"DOI": DOIS[0]}], []]


# --- ChEMBL: page_meta.next -------------------------------------------------------------------


def _activity(number: int) -> dict[str, Any]:
    return {"activity_id": number, "molecule_chembl_id": MOLECULES[0]}


def test_chembl_follows_an_empty_page_with_a_next_link(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    pages = _through_empty([_activity(1)], [_activity(2)], "0")
    server = Server(pages, "offset", "0", _chembl)
    _serve(httpserver, "/chembl" + chembl.ACTIVITY_PATH, server)

    http = client(chembl.SOURCE, httpserver.url_for("/chembl"), tmp_path)
    bodies = list(chembl.iter_activity_pages(http, MOLECULES))

    assert server.tokens == ["0", "t2", "t3"]
    assert [a["activity_id"] for b in bodies for a in b["activities"]] == [1, 2]


def test_chembl_next_link_back_to_a_page_already_fetched_is_an_error(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    server = Server(_looping([_activity(1)], "0", "t2"), "offset", "0", _chembl)
    _serve(httpserver, "/chembl" + chembl.ACTIVITY_PATH, server)
    http = client(chembl.SOURCE, httpserver.url_for("/chembl"), tmp_path)

    with pytest.raises(PagingError, match=r"^chembl: page 2 \(http://") as raised:
        list(chembl.iter_activity_pages(http, MOLECULES))

    assert httpserver.url_for("/chembl" + chembl.ACTIVITY_PATH) in str(raised.value)
    assert server.tokens == ["0", "t2"]

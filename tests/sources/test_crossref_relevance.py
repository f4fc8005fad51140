"""Crossref's relevance screen and paging bounds, through the real client over loopback.

Crossref matches any word of `query.bibliographic`, so the pager screens every hit (a topic term
in title, subtitle, container, subject or abstract, or a DOI already known) and stops at an
off-topic page, below a share of the best score, or at the page cap; known DOIs no search
returned are asked with the `doi` filter. Each test serves /works from a pytest-httpserver
handler and drives `crossref.fetch` through the refresh's own recording client.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from literature_loopback import Faulty, client, recorded
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.http import SourceHttp
from pipelines.refresh.record import RecordingClient
from pipelines.sources import crossref
from pipelines.sources.base import LiveRun
from pipelines.sources.relevance import Bounds, Relevance, Screen, topic_terms

TERMS = topic_terms(["kratom", "Mitragyna speciosa", "mitragynine", "7-hydroxymitragynine"])


def _work(doi: str, title: str | None, score: float, **extra: Any) -> dict[str, Any]:
    work: dict[str, Any] = {"DOI": doi, "score": score, **extra}
    if title is not None:
        work["title"] = [title]
    return work


def _server(pages: dict[str, tuple[list[dict[str, Any]], str | None]]) -> Faulty:
    """/works by cursor from `pages` (cursor -> items, next cursor); `doi` filters answered
    from every work on any page."""
    every = [w for items, _ in pages.values() for w in items]

    def works(request: Request) -> Response:
        if "filter" in request.args:
            wanted = {part.removeprefix("doi:") for part in request.args["filter"].split(",")}
            items, cursor = [w for w in every if w["DOI"] in wanted], None
        else:
            items, cursor = pages[request.args["cursor"]]
        message = {"items": items, "next-cursor": cursor, "total-results": len(every)}
        body = {"status": "ok", "message-type": "work-list", "message": message}
        return Response(json.dumps(body), content_type="application/json")

    return Faulty(works, {})


def _fetch(
    http: SourceHttp, queries: list[str], relevance: Relevance, rows: int = 3
) -> tuple[dict[str, int], Screen]:
    screen = Screen(relevance)

    def factory(prefix: str = "", fixed: Any = None) -> RecordingClient:
        assert crossref.UNIT.live is not None
        return RecordingClient(http, prefix, crossref.UNIT.live.check_body, None, fixed)

    hits = crossref.fetch(LiveRun(factory, queries, rows, lambda n: None, screen=screen))
    return hits, screen


def _run(
    httpserver: HTTPServer,
    tmp_path: Path,
    pages: dict[str, tuple[list[dict[str, Any]], str | None]],
    bounds: Bounds,
    known: frozenset[str] = frozenset(),
    lookup: tuple[str, ...] = (),
) -> tuple[Faulty, dict[str, int], Screen]:
    server = _server(pages)
    httpserver.expect_request("/works").respond_with_handler(server)
    with client(crossref.SOURCE, httpserver.url_for(""), tmp_path) as http:
        relevance = Relevance(TERMS, known, bounds, lookup)
        hits, screen = _fetch(http, ["Mitragyna speciosa"], relevance)
    return server, hits, screen


def test_off_topic_works_are_dropped_counted_and_a_whole_off_topic_page_ends_the_query(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    orchid = _work("10.1/c", "Speciosa orchids of Borneo", 10)
    pages = {
        "*": (
            [
                _work("10.1/a", "Kratom use in Thailand", 20),
                _work("10.1/b", "An alkaloid survey", 20, abstract="<p>Mitragyna speciosa</p>"),
                orchid,
            ],
            "c1",
        ),
        "c1": ([_work("10.1/d", "Speciosa in gardens", 9, subject=["Horticulture"])], "c2"),
        "c2": ([_work("10.1/e", "Kratom again", 9)], "c3"),
    }
    server, hits, screen = _run(httpserver, tmp_path, pages, Bounds(max_pages=5))

    assert [q["cursor"] for _, q in server.requests] == ["*", "c1"]  # c2 is never asked
    assert all(q["query.bibliographic"] == "Mitragyna speciosa" for _, q in server.requests)
    tally = screen.tally("Mitragyna speciosa")
    assert hits == {"Mitragyna speciosa": 4}
    assert (tally.seen, tally.kept, tally.dropped, tally.pages) == (4, 2, 2, 2)
    assert tally.stopped == "a whole page was off topic"
    dropped = screen.off_topic()
    assert sorted(dropped) == ["DOI:10.1/c", "DOI:10.1/d"]
    page = json.loads(recorded(tmp_path, crossref.SOURCE)[0].read_bytes())
    recorded_orchid = page["message"]["items"][2]
    assert recorded_orchid == orchid  # the page is recorded as returned, dropped work included
    assert dropped["DOI:10.1/c"] == hashlib.sha256(crossref.raw(orchid).encode()).hexdigest()


def test_paging_stops_below_the_score_share_and_at_the_page_cap(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    low = {"*": ([_work("10.1/a", "Kratom", 20), _work("10.1/b", "Kratom too", 4)], "c1")}
    server, _, screen = _run(httpserver, tmp_path / "low", low, Bounds(5, min_score_share=0.25))
    assert [q["cursor"] for _, q in server.requests] == ["*"]
    assert screen.tally("Mitragyna speciosa").stopped == "relevance score below 0.25 of the best"

    httpserver.clear()
    endless = {f"c{n}": ([_work(f"10.1/{n}", "Kratom", 20)], f"c{n + 1}") for n in range(1, 9)}
    endless["*"] = ([_work("10.1/0", "Kratom", 20)], "c1")
    server, _, screen = _run(httpserver, tmp_path / "cap", endless, Bounds(max_pages=3))
    assert [q["cursor"] for _, q in server.requests] == ["*", "c1", "c2"]
    assert screen.tally("Mitragyna speciosa").stopped == "page cap (3 pages)"


def test_a_known_doi_is_kept_without_a_topic_term_and_missing_ones_are_asked_by_doi(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    pages = {
        "*": ([_work("10.1/a", "Kratom", 20), _work("10.1/untitled", None, 10)], "c1"),
        "c1": ([], "c2"),
        "held": ([_work("10.1/gone", None, 0)], None),
    }
    known = frozenset({"10.1/untitled", "10.1/gone", "10.1/a"})
    server, hits, screen = _run(
        httpserver, tmp_path, pages, Bounds(5), known, ("10.1/a", "10.1/gone")
    )

    assert screen.tally("Mitragyna speciosa").dropped == 0  # untitled, but its DOI is known
    assert hits == {"Mitragyna speciosa": 2, crossref.KNOWN: 1}
    filters = [q["filter"] for _, q in server.requests if "filter" in q]
    assert filters == ["doi:10.1/gone"]  # 10.1/a was found by the search: not asked again
    assert screen.tally(crossref.KNOWN).kept == 1
    names = [p.name for p in recorded(tmp_path, crossref.SOURCE)]
    assert "known-dois__works-0001.json" in names

"""OpenAlex as documented: `search` semantics and the keyless budget in the emulator, and a
client that screens hits, keeps to the keyless budget and stops (never fails) when it is spent.

The emulator serves a small test snapshot written here (ids W99…, titles made up for the test);
the client runs through the refresh's own recording client over loopback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from literature_loopback import client
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.devtools.emulator import SnapshotApi, load_snapshot
from pipelines.http import SourceError
from pipelines.refresh.record import RecordingClient
from pipelines.sources import openalex
from pipelines.sources.base import LiveRun
from pipelines.sources.relevance import Bounds, Relevance, Screen, topic_terms

TITLES = {
    1: "Kratom withdrawal in a clinic",
    2: "Withdrawal from kratom products",
    3: "Mitragynine binding at opioid receptors",
    4: "Orchid cultivation",
}
ABSTRACT_ONLY = {5: ("A survey of herbal products", {"kratom": [4]})}


def _work(number: int, title: str, abstract: dict[str, list[int]] | None = None) -> dict[str, Any]:
    return {
        "id": f"https://openalex.org/W99{number:06d}",
        "title": title,
        "abstract_inverted_index": abstract,
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> SnapshotApi:
    folder = tmp_path_factory.mktemp("openalex-snapshot")
    works = [_work(n, t) for n, t in TITLES.items()]
    works += [_work(n, t, a) for n, (t, a) in ABSTRACT_ONLY.items()]
    (folder / "openalex").mkdir()
    (folder / "openalex" / "works-0001.json").write_text(
        json.dumps({"meta": {}, "results": works}), encoding="utf-8"
    )
    info = {"captured_at": "2026-11-25", "topic": "kratom", "method": "reconstructed"}
    (folder / "SNAPSHOT.json").write_text(json.dumps(info), encoding="utf-8")
    return SnapshotApi(load_snapshot(folder))


def _found(api: SnapshotApi, search: str) -> list[int]:
    reply = api.answer(f"/openalex/works?per-page=50&search={quote(search)}")
    assert reply.status == 200
    return [int(w["id"][-6:]) for w in json.loads(reply.body)["results"]]


def test_search_ands_words_and_honours_phrases_or_not_and_parentheses(api: SnapshotApi) -> None:
    assert sorted(_found(api, "kratom withdrawal")) == [1, 2]
    assert sorted(_found(api, "kratom AND withdrawal")) == [1, 2]
    assert _found(api, '"kratom withdrawal"') == [1]
    assert sorted(_found(api, "(kratom) OR (mitragynine)")) == [1, 2, 3, 5]
    assert sorted(_found(api, "kratom NOT withdrawal")) == [5]
    assert _found(api, "orchid cultivation") == [4]


def test_search_results_carry_a_relevance_score_best_first(api: SnapshotApi) -> None:
    reply = api.answer(f"/openalex/works?search={quote('(kratom withdrawal) OR mitragynine')}")
    results = json.loads(reply.body)["results"]
    scores = [w[openalex.SCORE] for w in results]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert openalex.SCORE not in openalex.raw(results[0])


def test_keyless_searches_beyond_the_day_budget_get_the_documented_429(api: SnapshotApi) -> None:
    keyless = "/openalex/works?search=kratom"
    statuses = [api.answer(keyless, arrived=float(n)).status for n in range(12)]
    assert statuses == [200] * openalex.KEYLESS_SEARCHES + [429, 429]
    refused = json.loads(api.answer(keyless, arrived=99.0).body)
    assert set(refused) == {"error", "message"} and "Daily limit" in refused["message"]
    assert api.answer(keyless + "&api_key=k", arrived=100.0).status == 200
    assert api.answer(keyless).status == 200  # a direct call, not over the wire, costs nothing


def _endless(request: Request) -> Response:
    """Every page holds one work whose title names kratom, and a next cursor."""
    number = (
        int(request.args["cursor"].removeprefix("c") or 0) if request.args["cursor"] != "*" else 0
    )
    body = {"meta": {"next_cursor": f"c{number + 1}"}, "results": [_work(number, "Kratom use")]}
    return Response(json.dumps(body), content_type="application/json")


def _fetch(
    url: str,
    tmp_path: Path,
    queries: list[str],
    budget: int | None,
    warnings: list[str] | None = None,
) -> tuple[Screen, dict[str, int], Any]:
    screen = Screen(
        Relevance(topic_terms(["kratom"]), frozenset(), Bounds(max_pages=0), (), budget)
    )
    with client(openalex.SOURCE, url, tmp_path) as http:
        http.max_tries = 2

        def factory(prefix: str = "", fixed: Any = None) -> RecordingClient:
            assert openalex.UNIT.live is not None
            return RecordingClient(http, prefix, openalex.UNIT.live.check_body, None, fixed)

        warn = (warnings if warnings is not None else []).append
        run = LiveRun(factory, queries, 1, lambda n: None, warn=warn, screen=screen)
        hits = openalex.fetch(run)
        return screen, hits, http.requests_sent


def test_keyless_client_asks_at_most_its_budget_and_says_so(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/works").respond_with_handler(_endless)

    screen, hits, sent = _fetch(httpserver.url_for(""), tmp_path, ["kratom", "mitragynine"], 3)

    assert sent == 3 and hits == {"kratom": 3}
    assert screen.tally("kratom").stopped == "keyless budget spent"
    assert screen.note is not None and "OPENALEX_API_KEY" in screen.note
    assert "asked 1 of 2 queries" in screen.note


def test_keyless_client_stops_without_failing_on_the_daily_limit_429(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    body = {"error": "Rate limit exceeded", "message": "Daily limit exceeded"}
    httpserver.expect_request("/works").respond_with_json(body, status=429)

    screen, hits, sent = _fetch(httpserver.url_for(""), tmp_path, ["kratom"], 10)

    assert sent == 2 and hits == {"kratom": 0}  # the 429 is retried once (max_tries 2), then noted
    assert screen.note is not None and "HTTP 429" in screen.note


def test_a_keyed_client_pages_to_the_end_and_a_429_is_its_failure(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    body = {"error": "Rate limit exceeded", "message": "Daily limit exceeded"}
    httpserver.expect_request("/works").respond_with_json(body, status=429)
    with pytest.raises(SourceError, match="HTTP 429"):
        _fetch(httpserver.url_for(""), tmp_path, ["kratom"], None)


def test_works_found_only_in_full_text_are_dropped(httpserver: HTTPServer, tmp_path: Path) -> None:
    pages = {
        "*": ([_work(1, "Kratom use"), _work(2, "A survey of herbal supplements")], "c1"),
        "c1": ([], None),
    }

    def works(request: Request) -> Response:
        results, cursor = pages[request.args["cursor"]]
        return Response(json.dumps({"meta": {"next_cursor": cursor}, "results": results}))

    httpserver.expect_request("/works").respond_with_handler(works)
    screen, hits, _ = _fetch(httpserver.url_for(""), tmp_path, ["kratom"], None)

    assert hits == {"kratom": 2}
    assert (screen.tally("kratom").kept, screen.tally("kratom").dropped) == (1, 1)
    assert list(screen.off_topic()) == ["OPENALEX:W99000002"]


def test_meta_count_not_delivered_is_a_warning_unless_a_bound_stopped_paging(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """`meta.count` on the first page announces the search's hits: paged to the end with one
    fewer delivered, the query is flagged; stopped by the keyless budget, the shortfall is the
    stated reason (`unseen`, `stopped`), not a warning."""
    pages = {"*": ([_work(1, "Kratom use")], "c1"), "c1": ([_work(2, "Kratom again")], "c2")}
    pages["c2"] = ([], None)

    def works(request: Request) -> Response:
        results, cursor = pages[request.args["cursor"]]
        meta = {"count": 3, "next_cursor": cursor}
        return Response(json.dumps({"meta": meta, "results": results}))

    httpserver.expect_request("/works").respond_with_handler(works)
    warnings: list[str] = []
    screen, hits, _ = _fetch(httpserver.url_for(""), tmp_path / "end", ["kratom"], None, warnings)
    assert hits == {"kratom": 2}
    assert warnings == ["query 'kratom': meta.count announced 3, 2 recorded"]
    assert (screen.tally("kratom").announced, screen.tally("kratom").unseen) == (3, 0)

    warnings.clear()
    screen, hits, _ = _fetch(httpserver.url_for(""), tmp_path / "budget", ["kratom"], 1, warnings)
    assert hits == {"kratom": 1} and warnings == []
    tally = screen.tally("kratom")
    assert (tally.stopped, tally.announced, tally.unseen) == ("keyless budget spent", 3, 2)

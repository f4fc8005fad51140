"""Completeness checks and ClinicalTrials.gov's filtering proxy, over real loopback HTTP.

ClinicalTrials.gov asks `countTotal=true` on a query's first page only and compares the studies
recorded with `totalCount`; Europe PMC compares with `hitCount`. A mismatch is a warning handed
to the run (search_strategy.json and stderr), never a failure. A 403 from the proxy in front of
ClinicalTrials.gov is retried with back-off like a 429, and gives up naming the status.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.http import ResponseRecorder, SourceError, SourceHttp
from pipelines.refresh.record import RecordingClient
from pipelines.refresh.settings import HttpSettings, source_client
from pipelines.sources import clinicaltrials as ct
from pipelines.sources import europepmc
from pipelines.sources.base import Credentials, LiveRun


def _study(nct: str) -> dict[str, Any]:
    return {"protocolSection": {"identificationModule": {"nctId": nct}}}


def _run(http: SourceHttp, query: str, check: Any, warnings: list[str]) -> LiveRun:
    def client(
        prefix: str = "", fixed: Mapping[str, Mapping[str, Any]] | None = None
    ) -> RecordingClient:
        return RecordingClient(http, prefix, check, None, fixed)

    return LiveRun(client, [query], None, lambda n: None, None, warnings.append)


def _http(source: str, url: str, snapshot: Path, tries: int = 4) -> SourceHttp:
    return SourceHttp(
        source,
        url,
        max_tries=tries,
        backoff_base=0.01,
        recorder=ResponseRecorder(snapshot),
        rng=random.Random(3),
    )


def _studies_api(total: int, pages: list[list[str]], asked: list[dict[str, str]]) -> Any:
    def handle(request: Request) -> Response:
        asked.append(dict(request.args))
        number = int(request.args.get("pageToken", "0"))
        doc: dict[str, Any] = {"studies": [_study(n) for n in pages[number]]}
        if number + 1 < len(pages):
            doc["nextPageToken"] = str(number + 1)
        if request.args.get("countTotal") == "true":
            doc["totalCount"] = total
        return Response(json.dumps(doc), content_type="application/json")

    return handle


@pytest.mark.parametrize(
    ("total", "expected"), [(5, ["totalCount announced 5, 3 recorded"]), (3, [])]
)
def test_clinicaltrials_checks_studies_recorded_against_total_count(
    httpserver: HTTPServer, tmp_path: Path, total: int, expected: list[str]
) -> None:
    asked: list[dict[str, str]] = []
    pages = [["NCT09990001", "NCT09990002"], ["NCT09990003"]]
    httpserver.expect_request(ct.STUDIES_PATH).respond_with_handler(
        _studies_api(total, pages, asked)
    )
    warnings: list[str] = []
    with _http(ct.SOURCE, httpserver.url_for(""), tmp_path) as http:
        hits = ct.fetch(_run(http, "kratom", ct.UNIT.live.check_body, warnings))  # type: ignore[union-attr]
    assert hits == {"kratom": 3}
    assert [a.get("countTotal") for a in asked] == ["true", None]
    assert [w.split(": ", 1)[1] for w in warnings] == expected
    assert all(w.startswith("query 'kratom'") for w in warnings)


def test_europepmc_checks_records_against_hit_count(httpserver: HTTPServer, tmp_path: Path) -> None:
    def handle(request: Request) -> Response:
        results = [{"id": "1", "source": "MED", "pmid": "1"}, {"id": "2", "source": "MED"}]
        page = {"hitCount": 4, "nextCursorMark": request.args["cursorMark"]}
        return Response(json.dumps({**page, "resultList": {"result": results}}))

    httpserver.expect_request(europepmc.SEARCH_PATH).respond_with_handler(handle)
    warnings: list[str] = []
    live = europepmc.UNIT.live
    assert live is not None
    with _http(europepmc.SOURCE, httpserver.url_for(""), tmp_path) as http:
        hits = live.fetch(_run(http, "kratom", live.check_body, warnings))
    assert hits == {"kratom": 2}
    assert warnings == ["query 'kratom': hitCount announced 4, 2 recorded"]


def _proxy(refusals: int, asked: list[int]) -> Any:
    """403 "Access Denied" HTML `refusals` times, then a one-study last page."""

    def handle(request: Request) -> Response:
        asked.append(len(asked) + 1)
        if len(asked) <= refusals:
            return Response("<html><h1>Access Denied</h1></html>", 403, content_type="text/html")
        return Response(json.dumps({"studies": [_study("NCT09990001")], "totalCount": 1}))

    return handle


def _refresh_client(url: str, snapshot: Path) -> SourceHttp:
    """ClinicalTrials.gov's client exactly as a refresh builds it (source_client)."""
    settings = HttpSettings(timeout=2.0, max_tries=4, backoff_base=0.01, pace=0.0)
    recorder = ResponseRecorder(snapshot)
    return source_client(ct.SOURCE, url, Credentials(), settings, recorder, lambda e: None, None)


def test_clinicaltrials_proxy_403_is_retried_with_back_off(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    asked: list[int] = []
    httpserver.expect_request(ct.STUDIES_PATH).respond_with_handler(_proxy(2, asked))
    with _refresh_client(httpserver.url_for(""), tmp_path) as http:
        pages = list(ct.iter_pages(http, "kratom"))
        problems = [e.problem for e in http.log]
    assert len(pages) == 1 and len(asked) == 3
    assert problems == ["HTTP 403", "HTTP 403", None]


def test_clinicaltrials_proxy_403_that_persists_gives_up_naming_it(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    asked: list[int] = []
    httpserver.expect_request(ct.STUDIES_PATH).respond_with_handler(_proxy(99, asked))
    with (
        _refresh_client(httpserver.url_for(""), tmp_path) as http,
        pytest.raises(SourceError) as caught,
    ):
        list(ct.iter_pages(http, "kratom"))
    assert len(asked) == 4
    assert str(caught.value).startswith("clinicaltrials: giving up on ")
    assert str(caught.value).endswith("after 4 tries: HTTP 403")


def test_other_sources_still_take_403_as_final(httpserver: HTTPServer, tmp_path: Path) -> None:
    asked: list[int] = []
    httpserver.expect_request(europepmc.SEARCH_PATH).respond_with_handler(_proxy(99, asked))
    with (
        _http(europepmc.SOURCE, httpserver.url_for(""), tmp_path) as http,
        pytest.raises(SourceError, match="HTTP 403"),
    ):
        list(europepmc.iter_search_pages(http, "kratom"))
    assert len(asked) == 1

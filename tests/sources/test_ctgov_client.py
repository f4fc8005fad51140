"""ClinicalTrials.gov live paging against a real v2-speaking server on 127.0.0.1.

The server pages /api/v2/studies with pageToken over two overlapping queries and throws a 429
(Retry-After: 1) and a 503 on the way; the client must end with every study exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines import http as http_layer
from pipelines.sources import clinicaltrials as ct

RESULTS = {
    "kratom": [f"NCT0999000{n}" for n in range(1, 6)],
    "Mitragyna speciosa": [f"NCT0999000{n}" for n in range(4, 8)],
}
"""What each query finds; NCT09990004-05 are found by both."""
SERVER_PAGE = 2


def study(nct: str) -> dict[str, Any]:
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": f"Study {nct}"},
            "statusModule": {"overallStatus": "COMPLETED"},
        },
        "hasResults": False,
    }


class StudiesApi:
    """`GET /api/v2/studies` with pageToken paging and scripted faults, logging every request."""

    def __init__(self, faults: dict[int, tuple[int, dict[str, str]]]) -> None:
        self.faults = faults
        self.requests: list[dict[str, str]] = []
        self.arrivals: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(dict(request.args))
            self.arrivals.append(time.monotonic())
            number = len(self.requests)
        if number in self.faults:
            status, headers = self.faults[number]
            return Response("slow down", status=status, headers=headers)
        assert request.args["pageSize"] == str(ct.PAGE_SIZE)
        ids = RESULTS[request.args["query.term"]]
        token = request.args.get("pageToken")
        start = int(token.removeprefix("tok-")) if token else 0
        page: dict[str, Any] = {"studies": [study(n) for n in ids[start : start + SERVER_PAGE]]}
        if start + SERVER_PAGE < len(ids):
            page["nextPageToken"] = f"tok-{start + SERVER_PAGE}"
        return Response(json.dumps(page), content_type="application/json")


def client(httpserver: HTTPServer, snapshot: Path) -> Any:
    """The shared HTTP layer, recording into `snapshot`, unthrottled for the test."""
    return http_layer.SourceHttp(
        ct.SOURCE,
        httpserver.url_for(""),
        min_interval=0.0,
        recorder=http_layer.ResponseRecorder(snapshot),
    )


def test_fetch_all_pages_two_overlapping_queries_through_faults(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    api = StudiesApi(faults={2: (429, {"Retry-After": "1"}), 5: (503, {})})
    httpserver.expect_request(ct.STUDIES_PATH).respond_with_handler(api)

    summary = ct.fetch_all(client(httpserver, tmp_path), list(RESULTS))

    expected = list(dict.fromkeys(RESULTS["kratom"] + RESULTS["Mitragyna speciosa"]))
    assert summary.nct_ids == tuple(expected)
    assert (summary.queries, summary.pages, summary.studies_seen, summary.unique) == (2, 5, 9, 7)
    assert summary.requests == 5
    assert len(api.requests) == 5 + 2  # five pages, the 429 and the 503 retried once each
    assert api.arrivals[2] - api.arrivals[1] >= 0.9  # Retry-After: 1 was honoured
    tokens = [(r["query.term"], r.get("pageToken")) for r in api.requests]
    assert tokens[0] == ("kratom", None)
    assert ("Mitragyna speciosa", None) in tokens
    assert tokens[-1] == ("Mitragyna speciosa", "tok-2")

    recorded = sorted(p.name for p in (tmp_path / ct.SOURCE).iterdir())
    assert recorded == [
        "kratom-p0001.json",
        "kratom-p0002.json",
        "kratom-p0003.json",
        "mitragyna-speciosa-p0001.json",
        "mitragyna-speciosa-p0002.json",
    ]
    replayed = [
        ct.record_key(s) for name in recorded for s in ct.iter_records(tmp_path / ct.SOURCE / name)
    ]
    assert sorted(set(replayed)) == sorted(expected)
    assert len(replayed) == 9


def test_iter_pages_yields_the_recorded_bodies(httpserver: HTTPServer, tmp_path: Path) -> None:
    api = StudiesApi(faults={})
    httpserver.expect_request(ct.STUDIES_PATH).respond_with_handler(api)

    pages = list(ct.iter_pages(client(httpserver, tmp_path), "kratom"))

    assert len(pages) == len(api.requests) == 3
    for number, body in enumerate(pages, start=1):
        assert (tmp_path / ct.SOURCE / f"kratom-p{number:04d}.json").read_bytes() == body
    assert "nextPageToken" not in json.loads(pages[-1])


def test_repeated_page_token_stops_with_paging_error(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    page = {"studies": [study("NCT09990001")], "nextPageToken": "same"}
    httpserver.expect_request(ct.STUDIES_PATH).respond_with_json(page)

    with pytest.raises(ct.PagingError, match="nextPageToken repeats 'same'"):
        list(ct.iter_pages(client(httpserver, tmp_path), "kratom"))
    assert len(httpserver.log) == 2


def test_page_that_is_not_json_is_a_paging_error(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(ct.STUDIES_PATH).respond_with_data(
        "<html>maintenance</html>", content_type="text/html"
    )

    with pytest.raises(ct.PagingError, match="page 1 is not JSON"):
        list(ct.iter_pages(client(httpserver, tmp_path), "kratom"))


def test_fetch_version_reads_data_timestamp(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(ct.VERSION_PATH).respond_with_json(
        {"apiVersion": "2.0.3", "dataTimestamp": "2025-11-20T09:00:05"}
    )

    assert ct.fetch_version(client(httpserver, tmp_path)) == "2025-11-20T09:00:05"
    assert not (tmp_path / ct.SOURCE).exists() or not any((tmp_path / ct.SOURCE).iterdir())


def test_slug_is_a_safe_file_name() -> None:
    assert ct.slug("Mitragyna speciosa") == "mitragyna-speciosa"
    assert ct.slug("7-OH-mitragynine") == "7-oh-mitragynine"
    assert ct.slug('"kratom" AND (withdrawal)') == "kratom-and-withdrawal"

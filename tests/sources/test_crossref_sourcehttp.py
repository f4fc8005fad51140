"""Crossref on the shared client against a deep-paging /works server on 127.0.0.1.

A 429 (Retry-After) and a 503 come on the way; paging stops at the first page without items,
which is recorded too; `mailto` never reaches a recorded page, a file name or a log line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from literature_loopback import (
    RETRY_AFTER,
    Faulty,
    assert_secrets_kept,
    capture_client_logs,
    client,
    closest_starts,
    faults,
    recorded,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import crossref

ITEMS = {"*": ["10.1/a", "10.1/b"], "DnF1": ["10.1/c", "10.1/d"], "DnF2": ["10.1/e"], "DnF3": []}
NEXT = {"*": "DnF1", "DnF1": "DnF2", "DnF2": "DnF3", "DnF3": "DnF4"}
MAILTO = "team@example.org"


def works(request: Request) -> Response:
    """/works by cursor: a work-list message, empty items once the results run out."""
    assert "query" not in request.args  # `query` also searches abstracts: the client asks
    assert (request.args["query.bibliographic"], request.args["rows"]) == ("kratom", "2")
    assert (request.args["sort"], request.args["order"]) == ("score", "desc")
    cursor = request.args["cursor"]
    body = {
        "status": "ok",
        "message-type": "work-list",
        "message-version": "1.0.0",
        "message": {
            "next-cursor": NEXT[cursor],
            "total-results": 5,
            "items": [{"DOI": d, "title": [d]} for d in ITEMS[cursor]],
        },
    }
    return Response(json.dumps(body), content_type="application/json")


def test_cursor_paging_with_faults(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture_client_logs(caplog)
    server = Faulty(works, faults(too_many=1, unavailable=3))
    httpserver.expect_request("/works").respond_with_handler(server)
    http = client(
        crossref.SOURCE,
        httpserver.url_for(""),
        tmp_path,
        min_interval=crossref.MIN_INTERVAL,
        default_params=crossref.default_params(MAILTO),
    )
    with http:
        pages = list(crossref.iter_works_pages(http, "kratom", rows=2))

    files = recorded(tmp_path, crossref.SOURCE)
    assert [p.name for p in files] == [f"works-{n:04d}.json" for n in range(1, 5)]
    assert [json.loads(p.read_bytes()) for p in files] == pages
    keys = [crossref.record_key(r) for p in files for r in crossref.iter_records(p)]
    assert keys == [f"DOI:10.1/{c}" for c in "abcde"]

    assert len(server.requests) == 4 + 2 == http.requests_sent and http.retries == 2
    assert [q["cursor"] for _, q in server.requests] == ["*", "*", "DnF1", "DnF1", "DnF2", "DnF3"]
    assert all(q["mailto"] == MAILTO for _, q in server.requests)
    assert server.gap_after(1) >= RETRY_AFTER
    assert closest_starts(http) >= crossref.MIN_INTERVAL
    assert_secrets_kept(tmp_path, http, caplog, [MAILTO])

"""OpenAlex on the shared client against a cursor-speaking /works server on 127.0.0.1.

A 429 (Retry-After) and a 503 come on the way; `mailto` and the API key are sent on every
request and never reach a recorded page, a file name or a log line.
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

from pipelines.sources import openalex

CURSORS = {"*": ("c2", [1, 2]), "c2": ("c3", [3, 4]), "c3": ("c4", [5]), "c4": (None, [6])}
MAILTO = "team@example.org"
API_KEY = "oa-secret-9137"


def works(request: Request) -> Response:
    """/works by cursor, `meta.next_cursor` null on the last page."""
    assert (request.args["search"], request.args["per-page"]) == ("kratom", "2")
    next_cursor, numbers = CURSORS[request.args["cursor"]]
    body = {
        "meta": {"count": 6, "per_page": 2, "next_cursor": next_cursor},
        "results": [{"id": f"https://openalex.org/W{n}", "title": f"Work {n}"} for n in numbers],
    }
    return Response(json.dumps(body), content_type="application/json")


def test_cursor_paging_with_faults(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture_client_logs(caplog)
    server = Faulty(works, faults(too_many=3, unavailable=4))
    httpserver.expect_request("/works").respond_with_handler(server)
    http = client(
        openalex.SOURCE,
        httpserver.url_for(""),
        tmp_path,
        min_interval=openalex.MIN_INTERVAL,
        default_params=openalex.default_params(MAILTO, api_key=API_KEY),
    )
    with http:
        pages = list(openalex.iter_works_pages(http, "kratom", per_page=2))

    files = recorded(tmp_path, openalex.SOURCE)
    assert [p.name for p in files] == [f"works-{n:04d}.json" for n in range(1, 5)]
    assert [json.loads(p.read_bytes()) for p in files] == pages
    keys = [openalex.record_key(r) for p in files for r in openalex.iter_records(p)]
    assert keys == [f"OPENALEX:W{n}" for n in range(1, 7)]

    assert len(server.requests) == 4 + 2 == http.requests_sent and http.retries == 2
    assert [q["cursor"] for _, q in server.requests] == ["*", "c2", "c3", "c3", "c3", "c4"]
    assert all(q["mailto"] == MAILTO and q["api_key"] == API_KEY for _, q in server.requests)
    assert server.gap_after(3) >= RETRY_AFTER
    assert closest_starts(http) >= openalex.MIN_INTERVAL
    assert_secrets_kept(tmp_path, http, caplog, [MAILTO, API_KEY])

"""Europe PMC on the shared client against a cursorMark-speaking server on 127.0.0.1.

A 429 (Retry-After) and a 503 come on the way; every page must still arrive once, be
recorded under its number, and the client keep its pace.
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

from pipelines.sources import europepmc

PAGES = {
    "*": ("AoE1", ["1", "2"]),
    "AoE1": ("AoE2", ["3", "4"]),
    "AoE2": ("AoE3", ["5", "6"]),
    "AoE3": ("AoE3", ["7"]),
}
"""cursorMark -> (nextCursorMark, PMIDs); the last page repeats its cursor, as Europe PMC does."""


def search(request: Request) -> Response:
    """/search in core JSON by cursorMark."""
    assert (request.args["format"], request.args["resultType"]) == ("json", "core")
    assert (request.args["query"], request.args["pageSize"]) == ("kratom", "2")
    next_mark, pmids = PAGES[request.args["cursorMark"]]
    body = {
        "hitCount": 7,
        "nextCursorMark": next_mark,
        "resultList": {"result": [{"id": p, "source": "MED", "pmid": p} for p in pmids]},
    }
    return Response(json.dumps(body), content_type="application/json")


def test_cursor_paging_with_faults(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture_client_logs(caplog)
    server = Faulty(search, faults(too_many=2, unavailable=4))
    httpserver.expect_request("/rest/search").respond_with_handler(server)
    http = client(
        europepmc.SOURCE,
        httpserver.url_for("/rest"),
        tmp_path,
        min_interval=europepmc.MIN_INTERVAL,
        default_params={"email": "team@example.org"},
    )
    with http:
        pages = list(europepmc.iter_search_pages(http, "kratom", page_size=2))

    files = recorded(tmp_path, europepmc.SOURCE)
    assert [p.name for p in files] == [f"search-{n:04d}.json" for n in range(1, 5)]
    assert [json.loads(p.read_bytes()) for p in files] == pages
    keys = [europepmc.record_key(r) for p in files for r in europepmc.iter_records(p)]
    assert keys == [f"MED:{n}" for n in "1234567"]

    assert len(server.requests) == 4 + 2 == http.requests_sent and http.retries == 2
    cursors = [q["cursorMark"] for _, q in server.requests]
    assert cursors == ["*", "AoE1", "AoE1", "AoE2", "AoE2", "AoE3"]
    assert server.gap_after(2) >= RETRY_AFTER
    assert closest_starts(http) >= europepmc.MIN_INTERVAL
    assert_secrets_kept(tmp_path, http, caplog, ["team@example.org"])

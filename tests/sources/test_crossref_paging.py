"""Crossref /works cursor paging on the shared client over loopback HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from literature_loopback import client, recorded
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import crossref

CURSORS = {"*": ["10.1/a", "10.1/b"], "DnF1": ["10.1/c"], "DnF2": []}
NEXT = {"*": "DnF1", "DnF1": "DnF2", "DnF2": "DnF3"}


def test_pages_until_no_items(httpserver: HTTPServer, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def works(request: Request) -> Response:
        seen.append(dict(request.args))
        cursor = request.args["cursor"]
        body = {
            "status": "ok",
            "message-type": "work-list",
            "message-version": "1.0.0",
            "message": {
                "next-cursor": NEXT[cursor],
                "total-results": 3,
                "items": [{"DOI": d, "title": [d]} for d in CURSORS[cursor]],
            },
        }
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/works").respond_with_handler(works)
    http = client(
        crossref.SOURCE,
        httpserver.url_for(""),
        tmp_path,
        default_params=crossref.default_params("team@example.org"),
    )
    pages = list(crossref.iter_works_pages(http, "kratom", rows=2))
    assert len(pages) == 3
    assert [q["cursor"] for q in seen] == ["*", "DnF1", "DnF2"]
    assert all(q["mailto"] == "team@example.org" and q["rows"] == "2" for q in seen)
    keys = [
        crossref.record_key(r)
        for path in recorded(tmp_path, crossref.SOURCE)
        for r in crossref.iter_records(path)
    ]
    assert keys == ["DOI:10.1/a", "DOI:10.1/b", "DOI:10.1/c"]

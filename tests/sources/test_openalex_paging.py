"""OpenAlex cursor paging on the shared client over loopback HTTP, pages as documented."""

from __future__ import annotations

import json
from pathlib import Path

from literature_loopback import client, recorded
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import openalex

CURSORS = {"*": ("c2", [1, 2]), "c2": ("c3", [3]), "c3": (None, [4])}


def test_follows_next_cursor_until_null(httpserver: HTTPServer, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def works(request: Request) -> Response:
        seen.append(dict(request.args))
        next_cursor, numbers = CURSORS[request.args["cursor"]]
        body = {
            "meta": {"count": 4, "per_page": 2, "next_cursor": next_cursor},
            "results": [
                {"id": f"https://openalex.org/W{n}", "title": f"Work {n}"} for n in numbers
            ],
        }
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/works").respond_with_handler(works)
    params = openalex.default_params("team@example.org", api_key="oa-key")
    http = client(openalex.SOURCE, httpserver.url_for(""), tmp_path, default_params=params)
    pages = list(openalex.iter_works_pages(http, "kratom", per_page=2))
    assert len(pages) == 3
    assert [q["cursor"] for q in seen] == ["*", "c2", "c3"]
    assert all(q["mailto"] == "team@example.org" and q["api_key"] == "oa-key" for q in seen)
    assert all(q["search"] == "kratom" and q["per-page"] == "2" for q in seen)
    keys = [
        openalex.record_key(r)
        for path in recorded(tmp_path, openalex.SOURCE)
        for r in openalex.iter_records(path)
    ]
    assert keys == [f"OPENALEX:W{n}" for n in range(1, 5)]


def test_api_key_only_when_given() -> None:
    assert openalex.default_params("a@b.org") == {"mailto": "a@b.org"}

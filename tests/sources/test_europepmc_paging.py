"""Europe PMC cursorMark paging on the shared client over loopback HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from literature_loopback import client, recorded
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import europepmc

PAGES = {"*": ("AoE1", ["1", "2"]), "AoE1": ("AoE2", ["3", "4"]), "AoE2": ("AoE2", ["5"])}


def test_stops_when_the_cursor_repeats(httpserver: HTTPServer, tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    def search(request: Request) -> Response:
        seen.append(dict(request.args))
        assert (request.args["format"], request.args["resultType"]) == ("json", "core")
        next_mark, pmids = PAGES[request.args["cursorMark"]]
        body = {
            "hitCount": 5,
            "nextCursorMark": next_mark,
            "resultList": {"result": [{"id": p, "source": "MED", "pmid": p} for p in pmids]},
        }
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/rest/search").respond_with_handler(search)
    http = client(europepmc.SOURCE, httpserver.url_for("/rest"), tmp_path)
    pages = list(europepmc.iter_search_pages(http, "kratom", page_size=2))
    assert [p["nextCursorMark"] for p in pages] == ["AoE1", "AoE2", "AoE2"]
    assert [q["cursorMark"] for q in seen] == ["*", "AoE1", "AoE2"]
    records = [
        r for path in recorded(tmp_path, europepmc.SOURCE) for r in europepmc.iter_records(path)
    ]
    assert [europepmc.record_key(r) for r in records] == [f"MED:{n}" for n in "12345"]


def test_stops_when_results_run_out(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/search").respond_with_json(
        {"hitCount": 0, "resultList": {"result": []}}
    )
    http = client(europepmc.SOURCE, httpserver.url_for(""), tmp_path)
    assert len(list(europepmc.iter_search_pages(http, "nothing"))) == 1
    assert len(httpserver.log) == 1

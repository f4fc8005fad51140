"""ChEMBL activity paging over a real loopback HTTP server, following `page_meta.next`.

Drives the pager through a plain httpx client with the `get_json(path, params, record_as=...)`
shape of the shared client (`pipelines.http`, not in the tree yet), under a base URL with a
path prefix, as the real service has (/chembl).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import chembl


class LoopbackJson:
    """Minimal JSON client over httpx."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=5)
        self.recorded: list[str] = []

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        self.recorded.append(record_as or "")
        return response.json()


def test_pager_follows_next_until_null(httpserver: HTTPServer) -> None:
    calls: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        args = dict(request.args)
        calls.append(args)
        offset, limit = int(args["offset"]), int(args["limit"])
        total = 5
        items = [
            {"activity_id": i, "molecule_chembl_id": "CHEMBL70"}
            for i in range(offset, min(offset + limit, total))
        ]
        more = offset + limit < total
        next_link = (
            f"/chembl/api/data/activity.json?limit={limit}&offset={offset + limit}"
            f"&molecule_chembl_id__in={args['molecule_chembl_id__in']}"
            if more
            else None
        )
        body = {"activities": items, "page_meta": {"next": next_link, "total_count": total}}
        return Response(json.dumps(body), mimetype="application/json")

    httpserver.expect_request(re.compile("^/chembl/api/data/activity.json$")).respond_with_handler(
        handler
    )
    client = LoopbackJson(httpserver.url_for("/chembl"))
    pages = list(chembl.iter_activity_pages(client, ["CHEMBL70", "CHEMBL299031"], limit=2))

    assert len(calls) == 3
    assert [c["offset"] for c in calls] == ["0", "2", "4"]
    assert {c["molecule_chembl_id__in"] for c in calls} == {"CHEMBL299031,CHEMBL70"}
    ids = [a["activity_id"] for page in pages for a in chembl.page_items(page)[0]]
    assert ids == [0, 1, 2, 3, 4]
    assert client.recorded == ["activity_00001.json", "activity_00002.json", "activity_00003.json"]

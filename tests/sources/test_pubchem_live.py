"""PubChem look-ups over a real loopback HTTP server: batching, throttling header, 503.

The shared client `pipelines.http.SourceHttp` (retries, minimum interval, recording) is not in
the tree yet, so these tests drive the paging code through a plain httpx client with the same
`get_json(path, params, record_as=...)` shape; retry-on-503/429 belongs to that shared client.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import pubchem

YELLOW = "Request Count status: Yellow (60%), Request Time status: Green (5%)"


class LoopbackJson:
    """Minimal JSON client over httpx that calls a response hook, like SourceHttp does."""

    def __init__(self, base_url: str, on_response: Callable[[httpx.Response], None]) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=5)
        self.on_response = on_response
        self.recorded: list[str] = []

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any:
        response = self.client.get(path, params=params)
        self.on_response(response)
        response.raise_for_status()
        self.recorded.append(record_as or "")
        return response.json()


def test_batched_lookups_slow_down_after_a_yellow_header(httpserver: HTTPServer) -> None:
    seen: list[tuple[str, float]] = []

    def handler(request: Request) -> Response:
        seen.append((request.path, time.monotonic()))
        cids = request.path.split("/")[5].split(",")
        if "synonyms" in request.path:
            body = {"InformationList": {"Information": [{"CID": int(c)} for c in cids]}}
        else:
            body = {"PropertyTable": {"Properties": [{"CID": int(c)} for c in cids]}}
        headers = {pubchem.THROTTLE_HEADER: YELLOW if len(seen) == 1 else "Service status: Green"}
        return Response(json.dumps(body), headers=headers, mimetype="application/json")

    httpserver.expect_request(re.compile("^/rest/pug/")).respond_with_handler(handler)
    pacer = pubchem.ThrottlePacer()
    client = LoopbackJson(httpserver.url_for(""), pacer.on_response)
    bodies = list(pubchem.fetch_compounds(client, [3, 1, 2, 1], pacer, batch_size=2))

    assert [p for p, _ in seen] == [
        pubchem.property_path([1, 2]),
        pubchem.property_path([3]),
        pubchem.synonyms_path([1, 2]),
        pubchem.synonyms_path([3]),
    ]
    assert seen[1][1] - seen[0][1] >= pubchem.THROTTLE_DELAYS["yellow"]
    assert seen[2][1] - seen[1][1] < pubchem.THROTTLE_DELAYS["yellow"]
    assert pacer.waited == [pubchem.THROTTLE_DELAYS["yellow"]]
    assert client.recorded == [
        "properties_1-2.json",
        "properties_3-3.json",
        "synonyms_1-2.json",
        "synonyms_3-3.json",
    ]
    assert [b["PropertyTable"]["Properties"][0]["CID"] for b in bodies[:2]] == [1, 3]


def test_a_503_asks_the_pacer_for_the_red_pause(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/busy").respond_with_data("busy", status=503)
    pacer = pubchem.ThrottlePacer(sleep=lambda _: None)
    response = httpx.get(httpserver.url_for("/busy"))
    pacer.on_response(response)
    pacer.wait()
    assert pacer.waited == [pubchem.THROTTLE_DELAYS["red"]]

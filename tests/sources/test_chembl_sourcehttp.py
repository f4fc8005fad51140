"""ChEMBL on the shared client against an activity API on 127.0.0.1 under a /chembl prefix.

`page_meta.next` comes from the host root, prefix included, as the real service gives it; the
pager must call the same client with it, through a 429 (Retry-After) and a 503.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from literature_loopback import RETRY_AFTER, Faulty, client, faults, recorded
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import chembl

TOTAL = 7
MOLECULES = ["CHEMBL70", "CHEMBL299031", "CHEMBL70"]


def activity(request: Request) -> Response:
    """/chembl/api/data/activity.json by offset/limit, `next` a host-root link or null."""
    args = request.args
    assert args["molecule_chembl_id__in"] == "CHEMBL299031,CHEMBL70"
    offset, limit = int(args["offset"]), int(args["limit"])
    items = [
        {"activity_id": 1000 + i, "molecule_chembl_id": "CHEMBL70"}
        for i in range(offset, min(offset + limit, TOTAL))
    ]
    next_link = (
        f"/chembl/api/data/activity.json?limit={limit}&offset={offset + limit}"
        f"&molecule_chembl_id__in={args['molecule_chembl_id__in']}"
        if offset + limit < TOTAL
        else None
    )
    body = {"activities": items, "page_meta": {"next": next_link, "total_count": TOTAL}}
    return Response(json.dumps(body), mimetype="application/json")


@pytest.mark.parametrize("prefix", ["/chembl", "/chembl/"])
def test_follows_next_links_under_a_prefix_with_faults(
    httpserver: HTTPServer, tmp_path: Path, prefix: str
) -> None:
    server = Faulty(activity, faults(too_many=2, unavailable=4))
    httpserver.expect_request("/chembl/api/data/activity.json").respond_with_handler(server)
    with client(chembl.SOURCE, httpserver.url_for(prefix), tmp_path, min_interval=0.1) as http:
        pages = list(chembl.iter_activity_pages(http, MOLECULES, limit=2))

    files = recorded(tmp_path, chembl.SOURCE)
    assert [p.name for p in files] == [f"activity_{n:05d}.json" for n in range(1, 5)]
    assert [json.loads(p.read_bytes()) for p in files] == pages
    keys = [chembl.record_key(r) for p in files for r in chembl.iter_records(p)]
    assert keys == [f"activity:{1000 + i}" for i in range(TOTAL)]

    assert len(server.requests) == 4 + 2 == http.requests_sent and http.retries == 2
    assert [q["offset"] for _, q in server.requests] == ["0", "2", "2", "4", "4", "6"]
    assert server.gap_after(2) >= RETRY_AFTER

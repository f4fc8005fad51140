"""PubChem on the shared client against a PUG REST-speaking server on 127.0.0.1.

Batched CID look-ups with a 429 (Retry-After), a bare 503 and `X-Throttling-Control` Yellow
and Red on the way: the client retries, the pacer pauses before whatever request comes next
(the retry of a 503 included), and no one-second window of request starts holds more than 5.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from literature_loopback import (
    RETRY_AFTER,
    Faulty,
    assert_arrivals_follow_logged_starts,
    client,
    faults,
    max_in_one_second,
    recorded,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import pubchem

DELAYS = {"green": 0.0, "yellow": 0.5, "red": 0.8, "black": 1.2}
"""The pacer's pauses scaled down so the test stays short; the colours' order is PubChem's."""
GREEN = "Request Count status: Green (10%), Request Time status: Green (5%)"
YELLOW = "Request Count status: Yellow (60%), Request Time status: Green (5%)"
RED = "Request Count status: Green (10%), Request Time status: Red (80%)"
BATCHES = [(1, 2), (3, 4), (5, 5)]
"""CID batches of the first test's look-ups, as recorded in the file names."""
PUG = re.compile(r"^/rest/pug/compound/cid/([\d,]+)/(property/[A-Za-z,]+|synonyms)/JSON$")


def pug_rest(request: Request, colours: dict[str, str] | None = None) -> Response:
    """Property tables and synonym lists for comma-joined CIDs; a throttling header on each."""
    match = PUG.match(request.path)
    assert match is not None
    cids = [int(c) for c in match.group(1).split(",")]
    if match.group(2) == "synonyms":
        body: dict[str, object] = {
            "InformationList": {"Information": [{"CID": c, "Synonym": [f"C{c}"]} for c in cids]}
        }
    else:
        body = {"PropertyTable": {"Properties": [{"CID": c} for c in cids]}}
    header = (colours or {}).get(request.path, GREEN)
    return Response(
        json.dumps(body), headers={pubchem.THROTTLE_HEADER: header}, mimetype="application/json"
    )


def test_batches_with_faults_and_throttling_headers(httpserver: HTTPServer, tmp_path: Path) -> None:
    colours = {pubchem.property_path([3, 4]): YELLOW, pubchem.synonyms_path([1, 2]): RED}
    server = Faulty(lambda r: pug_rest(r, colours), faults(too_many=2, unavailable=4))
    httpserver.expect_request(PUG).respond_with_handler(server)
    pacer = pubchem.ThrottlePacer(delays=DELAYS)
    http = client(
        pubchem.SOURCE,
        httpserver.url_for(""),
        tmp_path,
        min_interval=pubchem.MIN_INTERVAL,
        rate_limit=pubchem.RATE_LIMIT,
        on_response=pacer.on_response,
    )
    with http:
        bodies = list(pubchem.fetch_compounds(http, [5, 3, 1, 2, 4, 3], pacer, batch_size=2))

    names = [f"{kind}_{a}-{b}.json" for kind in ("properties", "synonyms") for a, b in BATCHES]
    files = recorded(tmp_path, pubchem.SOURCE)
    assert sorted(p.name for p in files) == sorted(names)
    assert [json.loads((tmp_path / pubchem.SOURCE / n).read_bytes()) for n in names] == bodies
    keys = [
        pubchem.record_key(r) for n in names for r in pubchem.iter_records(tmp_path / "pubchem" / n)
    ]
    assert keys == [f"CID:{c}:{kind}" for kind in ("properties", "synonyms") for c in range(1, 6)]

    paths = [path for path, _ in server.requests]
    batch_paths = [pubchem.property_path([1, 2]), pubchem.property_path([3, 4])]
    assert paths[:3] == [batch_paths[0], batch_paths[1], batch_paths[1]]  # the 429, again
    assert paths[3] == paths[4] == pubchem.property_path([5])  # the 503, again
    assert len(paths) == 6 + 2 == http.requests_sent and http.retries == 2
    assert pacer.waited == [DELAYS["yellow"], DELAYS["red"], DELAYS["red"]]
    assert server.gap_after(2) >= RETRY_AFTER
    assert server.gap_after(3) >= DELAYS["yellow"]  # Yellow: the next batch waits
    assert server.gap_after(4) >= DELAYS["red"]  # 503: the retry itself waits
    assert server.gap_after(6) >= DELAYS["red"]  # Red: the next batch waits


def test_stays_within_five_requests_a_second(httpserver: HTTPServer, tmp_path: Path) -> None:
    server = Faulty(pug_rest, {})
    httpserver.expect_request(PUG).respond_with_handler(server)
    pacer = pubchem.ThrottlePacer(delays=DELAYS)
    with client(
        pubchem.SOURCE,
        httpserver.url_for(""),
        tmp_path,
        min_interval=pubchem.MIN_INTERVAL,
        rate_limit=pubchem.RATE_LIMIT,
        on_response=pacer.on_response,
    ) as http:
        bodies = list(pubchem.fetch_compounds(http, list(range(1, 11)), pacer, batch_size=2))

    assert len(bodies) == len(server.arrivals) == 10 and pacer.waited == []
    assert len(recorded(tmp_path, pubchem.SOURCE)) == 10
    starts = [entry.started_at for entry in http.log]
    assert max_in_one_second(starts) <= 5  # the pace, on the client's clock
    assert_arrivals_follow_logged_starts(server.arrivals, starts)

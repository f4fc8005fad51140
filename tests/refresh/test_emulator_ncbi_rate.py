"""The emulator enforces NCBI's E-utilities rate limit, and the client keeps to it unpaced.

NCBI allows 3 requests a second per IP address without an API key and 10 per key with one
(https://support.nlm.nih.gov/kbArticle/?pn=KA-05510), answers beyond that with a 429 and the
throttling body recorded in ../shared/samples/pubmed (`{"error": "API rate limit exceeded",
"api-key", "count", "limit"}`), and states the limit in `X-RateLimit-*` headers. The PubMed
client at `--pace 0` reads the header on its first answer and keeps to it, so it is never
throttled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.devtools.emulator import SnapshotApi, load_snapshot, make_server, running
from pipelines.http import SourceHttp
from pipelines.refresh import busiest_window, parse_base_urls
from pipelines.sources import pubmed

SAMPLE = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "samples"
    / "pubmed"
    / "esummary_json_error_api_rate_limit_exceeded_biomcp.json"
)
ESEARCH = "/pubmed/esearch.fcgi?db=pubmed&term=kratom&usehistory=y&retmode=json"


@pytest.fixture()
def api() -> SnapshotApi:
    return SnapshotApi(load_snapshot(paths.BUNDLED_SNAPSHOT))


def test_a_fourth_keyless_request_in_a_second_gets_the_throttling_body(api: SnapshotApi) -> None:
    answers = [api.answer(ESEARCH, arrived=50.0 + 0.01 * n) for n in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert [dict(a.headers)["X-RateLimit-Limit"] for a in answers] == ["3"] * 4
    assert [dict(a.headers)["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    refused = json.loads(answers[3].body)
    assert refused == {"error": "API rate limit exceeded", "api-key": "127.0.0.1"} | {
        "count": "4",
        "limit": "3",
    }
    if SAMPLE.is_file():  # the real body has the same keys and wording
        real = json.loads(SAMPLE.read_bytes())
        assert set(real) == set(refused) and real["error"] == refused["error"]
        assert real["limit"] == refused["limit"]
    assert api.answer(ESEARCH, arrived=50.4).status == 200  # a third of a second tops it up
    assert api.answer(ESEARCH).status == 200  # a direct call, not over the wire, is not counted


def test_with_an_api_key_ten_a_second_per_key(api: SnapshotApi) -> None:
    keyed = ESEARCH + "&api_key=k1"
    statuses = [api.answer(keyed, arrived=70.0 + 0.001 * n).status for n in range(11)]
    assert statuses == [200] * 10 + [429]
    assert api.answer(ESEARCH + "&api_key=k2", arrived=70.02).status == 200  # another key
    assert api.answer(ESEARCH, arrived=70.02).status == 200  # keyless callers count apart


def test_an_unpaced_client_learns_the_limit_from_the_first_answer(tmp_path: Path) -> None:
    with running(make_server(paths.BUNDLED_SNAPSHOT)) as server:
        url = parse_base_urls([f"all={server.base_url}"])[pubmed.SOURCE]
        with SourceHttp(pubmed.SOURCE, url, max_tries=1) as http:
            for _ in range(7):
                http.get_json("/esearch.fcgi", {"db": "pubmed", "term": "kratom"})
            starts = [entry.started_at for entry in http.log]
            statuses = [entry.status for entry in http.log]
    assert statuses == [200] * 7  # max_tries 1: a single 429 would have failed the client
    assert busiest_window(starts) <= 3


def test_a_rate_scale_multiplies_the_limits_kept_and_announced() -> None:
    """What the fast tests run on (tests/conftest.py EMULATOR_RATE_SCALE): NCBI's and
    Crossref's limits times the scale, refused beyond it and stated in their headers."""
    api = SnapshotApi(load_snapshot(paths.BUNDLED_SNAPSHOT), rate_scale=10)
    answers = [api.answer(ESEARCH, arrived=90.0 + 0.001 * n) for n in range(31)]
    assert [a.status for a in answers] == [200] * 30 + [429]
    assert dict(answers[0].headers)["X-RateLimit-Limit"] == "30"
    works = "/crossref/works?query.bibliographic=kratom&rows=20"
    listed = [api.answer(works, arrived=95.0 + 0.001 * n) for n in range(11)]
    assert [a.status for a in listed] == [200] * 10 + [429]
    assert dict(listed[0].headers)["x-rate-limit-limit"] == "10"

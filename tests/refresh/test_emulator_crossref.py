"""The emulator answers Crossref as strictly as Crossref documents it.

`query.bibliographic` keeps works sharing any word with it (titles, containers, authors, ISSNs,
years), best first with a `score`; a `doi:` filter names works; more list requests a second than
the pool allows (3 with `mailto`, 1 without) get a 429 with the `x-rate-limit-*` headers; a bad
`rows` gets Crossref's validation-failure envelope, checked against a recorded real body.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from pipelines import paths
from pipelines.devtools.emulator import SnapshotApi, load_snapshot, make_server, running

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "crossref"


@pytest.fixture(scope="module")
def api() -> SnapshotApi:
    return SnapshotApi(load_snapshot(paths.BUNDLED_SNAPSHOT))


def _items(api: SnapshotApi, query: str) -> list[dict[str, Any]]:
    reply = api.answer(f"/crossref/works?rows=1000&query.bibliographic={quote(query)}")
    assert reply.status == 200
    return list(json.loads(reply.body)["message"]["items"])


def _titled(api: SnapshotApi, word: str) -> set[str]:
    """DOIs of the bundled works whose title has `word` as a whole word (any case)."""
    every = json.loads(api.answer("/crossref/works?rows=1000").body)["message"]["items"]
    pattern = re.compile(rf"\b{word}\b", re.IGNORECASE)
    return {w["DOI"] for w in every if any(pattern.search(t) for t in w.get("title", []))}


def test_bibliographic_query_matches_any_word_best_first(api: SnapshotApi) -> None:
    both = _items(api, "Mitragyna speciosa")
    mitragyna, speciosa = _titled(api, "mitragyna"), _titled(api, "speciosa")

    assert {w["DOI"] for w in both} == mitragyna | speciosa
    scores = [w["score"] for w in both]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert {w["DOI"] for w in both if w["score"] == scores[0]} == mitragyna & speciosa
    assert {w["DOI"] for w in _items(api, "speciosa zzzunknown")} == speciosa
    assert _items(api, "zzzunknown") == []


def test_doi_filter_names_works_even_without_a_title(api: SnapshotApi) -> None:
    reply = api.answer("/crossref/works?rows=2&filter=doi:10.3389/fphar.2022.765917")
    (work,) = json.loads(reply.body)["message"]["items"]
    assert work["DOI"] == "10.3389/fphar.2022.765917" and "title" not in work


def test_list_requests_beyond_the_pool_limit_get_429_with_the_limit_headers(
    api: SnapshotApi,
) -> None:
    polite = "/crossref/works?query.bibliographic=kratom&mailto=x%40example.org"
    answers = [api.answer(polite, arrived=100.0 + 0.1 * n) for n in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    headers = dict(answers[3].headers)
    assert headers == {"x-rate-limit-limit": "3", "x-rate-limit-interval": "1s"}
    assert dict(answers[0].headers) == headers  # announced on every answer
    assert api.answer(polite, arrived=101.05).status == 200  # the first left the window

    public = "/crossref/works?query.bibliographic=kratom"
    assert [api.answer(public, arrived=200.0 + 0.5 * n).status for n in range(3)] == [
        200,
        429,
        200,
    ]
    assert dict(api.answer(public, arrived=200.6).headers)["x-rate-limit-limit"] == "1"


def test_the_served_limit_holds_over_the_wire() -> None:
    server = make_server(paths.BUNDLED_SNAPSHOT)
    with running(server), ThreadPoolExecutor(3) as pool:
        url = f"{server.base_url}/crossref/works?query.bibliographic=kratom"
        statuses = list(pool.map(lambda _: httpx.get(url, timeout=10).status_code, range(3)))
    assert 429 in statuses and 200 in statuses


def test_bad_rows_answer_crossrefs_validation_failure_envelope(api: SnapshotApi) -> None:
    sample = SAMPLES / "error_400_validation_failure_integer_not_valid_rows.json"
    if not sample.is_file():
        pytest.skip("../shared/samples/crossref is not here")
    real = json.loads(sample.read_bytes())

    reply = api.answer("/crossref/works?rows=things&query.bibliographic=kratom")

    assert reply.status == 400
    body = json.loads(reply.body)
    assert set(body) == set(real) and body["message-type"] == real["message-type"]
    assert set(body["message"][0]) == set(real["message"][0])
    assert body["message"][0]["type"] == real["message"][0]["type"] == "integer-not-valid"
    assert body["message"][0]["value"] == "things"


def test_one_work_by_doi_in_crossrefs_envelopes(api: SnapshotApi) -> None:
    """/works/{doi} answers the work as Crossref does (`message-type: work`); a field query
    and an unknown DOI get Crossref's recorded error bodies."""
    doi = "10.3389/fphar.2022.765917"
    for path in (doi, quote(doi, safe=""), doi.upper()):
        reply = api.answer(f"/crossref/works/{path}")
        body = json.loads(reply.body)
        assert reply.status == 200 and body["message-type"] == "work"
        assert body["message"]["DOI"] == doi
    listed = json.loads(api.answer(f"/crossref/works?filter=doi:{doi}").body)["message"]["items"]
    assert listed == [body["message"]]

    unknown = api.answer("/crossref/works/10.5555/no.such.work")
    assert (unknown.status, unknown.content_type) == (404, "text/plain")
    refused = api.answer(f"/crossref/works/{doi}?query.author=Smith")
    assert refused.status == 400
    if SAMPLES.is_dir():
        real_404 = (SAMPLES / "error_404_works_resource_not_found_plain.txt").read_bytes()
        assert unknown.body == real_404
        real_400 = SAMPLES / "error_400_validation_failure_parameter_not_allowed.json"
        assert json.loads(refused.body) == json.loads(real_400.read_bytes())

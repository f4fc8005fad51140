"""Rate limits as the sources document them, through the refresh's own client over loopback.

Crossref: 3 list requests a second with `mailto`, 1 without, and whatever `x-rate-limit-limit` /
`x-rate-limit-interval` announce when that is stricter. OpenAlex: a 403 whose body says "rate
limit" is retried (any other 403 is final). Every client names the project and the contact
e-mail in its User-Agent, which never reaches the request log. Pacing is checked on the
client's recorded request starts: gaps and the busiest one-second window, not throughput.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.http import ANNOUNCED_MARGIN, RateLimit, ResponseRecorder, SourceError, SourceHttp
from pipelines.refresh.audit import busiest_window
from pipelines.refresh.settings import POLITE, HttpSettings, source_client
from pipelines.sources import crossref
from pipelines.sources.base import Credentials

EMAIL = "team@example.org"
EMPTY = {"status": "ok", "message-type": "work-list", "message": {"items": []}}


def _answer(headers: dict[str, str] | None = None) -> Callable[[Request], Response]:
    def works(request: Request) -> Response:
        return Response(json.dumps(EMPTY), content_type="application/json", headers=headers)

    return works


def _client(url: str, tmp_path: Path, creds: Credentials, settings: HttpSettings) -> SourceHttp:
    return source_client(
        crossref.SOURCE, url, creds, settings, ResponseRecorder(tmp_path), lambda e: None, None
    )


def _starts(http: SourceHttp, requests: int) -> list[float]:
    for _ in range(requests):
        http.get_json("/works", {"query.bibliographic": "kratom"})
    return [entry.started_at for entry in http.log]


@pytest.mark.parametrize(
    ("creds", "per_second", "requests"),
    [(Credentials(email=EMAIL), 3, 5), (Credentials(), 1, 3)],
    ids=["polite", "public"],
)
def test_crossref_list_requests_keep_to_the_pool_limit(
    httpserver: HTTPServer, tmp_path: Path, creds: Credentials, per_second: int, requests: int
) -> None:
    httpserver.expect_request("/works").respond_with_handler(_answer())
    with _client(httpserver.url_for(""), tmp_path, creds, POLITE) as http:
        starts = _starts(http, requests)

    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= crossref.WINDOW / per_second - 0.01
    assert busiest_window(starts, 1.0) <= per_second


def test_announced_limit_slows_a_client_that_runs_unpaced(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    headers = {"x-rate-limit-limit": "2", "x-rate-limit-interval": "1s"}
    httpserver.expect_request("/works").respond_with_handler(_answer(headers))
    unpaced = HttpSettings(pace=0.0)
    with _client(httpserver.url_for(""), tmp_path, Credentials(email=EMAIL), unpaced) as http:
        starts = _starts(http, 5)
        limit = http.rate_limit

    assert limit == RateLimit(2, 1.0 * ANNOUNCED_MARGIN)
    assert busiest_window(starts, 1.0) <= 2
    assert starts[4] - starts[2] >= ANNOUNCED_MARGIN - 0.01  # the third start after the first two


def test_a_looser_announced_limit_never_loosens_the_documented_one(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    headers = {"x-rate-limit-limit": "50", "x-rate-limit-interval": "1s"}
    httpserver.expect_request("/works").respond_with_handler(_answer(headers))
    with _client(httpserver.url_for(""), tmp_path, Credentials(email=EMAIL), POLITE) as http:
        _starts(http, 1)
        assert http.rate_limit == crossref.POLITE_LIMIT


def test_user_agent_names_the_project_and_the_contact_never_logged(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    agents: list[str] = []

    def works(request: Request) -> Response:
        agents.append(request.headers.get("User-Agent", ""))
        return _answer()(request)

    httpserver.expect_request("/works").respond_with_handler(works)
    with _client(httpserver.url_for(""), tmp_path, Credentials(email=EMAIL), POLITE) as http:
        _starts(http, 1)
        logged = [entry.url for entry in http.log]

    assert agents[0].startswith("kratom-evidence/") and f"mailto:{EMAIL}" in agents[0]
    assert all(EMAIL not in url for url in logged)


RATE_LIMIT_403 = {"error": "Rate limit exceeded", "message": "Slow down."}
"""OpenAlex documents 403 as "Rate limit exceeded; slow down" and its errors as `error` and
`message` (https://developers.openalex.org/api-reference/errors); no real 403 body was recorded
(../shared/samples/PROVENANCE.md)."""


def test_a_rate_limit_403_is_retried_and_any_other_403_is_final(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    answered: list[int] = []

    def works(request: Request) -> Response:
        answered.append(403 if not answered else 200)
        if answered[-1] == 403:
            return Response(json.dumps(RATE_LIMIT_403), 403, content_type="application/json")
        return _answer()(request)

    httpserver.expect_request("/works").respond_with_handler(works)
    http = SourceHttp("openalex", httpserver.url_for(""), backoff_base=0.01)
    with http:
        http.get_json("/works")
    assert (http.requests_sent, http.retries) == (2, 1)
    assert http.log[0].problem == "HTTP 403"

    httpserver.clear()
    refusal = {"error": "Forbidden", "message": "The filter requires an API key."}
    httpserver.expect_request("/works").respond_with_json(refusal, status=403)
    http = SourceHttp("openalex", httpserver.url_for(""), backoff_base=0.01)
    with http, pytest.raises(SourceError, match="HTTP 403"):
        http.get_json("/works")
    assert http.requests_sent == 1

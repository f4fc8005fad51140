"""PubMed against E-utilities' limits over real loopback HTTP: in-band esearch errors and the
throttling body are retried with back-off, and a query over the esearch cap is split by
publication date (or refused with a clear message when one day alone is over it).

The cap tests run the live pager against `serve-snapshot` with a cap of 5 records, the way the
real service caps a search at 9,999: the emulator refuses efetch past the cap, so a pager that
did not split would fail, not just miss records.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.devtools.emulator import EmulatorServer, make_server, running
from pipelines.http import SourceError, SourceHttp
from pipelines.sources import pubmed
from tests.conftest import EMULATOR_RATE_SCALE

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "pubmed"
RATE_LIMIT_BODY = SAMPLES / "esummary_json_error_api_rate_limit_exceeded_biomcp.json"
CAP = 5
YEARS = (1998, 2004, 2004, 2010, 2015, 2015, 2016, 2019, 2021, 2021, 2021, 2023, 2024)
"""Publication years of the served articles: 13 hits, over a cap of 5, so the query splits."""


def _article(pmid: int, year: int, day: int = 1) -> str:
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}'
        "</PMID><Article><Journal><JournalIssue><PubDate>"
        f"<Year>{year}</Year><Month>Mar</Month><Day>{day:02d}</Day></PubDate></JournalIssue>"
        f"</Journal><ArticleTitle>Kratom test article {pmid}</ArticleTitle></Article>"
        "</MedlineCitation></PubmedArticle>\n"
    )


def _snapshot(folder: Path, articles: list[str]) -> Path:
    (folder / "pubmed").mkdir(parents=True)
    body = '<?xml version="1.0" ?>\n<PubmedArticleSet>\n' + "".join(articles)
    (folder / "pubmed" / "efetch-0001.xml").write_text(body + "</PubmedArticleSet>\n")
    info = {"captured_at": "2026-11-25", "topic": "kratom", "method": "reconstructed"}
    (folder / "SNAPSHOT.json").write_text(json.dumps({**info, "notes": "test articles"}))
    return folder


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[EmulatorServer]:
    articles = [_article(99_100_001 + i, year) for i, year in enumerate(YEARS)]
    with running(
        make_server(_snapshot(tmp_path, articles), result_cap=CAP, rate_scale=EMULATOR_RATE_SCALE)
    ) as server:
        yield server


def _client(base_url: str, tries: int = 4) -> SourceHttp:
    return SourceHttp(
        pubmed.SOURCE, base_url, max_tries=tries, backoff_base=0.01, rng=random.Random(1)
    )


class _Checked:
    """A SourceHttp seen through the refresh's body check, as `RecordingClient` applies it."""

    def __init__(self, http: SourceHttp) -> None:
        self.http, self.base_url = http, http.base_url

    def get_json(
        self, path: str, params: dict[str, object] | None = None, *, record_as: str | None = None
    ) -> object:
        return self.http.get_json(path, params, record_as=record_as, validate=pubmed.check_body)

    def get_bytes(
        self, path: str, params: dict[str, object] | None = None, *, record_as: str | None = None
    ) -> bytes:
        return self.http.get_bytes(path, params, record_as=record_as, validate=pubmed.check_body)


def _pmids(bodies: list[bytes]) -> list[str]:
    return [
        pid
        for body in bodies
        for pid in pubmed.re.findall(r'<PMID Version="1">(\d+)<', body.decode())
    ]


def test_query_over_the_cap_is_split_by_publication_date_and_fetched_whole(
    capped: EmulatorServer,
) -> None:
    warnings: list[str] = []
    with _client(f"{capped.base_url}/pubmed") as http:
        bodies = list(
            pubmed.iter_efetch_pages(
                _Checked(http), "kratom", batch=2, cap=CAP, warn=warnings.append
            )
        )
    pmids = _pmids(bodies)
    assert sorted(pmids) == [str(99_100_001 + i) for i in range(len(YEARS))]
    assert len(pmids) == len(set(pmids))
    searched = [r for r in capped.requests if "/esearch.fcgi?" in r]
    assert any("%5Bdp%5D" in r for r in searched)  # the [dp] ranges
    starts = [
        int(parse_qs(urlsplit(r).query)["retstart"][0]) for r in capped.requests if "efetch" in r
    ]
    assert max(starts) < CAP
    assert warnings == []


def test_without_the_split_the_capped_emulator_refuses_records_past_the_cap(
    capped: EmulatorServer,
) -> None:
    """The control: a pager told the cap is higher pages past it and gets the service's 400."""
    with (
        _client(f"{capped.base_url}/pubmed", tries=1) as http,
        pytest.raises(SourceError, match="HTTP 400"),
    ):
        list(pubmed.iter_efetch_pages(_Checked(http), "kratom", batch=2, cap=100))


def test_one_day_over_the_cap_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    same_day = [_article(99_200_001 + i, 2020, day=7) for i in range(CAP + 2)]
    server = make_server(
        _snapshot(tmp_path, same_day), result_cap=CAP, rate_scale=EMULATOR_RATE_SCALE
    )
    with (
        running(server),
        _client(f"{server.base_url}/pubmed") as http,
        pytest.raises(pubmed.SearchError) as caught,
    ):
        list(pubmed.iter_efetch_pages(_Checked(http), "kratom", batch=2, cap=CAP))
    message = str(caught.value)
    assert "'kratom'" in message and "2020-03-07" in message and str(CAP) in message
    assert "narrow the query" in message


def _eutils(answers: list[tuple[int, bytes]]) -> tuple[Callable[[Request], Response], list[str]]:
    """esearch answers in turn from `answers`, then a good history; efetch one article."""
    asked: list[str] = []

    def handle(request: Request) -> Response:
        asked.append(request.path)
        if request.path.endswith("/esearch.fcgi"):
            if answers:
                status, body = answers.pop(0)
                return Response(body, status=status, content_type="application/json")
            good = {"esearchresult": {"count": "1", "webenv": "MCID_x", "querykey": "1"}}
            return Response(json.dumps(good), content_type="application/json")
        xml = (
            '<?xml version="1.0" ?>\n<PubmedArticleSet>'
            + _article(99_300_001, 2020)
            + "</PubmedArticleSet>"
        )
        return Response(xml, content_type="text/xml")

    return handle, asked


def test_transient_esearch_error_and_rate_limit_body_are_retried(httpserver: HTTPServer) -> None:
    backend = json.dumps(
        {"esearchresult": {"ERROR": "Search Backend failed: temporarily"}}
    ).encode()
    throttled = (
        RATE_LIMIT_BODY.read_bytes()
        if RATE_LIMIT_BODY.is_file()
        else (b'{"error":"API rate limit exceeded","count":"4","limit":"3"}')
    )
    handle, asked = _eutils([(200, backend), (200, throttled), (429, throttled)])
    httpserver.expect_request(pubmed.ESEARCH_PATH).respond_with_handler(handle)
    httpserver.expect_request(pubmed.EFETCH_PATH).respond_with_handler(handle)
    with _client(httpserver.url_for("")) as http:
        bodies = list(pubmed.iter_efetch_pages(_Checked(http), "kratom"))
        problems = [e.problem for e in http.log if e.problem]
    assert _pmids(bodies) == ["99300001"]
    assert asked.count(pubmed.ESEARCH_PATH) == 4
    assert problems[0] == "invalid body: esearch ERROR: Search Backend failed: temporarily"
    assert problems[1] == "invalid body: E-utilities: API rate limit exceeded"
    assert problems[2] == "HTTP 429"


def test_an_esearch_error_that_persists_gives_up_naming_it(httpserver: HTTPServer) -> None:
    backend = json.dumps({"esearchresult": {"ERROR": "Invalid query syntax"}}).encode()
    handle, asked = _eutils([(200, backend)] * 3)
    httpserver.expect_request(pubmed.ESEARCH_PATH).respond_with_handler(handle)
    with _client(httpserver.url_for(""), tries=3) as http, pytest.raises(SourceError) as caught:
        list(pubmed.iter_efetch_pages(_Checked(http), "kratom"))
    assert "after 3 tries: invalid body: esearch ERROR: Invalid query syntax" in str(caught.value)
    assert len(asked) == 3

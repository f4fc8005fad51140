"""PubMed on the shared client against a real E-utilities-speaking server on 127.0.0.1.

The server keeps one result set per WebEnv, answers efetch by retstart/retmax, throws a 429
(Retry-After) and a 503 on the way, and stamps every request's arrival: no one-second window
may hold more than 3 requests (10 with an API key).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from literature_loopback import (
    RETRY_AFTER,
    Faulty,
    assert_secrets_kept,
    capture_client_logs,
    client,
    faults,
    max_in_one_second,
    recorded,
)
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.sources import pubmed

PMIDS = [str(30_000_000 + n) for n in range(1, 24)]
WEBENV = "MCID_test_webenv"
EMAIL = "team@example.org"


def article(pmid: str) -> str:
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}'
        "</PMID><Article><Journal><JournalIssue><PubDate><Year>2021</Year></PubDate>"
        f"</JournalIssue></Journal><ArticleTitle>Kratom {pmid}</ArticleTitle></Article>"
        f'</MedlineCitation><PubmedData><ArticleIdList><ArticleId IdType="pubmed">{pmid}'
        "</ArticleId></ArticleIdList></PubmedData></PubmedArticle>"
    )


def eutils(request: Request) -> Response:
    """esearch (JSON, usehistory=y) and efetch (XML from the history server)."""
    if request.path.endswith("/esearch.fcgi"):
        assert request.args["usehistory"] == "y"
        body = {
            "esearchresult": {
                "count": str(len(PMIDS)),
                "retmax": "0",
                "webenv": WEBENV,
                "querykey": "1",
                "idlist": [],
            }
        }
        return Response(json.dumps(body), content_type="application/json")
    assert (request.args["WebEnv"], request.args["query_key"]) == (WEBENV, "1")
    start, size = int(request.args["retstart"]), int(request.args["retmax"])
    body = "".join(article(p) for p in PMIDS[start : start + size])
    return Response(
        f'<?xml version="1.0" ?>\n<PubmedArticleSet>{body}</PubmedArticleSet>',
        content_type="text/xml",
    )


@pytest.mark.parametrize(("api_key", "batch", "limit"), [(None, 5, 3), ("secret-key-0451", 2, 10)])
def test_history_paging_with_faults_keeps_the_rate_limit(
    httpserver: HTTPServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    api_key: str | None,
    batch: int,
    limit: int,
) -> None:
    capture_client_logs(caplog)
    server = Faulty(eutils, faults(too_many=3, unavailable=5))
    httpserver.expect_request("/eutils/esearch.fcgi").respond_with_handler(server)
    httpserver.expect_request("/eutils/efetch.fcgi").respond_with_handler(server)
    http = client(
        pubmed.SOURCE,
        httpserver.url_for("/eutils"),
        tmp_path,
        min_interval=pubmed.min_interval(api_key),
        rate_limit=pubmed.rate_limit(api_key),
        default_params=pubmed.default_params(EMAIL, api_key),
    )
    with http:
        pages = list(pubmed.iter_efetch_pages(http, "kratom[tiab]", batch=batch))

    starts = list(range(0, len(PMIDS), batch))
    assert len(pages) == len(starts)
    files = recorded(tmp_path, pubmed.SOURCE)
    assert [p.name for p in files] == [f"efetch-{n:04d}.xml" for n in range(1, len(starts) + 1)]
    assert [p.read_bytes() for p in files] == pages
    keys = [pubmed.record_key(r) for path in files for r in pubmed.iter_records(path)]
    assert keys == [f"PMID:{p}" for p in PMIDS]

    assert len(server.requests) == 1 + len(starts) + 2 == http.requests_sent
    assert http.retries == 2
    assert [s for s in (e.status for e in http.log) if s != 200] == [429, 503]
    efetch_starts = [int(q["retstart"]) for path, q in server.requests if "efetch" in path]
    assert efetch_starts == sorted(starts + starts[1:3])  # the 429 and the 503, asked again
    assert all(q["tool"] == pubmed.TOOL and q["email"] == EMAIL for _, q in server.requests)
    assert all(q.get("api_key") == api_key for _, q in server.requests)

    assert server.gap_after(3) >= RETRY_AFTER
    assert max_in_one_second(server.arrivals) <= limit
    assert_secrets_kept(tmp_path, http, caplog, [EMAIL, api_key or EMAIL])


def test_search_error_is_final_and_records_nothing(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_json(
        {"esearchresult": {"ERROR": "Invalid query"}}
    )
    http = client(pubmed.SOURCE, httpserver.url_for(""), tmp_path)
    with http, pytest.raises(pubmed.SearchError, match="Invalid query"):
        list(pubmed.iter_efetch_pages(http, "(("))
    assert http.requests_sent == 1 and not (tmp_path / pubmed.SOURCE).exists()

"""PubMed pager on the shared client over real HTTP on 127.0.0.1: esearch history, then efetch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from literature_loopback import client, recorded
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines import paths
from pipelines.sources import pubmed

PMIDS = [str(30_000_000 + n) for n in range(1, 24)]
WEBENV = "MCID_test_webenv"


def article(pmid: str) -> str:
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}'
        "</PMID><Article><Journal><JournalIssue><PubDate><Year>2021</Year></PubDate>"
        f"</JournalIssue></Journal><ArticleTitle>Kratom {pmid}</ArticleTitle></Article>"
        f'</MedlineCitation><PubmedData><ArticleIdList><ArticleId IdType="pubmed">{pmid}'
        "</ArticleId></ArticleIdList></PubmedData></PubmedArticle>"
    )


def serve_eutils(httpserver: HTTPServer, seen: list[tuple[str, dict[str, str]]]) -> None:
    def esearch(request: Request) -> Response:
        seen.append((request.path, dict(request.args)))
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

    def efetch(request: Request) -> Response:
        seen.append((request.path, dict(request.args)))
        assert (request.args["WebEnv"], request.args["query_key"]) == (WEBENV, "1")
        start, size = int(request.args["retstart"]), int(request.args["retmax"])
        body = "".join(article(p) for p in PMIDS[start : start + size])
        return Response(
            f'<?xml version="1.0" ?>\n<PubmedArticleSet>{body}</PubmedArticleSet>',
            content_type="text/xml",
        )

    httpserver.expect_request("/eutils/esearch.fcgi").respond_with_handler(esearch)
    httpserver.expect_request("/eutils/efetch.fcgi").respond_with_handler(efetch)


def test_efetch_batches_through_the_history_server(httpserver: HTTPServer, tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    serve_eutils(httpserver, seen)
    http = client(
        pubmed.SOURCE,
        httpserver.url_for("/eutils"),
        tmp_path,
        default_params=pubmed.default_params("team@example.org", "key-1"),
    )
    pages = list(pubmed.iter_efetch_pages(http, "kratom[tiab]", batch=5))
    files = recorded(tmp_path, pubmed.SOURCE)
    assert len(pages) == 5 and len(seen) == 6 == http.requests_sent
    assert [p.name for p in files] == [f"efetch-{n:04d}.xml" for n in range(1, 6)]
    keys = [pubmed.record_key(r) for path in files for r in pubmed.iter_records(path)]
    assert keys == [f"PMID:{p}" for p in PMIDS]
    assert [int(params["retstart"]) for path, params in seen[1:]] == [0, 5, 10, 15, 20]
    assert all(p["tool"] == pubmed.TOOL and p["email"] == "team@example.org" for _, p in seen)
    assert all(p["api_key"] == "key-1" for _, p in seen)


def test_rate_limits_and_key_is_only_sent_when_given() -> None:
    assert pubmed.rate_limit(None).requests == 3 and pubmed.rate_limit("k").requests == 10
    assert 1.0 < pubmed.rate_limit(None).window == pubmed.rate_limit("k").window < 1.1
    # Spacing just under 1/limit lets the client catch up; the window caps every second.
    assert 0.5 / 3 <= pubmed.min_interval(None) < 1 / 3
    assert 0.5 / 10 <= pubmed.min_interval("k") < 1 / 10
    assert "api_key" not in pubmed.default_params("a@b.org")


def test_esearch_error_is_clear(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/esearch.fcgi").respond_with_json(
        {"esearchresult": {"ERROR": "Invalid query"}}
    )
    http = client(pubmed.SOURCE, httpserver.url_for(""), tmp_path)
    with pytest.raises(pubmed.SearchError, match="Invalid query"):
        list(pubmed.iter_efetch_pages(http, "(("))


def test_count_records_matches_a_full_parse_of_the_bundled_efetch_files() -> None:
    files = sorted((paths.BUNDLED_SNAPSHOT / "pubmed").glob("*.xml"))
    assert files
    for path in files:
        body = path.read_bytes()
        root = SafeET.fromstring(body, forbid_dtd=False)
        parsed = sum(1 for child in root if child.tag in pubmed.RECORD_TAGS)
        assert pubmed.count_records(body) == parsed > 0
    book = b"<PubmedArticleSet><PubmedBookArticle><BookDocument/></PubmedBookArticle>"
    book += b'<PubmedArticle status="x"><MedlineCitation/></PubmedArticle></PubmedArticleSet>'
    assert pubmed.count_records(book) == 2
    assert pubmed.count_records(b"<PubmedArticleSet><PubmedArticleSetX/></PubmedArticleSet>") == 0

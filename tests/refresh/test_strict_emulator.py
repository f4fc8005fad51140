"""`serve-snapshot` searches like the services: query terms filter what a search returns.

Real HTTP over loopback against the emulator serving a small test snapshot. ClinicalTrials.gov
`query.term`, Europe PMC `query` and PubMed `term` AND their words and keep quoted phrases
whole; `OR`/`NOT` and parentheses work; a record whose text holds no topic word at all is taken
to hold every searched word (the reconstructed bundled snapshot has such records). ChEMBL honours
`molecule_chembl_id__in`. Bad requests get each service's kind of error body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.devtools.emulator import EmulatorServer, make_server, running
from pipelines.http import SourceHttp
from pipelines.refresh import parse_base_urls
from pipelines.sources import chembl, europepmc, pubmed

TITLES = {
    "NCT09990001": "Kratom use disorder in adults",
    "NCT09990002": "Mitragyna speciosa leaf tea",
    "NCT09990003": "Speciosa extract with Mitragyna alkaloids",
    "NCT09990004": "Caffeine and kratom withdrawal",
    "NCT09990005": "Cannabis in adults",
}
"""The last holds no topic word: the emulator cannot tell which search found it, so it is taken
to hold every word a search asks for (`serving.search`)."""


def _write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _article(pmid: int, title: str, year: int) -> str:
    return (
        f'<PubmedArticle><MedlineCitation><PMID Version="1">{pmid}</PMID><Article><Journal>'
        f"<JournalIssue><PubDate><Year>{year}</Year></PubDate></JournalIssue></Journal>"
        f"<ArticleTitle>{title}</ArticleTitle></Article></MedlineCitation></PubmedArticle>\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    folder = tmp_path_factory.mktemp("strict")
    studies = [
        {"protocolSection": {"identificationModule": {"nctId": nct, "briefTitle": title}}}
        for nct, title in TITLES.items()
    ]
    _write(folder / "clinicaltrials" / "studies.json", {"studies": studies})
    results = [
        {"id": str(n), "source": "MED", "title": title, "firstIndexDate": f"{2020 + n}-05-01"}
        for n, title in enumerate(TITLES.values(), start=1)
    ]
    _write(folder / "europepmc" / "search-0001.json", {"resultList": {"result": results}})
    articles = "".join(
        _article(99_400_001 + n, title, 2018 + n) for n, title in enumerate(TITLES.values())
    )
    (folder / "pubmed").mkdir()
    (folder / "pubmed" / "efetch-0001.xml").write_text(
        f'<?xml version="1.0" ?>\n<PubmedArticleSet>\n{articles}</PubmedArticleSet>\n'
    )
    activities = [
        {"activity_id": n, "molecule_chembl_id": f"CHEMBL{n % 3 + 1}"} for n in range(1, 10)
    ]
    _write(folder / "chembl" / "activity_00001.json", {"activities": activities})
    info = {"captured_at": "2026-11-25", "topic": "kratom", "method": "reconstructed"}
    _write(folder / "SNAPSHOT.json", {**info, "notes": "test records"})
    with running(make_server(folder)) as served:
        yield served


def _client(server: EmulatorServer, source: str) -> SourceHttp:
    return SourceHttp(source, parse_base_urls([f"all={server.base_url}"])[source], max_tries=1)


def _studies(server: EmulatorServer, term: str) -> tuple[list[str], int]:
    with _client(server, "clinicaltrials") as http:
        page = http.get_json("/api/v2/studies", {"query.term": term, "countTotal": "true"})
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]
    return ids, page["totalCount"]


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("Mitragyna speciosa", ["NCT09990002", "NCT09990003"]),
        ('"Mitragyna speciosa"', ["NCT09990002"]),
        ("kratom withdrawal", ["NCT09990004"]),
        ("(kratom) OR (leaf)", ["NCT09990001", "NCT09990002", "NCT09990004"]),
        ("KRATOM USE", ["NCT09990001"]),
        ("zebrafish", []),
    ],
)
def test_clinicaltrials_query_term_ands_words_and_keeps_phrases(
    server: EmulatorServer, term: str, found: list[str]
) -> None:
    ids, total = _studies(server, term)
    assert ids == [*found, "NCT09990005"]  # the record with no topic word goes to every search
    assert total == len(ids)


def test_a_negated_word_leaves_out_the_record_without_topic_words(server: EmulatorServer) -> None:
    assert _studies(server, "kratom AND NOT withdrawal") == (["NCT09990001"], 1)


def test_europepmc_query_with_update_date_window(server: EmulatorServer) -> None:
    with _client(server, "europepmc") as http:
        pages = list(europepmc.iter_search_pages(http, "Mitragyna speciosa"))
        windowed = list(
            europepmc.iter_search_pages(
                http, "(kratom) AND (UPDATE_DATE:[2023-01-01 TO 2024-12-31])"
            )
        )
    assert [r["id"] for r in pages[0]["resultList"]["result"]] == ["2", "3", "5"]
    assert pages[0]["hitCount"] == 3
    # kratom: 1 (2021), 4 (2024); and 5, unsearchable, whose date (2025) is outside the window
    assert [r["id"] for r in windowed[0]["resultList"]["result"]] == ["4"]


def test_pubmed_term_and_publication_date_range(server: EmulatorServer) -> None:
    with _client(server, "pubmed") as http:
        found = pubmed.esearch(http, '"speciosa extract"')
        bodies = list(pubmed.iter_efetch_pages(http, "kratom"))
        ranged = pubmed.esearch(http, pubmed.in_dates("kratom", *_days(2021, 2022)))
    assert found.count == 2  # the phrase, and the unsearchable record
    text = b"".join(bodies).decode()
    assert [t for t in TITLES.values() if t in text] == [
        TITLES["NCT09990001"],
        TITLES["NCT09990004"],
        TITLES["NCT09990005"],
    ]
    assert ranged.count == 1  # 2021 is the kratom withdrawal article; 2018 and 2022 are out


def _days(first: int, last: int) -> tuple[Any, Any]:
    from datetime import date

    return date(first, 1, 1), date(last - 1, 12, 31)


def test_chembl_molecule_filter_and_next_link_carry_the_filter(server: EmulatorServer) -> None:
    with _client(server, "chembl") as http:
        pages = list(chembl.iter_activity_pages(http, ["CHEMBL2", "CHEMBL3"], limit=2))
    served = [a["activity_id"] for p in pages for a in p["activities"]]
    assert served == [1, 2, 4, 5, 7, 8]
    assert pages[0]["page_meta"]["total_count"] == 6
    assert "molecule_chembl_id__in=CHEMBL2%2CCHEMBL3" in pages[0]["page_meta"]["next"]


def test_unreadable_requests_get_each_services_kind_of_error(server: EmulatorServer) -> None:
    base = server.base_url
    ct = httpx.get(f"{base}/clinicaltrials/api/v2/studies", params={"query.term": "kratom ("})
    assert ct.status_code == 400 and ct.headers["content-type"].startswith("text/plain")
    assert ct.text.startswith("query ends where a term was expected")
    epmc = httpx.get(f"{base}/europepmc/rest/search", params={"query": '"kratom', "format": "json"})
    assert epmc.status_code == 400 and "quotes" in epmc.json()["error"]
    esearch = httpx.get(
        f"{base}/pubmed/esearch.fcgi",
        params={"db": "pubmed", "term": "kratom)", "usehistory": "y", "retmode": "json"},
    )
    assert esearch.status_code == 200 and "ERROR" in esearch.json()["esearchresult"]

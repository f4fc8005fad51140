"""The emulator speaks each source's paging the way the live clients expect, page by page.

The real pagers of `pipelines.sources` walk data/snapshot through the emulator with small pages,
so every protocol's "next page" and "last page" path runs, and every record comes back once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from pipelines import paths
from pipelines.devtools.emulator import (
    EmulatorServer,
    FaultPlan,
    SnapshotApi,
    SnapshotRecords,
    make_server,
    running,
)
from pipelines.http import SourceHttp
from pipelines.refresh import parse_base_urls
from pipelines.sources import chembl, crossref, europepmc, openalex, pubchem, pubmed
from pipelines.sources.clinicaltrials import study_filter
from tests.refresh import synthetic


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with running(make_server(paths.BUNDLED_SNAPSHOT)) as server:
        yield server


def _client(server: EmulatorServer, source: str) -> SourceHttp:
    return SourceHttp(source, parse_base_urls([f"all={server.base_url}"])[source], max_tries=1)


def test_clinicaltrials_page_tokens_walk_every_found_study_once(server: EmulatorServer) -> None:
    """query.term is searched: "kratom" finds 8 studies by their text, and the 2 whose
    reconstructed record holds no topic word at all are served to every search (serving.search)."""
    ids: list[str] = []
    token = None
    pages = 0
    with _client(server, "clinicaltrials") as http:
        while True:
            params = {"query.term": "kratom", "pageSize": 4, "pageToken": token}
            page = http.get_json("/api/v2/studies", params)
            pages += 1
            ids += [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]
            token = page.get("nextPageToken")
            if not token:
                break
        version = http.get_json("/api/v2/version")
    assert pages == 3
    assert len(ids) == len(set(ids)) == 10
    assert version["dataTimestamp"].startswith("2026-11-25")


def test_clinicaltrials_last_update_range_filters_studies(server: EmulatorServer) -> None:
    with _client(server, "clinicaltrials") as http:
        page = http.get_json(
            "/api/v2/studies",
            {
                "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2025-01-01,MAX]",
                "countTotal": "true",
            },
        )
        with pytest.raises(Exception, match="HTTP 400"):
            http.get_json("/api/v2/studies", {"filter.advanced": "AREA[Phase]PHASE2"})
    ids = {s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]}
    assert ids == {"NCT05457803", "NCT05883358", "NCT06072170", "NCT06640569"}
    assert page["totalCount"] == 4


def test_study_filter_open_lower_bound_and_missing_date() -> None:
    keep = study_filter("AREA[LastUpdatePostDate]RANGE[MIN,2019-12-31]")
    dated = {"protocolSection": {"statusModule": {"lastUpdatePostDateStruct": {"date": "2019-08"}}}}
    assert keep(dated)
    assert not keep({"protocolSection": {}})


def test_pubmed_history_and_efetch_slices_return_every_found_one(server: EmulatorServer) -> None:
    with _client(server, "pubmed") as http:
        bodies = list(pubmed.iter_efetch_pages(http, "kratom", batch=40))
    assert len(bodies) == 2
    assert all(b.startswith(b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet') for b in bodies)
    # 60 articles say "kratom"; 4 hold no topic word in the reconstructed snapshot.
    assert sum(b.count(b"<PubmedArticle>") for b in bodies) == 64


def test_europepmc_cursor_repeats_on_the_last_page(server: EmulatorServer) -> None:
    with _client(server, "europepmc") as http:
        pages = list(europepmc.iter_search_pages(http, "kratom", page_size=10))
    assert [len(p["resultList"]["result"]) for p in pages] == [10, 9]
    assert pages[0]["hitCount"] == 19
    assert pages[-1]["nextCursorMark"] == pages[-1]["request"]["cursorMark"]


def test_openalex_ends_with_an_empty_page_and_a_null_cursor(tmp_path: Path) -> None:
    """OpenAlex: "repeat until next_cursor is null and results is empty"."""
    counts = synthetic.Counts(
        clinicaltrials=0, pubmed=0, europepmc=0, openalex=7, crossref=0, chembl=0, cids=0
    )
    served = make_server(synthetic.write_snapshot(tmp_path, counts))
    with running(served), _client(served, "openalex") as http:
        pages = list(openalex.iter_works_pages(http, "kratom", per_page=5))
    assert [len(p["results"]) for p in pages] == [5, 2, 0]
    assert [p["meta"]["next_cursor"] is None for p in pages] == [False, False, True]


def test_crossref_cursor_until_an_empty_page(server: EmulatorServer) -> None:
    with _client(server, "crossref") as http:
        query = "kratom Mitragyna speciosa mitragynine"
        pages = list(crossref.iter_works_pages(http, query, rows=20))
    total = pages[0]["message"]["total-results"]  # works sharing a word with the query
    assert 40 < total < 43  # of the 43 bundled, one has no title at all
    assert [len(p["message"]["items"]) for p in pages] == [20, 20, total - 40, 0]


def test_pubchem_properties_and_synonyms_by_cid(server: EmulatorServer) -> None:
    with _client(server, "pubchem") as http:
        bodies = list(pubchem.fetch_compounds(http, [3034396, 4095], pubchem.ThrottlePacer()))
    assert "PropertyTable" in bodies[0] and "InformationList" in bodies[1]
    assert [p["CID"] for p in bodies[0]["PropertyTable"]["Properties"]] == [4095, 3034396]
    assert [i["CID"] for i in bodies[1]["InformationList"]["Information"]] == [4095, 3034396]


@pytest.mark.parametrize(
    "asked", [[4095], [2803, 15560576, 44301701], [44301701, 4095], [4095, 4095]]
)
def test_pubchem_answers_exactly_the_asked_cids(server: EmulatorServer, asked: list[int]) -> None:
    cids = ",".join(map(str, asked))
    with _client(server, "pubchem") as http:
        table = http.get_json(f"/rest/pug/compound/cid/{cids}/property/MolecularFormula/JSON")
        names = http.get_json(f"/rest/pug/compound/cid/{cids}/synonyms/JSON")
    returned = [p["CID"] for p in table["PropertyTable"]["Properties"]]
    assert returned == list(dict.fromkeys(asked))
    assert [i["CID"] for i in names["InformationList"]["Information"]] == returned


def test_pubchem_leaves_out_unknown_cids_and_404s_when_none_is_known(
    server: EmulatorServer,
) -> None:
    with _client(server, "pubchem") as http:
        mixed = http.get_json("/rest/pug/compound/cid/4095,990000001/synonyms/JSON")
    assert [i["CID"] for i in mixed["InformationList"]["Information"]] == [4095]
    for kind in ("property/MolecularFormula", "synonyms"):
        response = httpx.get(
            f"{server.base_url}/pubchem/rest/pug/compound/cid/990000001/{kind}/JSON"
        )
        assert response.status_code == 404
        assert orjson.loads(response.content)["Fault"]["Code"] == "PUGREST.NotFound"


def test_chembl_page_meta_on_an_empty_source(server: EmulatorServer) -> None:
    with _client(server, "chembl") as http:
        pages = list(chembl.iter_activity_pages(http, ["CHEMBL299031"]))
    assert pages[0]["activities"] == [] and pages[0]["page_meta"]["next"] is None


def test_unknown_source_is_404(server: EmulatorServer) -> None:
    response = httpx.get(f"{server.base_url}/nowhere/x")
    assert response.status_code == 404
    assert "nowhere" in orjson.loads(response.content)["error"]


def test_chembl_next_link_is_followed_from_the_host_root() -> None:
    activities = [{"activity_id": n, "molecule_chembl_id": "CHEMBL1"} for n in range(5)]
    data = SnapshotRecords("2026-01-01", {"chembl": activities})
    server = EmulatorServer(SnapshotApi(data), FaultPlan())
    with running(server), _client(server, "chembl") as http:
        pages = list(chembl.iter_activity_pages(http, ["CHEMBL1"], limit=2))
    assert [[a["activity_id"] for a in p["activities"]] for p in pages] == [[0, 1], [2, 3], [4]]
    assert pages[0]["page_meta"]["next"].startswith("/chembl/api/data/activity.json?")

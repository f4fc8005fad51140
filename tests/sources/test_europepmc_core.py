"""Europe PMC core results: the fields only resultType=core carries."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from pipelines.sources import europepmc
from pipelines.sources.base import SnapshotFormatError

CORE = {
    "id": "32607084",
    "source": "MED",
    "pmid": "32607084",
    "pmcid": "PMC7309661",
    "doi": "10.1000/Example.1",
    "title": "Kratom and <i>pain</i> tolerance",
    "authorList": {
        "author": [{"fullName": "Vicknasingam B", "lastName": "Vicknasingam", "initials": "B"}]
    },
    "journalInfo": {
        "dateOfPublication": "2020 Jun",
        "yearOfPublication": 2020,
        "journal": {
            "title": "The Yale journal of biology and medicine",
            "isoabbreviation": "Yale J Biol Med",
        },
    },
    "pubYear": "2020",
    "pubTypeList": {"pubType": ["Randomized Controlled Trial", "Journal Article"]},
    "meshHeadingList": {"meshHeading": [{"majorTopic_YN": "N", "descriptorName": "Humans"}]},
    "keywordList": {"keyword": ["kratom", "pain"]},
    "abstractText": "Registered as <b>NCT03414099</b>.",
    "language": "eng",
    "isOpenAccess": "Y",
    "commentCorrectionList": {
        "commentCorrection": [
            {"id": "40000001", "source": "MED", "type": "Retraction in"},
            {"id": "40000002", "source": "MED", "type": "Erratum in"},
        ]
    },
}


def test_core_result_fields() -> None:
    pub = europepmc.parse_record(CORE)["publications"][0]
    assert pub["publication_id"] == "PMID:32607084"
    assert (pub["pmcid"], pub["doi"]) == ("PMC7309661", "10.1000/example.1")
    assert pub["title"] == "Kratom and pain tolerance"
    assert pub["journal"] == "Yale J Biol Med"
    assert (pub["publication_date"], pub["publication_date_precision"]) == (
        date(2020, 6, 1),
        "month",
    )
    assert pub["first_author"] == "Vicknasingam B"
    assert pub["publication_types"] == ["Randomized Controlled Trial", "Journal Article"]
    assert pub["mesh_terms"] == ["Humans"]
    assert pub["keywords"] == ["kratom", "pain"]
    assert pub["abstract"] == "Registered as NCT03414099 ."
    assert pub["is_open_access"] is True
    assert pub["is_retracted"] is True
    assert pub["retracted_by"] == ["PMID:40000001"]
    assert pub["corrected_by"] == ["PMID:40000002"]


def test_doi_only_record_gets_doi_id_and_year_precision() -> None:
    record = {"id": "PMC1", "source": "PMC", "pmcid": "PMC1", "doi": "10.1/x", "pubYear": "2019"}
    pub = europepmc.parse_record(record)["publications"][0]
    assert pub["publication_id"] == "DOI:10.1/x"
    assert (pub["publication_date"], pub["publication_date_precision"]) == (
        date(2019, 1, 1),
        "year",
    )
    assert europepmc.record_key(record) == "PMC:PMC1"


def test_page_without_result_list_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_bytes(orjson.dumps({"hitCount": 1}))
    with pytest.raises(SnapshotFormatError, match="resultList"):
        list(europepmc.iter_records(path))

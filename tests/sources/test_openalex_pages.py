"""OpenAlex works pages, written from the documented format (no real sample is available).

Shape per https://docs.openalex.org/api-entities/works/work-object and
https://docs.openalex.org/how-to-use-the-api/get-lists-of-entities/paging (cursor paging).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipelines.sources import openalex
from pipelines.sources.base import RecordError, SnapshotFormatError


def work(number: int, **extra: Any) -> dict[str, Any]:
    """A documented-shape work with ids, location, authorships and an inverted abstract."""
    body: dict[str, Any] = {
        "id": f"https://openalex.org/W{number}",
        "doi": f"https://doi.org/10.5555/TEST.{number}",
        "title": f"Kratom work {number}",
        "display_name": f"Kratom work {number}",
        "publication_year": 2021,
        "publication_date": "2021-07-15",
        "ids": {
            "openalex": f"https://openalex.org/W{number}",
            "doi": f"https://doi.org/10.5555/TEST.{number}",
            "pmid": f"https://pubmed.ncbi.nlm.nih.gov/{30000000 + number}",
            "pmcid": f"https://www.ncbi.nlm.nih.gov/pmc/articles/{7000000 + number}",
        },
        "language": "en",
        "primary_location": {"source": {"display_name": "Frontiers in Pharmacology"}},
        "type": "review",
        "open_access": {"is_oa": True, "oa_status": "gold"},
        "authorships": [
            {"author_position": "middle", "author": {"display_name": "Oliver Grundmann"}},
            {"author_position": "first", "author": {"display_name": "Kirsten E. Smith"}},
        ],
        "cited_by_count": 42,
        "is_retracted": False,
        "mesh": [{"descriptor_name": "Mitragyna", "is_major_topic": True}],
        "abstract_inverted_index": {"Kratom": [0], "is": [1], "used": [2]},
    }
    body.update(extra)
    return body


def page(results: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {
        "meta": {
            "count": len(results),
            "db_response_time_ms": 12,
            "page": None,
            "per_page": 100,
            "next_cursor": next_cursor,
            "groups_count": None,
        },
        "results": results,
        "group_by": [],
    }


def test_work_fields(tmp_path: Path) -> None:
    path = tmp_path / "works-0001.json"
    path.write_bytes(orjson.dumps(page([work(1)], None)))
    (record,) = list(openalex.iter_records(path))
    pub = openalex.parse_record(record)["publications"][0]
    assert pub["publication_id"] == "PMID:30000001"
    assert (pub["openalex_id"], pub["doi"], pub["pmcid"]) == ("W1", "10.5555/test.1", "PMC7000001")
    assert pub["first_author"] == "Smith KE"
    assert pub["journal"] == "Frontiers in Pharmacology"
    assert pub["publication_types"] == ["Review"]
    assert (pub["publication_date"], pub["publication_date_precision"]) == (
        date(2021, 7, 15),
        "day",
    )
    assert (pub["cited_by_count"], pub["is_open_access"]) == (42, True)
    assert pub["abstract"] == "Kratom is used"
    assert pub["mesh_terms"] == ["Mitragyna"]
    assert pub["language"] == "eng"
    assert openalex.record_key(record) == "OPENALEX:W1"


def test_work_without_pmid_or_doi_takes_openalex_id() -> None:
    record = work(2, doi=None, ids={"openalex": "https://openalex.org/W2"}, is_retracted=True)
    pub = openalex.parse_record(record)["publications"][0]
    assert pub["publication_id"] == "OPENALEX:W2"
    assert pub["is_retracted"] is True


def test_single_work_body_and_bad_bodies(tmp_path: Path) -> None:
    single = tmp_path / "w.json"
    single.write_bytes(orjson.dumps(work(3)))
    assert [openalex.record_key(r) for r in openalex.iter_records(single)] == ["OPENALEX:W3"]
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({"results": "nope"}))
    with pytest.raises(SnapshotFormatError):
        list(openalex.iter_records(bad))
    with pytest.raises(RecordError):
        openalex.parse_record({"id": None})

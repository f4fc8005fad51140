"""Europe PMC parser against real search pages in ../shared/samples/europepmc (skip if absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.sources import europepmc
from pipelines.sources.base import RecordError

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "europepmc"

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not available")


def test_lite_page_fields_match_the_file() -> None:
    path = SAMPLES / "search_lite_cancer_cursor.json"
    results = json.loads(path.read_text(encoding="utf-8"))["resultList"]["result"]
    records = list(europepmc.iter_records(path))
    assert len(records) == len(results)
    for record, raw in zip(records, results, strict=True):
        pub = europepmc.parse_record(record)["publications"][0]
        assert pub["pmid"] == raw.get("pmid")
        assert pub["pmcid"] == raw.get("pmcid")
        assert pub["doi"] == (raw["doi"].lower() if raw.get("doi") else None)
        assert pub["journal"] == raw.get("journalTitle")
        assert pub["year"] == int(raw["pubYear"])
        assert pub["is_open_access"] == (raw["isOpenAccess"] == "Y")
        assert pub["publication_types"] == [t.strip() for t in raw["pubType"].split(";")]
        if raw.get("authorString"):
            assert pub["first_author"] == raw["authorString"].split(",")[0].rstrip(".")
        assert pub["sources"] == ["europepmc"]


def test_idlist_page_records_carry_identifiers() -> None:
    path = SAMPLES / "search_idlist_cancer_cursor.json"
    results = json.loads(path.read_text(encoding="utf-8"))["resultList"]["result"]
    for record, raw in zip(europepmc.iter_records(path), results, strict=True):
        if raw.get("pmid") or raw.get("doi"):
            pub = europepmc.parse_record(record)["publications"][0]
            assert pub["pmid"] == raw.get("pmid")
        else:
            with pytest.raises(RecordError):
                europepmc.parse_record(record)


def test_empty_page_yields_nothing() -> None:
    path = SAMPLES / "search_no_results.json"
    assert json.loads(path.read_text(encoding="utf-8"))["hitCount"] == 0
    assert list(europepmc.iter_records(path)) == []

"""Crossref parser against real /works bodies in ../shared/samples/crossref (skip if absent)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pipelines.sources import crossref

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "crossref"

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not available")


def test_single_work_fields_match_the_file() -> None:
    path = SAMPLES / "works_doi_10.1371_journal.pone.0033693.json"
    raw = json.loads(path.read_text(encoding="utf-8"))["message"]
    (record,) = list(crossref.iter_records(path))
    pub = crossref.parse_record(record)["publications"][0]
    assert pub["publication_id"] == f"DOI:{raw['DOI'].lower()}"
    assert pub["title"] == raw["title"][0]
    assert pub["journal"] == raw["short-container-title"][0]
    first = next(a for a in raw["author"] if a["sequence"] == "first")
    assert pub["first_author"].startswith(first["family"] + " ")
    y, m, d = raw["issued"]["date-parts"][0]
    assert (pub["publication_date"], pub["publication_date_precision"]) == (date(y, m, d), "day")
    assert pub["language"] == "eng" and raw["language"] == "en"
    corrections = [u["DOI"].lower() for u in raw["updated-by"] if u["type"] == "correction"]
    assert pub["corrected_by"] == [f"DOI:{doi}" for doi in corrections]
    assert pub["is_retracted"] is False
    assert pub["publication_types"] == ["Journal Article"]


def test_select_list_page_items_with_only_doi_and_title() -> None:
    path = SAMPLES / "works_list_query_ecology_select_DOI_title.json"
    items = json.loads(path.read_text(encoding="utf-8"))["message"]["items"]
    parsed = [crossref.parse_record(r)["publications"][0] for r in crossref.iter_records(path)]
    assert [p["doi"] for p in parsed] == [i["DOI"].lower() for i in items]
    assert [p["title"] for p in parsed] == [i["title"][0] for i in items]
    assert all(p["publication_date"] is None and p["publication_types"] == [] for p in parsed)

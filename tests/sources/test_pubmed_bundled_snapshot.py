"""The literature files of the bundled snapshot: reproducible from the facts, and complete.

Every PMID and DOI of shared/facts/publications.csv must come out of the parsers and the merge
exactly once, and no identifier may appear that the facts do not give.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipelines.normalize.dedup import merge_publications
from pipelines.paths import BUNDLED_SNAPSHOT, PROJECT_ROOT
from pipelines.snapshot import source_files
from pipelines.sources import crossref, europepmc, publication_precedence, pubmed
from tests.scripts import load_script

FACTS = PROJECT_ROOT.parent / "shared" / "facts"
SCRIPT = PROJECT_ROOT / "scripts" / "snapshot_literature.py"
SOURCES = {"pubmed": pubmed, "europepmc": europepmc, "crossref": crossref}


def facts_rows() -> list[dict[str, str]]:
    with (FACTS / "publications.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def parsed_rows() -> tuple[list[dict], list[dict]]:
    publications, links = [], []
    for name, module in SOURCES.items():
        for path in source_files(BUNDLED_SNAPSHOT, name):
            for record in module.iter_records(path):
                rows = module.parse_record(record)
                publications += rows["publications"]
                links += rows.get("study_publications", [])
    return publications, links


def test_split_author() -> None:
    script = load_script(SCRIPT)
    assert script.split_author("Leong Bin Abdullah MFI") == ("Leong Bin Abdullah", "MFI")
    assert script.split_author("Singh") == ("Singh", None)
    assert script.split_author("Post S") == ("Post", "S")


@pytest.mark.skipif(not FACTS.is_dir(), reason="shared facts not available")
def test_committed_files_are_what_the_script_writes(tmp_path: Path) -> None:
    script = load_script(SCRIPT)
    files = script.build(script.read_facts(FACTS))
    script.write(tmp_path, files)
    for name in ("pubmed", "crossref", "europepmc"):
        written = sorted(p.name for p in (tmp_path / name).iterdir())
        committed = sorted(p.name for p in (BUNDLED_SNAPSHOT / name).iterdir())
        assert written == committed
        for file_name in written:
            assert (tmp_path / name / file_name).read_bytes() == (
                BUNDLED_SNAPSHOT / name / file_name
            ).read_bytes()


@pytest.mark.skipif(not FACTS.is_dir(), reason="shared facts not available")
def test_every_fact_pmid_and_doi_is_one_publication() -> None:
    facts = facts_rows()
    publications, links = parsed_rows()
    result = merge_publications(publications, publication_precedence())
    merged = result.publications
    pmids = [p["pmid"] for p in merged if p["pmid"]]
    dois = [p["doi"] for p in merged if p["doi"]]
    assert sorted(pmids) == sorted(r["pmid"] for r in facts if r["pmid"])
    assert sorted(dois) == sorted(r["doi"].lower() for r in facts if r["doi"])
    assert len(merged) == sum(1 for r in facts if r["pmid"] or r["doi"])
    fact_pmcids = sorted(r["pmcid"] for r in facts if r["pmcid"])
    assert sorted(p["pmcid"] for p in merged if p["pmcid"]) == fact_pmcids
    assert all(p["openalex_id"] is None and p.get("abstract") is None for p in merged)
    assert links == []


@pytest.mark.skipif(not FACTS.is_dir(), reason="shared facts not available")
def test_records_carry_the_facts_title_year_type_and_author() -> None:
    by_pmid = {r["pmid"]: r for r in facts_rows() if r["pmid"]}
    for path in source_files(BUNDLED_SNAPSHOT, "pubmed"):
        for record in pubmed.iter_records(path):
            pub = pubmed.parse_record(record)["publications"][0]
            fact = by_pmid[pub["pmid"]]
            assert pub["title"] == (fact["title"] or None)
            assert pub["year"] == (int(fact["year"]) if fact["year"] else None)
            assert pub["journal"] == (fact["journal"] or None)
            assert pub["first_author"] == (fact["first_author"] or None)
            types = [t for t in fact["publication_type"].split(";") if t]
            assert pub["publication_types"] == types

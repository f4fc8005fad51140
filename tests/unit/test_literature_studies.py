"""Literature-only studies and text-mention links, with the committed design rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.normalize.literature_studies import (
    classify,
    find_registry_ids,
    literature_studies,
    load_design_rules,
    text_mention_links,
)
from schemas import vocab

RULES = load_design_rules()


def pub(pmid: str | None, title: str, types: list[str] | None = None, **extra: Any) -> dict:
    return {
        "publication_id": f"PMID:{pmid}" if pmid else f"DOI:10.1/{title[:5].lower()}",
        "pmid": pmid,
        "title": title,
        "publication_types": types or [],
        "mesh_terms": extra.pop("mesh", []),
        **extra,
    }


def test_link_sources_are_the_contract_four() -> None:
    """CONTRACT §5: a literature study's own paper is a column, not a fifth link_source."""
    assert vocab.LINK_SOURCES == (
        "registry_reference",
        "pubmed_databank",
        "text_mention",
        "curated_inference",
    )


@pytest.mark.parametrize(
    ("types", "title", "design"),
    [
        (["Randomized Controlled Trial"], "Kratom and pain tolerance", "rct"),
        (["Clinical Trial", "Randomized Controlled Trial"], "Kratom PK", "rct"),
        (["Clinical Trial"], "Kratom PK", "non_randomised_trial"),
        (["Case Reports", "Review"], "Neonatal abstinence syndrome", "case_report"),
        (["Review"], "Kratom: friend or foe?", None),
        (["Systematic Review"], "Kratom use and mental health", None),
        (["Meta-Analysis"], "Kratom prevalence", None),
        (["Editorial"], "Kratom regulation", None),
        (["Comment"], "Kratom trial", None),
        (["Letter"], "Kratom in the news", None),
        (["Practice Guideline"], "Managing kratom withdrawal", None),
        ([], "Kratom as a substitute for opioids: results from an online survey", "survey"),
        ([], "Abuse liability of mitragynine in rats", "preclinical"),
        ([], "Kratom exposures reported to Texas poison centers", "observational"),
        ([], "A case report of inpatient detoxification after kratom dependence", "case_report"),
        ([], "A critical review of kratom", None),
        (["Journal Article"], "Kratom", None),
    ],
)
def test_design_from_types_and_title(types: list[str], title: str, design: str | None) -> None:
    assert classify(pub("1", title, types), RULES).design == design


def test_population_from_mesh_and_design() -> None:
    animal = classify(
        pub("1", "Mitragynine effects", ["Journal Article"], mesh=["Animals", "Rats"]), RULES
    )
    assert (animal.design, animal.population) == ("preclinical", "animal")
    microsomes = classify(pub("1", "x", mesh=["Humans", "Microsomes, Liver"]), RULES)
    assert microsomes.population == "in_vitro"
    survey = classify(pub("1", "Kratom use: a national survey"), RULES)
    assert (survey.design, survey.population, survey.population_assumed) == (
        "survey",
        "human",
        True,
    )
    case = classify(pub("1", "Seizures", ["Case Reports"]), RULES)
    assert (case.population, case.population_assumed) == ("human", True)


def test_registry_ids_in_text() -> None:
    text = "Registered: ClinicalTrials.gov (NCT 03414099), ISRCTN12345678; EudraCT 2004-000446-20."
    assert find_registry_ids(text) == ["EUCTR2004-000446-20", "ISRCTN12345678", "NCT03414099"]
    assert find_registry_ids(None) == []
    assert find_registry_ids("NCT123") == []


def test_text_mentions_only_of_registered_studies() -> None:
    papers = [pub("5", "Kratom trial", abstract="Trial NCT03414099; see also NCT99999999.")]
    links = text_mention_links(papers, {"NCT03414099"})
    assert links == [
        {
            "study_id": "NCT03414099",
            "publication_id": "PMID:5",
            "link_type": "report",
            "link_source": "text_mention",
        }
    ]


def test_literature_studies_end_to_end() -> None:
    papers = [
        pub(
            "1",
            "Kratom and pain: a randomized, placebo-controlled study",
            abstract="Registered as NCT03414099.",
        ),
        pub("2", "Kratom use in an online survey of adults"),
        pub("3", "Kratom pharmacology", ["Review"]),
        pub("4", "Clinical assessment of kratom interactions", ["Clinical Trial"]),
        pub(None, "Kratom exposures reported to poison centers"),
        pub("6", "A case of kratom hepatitis", ["Case Reports"], is_retracted=True),
    ]
    known = [
        {
            "study_id": "NCT04392011",
            "publication_id": "PMID:4",
            "link_type": "result",
            "link_source": "registry_reference",
        }
    ]
    rows = literature_studies(papers, known, {"NCT03414099", "NCT04392011"}, RULES)
    studies = {s["study_id"]: s for s in rows["studies"]}
    assert sorted(studies) == ["PMID:2", "PMID:6"]
    assert studies["PMID:2"]["design"] == "survey"
    assert studies["PMID:2"]["evidence_source"] == "literature"
    assert studies["PMID:2"]["registry"] is None
    assert "design_from_title" in studies["PMID:2"]["flags"]
    assert studies["PMID:6"]["flags"] == ["population_from_design", "retracted_publication"]
    assert all(s["phases"] == [] and s["countries"] == [] for s in studies.values())
    pairs = {
        (lk["study_id"], lk["publication_id"], lk["link_source"])
        for lk in rows["study_publications"]
    }
    assert pairs == {("NCT03414099", "PMID:1", "text_mention")}
    assert {s["study_id"]: s["source_publication_id"] for s in studies.values()} == {
        "PMID:2": "PMID:2",
        "PMID:6": "PMID:6",
    }


def test_bad_rule_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text("target,field,term,value,rank,source\ndesign,title,x,cohort,1,me\n")
    with pytest.raises(ValueError, match="cohort"):
        load_design_rules(path)


@pytest.mark.parametrize(
    ("pmid", "title"),
    [
        ("18259963", "Opioid receptors and legal highs: Salvia divinorum and Kratom"),
        ("35341571", "In vitro and in vivo pharmacology of kratom"),
    ],
)
def test_reviews_the_facts_tag_stay_publications(pmid: str, title: str) -> None:
    """Their titles read as lab work, but the facts tag both as reviews: a PMID rule wins."""
    assert classify(pub(pmid, title), RULES).design is None
    assert classify(pub("1", title), RULES).design == "preclinical"
    rows = literature_studies([pub(pmid, title)], [], set(), RULES)
    assert rows == {"studies": [], "study_publications": []}


def test_pmid_rule_term_must_be_a_pmid(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text("target,field,term,value,rank,source\ndesign,pmid,PMID:1,not_a_study,0,me\n")
    with pytest.raises(ValueError, match="not a PMID"):
        load_design_rules(path)

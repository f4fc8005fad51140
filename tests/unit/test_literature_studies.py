"""Literature-only studies and text-mention links, with the committed design rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.normalize.literature_studies import (
    DESIGN_RULES_FILE,
    classify,
    find_registry_ids,
    literature_studies,
    load_design_rules,
    paper_accounting,
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
    """vocab.LINK_SOURCES: a literature study's own paper is a column, not a fifth link_source."""
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


@pytest.mark.parametrize(
    ("title", "mesh", "design"),
    [
        ("Kratom and sleep", ["Humans", "Self Report", "Cross-Sectional Studies"], "survey"),
        ("Kratom and the heart", ["Humans", "Cross-Sectional Studies"], "observational"),
        ("Mitragynine in blood", ["Humans", "Fatal Outcome", "Forensic Toxicology"], "case_report"),
        ("Mitragynine deaths", ["Retrospective Studies", "Fatal Outcome"], "observational"),
        ("Kratom hepatitis in a 32-year-old man", [], "case_report"),
        ("Seizures in a young woman after kratom", [], "case_report"),
        ("Perceived benefits of kratom", [], "survey"),
        ("Motives for kratom use", [], "survey"),
        ("Kratom among residents of southern Thailand", [], "observational"),
        ("Kratom and veterans", [], "observational"),
        ("Kratom for patients: a review", [], None),
        ("A patient-centred view of kratom", [], None),
    ],
)
def test_designs_of_papers_without_an_nlm_design_type(
    title: str, mesh: list[str], design: str | None
) -> None:
    """Self-report is a survey, one patient or fatality a case report, a population a study."""
    assert classify(pub("1", title, ["Journal Article"], mesh=mesh), RULES).design == design


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
    outcomes = {p["publication_id"]: p["outcome"] for p in rows["literature_papers"]}
    assert outcomes == {
        "PMID:1": "reports_registered_study",
        "PMID:2": "study",
        "PMID:3": "not_a_study",
        "PMID:4": "reports_registered_study",
        "PMID:6": "study",
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
    assert rows["studies"] == [] and rows["study_publications"] == []
    assert rows["literature_papers"] == [
        {"publication_id": f"PMID:{pmid}", "outcome": "not_a_study", "basis": "pmid"}
    ]


def test_pmid_rule_term_must_be_a_pmid(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text("target,field,term,value,rank,source\ndesign,pmid,PMID:1,not_a_study,0,me\n")
    with pytest.raises(ValueError, match="not a PMID"):
        load_design_rules(path)


@pytest.mark.parametrize(
    ("title", "design"),
    [
        ("Seizure and coma following Kratom (Mitragynina speciosa Korth) exposure", "case_report"),
        ("Self-treatment of opioid withdrawal with a dietary supplement, Kratom", "case_report"),
        ('A coincidence of addiction to "Kratom" and severe primary hypothyroidism', "case_report"),
        (
            "Substance Use Disorder Following Consumption of a Novel Synthetic Product",
            "case_report",
        ),
        ("Kratom exposure following ingestion in rats", "preclinical"),
        ("Self-treatment of opioid withdrawal with kratom: an online survey", "survey"),
        ("Hormone levels in regular Mitragyna speciosa (Korth.) users", "observational"),
        ("Long-Term Cognitive Effects of Kratom (Mitragyna speciosa Korth.) Use", "observational"),
        ("Kratom Use and Toxicities in the United States", "observational"),
        ("Kratom regulation in the United States", None),
        ("Behavioral and neurochemical characterization of kratom extract", "preclinical"),
        ("Pseudoindoxyls with Mu Agonism and Delta Antagonism", "preclinical"),
        ("G protein-biased kratom-alkaloids for alcohol use disorder", "preclinical"),
        ("Quality of information on websites selling kratom", "other"),
        ("Controversies in Assessment, Diagnosis, and Treatment of Kratom Use Disorder", None),
        ('Kratom use as more than a "self-treatment"', None),
        ("From kratom to mitragynine: physiological and behavioral effects", None),
    ],
)
def test_title_rules_for_papers_without_publication_types(title: str, design: str | None) -> None:
    """Title wording classifies papers whose record has no NLM type; cohort/animal words win."""
    assert classify(pub("1", title), RULES).design == design


def test_paper_matching_no_rule_is_listed_not_dropped() -> None:
    papers = [
        pub("12", "Kratom", ["Journal Article"]),
        pub("3", "Mitragynine", []),
        pub("7", "Kratom: a review", ["Review"]),
        pub("8", "Kratom use: an online survey"),
        pub(None, "Kratom"),
    ]
    rows = literature_studies(papers, [], set(), RULES)
    assert [s["study_id"] for s in rows["studies"]] == ["PMID:8"]
    assert paper_accounting(rows["literature_papers"]) == {
        "papers": 4,
        "studies": 1,
        "reporting_registered_studies": 0,
        "not_studies": 1,
        "unclassified": ["PMID:3", "PMID:12"],
    }


def test_pmid_rules_for_facts_tags_name_their_source() -> None:
    """A PMID rule is a curated fact: each says which facts tag it copies."""
    pmid_rules = [r for r in RULES if r.field == "pmid"]
    assert len(pmid_rules) == 9
    text = DESIGN_RULES_FILE.read_text(encoding="utf-8")
    for rule in pmid_rules:
        (line,) = [ln for ln in text.splitlines() if f",pmid,{rule.term}," in ln]
        assert "shared/facts/publications.csv: topic tag" in line

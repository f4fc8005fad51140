"""Addiction types read from a paper's title, keywords, MeSH headings and publication types."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.normalize.literature_conditions import (
    ADDICTION_TYPES_FILE,
    AddictionEvidence,
    literature_conditions,
    load_addiction_lexicon,
)
from pipelines.paths import REFERENCE_DIR
from schemas.studies import Condition

LEXICON = load_addiction_lexicon(REFERENCE_DIR)


def paper(title: str = "", **fields: Any) -> dict[str, Any]:
    return {
        "title": title,
        "keywords": fields.get("keywords", []),
        "mesh_terms": fields.get("mesh", []),
        "publication_types": fields.get("types", []),
        "abstract": fields.get("abstract", ""),
    }


def categories(record: dict[str, Any]) -> list[str]:
    return [e.category for e in LEXICON.evidence(record)]


def test_a_real_title_names_kratom_use_and_its_opioid_treatment() -> None:
    """PMID 37519540: a kratom use disorder treated with an opioid use disorder medication."""
    found = LEXICON.evidence(
        paper("Successful Management of Kratom Use Disorder With Buprenorphine and Naloxone")
    )
    assert found == [
        AddictionEvidence("opioid_use_disorder", "title", "buprenorphine"),
        AddictionEvidence("kratom_use", "title", "kratom use disorder"),
    ]


def test_the_topic_word_alone_is_no_addiction() -> None:
    """Every paper names kratom; its pharmacology, assays and stimulant effects are no use."""
    assert (
        categories(paper("Pharmacology of Kratom: an Emerging Botanical Agent with Stimulant"))
        == []
    )
    assert categories(paper("Ethanol extract of Mitragyna speciosa in rats")) == []


def test_real_titles_of_opioid_alcohol_and_other_substances() -> None:
    assert categories(
        paper("Self-treatment of opioid withdrawal with a dietary supplement, Kratom")
    ) == ["opioid_withdrawal"]
    assert categories(
        paper(
            "G protein-biased kratom-alkaloids ... as potential treatments for alcohol use disorder"
        )
    ) == ["alcohol_use_disorder"]
    assert categories(paper("7-Hydroxymitragynine and Nicotine Pouch Withdrawal Syndrome")) == [
        "other_substance_use"
    ]


def test_a_mesh_heading_counts_only_whole_and_is_kept_as_mesh_term() -> None:
    assert categories(paper(mesh=["Opioid-Related Disorders/drug therapy"])) == []
    found = LEXICON.evidence(paper("Mitragynine", mesh=["Humans", "Opioid-Related Disorders"]))
    assert found == [AddictionEvidence("opioid_use_disorder", "mesh", "Opioid-Related Disorders")]


def test_keywords_are_read_and_the_abstract_never() -> None:
    assert categories(paper("A survey", keywords=["Kratom use", "Harm reduction"])) == [
        "kratom_use"
    ]
    assert categories(paper("A survey", abstract="heroin and alcohol use among kratom users")) == []


def test_conditions_rows_name_field_and_term_and_pass_the_model() -> None:
    studies = [
        {"study_id": "PMID:2", "source_publication_id": "PMID:2"},
        {"study_id": "PMID:1", "source_publication_id": "PMID:1"},
        {"study_id": "PMID:3", "source_publication_id": "PMID:9"},
    ]
    papers = {
        "PMID:1": paper("Kratom use among U.S. adolescents"),
        "PMID:2": paper("Mitragynine binding", mesh=["Alcoholism"]),
    }
    rows = literature_conditions(studies, papers, LEXICON)
    assert rows == [
        {
            "study_id": "PMID:1",
            "condition": "kratom use",
            "condition_category": "kratom_use",
            "mesh_term": None,
            "mesh_id": None,
            "matched_in": "title",
            "matched_term": "kratom use",
        },
        {
            "study_id": "PMID:2",
            "condition": "Alcoholism",
            "condition_category": "alcohol_use_disorder",
            "mesh_term": "Alcoholism",
            "mesh_id": None,
            "matched_in": "mesh",
            "matched_term": "Alcoholism",
        },
    ]
    Condition.validate(pd.DataFrame(rows))


def test_a_category_that_is_no_addiction_is_refused(tmp_path: Path) -> None:
    shutil.copy(REFERENCE_DIR / ADDICTION_TYPES_FILE, tmp_path / ADDICTION_TYPES_FILE)
    with (tmp_path / ADDICTION_TYPES_FILE).open("a", encoding="utf-8") as handle:
        handle.write("pain,text,back pain,curated\n")
    with pytest.raises(ValueError, match="bad category/match 'pain'/'text'"):
        load_addiction_lexicon(tmp_path)

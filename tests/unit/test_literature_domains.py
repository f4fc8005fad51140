"""Outcome domains read from a paper's title, keywords, MeSH headings and publication types."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors
import pytest

from pipelines.normalize.lexicon import read_reference_csv
from pipelines.normalize.literature_domains import (
    LITERATURE_DOMAINS_FILE,
    DomainEvidence,
    literature_outcomes,
    load_literature_domains,
)
from pipelines.normalize.outcomes import INSTRUMENTS_FILE
from pipelines.paths import REFERENCE_DIR
from schemas.outcomes import Outcome

LEXICON = load_literature_domains(REFERENCE_DIR)


def paper(title: str = "", **fields: Any) -> dict[str, Any]:
    return {
        "title": title,
        "keywords": fields.get("keywords", []),
        "mesh_terms": fields.get("mesh", []),
        "publication_types": fields.get("types", []),
    }


def domains(record: dict[str, Any]) -> list[str]:
    return [e.domain for e in LEXICON.evidence(record)]


def test_title_words_name_every_domain_once_in_vocabulary_order() -> None:
    found = LEXICON.evidence(
        paper("Kratom (Mitragyna speciosa) dependence, withdrawal symptoms and craving")
    )
    assert found == [
        DomainEvidence("withdrawal", "title", "withdrawal symptoms", None),
        DomainEvidence("craving", "title", "craving", None),
        DomainEvidence("substance_use", "title", "dependence", None),
    ]


def test_a_mesh_heading_counts_only_whole() -> None:
    """MeSH gives every opioid paper 'Analgesics, Opioid': a drug class, not a pain outcome."""
    assert domains(paper(mesh=["Analgesics, Opioid", "Humans"])) == []
    found = LEXICON.evidence(paper(mesh=["Humans", "Substance Withdrawal Syndrome"]))
    assert found == [DomainEvidence("withdrawal", "mesh", "Substance Withdrawal Syndrome", None)]


def test_keywords_are_searched_like_the_title() -> None:
    found = LEXICON.evidence(paper("Mitragynine", keywords=["Hepatotoxicity", "Kratom"]))
    assert found == [DomainEvidence("safety", "keywords", "hepatotoxicity", None)]


def test_the_title_is_cited_before_mesh_for_the_same_domain() -> None:
    found = LEXICON.evidence(
        paper(
            "Kratom overdose deaths",
            mesh=["Drug Overdose", "Chemical and Drug Induced Liver Injury"],
        )
    )
    assert found == [DomainEvidence("safety", "title", "overdose", None)]


def test_an_instrument_named_in_a_title_gives_its_domain_and_name() -> None:
    found = LEXICON.evidence(paper("Kratom and COWS scores after buprenorphine induction"))
    assert found == [DomainEvidence("withdrawal", "title", "COWS", "COWS")]


def test_an_instrument_acronym_that_is_a_word_needs_its_context() -> None:
    """outcome_instruments.csv guards "audit" (AUDIT) with alcohol context terms."""
    assert domains(paper("An audit of kratom product labels")) == []
    assert domains(paper("Kratom use and AUDIT scores of alcohol use")) == ["substance_use"]


def test_a_title_without_domain_words_names_nothing() -> None:
    assert domains(paper("Partial agonistic effect of 9-hydroxycorynantheidine")) == []
    assert domains(paper(types=["Journal Article", "Case Reports"])) == []


def test_abuse_liability_wins_over_abuse_inside_it() -> None:
    """Leftmost-longest: 'abuse liability' is one term, not substance use plus more."""
    assert domains(paper("Abuse liability of mitragynine in rats")) == ["abuse_liability"]


def test_outcome_rows_number_domains_per_study_and_validate() -> None:
    studies = [
        {"study_id": "PMID:2", "source_publication_id": "PMID:2"},
        {"study_id": "PMID:1", "source_publication_id": "PMID:1"},
        {"study_id": "PMID:3", "source_publication_id": "PMID:3"},
        {"study_id": "PMID:4", "source_publication_id": "PMID:404"},
    ]
    papers = {
        "PMID:1": paper("Kratom exposures reported to poison centers"),
        "PMID:2": paper("Pain and sleep during kratom cessation"),
        "PMID:3": paper("Alkaloids from Mitragyna speciosa"),
    }
    rows = literature_outcomes(studies, papers, LEXICON)
    assert [(r["outcome_id"], r["domain"], r["matched_term"]) for r in rows] == [
        ("PMID:1:L1", "safety", "poison center"),
        ("PMID:2:L1", "withdrawal", "cessation"),
        ("PMID:2:L2", "pain", "pain"),
        ("PMID:2:L3", "sleep", "sleep"),
    ]
    assert {(r["source"], r["outcome_kind"], r["matched_in"]) for r in rows} == {
        ("literature", "other", "title")
    }
    Outcome.validate(pd.DataFrame([{**r, "param_type": None, "unit": None} for r in rows]))


def test_a_registry_row_with_a_matched_term_fails_the_schema() -> None:
    row = {
        "outcome_id": "NCT00000001:P1",
        "study_id": "NCT00000001",
        "outcome_kind": "primary",
        "title": "COWS",
        "time_frame": None,
        "domain": "withdrawal",
        "instrument": "COWS",
        "param_type": None,
        "unit": None,
        "source": "registry_protocol",
        "matched_in": None,
        "matched_term": "COWS",
    }
    with pytest.raises(pandera.errors.SchemaError, match="literature_rows_say_where"):
        Outcome.validate(pd.DataFrame([row]))


def _reference_copy(tmp_path: Path, lines: str) -> Path:
    shutil.copy(REFERENCE_DIR / INSTRUMENTS_FILE, tmp_path / INSTRUMENTS_FILE)
    (tmp_path / LITERATURE_DOMAINS_FILE).write_text(
        "domain,match,terms,source\n" + lines, encoding="utf-8"
    )
    return tmp_path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("moods,text,mood,curated\n", "bad domain/match"),
        ("other,text,misc,curated\n", "bad domain/match"),
        ("mood,phrase,mood,curated\n", "bad domain/match"),
        ("mood,heading,Pain,MeSH\npain,heading,Pain,MeSH\n", "two domains"),
        ("mood,text,pain,curated\npain,text,pain,curated\n", "claimed by both"),
    ],
)
def test_a_bad_reference_row_is_an_error(tmp_path: Path, lines: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_literature_domains(_reference_copy(tmp_path, lines))


def test_every_reference_row_has_a_source() -> None:
    rows = read_reference_csv(REFERENCE_DIR / LITERATURE_DOMAINS_FILE)
    assert rows and all(r["source"] and r["terms"] for r in rows)

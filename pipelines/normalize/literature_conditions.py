"""Addiction types of a literature-only study, from what its paper's record names.

A registration lists its conditions; a paper known only from the literature does not, but its
title, author keywords and MeSH headings say which substance use it studies ("Kratom use
disorder treated with buprenorphine", "Opioid-Related Disorders"). The substances are the
addiction categories of schemas/vocab.py CONDITION_CATEGORIES (kratom itself, opioids and their
withdrawal, alcohol, other substances), so a literature study's conditions rows answer "studies
per addiction type" next to the registrations'. `data/reference/literature_addiction_types.csv`
lists the words per category, read exactly as the literature outcome domains read theirs
(`pipelines/normalize/literature_domains.py`): `text` terms in the title and keywords, `heading`
terms as whole MeSH headings or publication types. Each row keeps the field and the term; the
abstract is not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.normalize.lexicon import Lexicon, normalize, read_reference_csv, split_terms
from pipelines.normalize.literature_domains import (
    HEADING_FIELDS,
    MATCH_KINDS,
    RECORD_COLUMNS,
    field_values,
)
from schemas.vocab import CONDITION_CATEGORIES, LITERATURE_FIELDS

ADDICTION_TYPES_FILE = "literature_addiction_types.csv"
NOT_ADDICTIONS = ("pain", "healthy_volunteers", "other")
"""Condition categories that name no substance use: a paper is never given one from its words."""
ADDICTION_CATEGORIES = tuple(c for c in CONDITION_CATEGORIES if c not in NOT_ADDICTIONS)


@dataclass(frozen=True)
class AddictionEvidence:
    """One addiction type a paper names: the field and the term that say so."""

    category: str
    field: str
    term: str


@dataclass(frozen=True)
class AddictionLexicon:
    """Text terms (a Lexicon keyed by category) and whole headings, compiled."""

    text: Lexicon
    headings: Mapping[str, tuple[str, str]]
    """Normalised heading -> (category, heading as listed)."""

    def evidence(self, record: Mapping[str, Any]) -> list[AddictionEvidence]:
        """The addiction types a publications record names, one per category, in
        CONDITION_CATEGORIES order; fields are read in LITERATURE_FIELDS order and the first
        match of a category is kept."""
        found: dict[str, AddictionEvidence] = {}
        for field in LITERATURE_FIELDS:
            for value in field_values(record.get(RECORD_COLUMNS[field])):
                for category, term in self._matches(field, value):
                    found.setdefault(category, AddictionEvidence(category, field, term))
        return [found[c] for c in ADDICTION_CATEGORIES if c in found]

    def _matches(self, field: str, value: str) -> list[tuple[str, str]]:
        if field in HEADING_FIELDS:
            hit = self.headings.get(normalize(value))
            return [hit] if hit is not None else []
        return [(m.key, m.term) for m in self.text.find(value)]


def load_addiction_lexicon(reference_dir: Path) -> AddictionLexicon:
    """Compile literature_addiction_types.csv; a category that is no addiction type, an unknown
    match kind, or a term claimed by two categories is an error naming the file."""
    text_terms: list[tuple[str, str]] = []
    headings: dict[str, tuple[str, str]] = {}
    for row in read_reference_csv(reference_dir / ADDICTION_TYPES_FILE):
        category, kind = row["category"], row["match"]
        if category not in ADDICTION_CATEGORIES or kind not in MATCH_KINDS:
            raise ValueError(f"{ADDICTION_TYPES_FILE}: bad category/match {category!r}/{kind!r}")
        for term in split_terms(row["terms"]):
            if kind == "text":
                text_terms.append((category, term))
                continue
            previous = headings.setdefault(normalize(term), (category, term))
            if previous[0] != category:
                raise ValueError(f"{ADDICTION_TYPES_FILE}: heading {term!r} has two categories")
    return AddictionLexicon(Lexicon.build(text_terms), headings)


def literature_conditions(
    studies: Iterable[Mapping[str, Any]],
    publications: Mapping[str, Mapping[str, Any]],
    lexicon: AddictionLexicon,
) -> list[dict[str, Any]]:
    """Conditions rows (schemas.studies.Condition) of literature-only studies.

    Args:
        studies: studies rows with study_id and source_publication_id (the study's own paper).
        publications: publication_id -> record with title, keywords, mesh_terms,
            publication_types.
        lexicon: from `load_addiction_lexicon`.

    Returns:
        One row per study and addiction type its paper names: the condition is the matched
        term, `matched_in` and `matched_term` say where and which, `mesh_term` is the heading
        when a MeSH heading matched. A study whose paper names none gets no row.
    """
    rows: list[dict[str, Any]] = []
    for study in sorted(studies, key=lambda s: str(s["study_id"])):
        record = publications.get(str(study.get("source_publication_id")))
        if record is None:
            continue
        for found in lexicon.evidence(record):
            rows.append(
                {
                    "study_id": study["study_id"],
                    "condition": found.term,
                    "condition_category": found.category,
                    "mesh_term": found.term if found.field == "mesh" else None,
                    "mesh_id": None,
                    "matched_in": found.field,
                    "matched_term": found.term,
                }
            )
    return rows

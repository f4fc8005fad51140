"""Outcome domains of a literature-only study, from what its paper's record names.

A paper known only from the literature has no registered outcome measures, but its record says
what it studied: the title and author keywords in free words ("withdrawal symptoms and craving
in regular users"), MeSH headings and publication types in controlled vocabularies ("Substance
Withdrawal Syndrome"). `data/reference/literature_domains.csv` lists the words per domain:
`text` terms are searched in the title and keywords with the shared matcher
(`pipelines/normalize/lexicon.py`), `heading` terms must equal a whole MeSH heading or
publication type. The instruments of `outcome_instruments.csv` count as text terms too, so a
title naming COWS is a withdrawal paper. The abstract is not read: no prose is stored, and every
domain is traceable to a field and a term of the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.normalize.lexicon import Lexicon, normalize, read_reference_csv, split_terms
from pipelines.normalize.outcomes import INSTRUMENTS_FILE
from schemas.vocab import LITERATURE_FIELDS, OUTCOME_DOMAINS

LITERATURE_DOMAINS_FILE = "literature_domains.csv"
MATCH_KINDS = ("text", "heading")
TEXT_FIELDS = ("title", "keywords")
"""Free wording, searched for text terms."""
HEADING_FIELDS = ("mesh", "publication_type")
"""Controlled vocabularies, matched whole against heading terms."""
RECORD_COLUMNS = {
    "title": "title",
    "keywords": "keywords",
    "mesh": "mesh_terms",
    "publication_type": "publication_types",
}
"""Where each field is in a publications record."""
OUTCOME_KIND = "other"
"""A paper's domain is what it studied, not a registered primary or secondary outcome."""
SOURCE = "literature"


@dataclass(frozen=True)
class DomainEvidence:
    """One domain a paper studies: the field and the term that say so."""

    domain: str
    field: str
    term: str
    instrument: str | None


@dataclass(frozen=True)
class LiteratureDomainLexicon:
    """Text terms (a Lexicon keyed by domain) and whole headings, compiled."""

    text: Lexicon
    headings: Mapping[str, tuple[str, str]]
    """Normalised heading -> (domain, heading as listed)."""
    instruments: Mapping[str, str]
    """Normalised instrument term -> instrument name, for text matches that name one."""

    def evidence(self, record: Mapping[str, Any]) -> list[DomainEvidence]:
        """The domains a publications record names, one per domain, in OUTCOME_DOMAINS order.

        Fields are read in LITERATURE_FIELDS order and the first match of a domain is kept, so
        each domain cites the most readable place that names it.
        """
        found: dict[str, DomainEvidence] = {}
        for field in LITERATURE_FIELDS:
            for value in field_values(record.get(RECORD_COLUMNS[field])):
                for domain, term in self._matches(field, value):
                    instrument = self.instruments.get(normalize(term))
                    found.setdefault(domain, DomainEvidence(domain, field, term, instrument))
        return [found[d] for d in OUTCOME_DOMAINS if d in found]

    def _matches(self, field: str, value: str) -> list[tuple[str, str]]:
        if field in HEADING_FIELDS:
            hit = self.headings.get(normalize(value))
            return [hit] if hit is not None else []
        return [(m.key, m.term) for m in self.text.find(value)]


def field_values(cell: Any) -> list[str]:
    """A record cell as a list of non-blank strings (a title is one, MeSH a list; a missing
    cell, None or a NaN from an outer join, is none)."""
    if isinstance(cell, str):
        return [cell] if cell.strip() else []
    if not isinstance(cell, Iterable):
        return []
    return [v for v in cell if isinstance(v, str) and v.strip()]


def load_literature_domains(reference_dir: Path) -> LiteratureDomainLexicon:
    """Compile literature_domains.csv and the instruments of outcome_instruments.csv.

    A domain outside OUTCOME_DOMAINS (or `other`, which is no answer), an unknown match kind, or
    a term claimed by two domains is an error naming the file.
    """
    text_terms: list[tuple[str, str]] = []
    headings: dict[str, tuple[str, str]] = {}
    for row in read_reference_csv(reference_dir / LITERATURE_DOMAINS_FILE):
        domain, kind = row["domain"], row["match"]
        if domain not in OUTCOME_DOMAINS or domain == "other" or kind not in MATCH_KINDS:
            raise ValueError(f"{LITERATURE_DOMAINS_FILE}: bad domain/match {domain!r}/{kind!r}")
        for term in split_terms(row["terms"]):
            if kind == "text":
                text_terms.append((domain, term))
                continue
            previous = headings.setdefault(normalize(term), (domain, term))
            if previous[0] != domain:
                raise ValueError(f"{LITERATURE_DOMAINS_FILE}: heading {term!r} has two domains")
    rows = read_reference_csv(reference_dir / INSTRUMENTS_FILE)
    instruments = _instrument_terms(rows)
    text_terms += [(domain, term) for term, (domain, _) in instruments.items()]
    return LiteratureDomainLexicon(
        Lexicon.build(text_terms, contexts=_instrument_contexts(rows, instruments)),
        headings,
        {normalize(term): name for term, (_, name) in instruments.items()},
    )


def _named_instruments(rows: Iterable[Mapping[str, str]]) -> list[Mapping[str, str]]:
    return [r for r in rows if r["instrument"] and r["domain"] != "other"]


def _instrument_terms(rows: Iterable[Mapping[str, str]]) -> dict[str, tuple[str, str]]:
    """Term -> (domain, instrument) of named instruments; two-part patterns need a measure's
    wording ("craving & VAS") and are left to registry titles."""
    terms: dict[str, tuple[str, str]] = {}
    for row in _named_instruments(rows):
        for term in split_terms(row["patterns"]):
            if "&" not in term:
                terms[term] = (row["domain"], row["instrument"])
    return terms


def _instrument_contexts(
    rows: Iterable[Mapping[str, str]], instruments: Mapping[str, tuple[str, str]]
) -> dict[str, list[str]]:
    """The instruments' own guard: an acronym that is also a word ("audit") counts only beside
    one of its row's context terms, in a paper title as in a registry title."""
    return {
        term: split_terms(row.get("context_terms"))
        for row in _named_instruments(rows)
        for term in split_terms(row.get("needs_context"))
        if term in instruments
    }


def literature_outcomes(
    studies: Iterable[Mapping[str, Any]],
    publications: Mapping[str, Mapping[str, Any]],
    lexicon: LiteratureDomainLexicon,
) -> list[dict[str, Any]]:
    """Outcome rows (schemas.outcomes.Outcome) of literature-only studies.

    Args:
        studies: studies rows with study_id and source_publication_id (the study's own paper).
        publications: publication_id -> record with title, keywords, mesh_terms,
            publication_types.
        lexicon: from `load_literature_domains`.

    Returns:
        One row per study and domain its paper names, `<study_id>:L<n>` numbered in domain
        order; the title is the matched term, `matched_in` and `matched_term` say where and
        which. A study whose paper names no domain gets no row.
    """
    rows: list[dict[str, Any]] = []
    for study in sorted(studies, key=lambda s: str(s["study_id"])):
        record = publications.get(str(study.get("source_publication_id")))
        if record is None:
            continue
        for number, found in enumerate(lexicon.evidence(record), start=1):
            rows.append(
                {
                    "outcome_id": f"{study['study_id']}:L{number}",
                    "study_id": study["study_id"],
                    "outcome_kind": OUTCOME_KIND,
                    "title": found.term,
                    "time_frame": None,
                    "domain": found.domain,
                    "instrument": found.instrument,
                    "source": SOURCE,
                    "matched_in": found.field,
                    "matched_term": found.term,
                }
            )
    return rows

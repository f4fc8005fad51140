"""Studies known from the literature, and paper↔study links found in the text.

Two jobs on merged publications:
- registry ids written in a title or abstract (NCT…, ISRCTN…) link the paper to that registered
  study (`link_source` text_mention);
- a paper that reports a primary study (trial, cohort, survey, case report, lab or animal work)
  and is linked to no registered study becomes a study itself, `PMID:<n>`, classified by the
  rules in `data/reference/design_rules.csv`; the study row names its paper in
  `source_publication_id` (the paper is the study's own record, not a link). Reviews,
  editorials, comments, letters and guidelines stay publications. A paper linked to a
  registered study reports it.
A PMID paper that no rule classifies is neither: `literature_studies` lists it as unclassified
for the release manifest (`paper_accounting`), so a missing rule shows instead of a dropped paper.
A stub publication (`is_stub`: a paper only a link or an evidence file names) is no literature
input and is not classified.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.paths import REFERENCE_DIR
from pipelines.sources.base import TableRows
from schemas import vocab

DESIGN_RULES_FILE = REFERENCE_DIR / "design_rules.csv"
NOT_A_STUDY = "not_a_study"
PAPER_OUTCOMES = ("study", "reports_registered_study", "not_a_study", "unclassified")
"""What became of a PMID paper: its own study, a report of a registered study, a publication
that a rule says is not a primary study, or a paper no rule classifies."""
HUMAN_DESIGNS = frozenset(
    {"rct", "non_randomised_trial", "observational", "case_report", "survey", "qualitative"}
)
"""Designs that only exist in people: the population is human unless a rule says otherwise."""

REGISTRY_ID_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bNCT\s?(\d{8})\b", re.IGNORECASE), "NCT{}"),
    (re.compile(r"\bISRCTN\s?(\d{8})\b", re.IGNORECASE), "ISRCTN{}"),
    (re.compile(r"\bACTRN\s?(\d{14})\b", re.IGNORECASE), "ACTRN{}"),
    (re.compile(r"\bTCTR\s?(\d{11})\b", re.IGNORECASE), "TCTR{}"),
    (re.compile(r"\bNL-OMON\s?(\d+)\b", re.IGNORECASE), "NL-OMON{}"),
    (re.compile(r"\bEUCTR\s?(\d{4}-\d{6}-\d{2})\b", re.IGNORECASE), "EUCTR{}"),
    (
        re.compile(r"\bEudraCT(?:\s+(?:number|no\.?))?[\s:]+(\d{4}-\d{6}-\d{2})\b", re.IGNORECASE),
        "EUCTR{}",
    ),
)
"""Registry id syntax in running text -> the study id form (schemas.studies.STUDY_ID_PATTERN)."""


RULE_FIELDS = ("publication_type", "mesh", "title", "pmid")
"""What a rule reads: NLM types, MeSH, title wording, or one paper by PMID (a curated fact such
as a review whose record carries no publication type)."""


@dataclass(frozen=True)
class Rule:
    """One row of design_rules.csv."""

    target: str
    field: str
    term: str
    value: str
    rank: int
    pattern: re.Pattern[str] | None


@dataclass(frozen=True)
class Classification:
    """What a paper is: a study design (None: not a primary study) and its population."""

    design: str | None
    population: str
    design_basis: str | None
    population_assumed: bool


def load_design_rules(path: Path = DESIGN_RULES_FILE) -> list[Rule]:
    """Read and check the rules: targets, fields, values and regexes must all be valid."""
    rules = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            target, field, value = row["target"], row["field"], row["value"]
            allowed = (*vocab.DESIGNS, NOT_A_STUDY) if target == "design" else vocab.POPULATIONS
            if target not in ("design", "population") or value not in allowed:
                raise ValueError(f"{path}:{line}: bad target/value {target!r}/{value!r}")
            if field not in RULE_FIELDS:
                raise ValueError(f"{path}:{line}: unknown field {field!r}")
            if field == "pmid" and not row["term"].isdigit():
                raise ValueError(f"{path}:{line}: pmid rule term {row['term']!r} is not a PMID")
            pattern = re.compile(row["term"], re.IGNORECASE) if field == "title" else None
            rules.append(Rule(target, field, row["term"], value, int(row["rank"]), pattern))
    return sorted(rules, key=lambda r: (r.rank, r.target, r.field, r.term))


def _matches(rule: Rule, publication: Mapping[str, Any]) -> bool:
    if rule.field == "pmid":
        return str(publication.get("pmid") or "") == rule.term
    if rule.pattern is not None:
        return bool(rule.pattern.search(publication.get("title") or ""))
    column = "publication_types" if rule.field == "publication_type" else "mesh_terms"
    wanted = rule.term.casefold()
    return any(str(v).casefold() == wanted for v in publication.get(column) or [])


def classify(publication: Mapping[str, Any], rules: Iterable[Rule]) -> Classification:
    """Design and population of a paper: the lowest-ranked matching rule of each target wins."""
    design: Rule | None = None
    population: Rule | None = None
    for rule in rules:
        if design is not None and population is not None:
            break
        if rule.target == "design" and design is None and _matches(rule, publication):
            design = rule
        elif rule.target == "population" and population is None and _matches(rule, publication):
            population = rule
    design_value = design.value if design is not None and design.value != NOT_A_STUDY else None
    if population is not None:
        return Classification(design_value, population.value, _basis(design), False)
    assumed = "human" if design_value in HUMAN_DESIGNS else "unknown"
    return Classification(design_value, assumed, _basis(design), design_value is not None)


def _basis(rule: Rule | None) -> str | None:
    return rule.field if rule is not None else None


def find_registry_ids(text: str | None) -> list[str]:
    """Registry ids written in a text, in study-id form, sorted and distinct."""
    if not text:
        return []
    found = {
        template.format(match.group(1).upper())
        for pattern, template in REGISTRY_ID_PATTERNS
        for match in pattern.finditer(text)
    }
    return sorted(found)


def mentioned_ids(publication: Mapping[str, Any]) -> list[str]:
    """The registry ids a paper's title or abstract names (`find_registry_ids`)."""
    return find_registry_ids(" ".join(str(publication.get(k) or "") for k in ("title", "abstract")))


def text_mention_links(
    publications: Iterable[Mapping[str, Any]], study_ids: set[str]
) -> list[dict[str, Any]]:
    """study_publications rows for registered studies named in a paper's title or abstract."""
    links = []
    for publication in publications:
        for study_id in mentioned_ids(publication):
            if study_id in study_ids:
                links.append(
                    {
                        "study_id": study_id,
                        "publication_id": publication["publication_id"],
                        "link_type": "report",
                        "link_source": "text_mention",
                    }
                )
    return links


def literature_studies(
    publications: Iterable[Mapping[str, Any]],
    links: Iterable[Mapping[str, Any]],
    study_ids: set[str],
    rules: list[Rule],
) -> TableRows:
    """New text-mention links and literature-only studies.

    Args:
        publications: merged publications rows (with the staging `abstract` where known).
        links: study_publications already known (registry references, PubMed DataBankList,
            curated links), with final publication ids; those of other papers change nothing.
        study_ids: ids of the registered studies; those no paper names (`mentioned_ids`)
            change nothing.
        rules: from `load_design_rules`.

    Returns:
        {"studies": [...], "study_publications": [...], "literature_papers": [...]}: one study
        per literature-only primary study (its paper in `source_publication_id`), the
        text-mention links not already known, and what became of each PMID paper
        (`publication_id`, `outcome` from PAPER_OUTCOMES, `basis`: the deciding rule's field).
    """
    pubs = sorted(publications, key=lambda p: p["publication_id"])
    known = {(link["study_id"], link["publication_id"]) for link in links}
    mentions = [
        link
        for link in text_mention_links(pubs, study_ids)
        if (link["study_id"], link["publication_id"]) not in known
    ]
    reporting = {pid for _, pid in known} | {link["publication_id"] for link in mentions}
    studies: list[dict[str, Any]] = []
    papers: list[dict[str, Any]] = []
    for publication in pubs:
        if not publication.get("pmid"):
            continue
        if publication["publication_id"] in reporting:
            papers.append(_paper(publication, "reports_registered_study", None))
            continue
        if publication.get("is_stub"):
            continue  # no literature source returned it: there is nothing to classify
        found = classify(publication, rules)
        if found.design is not None:
            studies.append(_study_row(f"PMID:{publication['pmid']}", publication, found))
        papers.append(_paper(publication, _outcome(found), found.design_basis))
    return {"studies": studies, "study_publications": mentions, "literature_papers": papers}


def _outcome(found: Classification) -> str:
    if found.design is not None:
        return "study"
    return "not_a_study" if found.design_basis is not None else "unclassified"


def _paper(publication: Mapping[str, Any], outcome: str, basis: str | None) -> dict[str, Any]:
    return {"publication_id": publication["publication_id"], "outcome": outcome, "basis": basis}


def paper_accounting(papers: Iterable[Mapping[str, Any]]) -> dict[str, object]:
    """Manifest lines for PMID papers: counts per outcome and the unclassified papers by id.

    A paper that no design rule classifies is listed rather than made a study of design
    `other`: its design is unknown, and counting it would put it on the evidence map.
    """
    rows = list(papers)
    counts = {outcome: 0 for outcome in PAPER_OUTCOMES}
    for row in rows:
        counts[row["outcome"]] += 1
    return {
        "papers": len(rows),
        "studies": counts["study"],
        "reporting_registered_studies": counts["reports_registered_study"],
        "not_studies": counts["not_a_study"],
        "unclassified": sorted(
            (r["publication_id"] for r in rows if r["outcome"] == "unclassified"),
            key=lambda pid: int(pid.removeprefix("PMID:")),
        ),
    }


def _study_row(
    study_id: str, publication: Mapping[str, Any], found: Classification
) -> dict[str, Any]:
    flags = []
    if found.design_basis == "title":
        flags.append("design_from_title")
    if found.population_assumed:
        flags.append("population_from_design")
    if publication.get("is_retracted"):
        flags.append("retracted_publication")
    other_ids = find_registry_ids(
        " ".join(str(publication.get(k) or "") for k in ("title", "abstract"))
    )
    if other_ids:
        flags.append("unlisted_registry_id")
    return {
        "study_id": study_id,
        "evidence_source": "literature",
        "registry": None,
        "title": publication.get("title"),
        "phases": [],
        "collaborators": [],
        "who_masked": [],
        "countries": [],
        "population": found.population,
        "design": found.design,
        "flags": flags,
        "source_publication_id": publication["publication_id"],
    }

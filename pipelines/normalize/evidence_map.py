"""The evidence map: compound x outcome domain x study design -> studies, participants, ids.

A study contributes to a cell when it names the compound and measures the domain (one of its
outcomes). A study names a compound, strongest link first:

- `intervention`: one of its interventions is matched to the compound;
- `title`, `official_title`, `condition`: for registered studies, its registry text names a
  kratom product or alkaloid ("Kratom Use Disorder Management Using Clonidine", condition
  "Kratom"), even when no intervention does (kratom is then the studied exposure, not the arm);
- `publication`: for literature-only studies, its paper names the compound;
- `curated`: `data/reference/study_compounds.csv` names it, with the facts that say so (registry
  hits of a kratom intervention search known only by id and status).

Each cell keeps how each of its studies was linked (`study_links`, "<study_id>=<how>").
A study with compounds but no outcome rows at all is counted under the domain "other", so it
does not vanish from the map; `unmeasured_study_ids` names those studies, so "other" from an
unplaced outcome title and "other" from no registered outcome stay apart. Placebo arms have no
compound and add nothing. Participants are the sum of enrollment over the cell's studies that
report one; null when none does. `long_term_studies` counts the cell's studies whose follow-up
is long term (`studies.long_term`).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from pipelines.normalize.distinct import per_distinct
from schemas.evidence import STUDY_COMPOUND_LINKS

COLUMNS = [
    "compound_id",
    "domain",
    "design",
    "studies",
    "participants",
    "long_term_studies",
    "study_ids",
    "study_links",
    "unmeasured_study_ids",
]
UNCLASSIFIED_DOMAIN = "other"
UNKNOWN_DESIGN = "other"
LINKS = STUDY_COMPOUND_LINKS
"""How a study names a compound, strongest first: a study linked twice keeps the first."""
TEXT_COLUMNS = ("title", "official_title")
PAIR_COLUMNS = ["study_id", "compound_id", "linked_by"]


def text_compound_links(
    studies: pd.DataFrame, conditions: pd.DataFrame, match: Callable[[str], list[str]]
) -> pd.DataFrame:
    """(study_id, compound_id, linked_by) for compounds `match` finds in registry text.

    `studies` has study_id, title and official_title; `conditions` has study_id and condition.
    Blank text links nothing.
    """
    rows: list[tuple[str, str, str]] = []
    texts = [(studies, column, column) for column in TEXT_COLUMNS]
    for frame, column, linked_by in [*texts, (conditions, "condition", "condition")]:
        found = per_distinct(
            lambda text: match(text) if isinstance(text, str) and text else [], frame[column]
        )
        for study_id, compounds in zip(frame["study_id"], found, strict=True):
            rows += [(str(study_id), c, linked_by) for c in compounds]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _study_compound_pairs(
    interventions: pd.DataFrame, study_compounds: pd.DataFrame | None
) -> pd.DataFrame:
    named = interventions[["study_id", "compound_id"]].assign(linked_by="intervention")
    frames = [named]
    if study_compounds is not None:
        frames.append(study_compounds[PAIR_COLUMNS])
    pairs = pd.concat(frames, ignore_index=True).dropna().astype(str)
    unknown = set(pairs["linked_by"]) - set(LINKS)
    if unknown:
        raise ValueError(f"unknown study-compound link kinds: {sorted(unknown)}")
    pairs["_rank"] = pairs["linked_by"].map(LINKS.index)
    pairs = pairs.sort_values(["study_id", "compound_id", "_rank"])
    return pairs.drop_duplicates(["study_id", "compound_id"])[PAIR_COLUMNS]


def _study_domains(outcomes: pd.DataFrame, study_ids: pd.Series) -> pd.DataFrame:
    measured = outcomes[["study_id", "domain"]].dropna().astype(str).drop_duplicates()
    measured["unmeasured"] = False
    unmeasured = sorted(set(study_ids) - set(measured["study_id"]))
    filler = pd.DataFrame(
        {"study_id": unmeasured, "domain": UNCLASSIFIED_DOMAIN, "unmeasured": True}
    )
    return pd.concat([measured, filler], ignore_index=True)


def _participants(enrollment: pd.Series) -> object:
    known = enrollment.dropna()
    return int(known.sum()) if len(known) else pd.NA


def build_evidence_map(
    studies: pd.DataFrame,
    interventions: pd.DataFrame,
    outcomes: pd.DataFrame,
    study_compounds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rows of the evidence_map table (schemas.evidence.EvidenceMapCell), sorted by key.

    `study_compounds` (study_id, compound_id, linked_by) adds links that are not interventions:
    registry text (see `text_compound_links`), literature-only studies' papers and curated
    links. Studies
    absent from `studies` are ignored (their design and enrollment are unknown); a study
    without a design is counted under "other".
    """
    pairs = _study_compound_pairs(interventions, study_compounds)
    design = studies[["study_id", "design", "enrollment"]].copy()
    long_term = studies["long_term"] if "long_term" in studies else pd.Series(pd.NA, studies.index)
    design["long_term"] = long_term.astype("boolean").fillna(False).astype(bool)
    design["study_id"] = design["study_id"].astype(str)
    design["design"] = design["design"].fillna(UNKNOWN_DESIGN).astype(str)
    pairs = pairs[pairs["study_id"].isin(design["study_id"])]
    if pairs.empty:
        return _empty()
    domains = _study_domains(outcomes, pairs["study_id"])
    facts = pairs.merge(domains, on="study_id").merge(design, on="study_id")
    facts = facts.drop_duplicates(["compound_id", "domain", "design", "study_id"])
    cells = []
    for (compound, domain, kind), group in facts.groupby(
        ["compound_id", "domain", "design"], sort=True
    ):
        group = group.sort_values("study_id")
        cells.append(
            {
                "compound_id": compound,
                "domain": domain,
                "design": kind,
                "studies": len(group),
                "participants": _participants(pd.to_numeric(group["enrollment"])),
                "long_term_studies": int(group["long_term"].sum()),
                "study_ids": list(group["study_id"]),
                "study_links": [
                    f"{i}={k}" for i, k in zip(group.study_id, group.linked_by, strict=True)
                ],
                "unmeasured_study_ids": list(group.loc[group["unmeasured"], "study_id"]),
            }
        )
    return _typed(pd.DataFrame(cells, columns=COLUMNS))


def _empty() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(
        {
            "compound_id": "string",
            "domain": "string",
            "design": "string",
            "studies": "Int64",
            "participants": "Int64",
            "long_term_studies": "Int64",
        }
    ).reset_index(drop=True)

"""The evidence map: compound x outcome domain x study design -> studies, participants, ids.

A study contributes to a cell when it names the compound (an intervention matched to it, or, for
literature-only studies, a `study_compounds` row built from publication_compounds) and measures
the domain (one of its outcomes). A study with compounds but no outcome rows contributes to the
domain "other", so it is still counted somewhere rather than vanishing from the map. Placebo
arms have no compound and add nothing. Participants are the sum of enrollment over the cell's
studies that report one; null when none does.
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ["compound_id", "domain", "design", "studies", "participants", "study_ids"]
UNCLASSIFIED_DOMAIN = "other"
UNKNOWN_DESIGN = "other"


def _study_compound_pairs(
    interventions: pd.DataFrame, study_compounds: pd.DataFrame | None
) -> pd.DataFrame:
    frames = [interventions[["study_id", "compound_id"]]]
    if study_compounds is not None:
        frames.append(study_compounds[["study_id", "compound_id"]])
    pairs = pd.concat(frames, ignore_index=True).dropna()
    return pairs.astype(str).drop_duplicates()


def _study_domains(outcomes: pd.DataFrame, study_ids: pd.Series) -> pd.DataFrame:
    measured = outcomes[["study_id", "domain"]].dropna().astype(str).drop_duplicates()
    unmeasured = sorted(set(study_ids) - set(measured["study_id"]))
    filler = pd.DataFrame({"study_id": unmeasured, "domain": UNCLASSIFIED_DOMAIN})
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

    Studies absent from `studies` are ignored (their design and enrollment are unknown); a study
    without a design is counted under "other".
    """
    pairs = _study_compound_pairs(interventions, study_compounds)
    design = studies[["study_id", "design", "enrollment"]].copy()
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
        cells.append(
            {
                "compound_id": compound,
                "domain": domain,
                "design": kind,
                "studies": len(group),
                "participants": _participants(pd.to_numeric(group["enrollment"])),
                "study_ids": sorted(group["study_id"]),
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
        }
    ).reset_index(drop=True)

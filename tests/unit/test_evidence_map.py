"""The evidence map: cells, participant sums, literature-only studies, determinism."""

from __future__ import annotations

import pandas as pd

from pipelines.normalize.evidence_map import build_evidence_map
from schemas.evidence import EvidenceMapCell


def _studies() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study_id": ["NCT1", "NCT2", "NCT3", "PMID:9"],
            "design": ["rct", "rct", "observational", "case_report"],
            "enrollment": pd.array([40, 20, None, 1], dtype="Int64"),
        }
    )


def _interventions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study_id": ["NCT1", "NCT1", "NCT2", "NCT2", "NCT3", "NCT_UNKNOWN"],
            "intervention_name": ["Kratom", "Placebo", "kratom tea", "oxycodone", "k", "k"],
            "compound_id": ["kratom", None, "kratom", "oxycodone", "kratom", "kratom"],
        }
    )


def _outcomes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study_id": ["NCT1", "NCT1", "NCT2", "NCT2"],
            "domain": ["pharmacokinetics", "pharmacokinetics", "pharmacokinetics", "physiology"],
        }
    )


def _cell(frame: pd.DataFrame, compound: str, domain: str, design: str) -> pd.Series:
    hit = frame[
        (frame.compound_id == compound) & (frame.domain == domain) & (frame.design == design)
    ]
    assert len(hit) == 1, (compound, domain, design)
    return hit.iloc[0]


def test_cells_count_studies_and_sum_enrollment() -> None:
    result = build_evidence_map(_studies(), _interventions(), _outcomes())
    EvidenceMapCell.validate(result, lazy=True)
    cell = _cell(result, "kratom", "pharmacokinetics", "rct")
    assert cell.studies == 2
    assert cell.participants == 60
    assert cell.study_ids == ["NCT1", "NCT2"]
    assert _cell(result, "oxycodone", "physiology", "rct").study_ids == ["NCT2"]


def test_study_without_outcomes_counts_under_other_with_null_participants() -> None:
    result = build_evidence_map(_studies(), _interventions(), _outcomes())
    cell = _cell(result, "kratom", "other", "observational")
    assert cell.study_ids == ["NCT3"]
    assert pd.isna(cell.participants)


def test_placebo_and_unknown_studies_add_nothing() -> None:
    result = build_evidence_map(_studies(), _interventions(), _outcomes())
    ids = {i for ids in result.study_ids for i in ids}
    assert "NCT_UNKNOWN" not in ids
    assert set(result.compound_id) == {"kratom", "oxycodone"}


def test_literature_only_studies_contribute_through_study_compounds() -> None:
    links = pd.DataFrame({"study_id": ["PMID:9"], "compound_id": ["7-hydroxymitragynine"]})
    outcomes = pd.concat(
        [_outcomes(), pd.DataFrame({"study_id": ["PMID:9"], "domain": ["safety"]})]
    )
    result = build_evidence_map(_studies(), _interventions(), outcomes, links)
    cell = _cell(result, "7-hydroxymitragynine", "safety", "case_report")
    assert (cell.studies, cell.participants, cell.study_ids) == (1, 1, ["PMID:9"])


def test_output_is_sorted_and_deterministic_under_input_order() -> None:
    one = build_evidence_map(_studies(), _interventions(), _outcomes())
    two = build_evidence_map(
        _studies().iloc[::-1], _interventions().iloc[::-1], _outcomes().iloc[::-1]
    )
    pd.testing.assert_frame_equal(one, two)
    keys = list(zip(one.compound_id, one.domain, one.design, strict=True))
    assert keys == sorted(keys)


def test_no_compounds_gives_an_empty_valid_table() -> None:
    empty = _interventions().iloc[:0]
    result = build_evidence_map(_studies(), empty, _outcomes())
    assert result.empty
    EvidenceMapCell.validate(result)

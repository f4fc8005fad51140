"""The publish gate: every rejected row comes back with the rule it broke, none vanish."""

from __future__ import annotations

import json

import pandas as pd

from pipelines.curate import enforce
from schemas import TABLES_BY_NAME

CONDITIONS = TABLES_BY_NAME["conditions"]


def _staged(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["_source"] = "clinicaltrials"
    frame["_source_file"] = "clinicaltrials/page.json"
    frame["_seq"] = range(len(frame))
    return frame


def _condition(study_id: str, condition: str, category: str = "pain") -> dict:
    return {"study_id": study_id, "condition": condition, "condition_category": category}


def test_duplicate_primary_key_keeps_the_first_and_quarantines_the_rest() -> None:
    staged = _staged(
        [_condition("NCT00000001", "Pain"), _condition("NCT00000001", "Pain", "other")]
    )
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert result.frame["condition_category"].tolist() == ["pain"]
    assert result.rejects["reason"].tolist() == ["duplicate primary key (study_id, condition)"]
    assert json.loads(result.rejects["raw"][0])["condition_category"] == "other"


def test_value_outside_the_vocabulary_is_quarantined_with_the_column_named() -> None:
    staged = _staged(
        [_condition("NCT00000001", "Pain"), _condition("NCT00000001", "Itch", "itchy")]
    )
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert result.frame["condition"].tolist() == ["Pain"]
    (reason,) = result.rejects["reason"]
    assert reason.startswith("condition_category: failed isin") and "itchy" in reason
    assert result.rejects["record_key"].tolist() == ["NCT00000001|Itch"]
    assert result.rejects["source_file"].tolist() == ["clinicaltrials/page.json"]


def test_unresolved_foreign_key_is_quarantined() -> None:
    staged = _staged([_condition("NCT00000001", "Pain"), _condition("NCT00000002", "Pain")])
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert result.frame["study_id"].tolist() == ["NCT00000001"]
    assert result.rejects["reason"].tolist() == ["study_id 'NCT00000002' not found in studies"]


def test_rows_in_equal_rows_out_plus_rejects() -> None:
    staged = _staged(
        [
            _condition("NCT00000001", "Pain"),
            _condition("NCT00000001", "Pain"),
            _condition("NCT00000003", "Pain"),
            _condition("bad id", "Pain", "nope"),
        ]
    )
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert len(result.frame) + len(result.rejects) == len(staged)


def test_missing_columns_become_nulls_and_empty_lists() -> None:
    studies = TABLES_BY_NAME["studies"]
    staged = _staged(
        [
            {
                "study_id": "NCT00000001",
                "evidence_source": "registry",
                "population": "human",
                "design": "rct",
            }
        ]
    )
    result = enforce(staged, studies, {})
    assert result.rejects.empty
    assert result.frame.loc[0, "phases"] == [] and pd.isna(result.frame.loc[0, "title"])

"""Registered study type, allocation and phases map onto the contract's design classes."""

from __future__ import annotations

import pytest

from pipelines.normalize.design import registered_design
from schemas.vocab import DESIGNS


def test_design_interventional_randomized_is_rct() -> None:
    assert registered_design("INTERVENTIONAL", "RANDOMIZED", ["PHASE1"]) == "rct"


def test_design_interventional_non_randomized_is_non_randomised_trial() -> None:
    assert registered_design("INTERVENTIONAL", "NON_RANDOMIZED", ["NA"]) == "non_randomised_trial"


def test_design_interventional_without_allocation_is_non_randomised_trial() -> None:
    assert registered_design("INTERVENTIONAL", None, []) == "non_randomised_trial"


def test_design_observational_ignores_allocation() -> None:
    assert registered_design("OBSERVATIONAL", "RANDOMIZED", None) == "observational"


def test_design_expanded_access_is_other() -> None:
    assert registered_design("EXPANDED_ACCESS", None, []) == "other"


def test_design_unknown_type_without_phase_is_other() -> None:
    assert registered_design(None, None, ["NA"]) == "other"
    assert registered_design("", "", None) == "other"


def test_design_free_text_case_and_spacing_normalised() -> None:
    assert registered_design("Interventional", "Randomized", []) == "rct"
    assert registered_design("interventional", "Non-Randomized", []) == "non_randomised_trial"


def test_design_missing_type_with_trial_phase_is_a_trial() -> None:
    assert registered_design(None, "RANDOMIZED", ["Phase 2"]) == "rct"
    assert registered_design("", None, ["Early Phase 1"]) == "non_randomised_trial"


@pytest.mark.parametrize("study_type", ["INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS", None])
@pytest.mark.parametrize("allocation", ["RANDOMIZED", "NON_RANDOMIZED", "NA", None])
def test_design_always_in_contract_vocabulary(
    study_type: str | None, allocation: str | None
) -> None:
    assert registered_design(study_type, allocation, ["PHASE2", "PHASE3"]) in DESIGNS

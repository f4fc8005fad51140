"""Registered conditions to the categories of schemas/vocab.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.normalize.conditions import ConditionLexicon, load_condition_lexicon
from pipelines.paths import REFERENCE_DIR


@pytest.fixture(scope="module")
def lexicon() -> ConditionLexicon:
    return load_condition_lexicon(REFERENCE_DIR)


@pytest.mark.parametrize(
    ("condition", "category"),
    [
        ("Opioid Use Disorder", "opioid_use_disorder"),
        ("Opioid-use Disorder, Moderate", "opioid_use_disorder"),
        ("Heroin Dependence", "opioid_use_disorder"),
        ("Opiate Withdrawal", "opioid_withdrawal"),
        ("Withdrawal Syndrome", "opioid_withdrawal"),
        ("Alcohol Withdrawal Syndrome", "alcohol_use_disorder"),
        ("Kratom Pharmacokinetics", "kratom_use"),
        ("Kratom withdrawal", "kratom_use"),
        ("Substance Use Disorders", "other_substance_use"),
        ("Chronic Pain", "pain"),
        ("Safety and Tolerability in Healthy Subjects", "healthy_volunteers"),
        ("Fatigue", "other"),
    ],
)
def test_categorise(lexicon: ConditionLexicon, condition: str, category: str) -> None:
    assert lexicon.categorise(condition) == category


def test_unknown_category_in_reference_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "condition_categories.csv").write_text(
        "category,patterns,priority,source\nmisc,thing,1,test\n"
    )
    with pytest.raises(ValueError, match="unknown category"):
        load_condition_lexicon(tmp_path)

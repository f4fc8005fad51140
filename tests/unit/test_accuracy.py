"""Measured accuracy of outcome-domain and compound matching on a hand-labelled set.

tests/data/labelled_outcomes.csv and labelled_interventions.csv hold titles and intervention
names phrased the way opioid withdrawal, OUD and kratom registrations phrase them (NCT ids only
where the shared facts show them). An answer of "other" (domain) or no compound is an
abstention: precision counts only the answers given, recall counts every labelled positive.
Run with `pytest -s` to see the figures.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from pipelines.normalize.compounds import load_compound_lexicon
from pipelines.normalize.outcomes import load_instrument_lexicon
from pipelines.paths import REFERENCE_DIR

DATA = Path(__file__).resolve().parents[1] / "data"
MIN_PRECISION = 0.9
MIN_RECALL = 0.85


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def precision_recall(pairs: Iterable[tuple[str, str]], none: str) -> tuple[float, float]:
    """(precision, recall) of (predicted, expected) pairs where `none` means no answer."""
    answered = correct = positives = 0
    for predicted, expected in pairs:
        positives += expected != none
        if predicted != none:
            answered += 1
            correct += predicted == expected
    return correct / answered, correct / positives


def test_labelled_sets_are_large_enough() -> None:
    assert len(_rows("labelled_outcomes.csv")) >= 60
    assert len(_rows("labelled_interventions.csv")) >= 40


def test_outcome_domain_accuracy() -> None:
    lexicon = load_instrument_lexicon(REFERENCE_DIR)
    rows = _rows("labelled_outcomes.csv")
    results = [(lexicon.classify(r["title"], r["time_frame"] or None), r) for r in rows]
    precision, recall = precision_recall(((d, r["domain"]) for (d, _), r in results), "other")
    instrument_hits = sum((i or "") == r["instrument"] for (_, i), r in results)
    print(
        f"\noutcome domain: n={len(rows)} precision={precision:.3f} recall={recall:.3f}; "
        f"instrument exact={instrument_hits}/{len(rows)}"
    )
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL


def test_intervention_compound_accuracy() -> None:
    lexicon = load_compound_lexicon(REFERENCE_DIR)
    rows = _rows("labelled_interventions.csv")
    predicted = [lexicon.primary(r["intervention_name"]) or "" for r in rows]
    precision, recall = precision_recall(
        zip(predicted, (r["compound_id"] for r in rows), strict=True), ""
    )
    forms = sum(
        lexicon.product_form(r["intervention_name"], r["intervention_type"] or None, p or None)
        == r["product_form"]
        for p, r in zip(predicted, rows, strict=True)
    )
    print(
        f"\nintervention compound: n={len(rows)} precision={precision:.3f} recall={recall:.3f}; "
        f"product_form exact={forms}/{len(rows)}"
    )
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL

"""Measured accuracy of outcome-domain and compound matching on a hand-labelled set.

tests/data/labelled_outcomes.csv and labelled_interventions.csv say where each row came from
in `provenance`:

- `registry_page`: an outcome title or intervention name exactly as a public page showing a
  ClinicalTrials.gov record printed it, with its NCT id and the page in `source_url` (opioid
  withdrawal, OUD, abuse-liability and peri-operative opioid trials);
- `shared_facts`: registered kratom studies as ../shared/facts records them;
- `author_phrasing`: phrasings written by the vocabulary's author, no NCT id (they test the
  vocabulary against itself, so they are reported apart and never stand in for the others).

Labels were written before the classifier was run on a row. An answer of "other" (domain) or
no compound is an abstention: precision counts only the answers given, recall counts every
labelled positive. The thresholds hold for the whole set and for the registry rows alone.
Run with `pytest -s` to see the figures.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pytest

from pipelines.normalize.compounds import CompoundLexicon, load_compound_lexicon
from pipelines.normalize.outcomes import InstrumentLexicon, load_instrument_lexicon
from pipelines.paths import REFERENCE_DIR

DATA = Path(__file__).resolve().parents[1] / "data"
MIN_PRECISION = 0.9
MIN_RECALL = 0.85
PROVENANCES = ("registry_page", "shared_facts", "author_phrasing")
MIN_REGISTRY_ROWS = 40


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


def test_precision_recall_counts_abstentions_only_against_recall() -> None:
    pairs = [("a", "a"), ("", "a"), ("b", "a"), ("", "")]
    assert precision_recall(pairs, "") == (0.5, 1 / 3)


def test_labelled_sets_are_large_enough_and_say_where_rows_came_from() -> None:
    outcomes = _rows("labelled_outcomes.csv")
    interventions = _rows("labelled_interventions.csv")
    assert len(outcomes) >= 60
    assert len(interventions) >= 40
    registry = 0
    for row in outcomes + interventions:
        assert row["provenance"] in PROVENANCES, row
        if row["provenance"] == "registry_page":
            registry += 1
            assert row["nct"].startswith("NCT") and len(row["nct"]) == 11, row
            assert row["source_url"].startswith(("http://", "https://")), row
    assert registry >= MIN_REGISTRY_ROWS


def _domain_pairs(
    lexicon: InstrumentLexicon, rows: list[dict[str, str]]
) -> list[tuple[tuple[str, str | None], dict[str, str]]]:
    return [(lexicon.classify(r["title"], r["time_frame"] or None), r) for r in rows]


@pytest.mark.parametrize("subset", ["all", "registry_page"])
def test_outcome_domain_accuracy(subset: str) -> None:
    lexicon = load_instrument_lexicon(REFERENCE_DIR)
    rows = [r for r in _rows("labelled_outcomes.csv") if subset in ("all", r["provenance"])]
    results = _domain_pairs(lexicon, rows)
    precision, recall = precision_recall(((d, r["domain"]) for (d, _), r in results), "other")
    instrument_hits = sum((i or "") == r["instrument"] for (_, i), r in results)
    print(
        f"\noutcome domain [{subset}]: n={len(rows)} precision={precision:.3f} "
        f"recall={recall:.3f}; instrument exact={instrument_hits}/{len(rows)}"
    )
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL


def _compounds(lexicon: CompoundLexicon, rows: list[dict[str, str]]) -> list[str]:
    return [lexicon.primary(r["intervention_name"]) or "" for r in rows]


@pytest.mark.parametrize("subset", ["all", "registry_page"])
def test_intervention_compound_accuracy(subset: str) -> None:
    lexicon = load_compound_lexicon(REFERENCE_DIR)
    rows = [r for r in _rows("labelled_interventions.csv") if subset in ("all", r["provenance"])]
    predicted = _compounds(lexicon, rows)
    precision, recall = precision_recall(
        zip(predicted, (r["compound_id"] for r in rows), strict=True), ""
    )
    forms = sum(
        lexicon.product_form(r["intervention_name"], r["intervention_type"] or None, p or None)
        == r["product_form"]
        for p, r in zip(predicted, rows, strict=True)
    )
    print(
        f"\nintervention compound [{subset}]: n={len(rows)} precision={precision:.3f} "
        f"recall={recall:.3f}; product_form exact={forms}/{len(rows)}"
    )
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL

"""Measured accuracy of outcome-domain and compound matching on a hand-labelled set.

tests/data/labelled_outcomes.csv and labelled_interventions.csv say where each row came from
in `provenance`:

- `registry_page`: an outcome title or intervention name exactly as a public page showing a
  ClinicalTrials.gov record printed it, with its NCT id and the page in `source_url` (opioid
  withdrawal, OUD, abuse-liability and peri-operative opioid trials);
- `registry_page_heldout`: the same kind of rows, gathered after the vocabulary was last tuned
  and scored without changing it afterwards (a held-out batch: its misses stay misses);
- `shared_facts`: registered kratom studies as ../shared/facts records them;
- `author_phrasing`: phrasings written by the vocabulary's author, no NCT id (they test the
  vocabulary against itself, so they are reported apart and never stand in for the others).

Labels were written before the classifier was run on a row. An answer of "other" (domain) or
no compound is an abstention: precision counts only the answers given, recall counts every
labelled positive. The thresholds hold for the whole set and for the real rows (every
provenance but author_phrasing) together; the held-out figures are printed and reported apart
in docs/vocabularies-and-accuracy.md. Run with `pytest -s` to see the figures.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.normalize.compounds import load_compound_lexicon
from pipelines.normalize.outcomes import InstrumentLexicon, load_instrument_lexicon
from pipelines.paths import PROJECT_ROOT, REFERENCE_DIR

DATA = Path(__file__).resolve().parents[1] / "data"
MIN_PRECISION = 0.9
MIN_RECALL = 0.85
REGISTRY = ("registry_page", "registry_page_heldout")
REAL = (*REGISTRY, "shared_facts")
PROVENANCES = (*REAL, "author_phrasing")
MIN_REAL_OUTCOMES = 60
MIN_REAL_INTERVENTIONS = 40
MIN_HELDOUT_OUTCOMES = 18
MIN_HELDOUT_INTERVENTIONS = 10


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


def _subset(rows: list[dict[str, str]], subset: str) -> list[dict[str, str]]:
    """Rows of a subset: "all", "real" (every provenance but author_phrasing), or one provenance."""
    if subset == "all":
        return rows
    wanted = REAL if subset == "real" else (subset,)
    return [r for r in rows if r["provenance"] in wanted]


def test_labelled_sets_are_large_enough_and_say_where_rows_came_from() -> None:
    outcomes = _rows("labelled_outcomes.csv")
    interventions = _rows("labelled_interventions.csv")
    assert len(_subset(outcomes, "real")) >= MIN_REAL_OUTCOMES
    assert len(_subset(interventions, "real")) >= MIN_REAL_INTERVENTIONS
    assert len(_subset(outcomes, "registry_page_heldout")) >= MIN_HELDOUT_OUTCOMES
    assert len(_subset(interventions, "registry_page_heldout")) >= MIN_HELDOUT_INTERVENTIONS
    for row in outcomes + interventions:
        assert row["provenance"] in PROVENANCES, row
        if row["provenance"] in REGISTRY:
            assert row["nct"].startswith("NCT") and len(row["nct"]) == 11, row
            assert row["source_url"].startswith(("http://", "https://")), row
            assert row["nct"].lower() in row["source_url"].lower() or row["source_url"], row


def test_heldout_rows_are_new_to_the_set() -> None:
    for name, column in (
        ("labelled_outcomes.csv", "title"),
        ("labelled_interventions.csv", "intervention_name"),
    ):
        rows = _rows(name)
        earlier = {
            (r["nct"], r[column]) for r in rows if r["provenance"] != "registry_page_heldout"
        }
        heldout = [(r["nct"], r[column]) for r in _subset(rows, "registry_page_heldout")]
        assert len(set(heldout)) == len(heldout)
        assert not earlier & set(heldout)


def _domain_pairs(
    lexicon: InstrumentLexicon, rows: list[dict[str, str]]
) -> list[tuple[tuple[str, str | None], dict[str, str]]]:
    return [(lexicon.classify(r["title"], r["time_frame"] or None), r) for r in rows]


@dataclass(frozen=True)
class Scores:
    """What the classifier got right on one subset of a labelled file."""

    rows: int
    precision: float
    recall: float
    exact: int
    """Rows whose secondary label (instrument, product form) also matched exactly."""

    def line(self, what: str, subset: str) -> str:
        return (
            f"{what} [{subset}]: n={self.rows} precision={self.precision:.3f} "
            f"recall={self.recall:.3f}; exact={self.exact}/{self.rows}"
        )


def outcome_scores(subset: str) -> Scores:
    """Domain precision/recall and exact instruments of the outcome vocabulary on a subset."""
    lexicon = load_instrument_lexicon(REFERENCE_DIR)
    rows = _subset(_rows("labelled_outcomes.csv"), subset)
    results = _domain_pairs(lexicon, rows)
    precision, recall = precision_recall(((d, r["domain"]) for (d, _), r in results), "other")
    instruments = sum((i or "") == r["instrument"] for (_, i), r in results)
    return Scores(len(rows), precision, recall, instruments)


def intervention_scores(subset: str) -> Scores:
    """Compound precision/recall and exact product forms of the compound vocabulary."""
    lexicon = load_compound_lexicon(REFERENCE_DIR)
    rows = _subset(_rows("labelled_interventions.csv"), subset)
    predicted = [lexicon.primary(r["intervention_name"]) or "" for r in rows]
    precision, recall = precision_recall(
        zip(predicted, (r["compound_id"] for r in rows), strict=True), ""
    )
    forms = sum(
        lexicon.product_form(r["intervention_name"], r["intervention_type"] or None, p or None)
        == r["product_form"]
        for p, r in zip(predicted, rows, strict=True)
    )
    return Scores(len(rows), precision, recall, forms)


@pytest.mark.parametrize("subset", ["all", "real"])
def test_outcome_domain_accuracy(subset: str) -> None:
    scores = outcome_scores(subset)
    print("\n" + scores.line("outcome domain", subset))
    assert scores.precision >= MIN_PRECISION
    assert scores.recall >= MIN_RECALL


@pytest.mark.parametrize("subset", ["all", "real"])
def test_intervention_compound_accuracy(subset: str) -> None:
    scores = intervention_scores(subset)
    print("\n" + scores.line("intervention compound", subset))
    assert scores.precision >= MIN_PRECISION
    assert scores.recall >= MIN_RECALL


ACCURACY_ROW = re.compile(
    r"^\| (outcome domains|intervention compounds), ([^|]+) \| (\d+) \| ([\d.]+)[^|]* \| ([\d.]+)",
    re.MULTILINE,
)
TABLE_SUBSETS = {
    "held-out registry batch": "registry_page_heldout",
    "the vocabulary was tuned on": "registry_page",
    "real rows": "real",
    "all": "all",
}
"""Row label of the accuracy table (before any parenthesis; equal to or ending with the phrase)
-> labelled subset."""


def _table_subset(label: str) -> str:
    (subset,) = [s for phrase, s in TABLE_SUBSETS.items() if label.endswith(phrase)]
    return subset


def test_accuracy_table_of_the_docs_is_what_the_vocabulary_scores_today() -> None:
    """Rows, precision and recall of every row of the table in docs/vocabularies-and-accuracy.md.

    The held-out batch was scored once, with the vocabulary as it was: a vocabulary change that
    moves its figures must update the table and say the batch is no longer held out for that
    change. The tuned rows' "before" figures are history and not re-measured.
    """
    for subset in TABLE_SUBSETS.values():
        print(f"\n{outcome_scores(subset).line('outcome domain', subset)}")
        print(intervention_scores(subset).line("intervention compound", subset))
    page = (PROJECT_ROOT / "docs" / "vocabularies-and-accuracy.md").read_text(encoding="utf-8")
    table = [m.groups() for m in ACCURACY_ROW.finditer(page)]
    assert len(table) == 2 * len(TABLE_SUBSETS)
    for what, label, rows, precision, recall in table:
        score = outcome_scores if what == "outcome domains" else intervention_scores
        scores = score(_table_subset(label.split(" (")[0]))
        shown = (int(rows), precision, recall)
        assert shown == (scores.rows, f"{scores.precision:.3f}", f"{scores.recall:.3f}"), label

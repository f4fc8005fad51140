"""Conditions: the category of a registered condition (schemas/vocab.py CONDITION_CATEGORIES).

`data/reference/condition_categories.csv` gives each category its terms and a priority; the
matching row with the lowest priority number wins, so "Alcohol Withdrawal Syndrome" is alcohol
use disorder and "Kratom withdrawal" is kratom use before a bare "withdrawal" is read as opioid
withdrawal. Nothing matching is "other".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.normalize.lexicon import Lexicon, read_reference_csv, split_terms
from schemas.vocab import CONDITION_CATEGORIES

CATEGORIES_FILE = "condition_categories.csv"


@dataclass(frozen=True)
class ConditionLexicon:
    """Condition terms compiled per row; rows are ordered by priority."""

    rows: tuple[tuple[str, Lexicon], ...]

    def categorise(self, condition: str) -> str:
        """Category of a condition as registered; "other" when no term matches."""
        for category, lexicon in self.rows:
            if lexicon.find(condition):
                return category
        return "other"


def load_condition_lexicon(reference_dir: Path) -> ConditionLexicon:
    """Compile condition_categories.csv; a category outside CONDITION_CATEGORIES is an error."""
    rows = []
    for raw in read_reference_csv(reference_dir / CATEGORIES_FILE):
        category = raw["category"]
        if category not in CONDITION_CATEGORIES:
            raise ValueError(f"{CATEGORIES_FILE}: unknown category {category!r}")
        lexicon = Lexicon.build((category, t) for t in split_terms(raw["patterns"]))
        rows.append((int(raw["priority"]), category, lexicon))
    rows.sort(key=lambda r: r[0])
    return ConditionLexicon(tuple((category, lexicon) for _, category, lexicon in rows))

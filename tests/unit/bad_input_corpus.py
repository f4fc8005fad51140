"""The bad-input corpus (tests/data/bad_input) and its EXPECTED.csv, shared by its tests."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_input"
OUTCOMES = ("error", "quarantine", "ok")


@dataclass(frozen=True)
class Case:
    """One row of EXPECTED.csv."""

    path: str
    outcome: str
    reason: str
    together_with: tuple[str, ...]

    @property
    def source(self) -> str:
        return self.path.split("/")[0]


def load_cases(corpus: Path = CORPUS) -> list[Case]:
    """Cases in file order; `together_with` names files staged before the case (same source)."""
    with (corpus / "EXPECTED.csv").open(newline="", encoding="utf-8") as f:
        return [
            Case(
                row["case"],
                row["outcome"],
                row["reason_contains"],
                tuple(p for p in row["together_with"].split(";") if p),
            )
            for row in csv.DictReader(f)
        ]


CASES = load_cases()

"""What the report's evidence charts draw: marks, panels and spans, and their labels' text.

Shared by `evidence_charts.py` (which rows become which marks, by the schemas' vocabularies)
and `evidence_svg.py` (the marks drawn with matplotlib, in a process of its own): standard
library only, so that process imports neither the schemas nor Pandera.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

LABEL_CHARS = 58
"""Longest lane label; a longer one is cut with an ellipsis (the tooltip has it whole)."""
UNDATED = "period not stated"


@dataclass(frozen=True)
class Mark:
    """One measurement to draw: its lane, colour group, position or range, and tooltip."""

    lane: str
    group: str
    value: float | None
    low: float | None = None
    high: float | None = None
    relation: str = "="
    title: str = ""


@dataclass(frozen=True)
class Panel:
    """One log-scale axis of marks, with its title, axis label and reference lines."""

    title: str
    axis: str
    marks: list[Mark]
    references: tuple[float, ...] = ()


@dataclass(frozen=True)
class Span:
    """One safety figure on the time axis: its lane, outcome, period and tooltip."""

    lane: str
    group: str
    start: date | None
    end: date | None
    label: str
    title: str


def number_text(value: float) -> str:
    """A number as the charts print it: 0.1, 19.48, 390."""
    return format(value, "g")


def short_label(text: str) -> str:
    """A lane label of at most LABEL_CHARS characters."""
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1].rstrip() + "…"

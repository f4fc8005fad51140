"""Outcome measures: which domain an outcome title measures, and with which instrument.

`data/reference/outcome_instruments.csv` lists instruments (COWS, SOWS, AUC, ...) with their
domain and the page that defines them (`defined_at`), and domain keywords (rows without an
instrument). A pattern is a term, or "A|B & C|D"
when an instrument is only named by two words together ("craving" and "VAS"). The best match
is the lowest priority number, then the earliest in the title; the time frame is read only when
the title names nothing, and "other" with no instrument is the answer when neither does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipelines.normalize.lexicon import (
    Lexicon,
    normalize,
    read_reference_csv,
    split_terms,
    term_pattern,
)
from schemas.vocab import OUTCOME_DOMAINS

INSTRUMENTS_FILE = "outcome_instruments.csv"


@dataclass(frozen=True)
class InstrumentRule:
    """One row of the instrument table: what it means when it matches, and how decisive it is."""

    domain: str
    instrument: str | None
    priority: int


@dataclass(frozen=True)
class CoOccurrence:
    """A rule matched when every part (a set of alternative terms) occurs somewhere in the text."""

    rule: int
    parts: tuple[re.Pattern[str], ...]

    def position(self, norm_text: str) -> int | None:
        """Where the earliest part starts in normalised text, or None unless all parts occur."""
        starts = []
        for part in self.parts:
            found = part.search(norm_text)
            if found is None:
                return None
            starts.append(found.start())
        return min(starts)


def _alternatives(part: str) -> re.Pattern[str]:
    return re.compile("|".join(term_pattern(t) for t in part.split("|") if t.strip()))


@dataclass(frozen=True)
class InstrumentLexicon:
    """Compiled instrument and domain-keyword rules."""

    rules: tuple[InstrumentRule, ...]
    terms: Lexicon
    co_occurrences: tuple[CoOccurrence, ...]

    def _best(self, text: str) -> InstrumentRule | None:
        candidates = [(self.rules[int(m.key)], m.start) for m in self.terms.find(text)]
        norm = normalize(text)
        for co in self.co_occurrences:
            start = co.position(norm)
            if start is not None:
                candidates.append((self.rules[co.rule], start))
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c[0].priority, c[1]))[0]

    def classify(self, title: str, time_frame: str | None = None) -> tuple[str, str | None]:
        """(domain, instrument) of an outcome measure; ("other", None) when nothing matches."""
        rule = self._best(title) or (self._best(time_frame) if time_frame else None)
        if rule is None:
            return "other", None
        return rule.domain, rule.instrument


def load_instrument_lexicon(reference_dir: Path) -> InstrumentLexicon:
    """Compile outcome_instruments.csv; a domain outside OUTCOME_DOMAINS is an error.

    A short acronym that is also an ordinary word or another abbreviation ("audit", "ISI",
    "SDS") is listed in its row's `needs_context`: it counts only when one of the row's
    `context_terms` is in the same text (the compound vocabulary's guard, `Lexicon.build`).
    """
    rules: list[InstrumentRule] = []
    terms: list[tuple[str, str]] = []
    co_occurrences: list[CoOccurrence] = []
    contexts: dict[str, list[str]] = {}
    for raw in read_reference_csv(reference_dir / INSTRUMENTS_FILE):
        if raw["domain"] not in OUTCOME_DOMAINS:
            raise ValueError(f"{INSTRUMENTS_FILE}: unknown domain {raw['domain']!r}")
        index = len(rules)
        rules.append(InstrumentRule(raw["domain"], raw["instrument"] or None, int(raw["priority"])))
        for pattern in split_terms(raw["patterns"]):
            if "&" in pattern:
                parts = tuple(_alternatives(p.strip()) for p in pattern.split("&"))
                co_occurrences.append(CoOccurrence(index, parts))
            else:
                terms.append((str(index), pattern))
        for term in split_terms(raw.get("needs_context")):
            contexts[term] = split_terms(raw.get("context_terms"))
    lexicon = Lexicon.build(terms, contexts=contexts)
    return InstrumentLexicon(tuple(rules), lexicon, tuple(co_occurrences))

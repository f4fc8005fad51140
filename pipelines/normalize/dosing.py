"""Dose and duration read from registry wording: intervention names, intervention and arm
descriptions, time frames.

Registries write doses and times as people do: "kratom tea 2 g", "Clonidine 0.1 mg tablet q4h",
"Buprenorphine 5 mcg/hr transdermal patch", "kratom tea daily x4 days", and outcome time frames
such as "Day 7", "Weeks 3-24", "Baseline and 1, 1.5, ... and 8 hours after drug administration",
"Up to 2 years". `data/reference/dose_duration_terms.csv` lists the spellings of time units
(with their length in days), dose units, dosing frequencies and the long-term threshold, each
with its source; this module only knows the grammar: a number or a list of numbers next to a
unit. Everything here is pure.

Conventions: a time frame's length is its latest time point, in days (a month is 365.25 / 12
days); a time frame that names only baseline is 0 days; one that names no time is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.normalize.lexicon import Lexicon, normalize, read_reference_csv, split_terms

TERMS_FILE = "dose_duration_terms.csv"
KINDS = ("time_unit", "dose_unit", "frequency", "threshold")
DAY_DECIMALS = 3
"""Durations are rounded to a thousandth of a day (about a minute and a half)."""
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "eighteen": 18,
    "twenty": 20,
    "thirty": 30,
}
_NUMBER = r"(?:\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")"
_SEPARATOR = r"\s*(?:,\s*(?:and\s+|or\s+)?|-|–|to|and|or|through|&)\s*"
_NUMBERS = rf"{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*"
_BASELINE = re.compile(r"\b(baseline|time zero|pre-?dose|screening|enrol?lment)\b", re.I)
_EVERY_HOURS = re.compile(r"\b(?:q\s?(\d+)\s?h(?:ours?|rs?)?|every\s+(\d+)\s+hours?)\b", re.I)


@dataclass(frozen=True)
class Dose:
    """One dose read from a text: amount and unit where printed, frequency, and the words."""

    amount: float | None
    unit: str | None
    frequency: str | None
    text: str


@dataclass(frozen=True)
class DosingTerms:
    """Compiled dose_duration_terms.csv."""

    time_units: dict[str, float]
    """Spelling (lower case) -> days."""
    dose_units: dict[str, str]
    """Spelling (lower case) -> unit name."""
    frequencies: Lexicon
    long_term_days: float
    after_number: re.Pattern[str]
    before_number: re.Pattern[str]
    course: re.Pattern[str]
    dose: re.Pattern[str]

    def duration_days(self, text: str | None) -> float | None:
        """Latest time point a time frame names, in days; 0 for baseline only; None for none.

        "Day 0 - 421" -> 421; "Weeks 3-24" -> 168; "5, 10, 20 years" -> 7305; "3-month
        follow-up" -> 91.312; "Baseline" -> 0.
        """
        if not text:
            return None
        found = [
            _largest(m.group("numbers")) * self.time_units[m.group("unit").lower()]
            for pattern in (self.after_number, self.before_number)
            for m in pattern.finditer(text)
        ]
        if found:
            return round(max(found), DAY_DECIMALS)
        return 0.0 if _BASELINE.search(text) else None

    def course_days(self, text: str | None) -> float | None:
        """How long a treatment is given: "x4 days", "for 12 weeks", "over 5 days" (longest)."""
        if not text:
            return None
        found = [
            _largest(m.group("numbers")) * self.time_units[m.group("unit").lower()]
            for m in self.course.finditer(text)
        ]
        return round(max(found), DAY_DECIMALS) if found else None

    def is_long_term(self, days: float | None) -> bool | None:
        """Follow-up at or above the reference threshold; None when the follow-up is unknown."""
        return None if days is None else days >= self.long_term_days

    def parse_dose(self, text: str | None) -> Dose | None:
        """The first amount and unit of a text and its frequency; None when it names neither.

        dose_text is the text's own words from the amount (or "up to") to the frequency when
        the frequency follows it, else the amount and unit, else the frequency words.
        """
        if not text:
            return None
        amount = self.dose.search(text)
        frequency, span = self._frequency(text)
        if amount is None and frequency is None:
            return None
        if amount is None:
            start, end = span or (0, 0)
            return Dose(None, None, frequency, text[start:end])
        end = amount.end()
        if span is not None and span[0] >= amount.end() and span[0] - amount.end() <= 30:
            end = span[1]
        return Dose(
            float(amount.group("amount")),
            self.dose_units[amount.group("unit").lower()],
            frequency,
            text[amount.start() : end].strip(),
        )

    def _frequency(self, text: str) -> tuple[str | None, tuple[int, int] | None]:
        """The earliest frequency of a text ("q4h" is every_4_hours) and its span in it."""
        candidates: list[tuple[int, int, str]] = []
        every = _EVERY_HOURS.search(text)
        if every is not None:
            candidates.append((*every.span(), f"every_{every.group(1) or every.group(2)}_hours"))
        for match in self.frequencies.find(text)[:1]:
            words = r"[\s.-]*".join(re.escape(w) for w in re.findall(r"[a-z0-9]+", match.term))
            raw = re.search(words, text, flags=re.IGNORECASE)
            if raw is not None:
                candidates.append((*raw.span(), match.key))
        if not candidates:
            return None, None
        start, end, name = min(candidates)
        return name, (start, end)


def agreed_dose(terms: DosingTerms, texts: Iterable[str | None]) -> Dose | None:
    """The one dose the texts state alike, else None.

    An intervention given in several arms is read in each arm's description: arms that state
    different amounts (a dose-escalation study) give the intervention no single dose. Where the
    amount agrees but the frequency does not, the dose is the amount as a text without a
    frequency states it (one arm's "twice daily", its twin's none).
    """
    doses = {d for text in texts if (d := terms.parse_dose(text)) is not None}
    if len({(d.amount, d.unit) for d in doses}) != 1:
        return None
    if len({d.frequency for d in doses}) > 1:
        doses = {d for d in doses if d.frequency is None}
    return min(doses, key=lambda d: d.text, default=None)


def _longest_one_word(terms: Iterable[str]) -> int:
    """Letters of the longest one-word frequency term: such a term counts only as a whole
    hyphen-joined word, since a word hyphened to another is a compound modifier ("single-vial",
    "single-blind", "bi-weekly"); the frequencies written that way are terms of their own
    ("once-daily" is `once daily`, "single-dose" is `single dose`)."""
    return max((len(normalize(t)) for t in terms if len(normalize(t).split()) == 1), default=0)


def _number(token: str) -> float:
    token = token.lower()
    return float(NUMBER_WORDS[token]) if token in NUMBER_WORDS else float(token)


def _largest(numbers: str) -> float:
    return max(_number(t) for t in re.findall(_NUMBER, numbers, flags=re.IGNORECASE))


def _alternation(spellings: list[str]) -> str:
    ordered = sorted(spellings, key=len, reverse=True)
    return "|".join(re.escape(s) for s in ordered)


def load_dosing_terms(reference_dir: Path) -> DosingTerms:
    """Compile dose_duration_terms.csv; an unknown kind or a threshold its own words do not
    measure (the `terms` read as a duration must give `days`) is an error."""
    time_units: dict[str, float] = {}
    dose_units: dict[str, str] = {}
    frequencies: list[tuple[str, str]] = []
    thresholds: list[dict[str, str]] = []
    for row in read_reference_csv(reference_dir / TERMS_FILE):
        kind = row["kind"]
        if kind not in KINDS:
            raise ValueError(f"{TERMS_FILE}: unknown kind {kind!r}")
        for term in split_terms(row["terms"]):
            if kind == "time_unit":
                time_units[term.lower()] = float(row["days"])
            elif kind == "dose_unit":
                dose_units[term.lower()] = row["name"]
            elif kind == "frequency":
                frequencies.append((row["name"], term))
        if kind == "threshold":
            thresholds.append(row)
    (threshold,) = [t for t in thresholds if t["name"] == "long_term"]
    units = _alternation(list(time_units))
    words = _alternation([u for u in time_units if len(u) > 2])
    terms = DosingTerms(
        time_units,
        dose_units,
        Lexicon.build(frequencies, whole_word_max=_longest_one_word(t for _, t in frequencies)),
        float(threshold["days"]),
        re.compile(rf"(?P<numbers>{_NUMBERS})\s*-?\s*(?P<unit>{units})\b", re.I),
        re.compile(rf"\b(?P<unit>{words})\s+(?P<numbers>{_NUMBERS})\b", re.I),
        re.compile(
            rf"(?:\bx\s?|\bfor\s+|\bover\s+)(?P<numbers>{_NUMBER})\s*-?\s*(?P<unit>{units})\b",
            re.I,
        ),
        re.compile(
            rf"(?:\bup to\s+)?(?P<amount>\d+(?:\.\d+)?)\s*"
            rf"(?P<unit>{_alternation(list(dose_units))})(?![a-z])",
            re.I,
        ),
    )
    if terms.duration_days(threshold["terms"]) != round(terms.long_term_days, DAY_DECIMALS):
        raise ValueError(f"{TERMS_FILE}: long_term {threshold['terms']!r} is not its days")
    return terms

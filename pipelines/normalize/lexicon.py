"""The one term-matching engine behind compound, outcome and condition vocabularies.

Registry text spells the same thing many ways: "7-OH-mitragynine", "7-hydroxy mitragynine",
"7α-hydroxymitragynine", "Mitragyna speciosa (kratom) leaf". Rather than list every spelling, both
text and terms are normalised the same way (lower case, Greek letters spelled out, every
non-alphanumeric run turned into one space), and a term compiles to a regular expression that
tolerates the variants that do not change meaning:

- a space between tokens may be absent ("7-OH" matches "7OH" and "7 OH");
- a space may appear after a chemical prefix ("hydroxymitragynine" matches "hydroxy mitragynine");
- a stereo descriptor may follow a locant ("7-hydroxy..." matches "7α-hydroxy..." and "7alpha-...");
- a plural "s"/"es" may end the term ("urine drug screens").

Matches are word-bounded on both sides, so "mg" never matches inside "mg001" or "kg". When matches
overlap, the leftmost-longest wins, so "mitragynine pseudoindoxyl" is not also "mitragynine".

Two guards keep short and ambiguous terms honest. A short term (a lexicon's `whole_word_max`
letters and digits or fewer) matches only a whole hyphen-joined word of the text: "7-OH" names
7-hydroxymitragynine alone, but it is only the start of "7-OH-DPAT" or "7-OH-coumarin". And a term
given context terms (a vernacular name that is also a common word or a place, such as "thang")
matches only when one of them is also in the text.
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "κ": "kappa",
    "μ": "mu",
    "µ": "mu",
}
"""Greek letters that occur in compound and receptor names, spelled out as text does."""

CHEMICAL_PREFIXES = (
    "hydroxy",
    "methoxy",
    "demethoxy",
    "desmethyl",
    "demethyl",
    "dihydro",
    "dehydro",
    "pseudo",
    "iso",
    "epi",
    "nor",
)
"""Prefixes after which writers may put a space or hyphen ("7-hydroxy mitragynine")."""

STEREO = r"(?:alpha|beta|[rs])"
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)")
_TOKEN_PART = re.compile(r"\d+|[a-z]+")
_WORD_SEPARATORS = re.compile(r"[\s/\\,;:()\[\]{}<>+&|=\"]+")
"""What ends a hyphen-joined word of raw text; hyphens, dashes and dots do not."""


def normalize(text: str) -> str:
    """Lower-case, spell out Greek letters, strip accents, one space for separators.

    A digit after a letter starts a new word ("AUC0-inf" -> "auc 0 inf", "MG001" -> "mg 001")
    so a parameter name followed by its subscript still ends at a word boundary.
    """
    spelled = "".join(f" {GREEK[ch]} " if ch in GREEK else ch for ch in text)
    folded = unicodedata.normalize("NFKD", spelled)
    ascii_text = "".join(
        ch if ch.isascii() else ("" if unicodedata.combining(ch) else " ") for ch in folded
    ).lower()
    return _LETTER_DIGIT.sub(" ", _NON_ALNUM.sub(" ", ascii_text)).strip()


def hyphen_words(text: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Normalised text and the spans (in it) of the raw text's hyphen-joined words.

    "7-OH-DPAT (agonist)" -> ("7 oh dpat agonist", ((0, 9), (10, 17))); the text is exactly
    `normalize(text)` (separators only ever become single spaces). Normalisation turns the
    hyphens into spaces, the spans remember which normalised words were written as one.
    """
    parts = [n for n in (normalize(c) for c in _WORD_SEPARATORS.split(text)) if n]
    spans = []
    position = 0
    for part in parts:
        spans.append((position, position + len(part)))
        position += len(part) + 1
    return " ".join(parts), tuple(spans)


def _alnum_length(term: str) -> int:
    return len(normalize(term).replace(" ", ""))


def _word_pattern(word: str) -> str:
    """Regex for one normalised word: optional space at digit/letter joins and after prefixes."""
    parts: list[str] = []
    pieces = _TOKEN_PART.findall(word)
    for index, piece in enumerate(pieces):
        if piece.isdigit():
            parts.append(re.escape(piece))
            if index + 1 < len(pieces):
                parts.append(rf"(?: ?{STEREO})? ?")
            continue
        parts.append(_letters_pattern(piece))
        if index + 1 < len(pieces):
            parts.append(" ?")
    return "".join(parts)


def _letters_pattern(piece: str) -> str:
    return " ?".join(re.escape(chunk) for chunk in _letter_chunks(piece))


def _letter_chunks(piece: str) -> list[str]:
    """A run of letters split after each chemical prefix it starts with: the parts a match
    holds whole, a space perhaps between them."""
    for prefix in CHEMICAL_PREFIXES:
        if piece.startswith(prefix) and len(piece) - len(prefix) >= 4:
            return [prefix, *_letter_chunks(piece[len(prefix) :])]
    return [piece]


def required_literal(term: str) -> str:
    """The longest part of `term` that every match of `term_pattern(term)` holds as it is: the
    pattern only lets a space, a stereo descriptor or a plural in between or after its parts
    (the digits and letters of each word, letters split after a chemical prefix)."""
    chunks = [
        chunk
        for word in _words(term)
        for piece in _TOKEN_PART.findall(word)
        for chunk in ([piece] if piece.isdigit() else _letter_chunks(piece))
    ]
    return max(chunks, key=len)


@functools.lru_cache(maxsize=8192)
def compiled_term(term: str) -> re.Pattern[str]:
    """`term_pattern(term)` compiled, once per process: a build compiles the same vocabularies
    into several lexicons (85 in a bundled build, some terms six times), more patterns than
    `re`'s own cache of 512 keeps."""
    return re.compile(term_pattern(term))


def _words(term: str) -> list[str]:
    """The normalised words of a term; a term without any is an error."""
    words = normalize(term).split()
    if not words:
        raise ValueError(f"term {term!r} has no letters or digits")
    return words


def term_pattern(term: str) -> str:
    """Regex (over normalised text) that matches `term` and its harmless spelling variants."""
    words = _words(term)
    body = ""
    for index, word in enumerate(words):
        body += _word_pattern(word)
        if index + 1 < len(words):
            joint = rf"(?: ?{STEREO})? ?" if word.isdigit() else " ?"
            body += joint
    plural = "(?:e?s)?" if words[-1][-1].isalpha() else ""
    return rf"(?<![a-z0-9]){body}{plural}(?![a-z0-9])"


@dataclass(frozen=True)
class Match:
    """One term found in a text: what it stands for, where, and which term matched."""

    key: str
    start: int
    end: int
    term: str


@dataclass(frozen=True)
class Term:
    """A lexicon's term: its pattern is compiled the first time a text holds `literal`, which
    every match holds, and searched only in such texts. `re` compiles in Python: a bundled
    build compiled 671 patterns up front, 0.16 CPU s, where its texts hold the literals of 265
    (bench/README.md, Session 26)."""

    text: str
    literal: str

    @property
    def pattern(self) -> re.Pattern[str]:
        return compiled_term(self.text)


@dataclass(frozen=True)
class Lexicon:
    """Terms compiled for matching; each term points at a key (compound_id, instrument, ...).

    `whole_word_max`: terms of at most this many letters and digits match only a whole
    hyphen-joined word (0: no such guard). `contexts`: normalised term -> the lexicon of which
    one match must also be in the text for the term to count.
    """

    entries: tuple[tuple[str, Term], ...]
    whole_word_max: int = 0
    contexts: Mapping[str, Lexicon] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        terms: Iterable[tuple[str, str]],
        whole_word_max: int = 0,
        contexts: Mapping[str, Iterable[str]] | None = None,
    ) -> Lexicon:
        """Compile (key, term) pairs; a term listed twice for different keys is an error.

        `contexts` maps a term to its context terms; a term with an empty context list, or
        context given for a term the lexicon does not hold, is an error.
        """
        seen: dict[str, str] = {}
        entries = []
        for key, term in terms:
            norm = normalize(term)
            if norm in seen and seen[norm] != key:
                raise ValueError(f"term {term!r} is claimed by both {seen[norm]!r} and {key!r}")
            if norm in seen:
                continue
            seen[norm] = key
            entries.append((key, Term(term, required_literal(term))))
        compiled: dict[str, Lexicon] = {}
        for term, context in (contexts or {}).items():
            norm = normalize(term)
            context_terms = [c for c in context if normalize(c)]
            if norm not in seen or not context_terms:
                raise ValueError(f"context for {term!r}: not a term of the lexicon, or empty")
            compiled[norm] = Lexicon.build((seen[norm], c) for c in context_terms)
        return cls(tuple(entries), whole_word_max, compiled)

    def _is_short(self, term: str) -> bool:
        return self.whole_word_max > 0 and _alnum_length(term) <= self.whole_word_max

    def find(self, text: str) -> list[Match]:
        """Non-overlapping matches in reading order; where matches overlap the longest wins.

        Short terms inside a longer hyphen-joined word ("7-OH" in "7-OH-DPAT") and context-bound
        terms without their context are dropped before overlaps are resolved.
        """
        norm = normalize(text)
        found = [
            Match(key, m.start(), m.end(), term.text)
            for key, term in self.entries
            if term.literal in norm
            for m in term.pattern.finditer(norm)
            if self._in_context(term.text, text)
        ]
        short = [m for m in found if self._is_short(m.term)]
        if short:
            words = hyphen_words(text)[1]
            starts, ends = {start for start, _ in words}, {end for _, end in words}
            inside = {m for m in short if m.start not in starts or m.end not in ends}
            found = [m for m in found if m not in inside]
        found.sort(key=lambda m: (m.start, -(m.end - m.start), m.key))
        chosen: list[Match] = []
        for match in found:
            if chosen and match.start < chosen[-1].end:
                continue
            chosen.append(match)
        return chosen

    def _in_context(self, term: str, text: str) -> bool:
        if not self.contexts:
            return True
        context = self.contexts.get(normalize(term))
        return context is None or bool(context.find(text))

    def keys(self, text: str) -> list[str]:
        """Keys found in `text`, each once, in order of first appearance."""
        result: list[str] = []
        for match in self.find(text):
            if match.key not in result:
                result.append(match.key)
        return result


def split_terms(cell: str | None, sep: str = ";") -> list[str]:
    """Split a CSV cell of terms on `sep`, dropping blanks."""
    if not cell:
        return []
    return [t.strip() for t in cell.split(sep) if t.strip()]


def read_reference_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a reference CSV with surrounding blanks stripped (a missing file is an error)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]

"""Registered versus reported outcomes: each study's protocol outcomes matched to its results.

Pure: outcome rows in, outcome_changes rows out. Only studies that posted results are compared
(before results, nothing is "not reported" yet). The rule, measured on hand-matched pairs in
tests/data/labelled_outcome_changes.csv (docs/vocabularies-and-accuracy.md):

1. Every (registered, reported) pair of a study is scored by the word overlap of the two titles
   (Dice coefficient of their word sets, ignoring case and punctuation).
2. Pairs scoring at least MIN_TITLE_SIMILARITY are matched greedily, best first, each outcome at
   most once; a tie goes to the pair whose time frames share more words, then to the pair
   nearest in registry order (two measures titled alike are told apart by time frame and place).
3. A matched pair is `primary_demoted` (registered primary, reported secondary or other),
   `secondary_promoted` (the reverse), else `time_frame_changed` when the time frames differ in
   their words, else `matched`. An outcome left over is `registered_not_reported` or
   `reported_not_registered`.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import Any, cast

from pipelines.normalize.similarity import dice, words

MIN_TITLE_SIMILARITY = 0.5
"""Title word overlap below which a registered and a reported outcome are different outcomes."""

_KINDS = "PSOR"
"""The letters of an outcome id's place (`NCT..:S2`), in registry order."""
_REGISTERED = "registry_protocol"
REPORTED = "registry_results"
NOT_COMPARED = frozenset({"adverse_events"})
"""Kinds outside the comparison: the adverse-event table is results-only by design."""


Outcome = tuple[str, str, str, str, str | None, str | None]
"""An outcome as the comparison reads it: (study_id, source, outcome_kind, outcome_id, title,
time_frame), the order of `OUTCOME_COLUMNS`."""
OUTCOME_COLUMNS = ("study_id", "source", "outcome_kind", "outcome_id", "title", "time_frame")
CHANGE_COLUMNS = (
    "study_id",
    "registered_outcome_id",
    "reported_outcome_id",
    "status",
    "similarity",
    "registered_kind",
    "reported_kind",
)
"""The columns of a `change_rows` row, in its order."""
ChangeRow = tuple[str, str | None, str | None, str, float | None, str | None, str | None]
_SIDES = {_REGISTERED: 0, REPORTED: 1}
_Side = tuple[tuple[int, int], str, str, str | None, str | None]
"""An outcome on one side of a study: (registry order, outcome_id, kind, title, time_frame)."""


def outcome_changes(outcomes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """outcome_changes rows for every study with reported outcomes, in study order."""
    read = (cast(Outcome, tuple(outcome[c] for c in OUTCOME_COLUMNS)) for outcome in outcomes)
    return [dict(zip(CHANGE_COLUMNS, row, strict=True)) for row in change_rows(read)]


def change_rows(outcomes: Iterable[Outcome]) -> list[ChangeRow]:
    """`outcome_changes` over tuples in, tuples out (`CHANGE_COLUMNS`): the builder reads a
    registry's outcomes as DuckDB's row tuples, without a dict per outcome or per row."""
    by_study: dict[str, tuple[list[_Side], list[_Side]]] = {}
    for study_id, source, kind, outcome_id, title, time_frame in outcomes:
        side = _SIDES.get(source)
        if side is None or kind in NOT_COMPARED:
            continue
        sides = by_study.get(study_id)
        if sides is None:
            sides = by_study[study_id] = ([], [])
        sides[side].append((registry_order(outcome_id), outcome_id, kind, title, time_frame))
    texts = Texts()
    rows: list[ChangeRow] = []
    for study_id in sorted(by_study):
        registered, reported = by_study[study_id]
        if reported:
            registered.sort(key=itemgetter(0))  # stable: ties keep the order read
            reported.sort(key=itemgetter(0))
            rows += compare_study(study_id, registered, reported, texts)
    return rows


class Texts:
    """Each distinct text's word set as a small number, and each pair of word sets' Dice,
    computed once: titles and time frames repeat across a registry's studies ("Number of
    Participants With Adverse Events", "Baseline and Week 12"), and a study compares every
    pair of its outcomes. A pair's Dice is found by one integer key, not a tuple of sets."""

    def __init__(self) -> None:
        self._ids: dict[str | None, int] = {}
        self._by_words: dict[frozenset[str], int] = {}
        self._words: list[frozenset[str]] = []
        self._dice: dict[int, float] = {}

    def word_set(self, text: str | None) -> int:
        """The number of the text's word set (texts with the same words share one)."""
        found = self._ids.get(text)
        if found is None:
            found_words = words(text)
            found = self._by_words.setdefault(found_words, len(self._words))
            if found == len(self._words):
                self._words.append(found_words)
            self._ids[text] = found
        return found

    def candidates(
        self, registered: list[tuple[int, int]], reported: list[tuple[int, int]]
    ) -> list[tuple[float, float, int, int, int, float]]:
        """Every (registered, reported) pair of (title, time frame) word sets whose titles'
        Dice reaches MIN_TITLE_SIMILARITY, as (-title Dice, -time frame Dice, distance in
        registry order, i, j, title Dice): sorted, best first. One loop with the cache at
        hand: a study compares every pair, the registry tens of millions (bench/README.md)."""
        known, sets = self._dice, self._words
        found = []
        for i, (reg_title, reg_frame) in enumerate(registered):
            title_row, frame_row = reg_title << 32, reg_frame << 32
            for j, (rep_title, rep_frame) in enumerate(reported):
                title = known.get(title_row | rep_title)
                if title is None:
                    title = known[title_row | rep_title] = dice(sets[reg_title], sets[rep_title])
                if title >= MIN_TITLE_SIMILARITY:
                    frame = known.get(frame_row | rep_frame)
                    if frame is None:
                        frame = known[frame_row | rep_frame] = dice(
                            sets[reg_frame], sets[rep_frame]
                        )
                    found.append((-title, -frame, abs(i - j), i, j, title))
        return found


_KIND_RANK = {kind: rank for rank, kind in enumerate(_KINDS)}


def registry_order(outcome_id: str) -> tuple[int, int]:
    """Position in the registry: primary, secondary, other protocol outcomes, then results
    measures, each by number (`NCT..:S2` before `NCT..:S10`)."""
    _, colon, place = outcome_id.rpartition(":")
    rank = _KIND_RANK.get(place[:1])
    number = place[1:]
    if not colon or rank is None or not number.isdecimal():
        raise ValueError(f"{outcome_id!r} is not a registry outcome id")
    return rank, int(number)


def compare_study(
    study_id: str, registered: list[_Side], reported: list[_Side], texts: Texts
) -> list[ChangeRow]:
    """Match one study's registered outcomes to its reported ones (module docstring's rule)."""
    word_set = texts.word_set
    reg_words = [(word_set(r[3]), word_set(r[4])) for r in registered]
    rep_words = [(word_set(r[3]), word_set(r[4])) for r in reported]
    used_reg: set[int] = set()
    used_rep: set[int] = set()
    rows: list[ChangeRow] = []
    for *_, i, j, title in sorted(texts.candidates(reg_words, rep_words)):
        if i in used_reg or j in used_rep:
            continue
        used_reg.add(i)
        used_rep.add(j)
        before, after = registered[i], reported[j]
        status = change_status(before[2], after[2], reg_words[i][1] == rep_words[j][1])
        rows.append((study_id, before[1], after[1], status, round(title, 3), before[2], after[2]))
    for i, r in enumerate(registered):
        if i not in used_reg:
            rows.append((study_id, r[1], None, _NOT_REPORTED, None, r[2], None))
    for j, r in enumerate(reported):
        if j not in used_rep:
            rows.append((study_id, None, r[1], _NOT_REGISTERED, None, None, r[2]))
    return rows


_NOT_REPORTED = "registered_not_reported"
_NOT_REGISTERED = "reported_not_registered"


def change_status(before: str, after: str, same_frame: bool) -> str:
    """What became of a matched pair: `before` and `after` are the registered and the reported
    outcome's kinds, `same_frame` whether their time frames have the same words (an outcome
    left unmatched is `registered_not_reported` or `reported_not_registered`)."""
    if before == "primary" and after != "primary":
        return "primary_demoted"
    if before != "primary" and after == "primary":
        return "secondary_promoted"
    if not same_frame:
        return "time_frame_changed"
    return "matched"

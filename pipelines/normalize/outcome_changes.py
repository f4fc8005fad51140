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
from typing import Any

from pipelines.normalize.similarity import dice, words

MIN_TITLE_SIMILARITY = 0.5
"""Title word overlap below which a registered and a reported outcome are different outcomes."""

_KINDS = "PSOR"
"""The letters of an outcome id's place (`NCT..:S2`), in registry order."""
_REGISTERED = "registry_protocol"
REPORTED = "registry_results"
NOT_COMPARED = frozenset({"adverse_events"})
"""Kinds outside the comparison: the adverse-event table is results-only by design."""


def outcome_changes(outcomes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """outcome_changes rows for every study with reported outcomes, in study order."""
    by_study: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for outcome in outcomes:
        if outcome["outcome_kind"] in NOT_COMPARED:
            continue
        sides = by_study.setdefault(outcome["study_id"], {_REGISTERED: [], REPORTED: []})
        if outcome["source"] in sides:
            sides[outcome["source"]].append(outcome)
    texts = Texts()
    rows: list[dict[str, Any]] = []
    for study_id in sorted(by_study):
        registered, reported = (
            sorted(by_study[study_id][side], key=registry_order) for side in (_REGISTERED, REPORTED)
        )
        if reported:
            rows += compare_study(study_id, registered, reported, texts)
    return rows


class Texts:
    """Each distinct text's word set, and each pair of word sets' Dice, computed once: titles
    and time frames repeat across a registry's studies ("Number of Participants With Adverse
    Events", "Baseline and Week 12"), and a study compares every pair of its outcomes."""

    def __init__(self) -> None:
        self._words: dict[str | None, frozenset[str]] = {}
        self._dice: dict[tuple[frozenset[str], frozenset[str]], float] = {}

    def words(self, text: str | None) -> frozenset[str]:
        found = self._words.get(text)
        if found is None:
            found = self._words[text] = words(text)
        return found

    def candidates(
        self,
        registered: list[tuple[frozenset[str], frozenset[str]]],
        reported: list[tuple[frozenset[str], frozenset[str]]],
    ) -> list[tuple[float, float, int, int, int, float]]:
        """Every (registered, reported) pair of (title, time frame) word sets whose titles'
        Dice reaches MIN_TITLE_SIMILARITY, as (-title Dice, -time frame Dice, distance in
        registry order, i, j, title Dice): sorted, best first. One loop with the cache at
        hand: a study compares every pair, the registry tens of millions (bench/README.md)."""
        known = self._dice
        found = []
        for i, (reg_title, reg_frame) in enumerate(registered):
            for j, (rep_title, rep_frame) in enumerate(reported):
                title = known.get((reg_title, rep_title))
                if title is None:
                    title = known[reg_title, rep_title] = dice(reg_title, rep_title)
                if title >= MIN_TITLE_SIMILARITY:
                    frame = known.get((reg_frame, rep_frame))
                    if frame is None:
                        frame = known[reg_frame, rep_frame] = dice(reg_frame, rep_frame)
                    found.append((-title, -frame, abs(i - j), i, j, title))
        return found


def registry_order(outcome: dict[str, Any]) -> tuple[int, int]:
    """Position in the registry: primary, secondary, other protocol outcomes, then results
    measures, each by number (`NCT..:S2` before `NCT..:S10`)."""
    outcome_id = outcome["outcome_id"]
    _, colon, place = outcome_id.rpartition(":")
    if not colon or place[:1] not in _KINDS or not place[1:].isdecimal():
        raise ValueError(f"{outcome_id!r} is not a registry outcome id")
    return _KINDS.index(place[0]), int(place[1:])


def compare_study(
    study_id: str,
    registered: list[dict[str, Any]],
    reported: list[dict[str, Any]],
    texts: Texts,
) -> list[dict[str, Any]]:
    """Match one study's registered outcomes to its reported ones (module docstring's rule)."""
    reg_words = [(texts.words(r["title"]), texts.words(r["time_frame"])) for r in registered]
    rep_words = [(texts.words(r["title"]), texts.words(r["time_frame"])) for r in reported]
    used_reg: set[int] = set()
    used_rep: set[int] = set()
    rows = []
    for *_, i, j, title in sorted(texts.candidates(reg_words, rep_words)):
        if i in used_reg or j in used_rep:
            continue
        used_reg.add(i)
        used_rep.add(j)
        same_frame = reg_words[i][1] == rep_words[j][1]
        rows.append(_row(study_id, registered[i], reported[j], title, same_frame))
    rows += [_row(study_id, r, None) for i, r in enumerate(registered) if i not in used_reg]
    rows += [_row(study_id, None, r) for j, r in enumerate(reported) if j not in used_rep]
    return rows


def change_status(
    registered: dict[str, Any] | None, reported: dict[str, Any] | None, same_frame: bool
) -> str:
    """What became of a registered outcome in the results (or where a reported one came from);
    `same_frame`: whether the two time frames have the same words."""
    if reported is None:
        return "registered_not_reported"
    if registered is None:
        return "reported_not_registered"
    before, after = registered["outcome_kind"], reported["outcome_kind"]
    if before == "primary" and after != "primary":
        return "primary_demoted"
    if before != "primary" and after == "primary":
        return "secondary_promoted"
    if not same_frame:
        return "time_frame_changed"
    return "matched"


def _row(
    study_id: str,
    registered: dict[str, Any] | None,
    reported: dict[str, Any] | None,
    similarity: float | None = None,
    same_frame: bool = True,
) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "registered_outcome_id": registered["outcome_id"] if registered else None,
        "reported_outcome_id": reported["outcome_id"] if reported else None,
        "status": change_status(registered, reported, same_frame),
        "similarity": None if similarity is None else round(similarity, 3),
        "registered_kind": registered["outcome_kind"] if registered else None,
        "reported_kind": reported["outcome_kind"] if reported else None,
    }

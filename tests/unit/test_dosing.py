"""Dose and duration parsing, measured on hand-labelled real registry strings.

tests/data/labelled_dose_duration.csv holds time frames and dose strings exactly as real records
print them, each with its record id and where it was read (`source`: a file of
../shared/samples/ctgov or data/snapshot, or the public registry page of
tests/data/labelled_outcomes.csv); `days` (time frames: latest time point in days, a month being
365.25 / 12 days; dose rows: the treatment course), `amount`, `unit`, `frequency` were written by
hand. Run with `pytest -s` to see the figures.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from pipelines.normalize.dosing import TERMS_FILE, Dose, agreed_dose, load_dosing_terms
from pipelines.paths import PROJECT_ROOT, REFERENCE_DIR

LABELLED = Path(__file__).resolve().parents[1] / "data" / "labelled_dose_duration.csv"
TERMS = load_dosing_terms(REFERENCE_DIR)
DOCS = PROJECT_ROOT / "docs" / "vocabularies-and-accuracy.md"
MIN_DURATION_EXACT = 0.9
MIN_TIME_FRAMES = 30
TOLERANCE_DAYS = 0.001
"""Durations are rounded to a thousandth of a day; a label of 91.3125 days (three months) and
a parse of 91.312 agree."""


def _rows(kind: str) -> list[dict[str, str]]:
    with LABELLED.open(newline="", encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if r["kind"] == kind]


def _same_days(parsed: float | None, label: str) -> bool:
    if not label:
        return parsed is None
    return parsed is not None and abs(parsed - float(label)) <= TOLERANCE_DAYS


def test_labelled_rows_say_which_record_and_where() -> None:
    rows = _rows("time_frame") + _rows("dose")
    assert len(_rows("time_frame")) >= MIN_TIME_FRAMES
    for row in rows:
        assert row["record"] and row["source"], row
        assert row["source"].startswith(("http", "../shared/samples/", "data/snapshot/")), row


def test_time_frame_durations_are_exact_on_nine_in_ten_real_strings() -> None:
    rows = _rows("time_frame")
    misses = [
        (r["text"], r["days"], TERMS.duration_days(r["text"]))
        for r in rows
        if not _same_days(TERMS.duration_days(r["text"]), r["days"])
    ]
    exact = 1 - len(misses) / len(rows)
    print(f"time frames: {len(rows) - len(misses)}/{len(rows)} exact ({exact:.3f})")
    assert exact >= MIN_DURATION_EXACT, misses
    stated = f"{len(rows) - len(misses)} of {len(rows)} time frames exact"
    assert stated in " ".join(DOCS.read_text(encoding="utf-8").split()), stated


def test_dose_strings_parse_to_their_labels() -> None:
    rows = _rows("dose")
    wrong = []
    for row in rows:
        dose = TERMS.parse_dose(row["text"])
        got = (
            (dose.amount, dose.unit or "", dose.frequency or "") if dose else (None, "", ""),
            TERMS.course_days(row["text"]),
        )
        wanted = (
            (float(row["amount"]) if row["amount"] else None, row["unit"], row["frequency"]),
            float(row["days"]) if row["days"] else None,
        )
        if got != wanted:
            wrong.append((row["text"], got, wanted))
    print(f"dose strings: {len(rows) - len(wrong)}/{len(rows)} exact")
    assert not wrong


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Day 7", 7.0),
        ("12 weeks", 84.0),
        ("6 months", 182.625),
        ("baseline to week 24", 168.0),
        ("Through study completion, an average of 1 year", 365.25),
        ("Pre-dose", 0.0),
        ("Through study completion", None),
        ("", None),
        (None, None),
    ],
)
def test_duration_of_the_issue_examples(text: str | None, days: float | None) -> None:
    assert TERMS.duration_days(text) == days


def test_long_term_is_at_or_above_the_reference_threshold() -> None:
    assert TERMS.long_term_days == 182.625
    assert TERMS.is_long_term(TERMS.duration_days("6 months")) is True
    assert TERMS.is_long_term(TERMS.duration_days("Weeks 3-24")) is False
    assert TERMS.is_long_term(None) is None


def test_dose_text_runs_from_the_amount_to_a_following_frequency() -> None:
    assert TERMS.parse_dose("up to 10 capsules per day") == Dose(
        10.0, "capsule", "daily", "up to 10 capsules per day"
    )
    assert TERMS.parse_dose("Day 7 visit") is None  # a day is a time, not a frequency


def _reference_copy(tmp_path: Path, extra: str) -> Path:
    shutil.copy(REFERENCE_DIR / TERMS_FILE, tmp_path / TERMS_FILE)
    with (tmp_path / TERMS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(extra)
    return tmp_path


def test_an_unknown_kind_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        load_dosing_terms(_reference_copy(tmp_path, "fortnight,x,14,fortnight,curated\n"))


def test_a_threshold_its_own_words_do_not_measure_is_an_error(tmp_path: Path) -> None:
    path = _reference_copy(tmp_path, "")
    text = (
        (path / TERMS_FILE)
        .read_text(encoding="utf-8")
        .replace("threshold,long_term,182.625,6 months", "threshold,long_term,365,6 months")
    )
    (path / TERMS_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="long_term"):
        load_dosing_terms(path)


def test_agreed_dose_is_the_one_dose_all_texts_state() -> None:
    same = ["2 mcg ID93 and 5 mcg GLA-SE per injection", "Two-vial: 2 mcg ID93 and 5 mcg GLA-SE"]
    assert agreed_dose(TERMS, same) == Dose(2.0, "mcg", None, "2 mcg")
    assert agreed_dose(TERMS, [None, "kratom 2 g daily", "no dose here"]) == Dose(
        2.0, "g", "daily", "2 g daily"
    )
    assert agreed_dose(TERMS, ["1 g kratom", "4 g kratom"]) is None
    assert agreed_dose(TERMS, ["2 g once", "2 g daily"]) is None
    assert agreed_dose(TERMS, ["Single-vial: 2 mcg", "Two-vial: 2 mcg"]) == Dose(
        2.0, "mcg", None, "2 mcg"
    )
    assert agreed_dose(TERMS, []) is None


@pytest.mark.parametrize(
    ("text", "frequency"),
    [
        ("[lyophilized, single-vial] given as two IM injections", None),  # NCT03722472
        ("a single-blind, single-site study of 2 g kratom", None),
        ("2 g bi-weekly", None),
        ("kratom tea (single low dose)", "once"),  # NCT05846451
        ("single-dose 2 g", "once"),
        ("Once-daily 2 g", "daily"),
    ],
)
def test_a_frequency_word_hyphened_to_another_is_a_modifier_not_a_frequency(
    text: str, frequency: str | None
) -> None:
    dose = TERMS.parse_dose(text)
    assert (dose.frequency if dose else None) == frequency

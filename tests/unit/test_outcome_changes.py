"""Registered versus reported outcomes: the matching rule on hand-written and real records."""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import tables
from pipelines.normalize import outcome_changes as outcome_changes_module
from pipelines.normalize.outcome_changes import (
    CHANGE_COLUMNS,
    MIN_TITLE_SIMILARITY,
    outcome_changes,
)
from pipelines.normalize.similarity import dice, words
from pipelines.paths import REFERENCE_DIR

LABELLED = Path(__file__).resolve().parents[1] / "data" / "labelled_outcome_changes.csv"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "vocabularies-and-accuracy.md"
NCT = "NCT01234567"
_LETTER = {"primary": "P", "secondary": "S", "other": "O"}


def outcome(
    outcome_id: str, kind: str, title: str, time_frame: str | None = "Week 12"
) -> dict[str, Any]:
    source = (
        "registry_results" if ":R" in outcome_id or ":AE" in outcome_id else "registry_protocol"
    )
    study_id = outcome_id.split(":")[0]
    return {
        "outcome_id": outcome_id,
        "study_id": study_id,
        "outcome_kind": kind,
        "title": title,
        "time_frame": time_frame,
        "source": source,
    }


def pairs(rows: list[dict[str, Any]]) -> set[tuple[str | None, str | None, str]]:
    return {(r["registered_outcome_id"], r["reported_outcome_id"], r["status"]) for r in rows}


def test_same_title_and_time_frame_is_matched() -> None:
    rows = outcome_changes(
        [
            outcome(f"{NCT}:P1", "primary", "COWS score"),
            outcome(f"{NCT}:R1", "primary", "COWS Score"),
        ]
    )
    assert pairs(rows) == {(f"{NCT}:P1", f"{NCT}:R1", "matched")}
    assert rows[0]["similarity"] == 1.0


def test_primary_reported_as_secondary_is_demoted_and_the_reverse_promoted() -> None:
    rows = outcome_changes(
        [
            outcome(f"{NCT}:P1", "primary", "COWS score"),
            outcome(f"{NCT}:S1", "secondary", "Craving visual analogue scale"),
            outcome(f"{NCT}:R1", "primary", "Craving visual analogue scale"),
            outcome(f"{NCT}:R2", "secondary", "COWS score"),
        ]
    )
    assert pairs(rows) == {
        (f"{NCT}:P1", f"{NCT}:R2", "primary_demoted"),
        (f"{NCT}:S1", f"{NCT}:R1", "secondary_promoted"),
    }


def test_other_time_frame_words_are_a_time_frame_change() -> None:
    rows = outcome_changes(
        [
            outcome(f"{NCT}:P1", "primary", "COWS score", "Day 7"),
            outcome(f"{NCT}:R1", "primary", "COWS score", "Day 14"),
        ]
    )
    assert pairs(rows) == {(f"{NCT}:P1", f"{NCT}:R1", "time_frame_changed")}


def test_punctuation_only_time_frame_difference_is_no_change() -> None:
    rows = outcome_changes(
        [
            outcome(f"{NCT}:S1", "secondary", "T Cell Response", "Days 0, 7 and 224"),
            outcome(f"{NCT}:R1", "secondary", "T Cell Response", "Days 0, 7 and 224."),
        ]
    )
    assert pairs(rows) == {(f"{NCT}:S1", f"{NCT}:R1", "matched")}


def test_leftovers_on_either_side_are_not_reported_or_not_registered() -> None:
    rows = outcome_changes(
        [
            outcome(f"{NCT}:P1", "primary", "COWS score"),
            outcome(f"{NCT}:S1", "secondary", "Pittsburgh Sleep Quality Index"),
            outcome(f"{NCT}:R1", "primary", "COWS score"),
            outcome(f"{NCT}:R2", "secondary", "Systolic blood pressure"),
        ]
    )
    assert pairs(rows) == {
        (f"{NCT}:P1", f"{NCT}:R1", "matched"),
        (f"{NCT}:S1", None, "registered_not_reported"),
        (None, f"{NCT}:R2", "reported_not_registered"),
    }
    assert [r["similarity"] for r in rows if r["status"] != "matched"] == [None, None]


def test_alike_titles_are_told_apart_by_time_frame_then_by_place() -> None:
    rows = outcome_changes(
        [
            outcome(f"{NCT}:S1", "secondary", "Plasma concentration at Week 1", "Week 1"),
            outcome(f"{NCT}:S2", "secondary", "Plasma concentration at Week 12", "Week 12"),
            outcome(f"{NCT}:S3", "secondary", "Cytokine response", "Days 0 and 14"),
            outcome(f"{NCT}:S4", "secondary", "Cytokine response", "Days 0 and 14"),
            outcome(f"{NCT}:R1", "secondary", "Plasma concentration at Week 12", "Week 12"),
            outcome(f"{NCT}:R2", "secondary", "Plasma concentration at Week 1", "Week 1"),
            outcome(f"{NCT}:R3", "secondary", "Cytokine response", "Days 0 and 14"),
            outcome(f"{NCT}:R4", "secondary", "Cytokine response", "Days 0 and 14"),
        ]
    )
    assert pairs(rows) == {
        (f"{NCT}:S1", f"{NCT}:R2", "matched"),
        (f"{NCT}:S2", f"{NCT}:R1", "matched"),
        (f"{NCT}:S3", f"{NCT}:R3", "matched"),
        (f"{NCT}:S4", f"{NCT}:R4", "matched"),
    }


def test_registry_order_is_numeric_not_alphabetical() -> None:
    registered = [
        outcome(f"{NCT}:S{n}", "secondary", "Cytokine response", "Days 0 and 14")
        for n in range(1, 12)
    ]
    reported = [
        outcome(f"{NCT}:R{n}", "secondary", "Cytokine response", "Days 0 and 14")
        for n in range(1, 12)
    ]
    rows = outcome_changes(reversed(registered + reported))
    assert pairs(rows) == {(f"{NCT}:S{n}", f"{NCT}:R{n}", "matched") for n in range(1, 12)}


def test_study_without_posted_results_and_adverse_event_table_are_not_compared() -> None:
    other = "NCT07654321"
    rows = outcome_changes(
        [
            outcome(f"{other}:P1", "primary", "COWS score"),
            outcome(f"{NCT}:P1", "primary", "COWS score"),
            outcome(f"{NCT}:R1", "primary", "COWS score"),
            outcome(f"{NCT}:AE1", "adverse_events", "Adverse events"),
        ]
    )
    assert pairs(rows) == {(f"{NCT}:P1", f"{NCT}:R1", "matched")}


# --- measured on real registrations -----------------------------------------------------------


def labelled() -> dict[str, list[dict[str, str]]]:
    """Hand-matched pairs by study, in registry order (tests/data/labelled_outcome_changes.csv)."""
    studies: dict[str, list[dict[str, str]]] = defaultdict(list)
    with LABELLED.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            studies[row["study_id"]].append(row)
    return studies


def registry_outcomes(
    study_id: str, rows: list[dict[str, str]], reported_order: list[int]
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    """The study's outcomes as the parser numbers them, and each label's (P.., R..) pair.

    Results measures are numbered in `reported_order` (a permutation of the labelled rows), so
    the rule can be measured on results posted in another order than the protocol's.
    """
    counters: dict[str, int] = defaultdict(int)
    outcomes, expected = [], {}
    reported_ids = {}
    for number, index in enumerate(reported_order, start=1):
        row = rows[index]
        reported_ids[index] = f"{study_id}:R{number}"
        outcomes.append(
            outcome(
                reported_ids[index],
                row["reported_kind"],
                row["reported_title"],
                row["reported_time_frame"],
            )
        )
    for index, row in enumerate(rows):
        letter = _LETTER[row["registered_kind"]]
        counters[letter] += 1
        registered_id = f"{study_id}:{letter}{counters[letter]}"
        outcomes.append(
            outcome(
                registered_id,
                row["registered_kind"],
                row["registered_title"],
                row["registered_time_frame"],
            )
        )
        expected[(registered_id, reported_ids[index])] = row["expected_status"]
    return outcomes, expected


@dataclass(frozen=True)
class Measured:
    """The rule against the hand-matched pairs of every labelled study."""

    pairs: int
    """Hand-matched pairs (the only pairs that should match)."""
    must_not_match: int
    """Every other registered x reported pair of the same study."""
    true_matches: int
    false_matches: int
    """Pairs the rule matched that are not hand-matched."""
    right_status: int
    """Hand-matched pairs the rule matched with the labelled status."""

    @property
    def precision(self) -> float:
        return self.true_matches / ((self.true_matches + self.false_matches) or 1)

    @property
    def recall(self) -> float:
        return self.true_matches / self.pairs


def matched_pairs(outcomes: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(registered, reported) id → status of every pair the rule matched."""
    return {
        (r["registered_outcome_id"], r["reported_outcome_id"]): r["status"]
        for r in outcome_changes(outcomes)
        if r["registered_outcome_id"] and r["reported_outcome_id"]
    }


def measure(reverse_results: bool) -> Measured:
    """Precision and recall of the matcher at its threshold: a match is true when it is a
    hand-matched pair, false otherwise (the study's other reported outcomes must not match)."""
    pairs = others = true = false = right = 0
    for study_id, rows in labelled().items():
        order = list(range(len(rows)))
        outcomes, expected = registry_outcomes(
            study_id, rows, order[::-1] if reverse_results else order
        )
        found = matched_pairs(outcomes)
        pairs += len(expected)
        others += len(rows) * len(rows) - len(expected)
        true += len(found.keys() & expected.keys())
        false += len(found.keys() - expected.keys())
        right += sum(found.get(pair) == status for pair, status in expected.items())
    return Measured(pairs, others, true, false, right)


def must_not_match_above_threshold() -> tuple[int, int]:
    """(must-not-match pairs whose titles alone reach the threshold, must-not-match pairs):
    the false matches title overlap alone would make, which the one-to-one assignment undoes."""
    above = total = 0
    for rows in labelled().values():
        for i, registered in enumerate(rows):
            for j, reported in enumerate(rows):
                if i != j:
                    total += 1
                    score = dice(
                        words(registered["registered_title"]), words(reported["reported_title"])
                    )
                    above += score >= MIN_TITLE_SIMILARITY
    return above, total


def partner_withheld() -> tuple[int, int]:
    """(registered outcomes paired with another outcome, runs): each hand pair in turn has its
    reported side withheld, so the right answer is registered_not_reported. The runs are
    compared at once, each as a study of its own (`<study_id>/<run>`)."""
    outcomes: list[dict[str, Any]] = []
    withheld: list[str] = []
    for study_id, rows in labelled().items():
        study_outcomes, expected = registry_outcomes(study_id, rows, list(range(len(rows))))
        for registered, reported in expected:
            run = f"{study_id}/{len(withheld)}"
            outcomes += [
                {**o, "study_id": run, "outcome_id": run + o["outcome_id"][len(study_id) :]}
                for o in study_outcomes
                if o["outcome_id"] != reported
            ]
            withheld.append(run + registered[len(study_id) :])
    paired = {registered for registered, _ in matched_pairs(outcomes)}
    return sum(registered in paired for registered in withheld), len(withheld)


def reworded() -> int:
    """Hand-matched pairs whose registered and reported titles are not the same string."""
    return sum(
        r["registered_title"] != r["reported_title"] for rows in labelled().values() for r in rows
    )


def test_labelled_pairs_come_from_real_registrations_with_their_pages() -> None:
    studies = labelled()
    assert len(studies) >= 6
    for study_id, rows in studies.items():
        assert all(r["page"] == f"https://clinicaltrials.gov/study/{study_id}" for r in rows)
        assert all(r["source"] for r in rows)


@pytest.mark.parametrize("reverse_results", [False, True], ids=["registry_order", "reversed"])
def test_matcher_precision_and_recall_on_the_hand_matched_pairs(reverse_results: bool) -> None:
    measured = measure(reverse_results)
    assert measured.pairs >= 100 and measured.must_not_match >= 1000
    assert measured.precision >= 0.95 and measured.recall >= 0.95
    assert measured.right_status >= 0.95 * measured.pairs
    label = "results reversed" if reverse_results else "results in registry order"
    line = (
        f"| {label} | {measured.pairs} | {measured.must_not_match} | {measured.false_matches} "
        f"| {measured.precision:.3f} | {measured.recall:.3f} | {measured.right_status} |"
    )
    assert line in DOCS.read_text(encoding="utf-8")


def test_title_overlap_alone_would_match_outcomes_it_must_not() -> None:
    """The threshold is not enough on its own: the assignment is what keeps precision."""
    above, total = must_not_match_above_threshold()
    assert above > 0
    assert f"{above} of the {total} must-not-match pairs" in DOCS.read_text(encoding="utf-8")


def test_a_withheld_partner_is_mostly_left_unreported_not_paired_with_another() -> None:
    false, runs = partner_withheld()
    assert false <= 0.05 * runs
    assert f"partner withheld: {false} false matches in {runs} runs" in DOCS.read_text(
        encoding="utf-8"
    )


def test_the_docs_say_how_many_hand_pairs_are_worded_differently() -> None:
    assert f"{reworded()} of the {measure(False).pairs} hand pairs" in DOCS.read_text(
        encoding="utf-8"
    )


def test_the_readme_gives_the_measured_figures() -> None:
    measured = measure(False)
    readme = " ".join((DOCS.parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert (
        f"on {measured.pairs} hand-matched real pairs against {measured.must_not_match} pairs "
        f"that must not match, precision {measured.precision:.3f} and recall "
        f"{measured.recall:.3f}, but only {reworded()} of the {measured.pairs} pairs"
    ) in readme


def greedy(outcomes: list[dict[str, Any]]) -> list[tuple[str, str | None, str | None]]:
    """The module docstring's rule walked pair by pair: every study's pairs scored, sorted
    best first, each taken when both its outcomes are free (the oracle for the SQL rounds)."""
    by_study: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = defaultdict(
        lambda: ([], [])
    )
    for o in outcomes:
        by_study[o["study_id"]][o["source"] == "registry_results"].append(o)
    found: list[tuple[str, str | None, str | None]] = []
    for study_id in sorted(by_study):
        registered, reported = (
            sorted(side, key=lambda o: ("PSOR".index(o["outcome_id"][-2]), o["outcome_id"]))
            for side in by_study[study_id]
        )
        if not reported:
            continue
        scored = []
        for i, r in enumerate(registered):
            for j, p in enumerate(reported):
                title = dice(words(r["title"]), words(p["title"]))
                if title >= MIN_TITLE_SIMILARITY:
                    frame = dice(words(r["time_frame"]), words(p["time_frame"]))
                    scored.append((-title, -frame, abs(i - j), i, j))
        used_i: set[int] = set()
        used_j: set[int] = set()
        for *_, i, j in sorted(scored):
            if i not in used_i and j not in used_j:
                used_i.add(i)
                used_j.add(j)
                found.append((study_id, registered[i]["outcome_id"], reported[j]["outcome_id"]))
        found += [
            (study_id, r["outcome_id"], None) for k, r in enumerate(registered) if k not in used_i
        ]
        found += [
            (study_id, None, p["outcome_id"]) for k, p in enumerate(reported) if k not in used_j
        ]
    return found


@pytest.mark.parametrize("seed", range(4))
def test_the_rounds_take_the_pairs_the_greedy_walk_takes(seed: int) -> None:
    """Studies of up to nine outcomes a side (single-digit numbers, so the oracle may sort ids
    as text), titles and time frames drawn from a few words so that ties and chains of
    near-equal pairs abound: the set-wise rounds give the greedy walk's pairs and leftovers,
    in its order."""
    rng = random.Random(seed)
    vocabulary = ["pain", "score", "week", "sleep", "craving", "cows", "opioid", "use"]
    frames = ["Week 1", "Week 12", "Day 7", None, "Baseline and week 12"]
    outcomes = []
    for n in range(150):
        study = f"NCT{n:08d}"
        for letter, count in (
            ("P", rng.randint(0, 4)),
            ("S", rng.randint(0, 5)),
            ("R", rng.randint(0, 9)),
        ):
            for k in range(1, count + 1):
                kind = "primary" if letter == "P" else rng.choice(["primary", "secondary"])
                title = " ".join(rng.sample(vocabulary, rng.randint(0, 3))) or None
                outcomes.append(outcome(f"{study}:{letter}{k}", kind, title, rng.choice(frames)))
    rng.shuffle(outcomes)
    rows = outcome_changes(outcomes)
    assert [
        (r["study_id"], r["registered_outcome_id"], r["reported_outcome_id"]) for r in rows
    ] == greedy(outcomes)
    matched = [r for r in rows if r["registered_outcome_id"] and r["reported_outcome_id"]]
    assert len(matched) > 100


def test_similarity_is_the_title_overlap_rounded_half_to_even() -> None:
    """13 of 16 words a side: Dice 0.8125 exactly, rounded to 0.812 as Python's round does."""
    shared = [f"w{k}" for k in range(13)]
    rows = outcome_changes(
        [
            outcome(f"{NCT}:P1", "primary", " ".join([*shared, "a1", "a2", "a3"])),
            outcome(f"{NCT}:R1", "primary", " ".join([*shared, "b1", "b2", "b3"])),
        ]
    )
    assert rows[0]["similarity"] == 0.812 == round(26 / 32, 3)


def test_an_outcome_id_out_of_registry_order_is_an_error() -> None:
    with pytest.raises(ValueError, match="NCT01234567:X1"):
        outcome_changes(
            [
                outcome(f"{NCT}:P1", "primary", "COWS score"),
                {**outcome(f"{NCT}:R1", "primary", "COWS score"), "outcome_id": f"{NCT}:X1"},
            ]
        )


def test_the_builder_reads_the_curated_outcomes_and_numbers_its_rows() -> None:
    """The builder gives the rule's rows for the warehouse's outcomes, `_seq` counting them."""
    studies = [f"NCT0000000{n}" for n in range(7)]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA curated")
    con.execute(
        "CREATE TABLE curated.outcomes (outcome_id VARCHAR, study_id VARCHAR, "
        "outcome_kind VARCHAR, title VARCHAR, time_frame VARCHAR, source VARCHAR)"
    )
    written = []
    for n, study in enumerate(reversed(studies)):
        for row in (
            outcome(f"{study}:P1", "primary", f"Pain score at week {n}"),
            outcome(f"{study}:R1", "primary" if n % 2 else "secondary", f"Pain score at week {n}"),
            outcome(f"{study}:R2", "secondary", "Sleep quality", "Month 3"),
        ):
            written.append(row)
            con.execute(
                "INSERT INTO curated.outcomes VALUES ($1, $2, $3, $4, $5, $6)", [*row.values()]
            )
    built = tables.BUILDERS["outcome_changes"].build(con, REFERENCE_DIR)
    assert built.queries
    found = con.execute(f"SELECT * FROM ({built.queries[0]}) ORDER BY _seq").fetchall()
    assert [row[:7] for row in found] == [tuple(r.values()) for r in outcome_changes(written)]
    assert [row[-3:] for row in found] == [("derived", None, n) for n in range(len(found))]
    assert {row[0] for row in found} == set(studies)


def test_the_rows_do_not_depend_on_where_the_batches_of_studies_are_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Studies are matched STUDY_BATCH at a time: the rows, their order and their `_seq` are
    those of one batch."""
    outcomes = [
        outcome(f"NCT0000000{n}:{place}", kind, title)
        for n in range(7)
        for place, kind, title in (
            ("P1", "primary", f"Pain score at week {n}"),
            ("R1", "primary" if n % 2 else "secondary", f"Pain score at week {n}"),
            ("R2", "secondary", "Sleep quality"),
        )
    ]
    whole = outcome_changes(outcomes)
    monkeypatch.setattr(outcome_changes_module, "STUDY_BATCH", 2)
    assert outcome_changes(outcomes) == whole
    assert len(whole) == 14


def test_no_study_with_results_gives_no_rows_in_the_table_s_types() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE outcomes AS SELECT 'NCT01234567' AS study_id, 'registry_protocol' AS "
        "source, 'primary' AS outcome_kind, 'NCT01234567:P1' AS outcome_id, 'COWS' AS title, "
        "NULL::VARCHAR AS time_frame"
    )
    outcome_changes_module.create_outcome_changes(con, "SELECT * FROM outcomes", "changes")
    described = con.execute("DESCRIBE changes").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [
        *((c, "DOUBLE" if c == "similarity" else "VARCHAR") for c in CHANGE_COLUMNS),
        ("_seq", "BIGINT"),
    ]
    assert con.execute("SELECT count(*) FROM changes").fetchone() == (0,)

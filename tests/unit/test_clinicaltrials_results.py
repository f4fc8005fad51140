"""A v2 study's results -> arms, result groups, adverse events, baseline, flow, analyses."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.sources import clinicaltrials_results as cr
from pipelines.sources.base import RecordError

NCT = "NCT01234567"
ARMS = ["Kratom tea 2 g", "Placebo tea"]


def study(results: dict[str, Any], arms: dict[str, Any] | None = None) -> dict[str, Any]:
    protocol: dict[str, Any] = {"identificationModule": {"nctId": NCT}}
    if arms is not None:
        protocol["armsInterventionsModule"] = arms
    return {"protocolSection": protocol, "resultsSection": results}


def two_groups(prefix: str) -> list[dict[str, str]]:
    return [
        {"id": f"{prefix}000", "title": "Kratom Tea, 2 g"},
        {"id": f"{prefix}001", "title": "Placebo"},
    ]


def test_group_title_equal_to_arm_label_ignoring_case_and_punctuation() -> None:
    assert cr.tie_group("KRATOM tea (2 g)", ARMS) == ("Kratom tea 2 g", "title", 1.0)


def test_total_column_has_no_arm() -> None:
    assert cr.tie_group("Total", ARMS) == (None, "total", None)


def test_similar_title_ties_to_the_clearly_closest_arm() -> None:
    arm, tie, similarity = cr.tie_group("Placebo tea group", ARMS)
    assert (arm, tie) == ("Placebo tea", "similar_title")
    assert similarity == pytest.approx(0.8)


def test_two_equally_close_arms_tie_to_neither() -> None:
    arm, tie, similarity = cr.tie_group("Tea", ["Green tea", "Black tea"])
    assert (arm, tie) == (None, "none")
    assert similarity == pytest.approx(2 / 3, abs=1e-3)


def test_single_arm_study_ties_its_only_group() -> None:
    assert cr.tie_group("All participants on kratom", ["Open label"])[:2] == (
        "Open label",
        "single_arm",
    )


def test_no_arms_registered_ties_nothing() -> None:
    assert cr.tie_group("Placebo", []) == (None, "none", None)


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("<0.001", (0.001, "<")),
        ("< .05", (0.05, "<")),
        ("≤0.05", (0.05, "<=")),
        (">0.99", (0.99, ">")),
        ("0.03", (0.03, "=")),
        ("1e-4", (0.0001, "=")),
        ("NS", (None, None)),
        ("1.5", (None, None)),
        (None, (None, None)),
    ],
)
def test_p_value_as_printed_gives_number_and_relation(
    printed: str | None, expected: tuple[float | None, str | None]
) -> None:
    assert cr.parse_p_value(printed) == expected


def test_arm_interventions_from_both_sides_with_type_prefix_dropped() -> None:
    arms = {
        "armGroups": [
            {"label": "Kratom", "type": "EXPERIMENTAL", "interventionNames": ["Drug: Kratom tea"]},
            {"label": "Control", "type": "PLACEBO_COMPARATOR", "interventionNames": ["Other: X"]},
        ],
        "interventions": [
            {"type": "DRUG", "name": "Kratom tea", "armGroupLabels": ["Kratom"]},
            {"type": "OTHER", "name": "Diary", "armGroupLabels": ["Kratom", "Control"]},
        ],
    }
    rows = {r["arm_label"]: r for r in cr.parse_results(NCT, study({}, arms))["arms"]}
    assert rows["Kratom"]["intervention_names"] == ["Diary", "Kratom tea"]
    assert rows["Kratom"]["arm_type"] == "EXPERIMENTAL"
    # "Other: X" names no registered intervention: kept as listed, prefix and all.
    assert rows["Control"]["intervention_names"] == ["Diary", "Other: X"]


def test_malformed_counts_are_kept_as_text_beside_a_null_number() -> None:
    results = {
        "adverseEventsModule": {
            "eventGroups": [
                {"id": "EG000", "title": "Kratom", "deathsNumAffected": "NA", "deathsNumAtRisk": 20}
            ],
            "seriousEvents": [
                {
                    "term": "Seizure",
                    "organSystem": "Nervous system disorders",
                    "stats": [
                        {"groupId": "EG000", "numAffected": "≥5", "numAtRisk": -1, "numEvents": 7}
                    ],
                }
            ],
        },
        "participantFlowModule": {
            "groups": [{"id": "FG000", "title": "Kratom"}],
            "periods": [
                {
                    "title": "Overall Study",
                    "milestones": [
                        {
                            "type": "STARTED",
                            "achievements": [{"groupId": "FG000", "numSubjects": "NA"}],
                        }
                    ],
                    "dropWithdraws": [
                        {
                            "type": "Lost to Follow-up",
                            "reasons": [{"groupId": "FG000", "numSubjects": "2"}],
                        }
                    ],
                }
            ],
        },
    }
    rows = cr.parse_results(NCT, study(results))
    (event,) = rows["adverse_events"]
    assert (event["affected"], event["affected_text"]) == (None, "≥5")
    assert (event["at_risk"], event["at_risk_text"]) == (None, "-1")
    assert (event["events"], event["events_text"]) == (7, None)
    (death,) = rows["adverse_event_totals"]
    assert death["total_type"] == "all_cause_mortality"
    assert (death["affected"], death["affected_text"], death["at_risk"]) == (None, "NA", 20)
    started, lost = rows["participant_flow"]
    assert (started["kind"], started["participants"], started["participants_text"]) == (
        "milestone",
        None,
        "NA",
    )
    assert (lost["kind"], lost["milestone_or_reason"], lost["participants"]) == (
        "drop_withdraw",
        "Lost to Follow-up",
        2,
    )


def test_a_cell_for_a_group_the_module_does_not_define_is_a_record_error() -> None:
    results = {
        "baselineCharacteristicsModule": {
            "groups": two_groups("BG"),
            "measures": [
                {
                    "title": "Age",
                    "paramType": "MEAN",
                    "classes": [
                        {"categories": [{"measurements": [{"groupId": "BG009", "value": "40"}]}]}
                    ],
                }
            ],
        }
    }
    with pytest.raises(RecordError, match="baseline measure 'Age' for group 'BG009'"):
        cr.parse_results(NCT, study(results))


def test_baseline_cell_takes_the_nearest_denominator_and_keeps_text_values() -> None:
    results = {
        "baselineCharacteristicsModule": {
            "groups": two_groups("BG"),
            "denoms": [{"units": "Participants", "counts": [{"groupId": "BG000", "value": "30"}]}],
            "measures": [
                {
                    "title": "Age",
                    "paramType": "MEAN",
                    "dispersionType": "STANDARD_DEVIATION",
                    "unitOfMeasure": "years",
                    "denoms": [
                        {"units": "Participants", "counts": [{"groupId": "BG000", "value": "28"}]}
                    ],
                    "classes": [
                        {
                            "title": "Adults",
                            "categories": [
                                {
                                    "measurements": [
                                        {"groupId": "BG000", "value": "41.5", "spread": "9.2"}
                                    ]
                                }
                            ],
                        }
                    ],
                },
                {
                    "title": "Weight",
                    "paramType": "MEAN",
                    "classes": [
                        {"categories": [{"measurements": [{"groupId": "BG001", "value": "NA"}]}]}
                    ],
                },
            ],
        }
    }
    age, weight = cr.parse_results(NCT, study(results))["baseline_measures"]
    assert (age["category"], age["value"], age["dispersion_value"], age["participants"]) == (
        "Adults",
        41.5,
        9.2,
        28,
    )
    assert (age["group_title"], age["group_id"], age["unit"]) == (
        "Kratom Tea, 2 g",
        "BG000",
        "years",
    )
    assert (weight["category"], weight["value"], weight["value_text"]) == ("", None, "NA")
    assert weight["participants"] is None  # the module's denominator names only BG000


def test_analysis_row_holds_groups_estimate_ci_and_p_value() -> None:
    measure = {
        "title": "COWS score",
        "groups": two_groups("OG"),
        "analyses": [
            {
                "groupIds": ["OG000", "OG001"],
                "nonInferiorityType": "SUPERIORITY",
                "statisticalMethod": "ANCOVA",
                "paramType": "Mean Difference (Final Values)",
                "paramValue": "-3.2",
                "ciPctValue": "95",
                "ciNumSides": "TWO_SIDED",
                "ciLowerLimit": "-5.1",
                "ciUpperLimit": "NA",
                "pValue": "<0.001",
            },
            {"groupIds": ["OG000"], "pValue": "0.2"},
        ],
    }
    results = {"outcomeMeasuresModule": {"outcomeMeasures": [{"title": "Other"}, measure]}}
    first, second = cr.parse_results(NCT, study(results))["outcome_analyses"]
    assert first["analysis_id"] == f"{NCT}:R2:A1"
    assert first["outcome_id"] == cr.results_outcome_id(NCT, 2)
    assert first["group_titles"] == ["Kratom Tea, 2 g", "Placebo"]
    assert (first["estimate"], first["ci_low"], first["ci_high"], first["ci_high_text"]) == (
        -3.2,
        -5.1,
        None,
        "NA",
    )
    assert (first["ci_pct"], first["ci_sides"], first["non_inferiority"]) == (
        95.0,
        "TWO_SIDED",
        "SUPERIORITY",
    )
    assert (first["p_value"], first["p_value_relation"], first["p_value_text"]) == (
        0.001,
        "<",
        "<0.001",
    )
    assert (second["analysis_id"], second["p_value"], second["estimate"]) == (
        f"{NCT}:R2:A2",
        0.2,
        None,
    )


def test_analysis_comparing_an_unknown_group_is_a_record_error() -> None:
    measure = {"title": "X", "groups": two_groups("OG"), "analyses": [{"groupIds": ["OG007"]}]}
    results = {"outcomeMeasuresModule": {"outcomeMeasures": [measure]}}
    with pytest.raises(RecordError, match="unknown groups"):
        cr.parse_results(NCT, study(results))


def test_every_results_module_gives_its_groups_tied_to_arms() -> None:
    arms = {"armGroups": [{"label": a} for a in ARMS]}
    results = {
        "participantFlowModule": {"groups": two_groups("FG")},
        "baselineCharacteristicsModule": {
            "groups": [*two_groups("BG"), {"id": "BG002", "title": "Total"}]
        },
        "adverseEventsModule": {"eventGroups": two_groups("EG")},
        "outcomeMeasuresModule": {"outcomeMeasures": [{"groups": two_groups("OG")}]},
    }
    groups = cr.parse_results(NCT, study(results, arms))["result_groups"]
    found = {(g["group_scope"], g["group_id"]): (g["arm_label"], g["arm_tie"]) for g in groups}
    assert found == {
        ("participant_flow", "FG000"): ("Kratom tea 2 g", "title"),
        ("participant_flow", "FG001"): ("Placebo tea", "similar_title"),
        ("baseline", "BG000"): ("Kratom tea 2 g", "title"),
        ("baseline", "BG001"): ("Placebo tea", "similar_title"),
        ("baseline", "BG002"): (None, "total"),
        ("adverse_events", "EG000"): ("Kratom tea 2 g", "title"),
        ("adverse_events", "EG001"): ("Placebo tea", "similar_title"),
        (f"{NCT}:R1", "OG000"): ("Kratom tea 2 g", "title"),
        (f"{NCT}:R1", "OG001"): ("Placebo tea", "similar_title"),
    }

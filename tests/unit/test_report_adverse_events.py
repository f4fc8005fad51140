"""report.html's adverse events per arm: one study's table from hand-written rows."""

from __future__ import annotations

from typing import Any

from pipelines.release.report import TERMS_PER_STUDY, adverse_event_table


def count(group: str, affected: Any, at_risk: Any, **extra: Any) -> dict[str, Any]:
    text = {
        "affected_text": None if isinstance(affected, int) else affected,
        "at_risk_text": None if isinstance(at_risk, int) else at_risk,
    }
    numbers = {
        "affected": affected if isinstance(affected, int) else None,
        "at_risk": at_risk if isinstance(at_risk, int) else None,
    }
    return {"event_group_id": group, **numbers, **text, **extra}


def test_columns_are_arms_rows_are_totals_then_terms_most_affected_first() -> None:
    groups = [
        {"group_id": "EG000", "group_title": "Kratom tea", "arm_label": "Kratom"},
        {"group_id": "EG001", "group_title": "Placebo drink", "arm_label": None},
    ]
    totals = [
        count("EG000", 0, 20, total_type="all_cause_mortality"),
        count("EG001", 1, 19, total_type="all_cause_mortality"),
        count("EG000", "NA", 20, total_type="serious"),
    ]
    events = [
        count("EG000", 2, 20, event_type="other", term="Headache"),
        count("EG001", 1, 19, event_type="other", term="Headache"),
        count("EG000", 5, 20, event_type="other", term="Nausea"),
    ]
    columns, rows = adverse_event_table(events, totals, groups)
    assert columns == ["Kratom", "Placebo drink (no arm)"]
    assert rows == [
        ("any: all cause mortality", ["0/20", "1/19"]),
        ("any: serious", ["NA/20", "–"]),
        ("other: Nausea", ["5/20", "–"]),
        ("other: Headache", ["2/20", "1/19"]),
    ]


def test_only_the_most_frequent_terms_are_shown() -> None:
    events = [count("EG000", n, 50, event_type="other", term=f"Term {n:02d}") for n in range(25)]
    _, rows = adverse_event_table(events, [], [])
    assert [label for label, _ in rows] == [
        f"other: Term {n:02d}" for n in range(24, 24 - TERMS_PER_STUDY, -1)
    ]

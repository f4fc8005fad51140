"""report.html's adverse events per arm: one study's table from hand-written rows."""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pytest

from pipelines.release import report
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


def _section(studies: int, monkeypatch: pytest.MonkeyPatch, shown: int) -> str:
    """The report's adverse-event section over `studies` studies, `shown` of them tabulated."""
    monkeypatch.setattr(report, "AE_STUDIES_SHOWN", shown)
    con = duckdb.connect()
    ids = [f"NCT{n:08d}" for n in range(studies, 0, -1)]  # not in id order
    con.execute(
        "CREATE TABLE adverse_events AS SELECT unnest(?) AS study_id, 'EG000' AS event_group_id, "
        "2 AS affected, NULL AS affected_text, 20 AS at_risk, NULL AS at_risk_text, "
        "'other' AS event_type, 'Nausea' AS term",
        [ids],
    )
    con.execute(
        "CREATE TABLE adverse_event_totals AS SELECT * EXCLUDE (event_type, term), "
        "'serious' AS total_type FROM adverse_events"
    )
    con.execute(
        "CREATE TABLE result_groups AS SELECT study_id, event_group_id AS group_id, "
        "'Kratom tea' AS group_title, 'Kratom' AS arm_label, "
        "'adverse_events' AS group_scope FROM adverse_events"
    )
    try:
        return "".join(report._adverse_events_section(con))
    finally:
        con.close()


def test_every_study_is_tabulated_up_to_the_cap_and_the_first_by_id_beyond_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = _section(5, monkeypatch, shown=5)
    assert re.findall(r'data-study="([^"]+)"', whole) == [f"NCT{n:08d}" for n in range(1, 6)]
    assert "for the 5 studies that posted adverse events" in whole
    assert "holds every term)." in whole
    capped = _section(5, monkeypatch, shown=3)
    assert re.findall(r'data-study="([^"]+)"', capped) == [f"NCT{n:08d}" for n in range(1, 4)]
    assert "for the first 3 by study id of the 5 studies that posted" in capped
    assert "holds every term and every study)." in capped

"""The evidence charts of report.html: which rows become which marks, and the SVG they make."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from pipelines.release.chart_marks import Mark
from pipelines.release.chart_process import Chart, ChartError, ready_process
from pipelines.release.evidence_charts import (
    composition_chart,
    composition_marks,
    forest_chart,
    interaction_panels,
    safety_chart,
    safety_spans,
)
from pipelines.release.evidence_svg import draw
from pipelines.release.report import PALETTE, heatmap, long_term_cells


def _composition(cid: str, **values: Any) -> dict[str, Any]:
    row = {
        "composition_id": cid,
        "compound_id": "mitragynine",
        "material_class": "leaf",
        "relation": None,
        "value_mg_per_g": None,
        "value_low_mg_per_g": None,
        "value_high_mg_per_g": None,
        "source_kind": "peer_reviewed",
    }
    return {**row, **values}


def test_composition_marks_draw_ranges_points_and_upper_bounds_only_in_mg_per_g() -> None:
    rows = [
        _composition("pc-1", value_low_mg_per_g=3.1, value_high_mg_per_g=49.4),
        _composition("pc-2", relation="=", value_mg_per_g=19.48, material_class="powder"),
        _composition("pc-3", relation="<", value_mg_per_g=0.1, compound_id="7-hydroxymitragynine"),
        _composition("pc-4", value_high_mg_per_g=0.5, compound_id="7-hydroxymitragynine"),
        _composition("pc-5", relation="="),  # printed per dose: no mg/g value
        _composition("pc-6", value_mg_per_g=5.0, compound_id="paynantheine"),
    ]
    marks = composition_marks(rows)
    assert [(m.lane, m.value, m.low, m.high, m.relation) for m in marks] == [
        ("mitragynine · leaf", None, 3.1, 49.4, "="),
        ("mitragynine · powder", 19.48, None, None, "="),
        ("7-hydroxymitragynine · leaf", 0.1, None, None, "<"),
        ("7-hydroxymitragynine · leaf", 0.5, None, None, "<"),
        ("paynantheine · leaf", 5.0, None, None, "="),
    ]
    assert marks[0].title == "pc-1: mitragynine in leaf, 3.1–49.4 mg/g (peer_reviewed)"
    assert marks[3].title.endswith("< 0.5 mg/g (peer_reviewed)")


def _interaction(iid: str, setting: str, parameter: str, **values: Any) -> dict[str, Any]:
    row = {
        "interaction_id": iid,
        "setting": setting,
        "perpetrator_compound_id": "mitragynine",
        "victim_compound_id": None,
        "enzyme": "CYP3A",
        "parameter": parameter,
        "relation": "=",
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "ci_level": None,
        "value_um": None,
    }
    return {**row, **values}


def test_interaction_panels_keep_in_vitro_values_apart_from_ratios_in_people() -> None:
    rows = [
        _interaction("ie-5", "in_vitro", "ic50", value=0.45, value_um=450.0),
        _interaction("ie-4", "in_vitro", "predicted_auc_ratio", value=5.69),
        _interaction("ie-3", "animal", "auc_ratio", value=2.8, perpetrator_compound_id="cbd"),
        _interaction(
            "ie-1",
            "clinical",
            "auc_ratio",
            value=1.39,
            ci_low=1.23,
            ci_high=1.57,
            ci_level=90.0,
            perpetrator_compound_id="kratom",
            victim_compound_id="midazolam",
        ),
        _interaction("ie-6", "in_vitro", "kinact", value=0.068),  # 1/min: no log axis for it
        _interaction("ie-7", "in_vitro", "ic50", value=0.78),  # µg/mL: no µM value
    ]
    panels, undrawn = interaction_panels(rows)
    assert undrawn == 2
    people, predicted, constants = panels
    assert [(m.lane, m.group, m.value, m.low, m.high) for m in people.marks] == [
        ("kratom → midazolam (CYP3A) auc", "clinical", 1.39, 1.23, 1.57),
        ("cbd (CYP3A) auc", "animal", 2.8, None, None),
    ]
    assert people.references == predicted.references == (1.0, 1.25)
    assert people.marks[0].title.endswith("auc_ratio 1.39, 90 % CI 1.23–1.57")
    assert [m.value for m in predicted.marks] == [5.69]
    assert [(m.group, m.value) for m in constants.marks] == [("ic50", 450.0)]
    assert constants.references == ()


def test_safety_spans_group_by_outcome_dated_before_undated() -> None:
    def row(sid: str, outcome: str, start: date | None, count: int) -> dict[str, Any]:
        return {
            "signal_id": sid,
            "data_source": "US National Poison Data System (NPDS)" + " x" * 30,
            "period_start": start,
            "period_end": None,
            "period": None,
            "outcome": outcome,
            "outcome_class": outcome,
            "count": count,
            "denominator": 1807 if count == 11 else None,
            "source_kind": "peer_reviewed",
        }

    spans = safety_spans(
        [
            row("ss-3", "death", None, 44),
            row("ss-2", "death", date(2011, 1, 1), 11),
            row("ss-1", "exposure", date(2011, 1, 1), 1807),
        ]
    )
    assert [(s.group, s.label) for s in spans] == [
        ("exposure", "1807"),
        ("death", "11 of 1807"),
        ("death", "44"),
    ]
    assert len(spans[0].lane) == 58 and spans[0].lane.endswith("…")
    assert "period not stated" in spans[2].title


def _marks(svg: str) -> list[str]:
    return re.findall(r'<g class="mark"><title>([^<]*)</title>', svg)


def test_charts_are_inline_svg_with_a_title_per_mark_and_nothing_from_the_web() -> None:
    marks = [
        Mark("a · leaf", "leaf", None, 3.1, 49.4, title="one"),
        Mark("a · leaf", "leaf", 0.1, relation="<", title="two"),
    ]
    (svg,) = draw([composition_chart(marks, PALETTE, "content")])
    assert svg.startswith('<svg role="img" aria-label="content" ')
    assert _marks(svg) == ["one", "two"]
    assert "http" not in svg and "<!--" not in svg and "<metadata" not in svg
    assert draw([composition_chart(marks, PALETTE, "content")]) == [svg]
    panels, _ = interaction_panels(
        [_interaction("ie-1", "clinical", "auc_ratio", value=1.39, ci_low=1.23, ci_high=1.57)]
    )
    assert len(_marks(draw([forest_chart(panels, PALETTE, "forest")])[0])) == 1
    spans = safety_spans(
        [
            {
                "signal_id": "ss-1",
                "data_source": "NPDS",
                "period_start": date(2011, 1, 1),
                "period_end": date(2017, 12, 31),
                "period": "2011 to 2017",
                "outcome": "deaths",
                "outcome_class": "death",
                "count": 11,
                "denominator": None,
                "source_kind": "peer_reviewed",
            }
        ]
    )
    assert _marks(draw([safety_chart(spans, PALETTE, "safety")])[0]) == [
        "ss-1: deaths: 11; NPDS; 2011 to 2017 (peer_reviewed)"
    ]


def test_heatmap_marks_cells_with_long_term_studies() -> None:
    evidence_map = [
        {"compound_id": "kratom", "domain": "safety", "design": "rct", "long_term_studies": 1},
        {"compound_id": "kratom", "domain": "pain", "design": "rct", "long_term_studies": 0},
    ]
    cells = long_term_cells(evidence_map)
    assert cells == {"kratom\x1fsafety": 1, "kratom\x1fpain": 0}
    counts = {("kratom\x1fsafety", "rct"): 2, ("kratom\x1fpain", "rct"): 1}
    with_corner = heatmap(counts, ["kratom"], ["safety", "pain"], cells)
    without = heatmap(counts, ["kratom"], ["safety", "pain"])
    assert with_corner.count('fill="#111"') == 1 and 'fill="#111"' not in without


def _three_charts() -> list[Chart]:
    marks = [Mark("a · leaf", "leaf", 19.48, title="one"), Mark("b · powder", "powder", 0.1)]
    panels, _ = interaction_panels(
        [_interaction("ie-1", "clinical", "auc_ratio", value=1.39, ci_low=1.23, ci_high=1.57)]
    )
    spans = safety_spans(
        [
            {
                "signal_id": "ss-1",
                "data_source": "NPDS",
                "period_start": date(2011, 1, 1),
                "period_end": None,
                "period": "2011",
                "outcome": "deaths",
                "outcome_class": "death",
                "count": 11,
                "denominator": 40,
                "source_kind": "peer_reviewed",
            }
        ]
    )
    return [
        composition_chart(marks, PALETTE, "content"),
        forest_chart(panels, PALETTE, "forest"),
        safety_chart(spans, PALETTE, "safety"),
    ]


def test_the_chart_process_draws_the_same_bytes_as_this_process() -> None:
    charts = _three_charts()
    with ready_process() as process:
        drawn = process.draw(charts)
    assert drawn == draw(charts)
    assert [len(_marks(svg)) for svg in drawn] == [2, 1, 1]


def test_a_chart_process_that_fails_is_one_line_naming_its_error() -> None:
    with ready_process() as process, pytest.raises(ChartError) as failed:
        process.draw([("histogram", ())])
    assert str(failed.value) == (
        "drawing the report's evidence charts failed: KeyError: 'histogram'"
    )

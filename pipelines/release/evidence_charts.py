"""The evidence charts of report.html: which rows become which marks, and where they are drawn.

The marks (`chart_marks.py`) come from the release's evidence tables here, ordered by the
schemas' vocabularies; `evidence_svg.py` draws them with matplotlib, in a process of its own
(`chart_process.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pipelines.release.chart_marks import UNDATED, Mark, Panel, Span, number_text, short_label
from pipelines.release.chart_process import Chart
from schemas import vocab

# --- data: rows -> marks --------------------------------------------------------------------------


def composition_marks(rows: list[dict[str, Any]]) -> list[Mark]:
    """One mark per measurement with a content in mg/g, in lanes of analyte x material.

    A range gives low-high; a single value a point; "< x" or "up to x" an upper bound at x.
    Rows printed per dose, per mL or as detected only have no mg/g value and are not drawn.
    """
    marks = []
    for row in rows:
        low, high, point = (
            row["value_low_mg_per_g"],
            row["value_high_mg_per_g"],
            row["value_mg_per_g"],
        )
        if point is None and high is None:
            continue
        bound = row["relation"] == "<" or (point is None and low is None)
        shown = f"< {number_text(point if point is not None else high)}" if bound else None
        if shown is None:
            shown = (
                number_text(point)
                if point is not None
                else f"{number_text(low)}–{number_text(high)}"
            )
        marks.append(
            Mark(
                lane=f"{row['compound_id']} · {row['material_class']}",
                group=row["material_class"],
                value=point if point is not None else (high if bound else None),
                low=None if bound else low,
                high=None if bound else high,
                relation="<" if bound else "=",
                title=(
                    f"{row['composition_id']}: {row['compound_id']} in {row['material_class']}, "
                    f"{shown} mg/g ({row['source_kind']})"
                ),
            )
        )
    order = {m: i for i, m in enumerate(vocab.MATERIAL_CLASSES)}
    first = ("mitragynine", "7-hydroxymitragynine")

    def lane_key(mark: Mark) -> tuple[int, str, int]:
        analyte = mark.lane.split(" · ")[0]
        rank = first.index(analyte) if analyte in first else len(first)
        return (rank, analyte, order.get(mark.group, len(order)))

    return sorted(marks, key=lane_key)


def _interaction_label(row: dict[str, Any]) -> str:
    victim = f" → {row['victim_compound_id']}" if row["victim_compound_id"] else ""
    enzyme = f" ({row['enzyme']})" if row["enzyme"] else ""
    return f"{row['perpetrator_compound_id']}{victim}{enzyme}"


def interaction_panels(rows: list[dict[str, Any]]) -> tuple[list[Panel], int]:
    """Ratios from people and animals, then in-vitro values apart: predicted AUC ratios and
    inhibition constants in µM. Also how many rows have no value on these axes (kinact,
    constants of an extract in µg/mL)."""
    ratios: list[Mark] = []
    predicted: list[Mark] = []
    constants: list[Mark] = []
    undrawn = 0
    for row in sorted(rows, key=lambda r: r["interaction_id"]):
        parameter = row["parameter"]
        label = _interaction_label(row)
        level = f"{number_text(row['ci_level'])} % " if row["ci_level"] is not None else ""
        ci = (
            f", {level}CI {number_text(row['ci_low'])}–{number_text(row['ci_high'])}"
            if row["ci_low"] is not None and row["ci_high"] is not None
            else ""
        )
        if parameter in vocab.RATIO_PARAMETERS and row["value"] is not None:
            short = parameter.removesuffix("_ratio").replace("_", " ")
            mark = Mark(
                lane=f"{label} {short}",
                group=row["setting"],
                value=row["value"],
                low=row["ci_low"],
                high=row["ci_high"],
                relation=row["relation"] or "=",
                title=(
                    f"{row['interaction_id']}: {label}, {parameter} {number_text(row['value'])}{ci}"
                ),
            )
            (predicted if row["setting"] == "in_vitro" else ratios).append(mark)
        elif row["value_um"] is not None:
            constants.append(
                Mark(
                    lane=f"{label} {parameter}",
                    group=parameter,
                    value=row["value_um"],
                    relation=row["relation"] or "=",
                    title=(
                        f"{row['interaction_id']}: {label}, {parameter} "
                        f"{row['relation'] or '='} {number_text(row['value_um'])} µM"
                    ),
                )
            )
        else:
            undrawn += 1
    setting_order = {s: i for i, s in enumerate(vocab.INTERACTION_SETTINGS)}
    ratios.sort(key=lambda m: setting_order.get(m.group, len(setting_order)))
    panels = [
        Panel("In people and animals", "ratio with vs without (log)", ratios, (1.0, 1.25)),
        Panel("In vitro: predicted AUC ratio", "ratio (log)", predicted, (1.0, 1.25)),
        Panel("In vitro: inhibition constants", "µM (log)", constants),
    ]
    return [p for p in panels if p.marks], undrawn


def safety_spans(rows: list[dict[str, Any]]) -> list[Span]:
    """One span per figure, grouped by outcome, dated ones first in order of their period."""
    order = {o: i for i, o in enumerate(vocab.SAFETY_OUTCOMES)}
    spans = []
    for row in rows:
        denominator = f" of {row['denominator']}" if row["denominator"] is not None else ""
        period = row["period"] or UNDATED
        spans.append(
            Span(
                lane=short_label(row["data_source"]),
                group=row["outcome_class"],
                start=row["period_start"],
                end=row["period_end"],
                label=f"{row['count']}{denominator}",
                title=(
                    f"{row['signal_id']}: {row['outcome']}: {row['count']}{denominator}; "
                    f"{row['data_source']}; {period} ({row['source_kind']})"
                ),
            )
        )
    return sorted(
        spans,
        key=lambda s: (
            order.get(s.group, len(order)),
            s.start is None,
            s.start or date.min,
            s.lane,
            s.title,
        ),
    )


# --- drawing, in a second process -----------------------------------------------------------------


def composition_chart(marks: list[Mark], palette: Sequence[str], label: str) -> Chart:
    """Content per analyte and material, coloured in the order of the material classes."""
    return ("composition", (marks, vocab.MATERIAL_CLASSES, palette, label))


def forest_chart(panels: list[Panel], palette: Sequence[str], label: str) -> Chart:
    """The interaction panels, coloured by setting, then by in-vitro parameter."""
    order = (*vocab.INTERACTION_SETTINGS, *vocab.INTERACTION_PARAMETERS)
    return ("forest", (panels, order, palette, label))


def safety_chart(spans: list[Span], palette: Sequence[str], label: str) -> Chart:
    """The safety figures on their time axis, coloured in the order of the outcomes."""
    return ("safety", (spans, vocab.SAFETY_OUTCOMES, palette, label))

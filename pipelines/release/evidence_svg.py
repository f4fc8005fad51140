"""The evidence charts of report.html drawn: composition, interactions, safety signals as SVG.

Why matplotlib here when report.py draws its bar charts by hand: these charts need logarithmic
axes (contents from 0.1 to 390 mg/g, ratios from 0.96 to 71, inhibition constants from 0.67 to
450 µM) with decade ticks, ranges and confidence intervals, and a time axis; a well-kept plotting
library does that better than more hand-written geometry. The SVG stays what the page needs:
inline, offline, the same bytes for the same release (a fixed hash salt per chart, no date or
creator metadata, text kept as text rather than glyph outlines, matplotlib's element ids dropped
so that charts on one page share none) and a <title> tooltip on every data mark.

Everything here is pure: marks in (`chart_marks.py`, from `evidence_charts.py`), SVG text out.
A build runs it as a process of its own (`main`, started by `chart_process.ChartProcess`): it
imports matplotlib and draws on the second core while the build's process goes on, and it
imports no schemas, so it starts in about 0.35 s.
"""

from __future__ import annotations

import html
import io
import pickle
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from pipelines.release.chart_marks import UNDATED, Mark, Panel, Span, number_text, short_label

LANE_PT = 13.0
"""Height of one row of marks, in points."""
WIDTH_IN = 9.5
NO_METADATA = ("Creator", "Date", "Format", "Type")
"""Dublin Core keys matplotlib writes by default (a date, its version, two web addresses)."""
_OWN_IDS = re.compile(r'<g id="(?!mark-)[^"]*"')
_MARK = re.compile(r'<g id="mark-(\d+)">')


# --- drawing -------------------------------------------------------------------------------------


def _colours(groups: Sequence[str], palette: Sequence[str]) -> dict[str, str]:
    return {g: palette[i % len(palette)] for i, g in enumerate(groups)}


def _in_order(groups: Sequence[str], order: Sequence[str]) -> list[str]:
    present = set(groups)
    return [g for g in order if g in present] + sorted(present - set(order))


def _log_axis(ax: Axes) -> None:
    """Log x axis with plain-number decade labels (0.1, 1, 10) and unlabelled minor ticks."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: number_text(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="x", which="major", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _lane_labels(marks: list[Mark]) -> list[str]:
    """The y-axis labels of the marks' lanes, top to bottom."""
    return [short_label(lane) for lane in dict.fromkeys(m.lane for m in marks)]


def _lanes(ax: Axes, lanes: list[str]) -> dict[str, int]:
    """Lane label -> row index, top to bottom, with the labels on the y axis."""
    index: dict[str, int] = {}
    for lane in lanes:
        index.setdefault(lane, len(index))
    ax.set_yticks(range(len(index)), [short_label(lane) for lane in index])
    ax.set_ylim(len(index) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    return index


def _draw_marks(ax: Axes, marks: list[Mark], colours: dict[str, str], titles: list[str]) -> None:
    """Each mark a range line and/or a point (a caret for a bound), tooltips in `titles`."""
    lanes = _lanes(ax, [m.lane for m in marks])
    per_lane: dict[str, int] = {}
    counts = {lane: sum(m.lane == lane for m in marks) for lane in lanes}
    for mark in marks:
        k = per_lane.get(mark.lane, 0)
        per_lane[mark.lane] = k + 1
        y = lanes[mark.lane] + (k - (counts[mark.lane] - 1) / 2) * min(0.6 / counts[mark.lane], 0.2)
        colour = colours[mark.group]
        gid = f"mark-{len(titles)}"
        titles.append(mark.title)
        if mark.low is not None and mark.high is not None:
            ax.plot([mark.low, mark.high], [y, y], color=colour, linewidth=2.2, gid=gid)
            gid = f"part-{len(titles)}"
        if mark.value is not None:
            marker = {"<": "<", ">": ">"}.get(mark.relation, "o")
            ax.plot([mark.value], [y], marker=marker, color=colour, markersize=4.5, gid=gid)


FONT = "DejaVu Sans"
FONT_PT = 8.0
TITLE_PT = 9.0
EDGE_PT = 3.0
"""Blank at the figure's edges and between its parts (what constrained layout leaves)."""


@dataclass(frozen=True)
class Frame:
    """One axes of a chart: its lane labels, title and axis label, which size its margins."""

    labels: list[str]
    title: str = ""
    axis: str = ""
    weight: float = 1.0
    """Share of the figure's height for the axes, against the other frames'."""


def _text_pt(text: str, size: float = FONT_PT) -> tuple[float, float]:
    """Width and height in points of one line of text in the charts' font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    width, height, _ = text_to_path.get_text_width_height_descent(
        text, FontProperties(family=FONT, size=size), ismath=False
    )
    return width, height


def _placed(fig: Figure, frames: list[Frame], legend: list[str]) -> list[Axes]:
    """Axes stacked top to bottom, their margins measured from their texts (lane labels on
    the left, tick labels, axis label and title), the legend in the right margin at the top.

    Measured once from the texts instead of by a layout engine: matplotlib's constrained
    layout measured every tick and label twice more per chart, over 40 % of the charts' time."""
    width, height = (inches * 72 for inches in fig.get_size_inches())
    _, line = _text_pt("lp")
    pad = matplotlib.rcParams
    key = max((_text_pt(label)[0] for label in legend), default=0.0)
    legend_pt = (2 * pad["legend.borderpad"] + pad["legend.handlelength"]) * FONT_PT
    legend_pt += pad["legend.handletextpad"] * FONT_PT + key
    widest = max((_text_pt(t)[0] for f in frames for t in f.labels), default=0.0)
    left = EDGE_PT + widest + pad["ytick.major.pad"]
    right = width - EDGE_PT - (legend_pt + EDGE_PT if legend else 0.0)
    below = pad["xtick.major.size"] + pad["xtick.major.pad"] + line
    spans = [
        (
            (_text_pt("lp", TITLE_PT)[1] + pad["axes.titlepad"] if f.title else 0.0),
            below + (pad["axes.labelpad"] + line if f.axis else 0.0),
        )
        for f in frames
    ]
    free = height - EDGE_PT * (len(frames) + 1) - sum(a + b for a, b in spans)
    total = sum(f.weight for f in frames)
    axes = []
    top = height - EDGE_PT
    for frame, (above, under) in zip(frames, spans, strict=True):
        tall = free * frame.weight / total
        bottom = top - above - tall
        axes.append(
            fig.add_axes((left / width, bottom / height, (right - left) / width, tall / height))
        )
        top = bottom - under - EDGE_PT
    return axes


def _legend(fig: Figure, colours: dict[str, str]) -> None:
    width, height = (inches * 72 for inches in fig.get_size_inches())
    handles = [
        Line2D([], [], color=c, marker="o", linewidth=2.2, label=g) for g, c in colours.items()
    ]
    fig.legend(
        handles=handles,
        loc="upper right",
        bbox_to_anchor=(1 - EDGE_PT / width, 1 - EDGE_PT / height),
        borderaxespad=0,
        frameon=False,
        fontsize=FONT_PT,
    )


def _figure(rows: int, panels: int = 1) -> Figure:
    height = (rows * LANE_PT + panels * 46 + 30) / 72
    return Figure(figsize=(WIDTH_IN, height))


def _svg(fig: Figure, salt: str, titles: list[str], label: str) -> str:
    """The figure as inline SVG: no prolog, namespaces, comments or matplotlib ids; a title on
    each data mark; text in the page's sans-serif when DejaVu Sans is missing."""
    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(out, format="svg", metadata=dict.fromkeys(NO_METADATA))
    text = out.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    text = re.sub(r' xmlns(:xlink)?="[^"]*"', "", text, count=2)
    text = text.replace(
        "<svg ", f'<svg role="img" aria-label="{html.escape(label, quote=True)}" ', 1
    )
    text = re.sub(r'<g id="part-\d+">', "<g>", text)
    text = _OWN_IDS.sub("<g", text)
    text = _MARK.sub(
        lambda m: f'<g class="mark"><title>{html.escape(titles[int(m[1])])}</title>', text
    )
    return text.replace("font-family: 'DejaVu Sans'", "font-family: 'DejaVu Sans', sans-serif")


def _drawn(draw: Callable[[list[str]], Figure], salt: str, label: str) -> str:
    """Draw with text as <text> elements in one font whose metrics ship with matplotlib."""
    titles: list[str] = []
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": FONT, "font.size": FONT_PT}):
        fig = draw(titles)
        return _svg(fig, salt, titles, label)


def composition_chart(
    marks: list[Mark], order: Sequence[str], palette: Sequence[str], label: str
) -> str:
    """Content per analyte (rows) and material (colour, in `order`) on a log mg/g axis."""

    def draw(titles: list[str]) -> Figure:
        lanes = _lane_labels(marks)
        fig = _figure(len(lanes))
        axis = "mg per g (log); a line is a reported range, ◀ an upper bound"
        colours = _colours(_in_order([m.group for m in marks], order), palette)
        (ax,) = _placed(fig, [Frame(lanes, axis=axis)], list(colours))
        _log_axis(ax)
        _draw_marks(ax, marks, colours, titles)
        ax.set_xlabel(axis)
        _legend(fig, colours)
        return fig

    return _drawn(draw, "composition", label)


def forest_chart(
    panels: list[Panel], order: Sequence[str], palette: Sequence[str], label: str
) -> str:
    """One panel per group of values, each on its own log axis, lines at 1 and 1.25 for ratios;
    colours in `order`."""

    def draw(titles: list[str]) -> Figure:
        lanes = [_lane_labels(p.marks) for p in panels]
        fig = _figure(sum(len(labels) for labels in lanes), len(panels))
        groups = [m.group for p in panels for m in p.marks]
        colours = _colours(_in_order(groups, order), palette)
        frames = [
            Frame(labels, p.title, p.axis, len(labels) + 2)
            for labels, p in zip(lanes, panels, strict=True)
        ]
        for ax, panel in zip(_placed(fig, frames, list(colours)), panels, strict=True):
            _log_axis(ax)
            for ref, style in zip(panel.references, ("-", "--"), strict=False):
                ax.axvline(ref, color="#555", linestyle=style, linewidth=0.9)
            _draw_marks(ax, panel.marks, colours, titles)
            ax.set_title(panel.title, loc="left", fontsize=9)
            ax.set_xlabel(panel.axis)
        _legend(fig, colours)
        return fig

    return _drawn(draw, "interactions", label)


def safety_chart(
    spans: list[Span], order: Sequence[str], palette: Sequence[str], label: str
) -> str:
    """Each figure a bar over its period (a dot where only the start is known), labelled with
    its count, coloured by outcome in `order`; figures without a period sit at the right edge,
    labelled as such."""

    def draw(titles: list[str]) -> Figure:
        fig = _figure(len(spans))
        axis = "period of the figure (a dot: only its start is known)"
        colours = _colours(_in_order([s.group for s in spans], order), palette)
        (ax,) = _placed(fig, [Frame([s.lane for s in spans], axis=axis)], list(colours))
        dated = [d for s in spans for d in (s.start, s.end) if d is not None]
        first = date2num(min(dated, default=date(2000, 1, 1)) - timedelta(days=365))
        last = date2num(max(dated, default=date(2000, 1, 1)) + timedelta(days=365 * 4))
        ax.set_xlim(first, last)
        ax.xaxis_date()
        ax.set_ylim(len(spans) - 0.5, -0.5)
        ax.set_yticks(range(len(spans)), [s.lane for s in spans])
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        for y, span in enumerate(spans):
            colour = colours[span.group]
            gid = f"mark-{len(titles)}"
            titles.append(span.title)
            if span.start is None:
                ax.plot(
                    [last], [y], marker="<", color=colour, markersize=4.5, gid=gid, clip_on=False
                )
                ax.annotate(
                    f"{span.label} ({UNDATED})",
                    (last, y),
                    xytext=(-8, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    fontsize=7,
                )
                continue
            end = date2num(span.end or span.start)
            ax.plot(
                [date2num(span.start), end],
                [y, y],
                color=colour,
                linewidth=5,
                gid=gid,
                marker="o" if span.end is None else None,
                markersize=4.5,
            )
            ax.annotate(
                span.label,
                (end, y),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        ax.set_xlabel(axis)
        _legend(fig, colours)
        return fig

    return _drawn(draw, "safety", label)


CHARTS: dict[str, Callable[..., str]] = {
    "composition": composition_chart,
    "forest": forest_chart,
    "safety": safety_chart,
}
"""The charts the chart process draws, by the name a request gives."""


def draw(requests: Sequence[tuple[str, tuple[Any, ...]]]) -> list[str]:
    """Each request's chart as SVG: (name in CHARTS, its arguments)."""
    return [CHARTS[name](*arguments) for name, arguments in requests]


def main() -> None:
    """The chart process: requests pickled on stdin, their SVGs pickled on stdout."""
    requests = pickle.load(sys.stdin.buffer)
    pickle.dump(draw(requests), sys.stdout.buffer)


if __name__ == "__main__":
    main()

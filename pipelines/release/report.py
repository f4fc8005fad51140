"""report.html: a static, offline picture of one release for readers who do not run SQL.

DuckDB reads the release's Parquet files in place and hands over aggregates (counts per year and
design, per status and phase, per table), the small evidence tables, and the posted adverse
events a few hundred studies at a time; the page is written piece by piece. So the report of a
whole registry costs memory in proportion to its largest piece, not to the release.

The counting charts (evidence map, studies, tables) are hand-written inline SVG: bars and cells
need no plotting library, carry no ids, dates or hash salts, and the same release gives the same
bytes. The evidence charts with log axes (composition, interactions, safety signals) come from
`evidence_svg.py` (matplotlib), pinned to the same bytes there. The page needs no fonts,
scripts or network.

All but the last section (rows per table) needs only the release's own tables, so a publish
writes it (`begin_report`) beside the record history, whose row counts that section shows.
The evidence charts are drawn by a second Python process (`chart_process.py`),
started with the page: matplotlib is imported and the charts drawn there, on the other core,
never in this process.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipelines.release import evidence_charts
from pipelines.release.chart_process import Chart, ChartProcess, ready_process
from pipelines.release.diff import sql_text
from schemas import QUARANTINE, TABLES_BY_NAME, vocab
from schemas.arrow import arrow_schema

REPORT_FILE = "report.html"
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#999999",
    "#332288",
    "#882255",
    "#44AA99",
    "#117733",
)
"""Okabe-Ito, then Tol's muted colours: distinguishable with common colour-vision deficiencies."""
NOT_GIVEN = "not given"
FONT = "font-family:sans-serif;font-size:11px"

Counts = dict[tuple[str, str], int]
"""(category, series) -> count, the input of every stacked chart."""


REPORTED = (
    "studies",
    "evidence_map",
    "product_composition",
    "interaction_effects",
    "safety_signals",
    "study_publications",
    "publications",
    "adverse_events",
    "adverse_event_totals",
    "result_groups",
)
"""The release tables the report reads, besides the quarantine."""
STUDIES_PER_QUERY = 500
"""Studies whose adverse events are read at once."""
AE_STUDIES_SHOWN = 1_000
"""Studies whose adverse events the report tabulates, by study id: a topic's releases post far
fewer; a registry-wide one posts hundreds of thousands, whose tables (6.2 MB of page at 20 000
studies, so about 170 MB at 560 000) took 35 of the 560 000-study release step's thread
seconds (bench/README.md, session 15). The tables hold every study."""


def open_release(folder: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with a view per table the report reads: its Parquet file,
    or an empty table of its schema when the release has no such file."""
    con = duckdb.connect()
    models = {name: TABLES_BY_NAME[name].model for name in REPORTED}
    for name, model in {**models, QUARANTINE.name: QUARANTINE.model}.items():
        path = folder / f"{name}.parquet"
        if path.is_file():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_text(str(path))})")
        else:
            con.register(name, arrow_schema(model).empty_table())
    return con


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[dict[str, Any]]:
    """A query's rows as dicts (for small results: aggregates and the evidence tables)."""
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _select(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Some columns of a small table, in file order."""
    return _rows(con, f"SELECT {', '.join(columns)} FROM {table}")


def _fmt(value: float) -> str:
    """Coordinates with one decimal, so output does not depend on float noise."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _colours(series: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}


def _nice_step(maximum: int) -> int:
    """A 1-2-5 tick step giving at most about five ticks."""
    raw = max(maximum, 1) / 5
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return max(int(factor * power), 1)
    return int(10 * power)


def _vocab_order(values: Iterable[str], order: Sequence[str]) -> list[str]:
    """Present values in vocabulary order, unknown ones after, alphabetically."""
    present = set(values)
    known = [v for v in order if v in present]
    return known + sorted(present - set(order))


# --- data: pure functions over rows ------------------------------------------------------------


def heatmap_counts(evidence_map: list[dict[str, Any]]) -> Counts:
    """(compound, domain) x design -> studies; a study has one design, so cells add up."""
    counts: Counter[tuple[str, str]] = Counter()
    for row in evidence_map:
        counts[(f"{row['compound_id']}\x1f{row['domain']}", row["design"])] += row["studies"]
    return dict(counts)


def year_design_counts(con: duckdb.DuckDBPyConnection) -> tuple[Counts, int]:
    """(year, design) -> studies, and how many studies have no year: registered studies by
    start year, literature-only studies by the earliest year among their papers (linked in
    study_publications, or the paper they were read from)."""
    rows = _rows(
        con,
        f"""
        WITH links AS (
            SELECT study_id, publication_id FROM study_publications
            UNION ALL
            SELECT study_id, source_publication_id FROM studies
            WHERE coalesce(source_publication_id, '') <> ''
        ), earliest AS (
            SELECT l.study_id, min(p.year) AS year FROM links l
            JOIN publications p ON p.publication_id = l.publication_id
            WHERE p.year IS NOT NULL GROUP BY l.study_id
        )
        SELECT CASE WHEN s.evidence_source = 'registry' THEN year(s.start_date)
                    ELSE e.year END AS year,
               coalesce(nullif(s.design, ''), {sql_text(NOT_GIVEN)}) AS design,
               count(*) AS studies
        FROM studies s LEFT JOIN earliest e ON e.study_id = s.study_id
        GROUP BY ALL
        """,
    )
    counts = {(str(r["year"]), r["design"]): r["studies"] for r in rows if r["year"] is not None}
    return counts, sum(r["studies"] for r in rows if r["year"] is None)


def status_phase_counts(con: duckdb.DuckDBPyConnection) -> Counts:
    """(overall_status, phases joined by +) -> registered studies."""
    rows = _rows(
        con,
        f"""
        SELECT coalesce(nullif(overall_status, ''), {sql_text(NOT_GIVEN)}) AS status,
               CASE WHEN len(phases) > 0 THEN array_to_string(phases, '+')
                    ELSE {sql_text(NOT_GIVEN)} END AS phases,
               count(*) AS studies
        FROM studies WHERE evidence_source = 'registry' GROUP BY ALL
        """,
    )
    return {(r["status"], r["phases"]): r["studies"] for r in rows}


def table_counts(
    manifest: Mapping[str, Any], quarantined: dict[str, int]
) -> list[tuple[str, int, int]]:
    """(table, rows published, rows quarantined), tables sorted by name."""
    rows = {name: int(info.get("rows", 0)) for name, info in manifest.get("tables", {}).items()}
    names = sorted(set(rows) | set(quarantined))
    return [(name, rows.get(name, 0), quarantined.get(name, 0)) for name in names]


# --- drawing: pure functions returning SVG text ------------------------------------------------


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg role="img" aria-label="{_esc(label)}" '
        f'width="{_fmt(width)}" height="{_fmt(height)}" viewBox="0 0 {_fmt(width)} '
        f'{_fmt(height)}" style="{FONT}">' + "".join(body) + "</svg>"
    )


def _no_data(label: str) -> str:
    """An empty frame saying so: the chart is drawn, there is just nothing in it."""
    body = [
        '<rect x="0.5" y="0.5" width="399" height="119" fill="#fafafa" stroke="#ccc"/>',
        '<text x="200" y="64" text-anchor="middle" fill="#666">no data</text>',
    ]
    return _svg(400, 120, body, label)


def _legend(series: Sequence[str], colours: dict[str, str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(series):
        top = y + i * 16
        out.append(
            f'<rect x="{_fmt(x)}" y="{_fmt(top)}" width="10" height="10" '
            f'fill="{colours[name]}"/>'
            f'<text x="{_fmt(x + 14)}" y="{_fmt(top + 9)}">{_esc(name)}</text>'
        )
    return out


def stacked_bars(
    counts: Counts,
    categories: Sequence[str],
    series: Sequence[str],
    label: str,
    y_title: str,
) -> str:
    """Vertical bars, one per category, stacked by series, with a y axis and a legend."""
    if not counts:
        return _no_data(label)
    colours = _colours(series)
    totals = {c: sum(counts.get((c, s), 0) for s in series) for c in categories}
    step = _nice_step(max(totals.values()))
    top = step * math.ceil(max(totals.values()) / step)
    left, plot_top, plot_h = 48.0, 12.0, 220.0
    bar_w = max(8.0, min(40.0, 560.0 / len(categories)))
    plot_w = bar_w * len(categories)
    label_room = 8 + 6 * max(len(c) for c in categories)
    width = left + plot_w + 24 + 14 + 7 * max(len(s) for s in series) + 12
    height = max(plot_top + plot_h + label_room, plot_top + 16 * len(series) + 8)
    base = plot_top + plot_h
    body: list[str] = []
    for tick in range(0, top + 1, step):
        y = base - plot_h * tick / top
        body.append(
            f'<line x1="{_fmt(left)}" x2="{_fmt(left + plot_w)}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
            f'stroke="#e5e5e5"/><text x="{_fmt(left - 4)}" y="{_fmt(y + 4)}" '
            f'text-anchor="end">{tick}</text>'
        )
    body.append(
        f'<text transform="translate(12 {_fmt(plot_top + plot_h / 2)}) rotate(-90)" '
        f'text-anchor="middle">{_esc(y_title)}</text>'
    )
    for i, category in enumerate(categories):
        x = left + i * bar_w
        y = base
        for name in series:
            n = counts.get((category, name), 0)
            if n == 0:
                continue
            h = plot_h * n / top
            y -= h
            body.append(
                f'<rect x="{_fmt(x + 1)}" y="{_fmt(y)}" width="{_fmt(bar_w - 2)}" '
                f'height="{_fmt(h)}" fill="{colours[name]}"><title>{_esc(category)}, '
                f"{_esc(name)}: {n}</title></rect>"
            )
        cx = x + bar_w / 2
        body.append(
            f'<text transform="translate({_fmt(cx + 3)} {_fmt(base + 8)}) rotate(-45)" '
            f'text-anchor="end">{_esc(category)}</text>'
        )
    body.append(
        f'<line x1="{_fmt(left)}" x2="{_fmt(left + plot_w)}" y1="{_fmt(base)}" '
        f'y2="{_fmt(base)}" stroke="#333"/>'
    )
    body += _legend(series, colours, left + plot_w + 24, plot_top)
    return _svg(width, height, body, label)


def heat(value: int, biggest: int) -> str:
    """Light grey to dark blue on a square-root scale, so single studies still show."""
    if value <= 0:
        return "#f7f7f7"
    share = math.sqrt(value / biggest)
    low, high = (222, 235, 247), (8, 48, 107)
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    counts: Counts,
    compounds: Sequence[str],
    domains: Sequence[str],
    long_term: dict[str, int] | None = None,
) -> str:
    """Compound rows x domain columns: shade and number give studies, a strip splits by design,
    a dark corner marks a cell with long-term studies (`long_term`: cell key -> studies)."""
    label = "Evidence map: studies per compound and outcome domain, coloured by design"
    if not counts:
        return _no_data(label)
    designs = _vocab_order((s for _, s in counts), vocab.DESIGNS)
    colours = _colours(designs)
    cells = {key for key, _ in counts}
    biggest = max(sum(counts.get((c, d), 0) for d in designs) for c in cells)
    cell_w, cell_h = 64.0, 26.0
    left = 12 + 6.5 * max(len(c) for c in compounds)
    head = 16 + 4.5 * max(len(d) for d in domains)
    width = left + cell_w * len(domains) + 24 + 14 + 7 * max(len(d) for d in designs) + 12
    height = max(head + cell_h * len(compounds) + 8, head + 16 * len(designs) + 8)
    body: list[str] = []
    for j, domain in enumerate(domains):
        cx = left + j * cell_w + cell_w / 2
        body.append(
            f'<text transform="translate({_fmt(cx)} {_fmt(head - 6)}) rotate(-45)">'
            f"{_esc(domain)}</text>"
        )
    for i, compound in enumerate(compounds):
        y = head + i * cell_h
        body.append(
            f'<text x="{_fmt(left - 6)}" y="{_fmt(y + cell_h / 2 + 4)}" '
            f'text-anchor="end">{_esc(compound)}</text>'
        )
        for j, domain in enumerate(domains):
            x = left + j * cell_w
            key = f"{compound}\x1f{domain}"
            total = sum(counts.get((key, d), 0) for d in designs)
            body.append(
                f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(cell_w)}" '
                f'height="{_fmt(cell_h)}" fill="{heat(total, biggest)}" stroke="#ddd"/>'
            )
            if total == 0:
                continue
            seg_x = x + 1
            for design in designs:
                n = counts.get((key, design), 0)
                if n == 0:
                    continue
                w = (cell_w - 2) * n / total
                body.append(
                    f'<rect x="{_fmt(seg_x)}" y="{_fmt(y + cell_h - 6)}" width="{_fmt(w)}" '
                    f'height="5" fill="{colours[design]}"><title>'
                    f"{_esc(compound)} × {_esc(domain)}, {_esc(design)}: {n}</title></rect>"
                )
                seg_x += w
            if (long_term or {}).get(key, 0) > 0:
                body.append(_long_term_corner(x + cell_w, y))
            ink = "#fff" if total * 4 > biggest else "#222"
            body.append(
                f'<text x="{_fmt(x + cell_w / 2)}" y="{_fmt(y + cell_h / 2 + 1)}" '
                f'text-anchor="middle" fill="{ink}">{total}</text>'
            )
    body += _legend(designs, colours, left + cell_w * len(domains) + 24, head)
    return _svg(width, height, body, label)


def _long_term_corner(right: float, top: float) -> str:
    """A dark triangle in a cell's top right corner."""
    return (
        f'<path d="M{_fmt(right - 9)} {_fmt(top)}H{_fmt(right)}V{_fmt(top + 9)}Z" '
        'fill="#111" stroke="none"/>'
    )


# --- page ----------------------------------------------------------------------------------------


def _figure(chart: str, svg: str, caption: str) -> str:
    return f'<figure data-chart="{chart}">{svg}<figcaption>{_esc(caption)}</figcaption></figure>'


def long_term_cells(evidence_map: list[dict[str, Any]]) -> dict[str, int]:
    """(compound, domain) cell key -> its long-term studies, summed over designs."""
    cells: Counter[str] = Counter()
    for row in evidence_map:
        cells[f"{row['compound_id']}\x1f{row['domain']}"] += row["long_term_studies"] or 0
    return dict(cells)


def _evidence_figure(con: duckdb.DuckDBPyConnection) -> str:
    rows = _select(
        con, "evidence_map", ("compound_id", "domain", "design", "studies", "long_term_studies")
    )
    counts = heatmap_counts(rows)
    compounds = sorted({r["compound_id"] for r in rows})
    domains = _vocab_order((r["domain"] for r in rows), vocab.OUTCOME_DOMAINS)
    (found,) = _rows(
        con,
        "SELECT count(*) AS studies, count(*) FILTER (WHERE long_term) AS long_term, "
        "count(max_followup_days) AS known FROM studies",
    )
    caption = (
        "Evidence map: for each compound and outcome domain, the number of studies (shade and "
        "number) and a strip at the foot of the cell split by study design in proportion. A dark "
        "corner marks a cell with long-term studies (studies.long_term: follow-up at or above "
        f"the long-term threshold). {found['long_term']} of {found['studies']} studies are long "
        f"term; the follow-up of {found['known']} is known."
    )
    svg = heatmap(counts, compounds, domains, long_term_cells(rows))
    return _figure("evidence-heatmap", svg, caption)


COMPOSITION_COLUMNS = (
    "composition_id",
    "compound_id",
    "material_class",
    "relation",
    "value_mg_per_g",
    "value_low_mg_per_g",
    "value_high_mg_per_g",
    "source_kind",
)
INTERACTION_COLUMNS = (
    "interaction_id",
    "setting",
    "perpetrator_compound_id",
    "victim_compound_id",
    "enzyme",
    "parameter",
    "relation",
    "value",
    "ci_low",
    "ci_high",
    "ci_level",
    "value_um",
)
SAFETY_COLUMNS = (
    "signal_id",
    "data_source",
    "period_start",
    "period_end",
    "period",
    "outcome",
    "outcome_class",
    "count",
    "denominator",
    "source_kind",
)


@dataclass(frozen=True)
class EvidenceFigure:
    """An evidence table's figure before its chart is drawn (`chart_process.py`)."""

    name: str
    label: str
    chart: Chart | None
    """None: the table has nothing to draw, and the figure says so."""
    caption: str


def _composition_figure(con: duckdb.DuckDBPyConnection) -> EvidenceFigure:
    rows = _select(con, "product_composition", COMPOSITION_COLUMNS)
    marks = evidence_charts.composition_marks(rows)
    label = "Alkaloid content per analyte and material, mg/g on a log scale"
    chart = evidence_charts.composition_chart(marks, PALETTE, label) if marks else None
    caption = (
        "Measured content of each analyte (rows) by material (colour), in mg per g on a log "
        "scale: a line is a reported range, a dot one value, a left-pointing triangle an upper "
        f"bound. {len(rows) - len(marks)} of {len(rows)} measurements are printed per dose, per "
        "mL or as detected only, and are not drawn."
    )
    return EvidenceFigure("composition", label, chart, caption)


def _interactions_figure(con: duckdb.DuckDBPyConnection) -> EvidenceFigure:
    rows = _select(con, "interaction_effects", INTERACTION_COLUMNS)
    panels, undrawn = evidence_charts.interaction_panels(rows)
    label = "Interaction effects: ratios with CI and in-vitro values on log axes"
    chart = evidence_charts.forest_chart(panels, PALETTE, label) if panels else None
    caption = (
        "Interactions: the victim drug's exposure with kratom over without (geometric mean ratio "
        "with its confidence interval where printed) in people and animals, on a log axis with "
        "lines at 1 (no change) and 1.25 (the mark of a weak inhibitor); in-vitro values apart, "
        f"below: predicted AUC ratios and inhibition constants in µM. {undrawn} in-vitro values "
        "in other units (kinact, constants of an extract in µg/mL) are not drawn."
    )
    return EvidenceFigure("interaction-forest", label, chart, caption)


def _safety_figure(con: duckdb.DuckDBPyConnection) -> EvidenceFigure:
    rows = _select(con, "safety_signals", SAFETY_COLUMNS)
    spans = evidence_charts.safety_spans(rows)
    label = "Safety signals by data source and period"
    chart = evidence_charts.safety_chart(spans, PALETTE, label) if spans else None
    undated = sum(s.start is None for s in spans)
    caption = (
        "Published counts of harms by data source (rows) and period, coloured by outcome; the "
        "number is the count, and its printed denominator. One source's counts often nest "
        "(deaths with kratom detected, of which kratom-involved), so they are not added. "
        f"{undated} of {len(spans)} figures print no period."
    )
    return EvidenceFigure("safety-signals", label, chart, caption)


def _evidence_table_figures(con: duckdb.DuckDBPyConnection, charts: ChartProcess) -> list[str]:
    """The composition, interaction and safety figures, their charts drawn by `charts`."""
    figures = [_composition_figure(con), _interactions_figure(con), _safety_figure(con)]
    drawn = iter(charts.draw([f.chart for f in figures if f.chart is not None]))
    return [
        _figure(f.name, next(drawn) if f.chart is not None else _no_data(f.label), f.caption)
        for f in figures
    ]


def _years_figure(con: duckdb.DuckDBPyConnection) -> str:
    counts, undated = year_design_counts(con)
    years = sorted({int(c) for c, _ in counts})
    categories = [str(y) for y in range(years[0], years[-1] + 1)] if years else []
    designs = _vocab_order((s for _, s in counts), vocab.DESIGNS)
    svg = stacked_bars(counts, categories, designs, "Studies by year and design", "studies")
    caption = (
        "Studies by year, stacked by design: registered studies by start date, literature-only "
        f"studies by the year of their earliest publication. {undated} studies have no year."
    )
    return _figure("studies-by-year", svg, caption)


def _status_figure(con: duckdb.DuckDBPyConnection) -> str:
    counts = status_phase_counts(con)
    statuses = sorted({c for c, _ in counts})
    phases = sorted({s for _, s in counts})
    svg = stacked_bars(
        counts, statuses, phases, "Registered studies by status and phase", "registered studies"
    )
    caption = "Registered studies by overall status, stacked by registered phase(s)."
    return _figure("registered-status-phase", svg, caption)


def quarantined_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Records quarantined per table."""
    held = _rows(con, f"SELECT table_name, count(*) AS n FROM {QUARANTINE.name} GROUP BY ALL")
    return {r["table_name"]: r["n"] for r in held}


def _tables_section(manifest: Mapping[str, Any], held: dict[str, int]) -> str:
    tables = table_counts(manifest, held)
    counts: Counts = {}
    for name, rows, quarantined in tables:
        if rows:
            counts[(name, "published")] = rows
        if quarantined:
            counts[(name, "quarantined")] = quarantined
    svg = stacked_bars(
        counts,
        [name for name, _, _ in tables],
        ["published", "quarantined"],
        "Rows and quarantined records per table",
        "rows",
    )
    caption = "Rows published and records quarantined (rejected, with a reason) per table."
    cells = "".join(
        f"<tr><td>{_esc(name)}</td><td>{rows}</td><td>{quarantined}</td></tr>"
        for name, rows, quarantined in tables
    )
    table = (
        "<table><thead><tr><th>table</th><th>rows</th><th>quarantined</th></tr></thead>"
        f"<tbody>{cells}</tbody></table>"
    )
    return _figure("rows-quarantine", svg, caption) + table


TERMS_PER_STUDY = 10
"""Adverse event terms shown per study (most participants affected first); the table has all."""


def adverse_event_table(
    events: list[dict[str, Any]], totals: list[dict[str, Any]], groups: list[dict[str, Any]]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """One study's adverse events by arm: column headers, then (row label, "n/N" cells) rows.

    Columns are the study's event groups, headed by the arm each is tied to (the group's own
    title, marked, when `result_groups` ties it to none); rows are the group totals, then the
    terms that affected most participants.
    """
    ids = sorted({g["group_id"] for g in groups} | {r["event_group_id"] for r in events + totals})
    heads = {g["group_id"]: g for g in groups}
    columns = [
        (heads[i]["arm_label"] or f"{heads[i]['group_title']} (no arm)") if i in heads else i
        for i in ids
    ]

    def cells(found: dict[str, dict[str, Any]]) -> list[str]:
        return [_count_cell(found.get(i)) for i in ids]

    rows = []
    for total_type in vocab.AE_TOTAL_TYPES:
        found = {r["event_group_id"]: r for r in totals if r["total_type"] == total_type}
        if found:
            rows.append((f"any: {total_type.replace('_', ' ')}", cells(found)))
    by_term: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in events:
        by_term.setdefault((row["event_type"], row["term"]), {})[row["event_group_id"]] = row
    ranked = sorted(
        by_term.items(),
        key=lambda item: (-sum(r["affected"] or 0 for r in item[1].values()), item[0]),
    )
    rows += [(f"{kind}: {term}", cells(found)) for (kind, term), found in ranked[:TERMS_PER_STUDY]]
    return columns, rows


def _count_cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    affected = row["affected"] if row["affected"] is not None else row["affected_text"]
    at_risk = row["at_risk"] if row["at_risk"] is not None else row["at_risk_text"]
    return f"{affected if affected is not None else '?'}/{at_risk if at_risk is not None else '?'}"


def _by_study(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows per study_id, in their order: each study's rows found once, not by a scan per study."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["study_id"], []).append(row)
    return found


AE_COUNTS = ("study_id", "event_group_id", "affected", "affected_text", "at_risk", "at_risk_text")


def _posted_rows(
    con: duckdb.DuckDBPyConnection, first: str, last: str
) -> tuple[list[dict[str, Any]], ...]:
    """Adverse events, totals and adverse-event groups of the studies first..last, in file
    order (each file is sorted by study, so DuckDB reads only the row groups of that range)."""
    between = "study_id BETWEEN ? AND ?"
    events = _rows(
        con,
        f"SELECT {', '.join(AE_COUNTS)}, event_type, term FROM adverse_events WHERE {between}",
        first,
        last,
    )
    totals = _rows(
        con,
        f"SELECT {', '.join(AE_COUNTS)}, total_type FROM adverse_event_totals WHERE {between}",
        first,
        last,
    )
    groups = _rows(
        con,
        "SELECT study_id, group_id, group_title, arm_label FROM result_groups "
        f"WHERE group_scope = 'adverse_events' AND {between}",
        first,
        last,
    )
    return events, totals, groups


def _adverse_events_section(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    studies = [
        str(study)
        for (study,) in con.execute(
            "SELECT study_id FROM adverse_events UNION SELECT study_id FROM adverse_event_totals "
            "ORDER BY study_id"
        ).fetchall()
    ]
    if not studies:
        yield "<p>No study in this release posted adverse events.</p>"
        return
    capped = len(studies) > AE_STUDIES_SHOWN
    shown = f"the first {AE_STUDIES_SHOWN} by study id of the " if capped else "the "
    yield (
        f"<p>Participants affected / at risk per arm, for {shown}{len(studies)} studies that "
        f"posted adverse events: group totals, then the {TERMS_PER_STUDY} terms that affected "
        "most participants (the adverse_events table holds every term"
        f"{' and every study' if capped else ''}).</p>"
    )
    studies = studies[:AE_STUDIES_SHOWN]
    for start in range(0, len(studies), STUDIES_PER_QUERY):
        chunk = studies[start : start + STUDIES_PER_QUERY]
        by_study = [_by_study(part) for part in _posted_rows(con, chunk[0], chunk[-1])]
        for study in chunk:
            columns, rows = adverse_event_table(*(part.get(study, []) for part in by_study))
            head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
            body = "".join(
                f"<tr><td>{_esc(label)}</td>"
                + "".join(f"<td>{_esc(c)}</td>" for c in cells)
                + "</tr>"
                for label, cells in rows
            )
            yield (
                f'<table data-study="{_esc(study)}"><caption>{_esc(study)}</caption>'
                f"<thead><tr><th>event</th>{head}</tr></thead><tbody>{body}</tbody></table>"
            )


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:72em;color:#222}"
    "figure{margin:2em 0}figcaption{color:#555;max-width:60em}"
    "svg{max-width:100%;height:auto}"
    "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd}"
    "td+td{text-align:right}caption{text-align:left;font-weight:bold;margin-top:1em}"
)


def _page_parts(
    con: duckdb.DuckDBPyConnection, heading: Mapping[str, Any], charts: ChartProcess
) -> Iterator[str]:
    """The page up to its tables section: what the release's own tables and its heading
    (version, creation time, snapshot) give, the evidence charts drawn by `charts`."""
    (found,) = _rows(con, "SELECT count(*) AS studies FROM studies")
    version = heading.get("version", "")
    snapshot = heading.get("snapshot") or {}
    title = f"Kratom Evidence release {version}"
    yield (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
        f"<p>Snapshot captured {_esc(snapshot.get('captured_at', 'unknown'))}; "
        f"release created {_esc(heading.get('created_at', 'unknown'))}; "
        f"{found['studies']} studies.</p>"
        "<h2>Evidence map</h2>"
    )
    yield _evidence_figure(con)
    yield "<h2>Evidence tables</h2>"
    yield from _evidence_table_figures(con, charts)
    yield "<h2>Studies</h2>"
    yield _years_figure(con)
    yield _status_figure(con)
    yield "<h2>Adverse events per arm</h2>"
    yield from _adverse_events_section(con)
    yield "<h2>Tables</h2>"


def _page_end(manifest: Mapping[str, Any], quarantined: dict[str, int]) -> str:
    """The tables section, from the manifest's rows of every table, and the page's end."""
    return _tables_section(manifest, quarantined) + "</body></html>\n"


def report_parts(folder: Path, manifest: dict[str, Any]) -> Iterator[str]:
    """The release's report page in pieces: four charts and tables, self-contained, same input
    same bytes."""
    with ready_process() as charts:
        con = open_release(folder)
        try:
            yield from _page_parts(con, manifest, charts)
            yield _page_end(manifest, quarantined_rows(con))
        finally:
            con.close()


def render_report(folder: Path, manifest: dict[str, Any]) -> str:
    """The whole report page as one string."""
    return "".join(report_parts(folder, manifest))


def begin_report(folder: Path, heading: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], None]:
    """Write report.html into the release folder up to its tables section, piece by piece,
    from the release's tables and `heading` (the manifest's version, created_at and snapshot);
    return what appends that section given the whole manifest and ends the page.

    The tables section shows every table's rows, the record history's too: the publish step
    writes the rest of the page (the charts, the adverse events) beside that history.
    """
    with ready_process() as charts:  # started first: it imports matplotlib meanwhile
        con = open_release(folder)
        try:
            with open(folder / REPORT_FILE, "w", encoding="utf-8") as page:
                page.writelines(_page_parts(con, heading, charts))
            quarantined = quarantined_rows(con)
        finally:
            con.close()

    def finish(manifest: Mapping[str, Any]) -> None:
        with open(folder / REPORT_FILE, "a", encoding="utf-8") as page:
            page.write(_page_end(manifest, quarantined))

    return finish


def write_report(folder: Path, manifest: dict[str, Any]) -> None:
    """Write report.html into the release folder (before checksums are taken), piece by piece."""
    begin_report(folder, manifest)(manifest)

"""report.html: a static, offline picture of one release for readers who do not run SQL.

The counting charts (evidence map, studies, tables) are hand-written inline SVG: bars and cells
need no plotting library, carry no ids, dates or hash salts, and the same release gives the same
bytes. The evidence charts with log axes (composition, interactions, safety signals) come from
`evidence_charts.py` (matplotlib), pinned to the same bytes there. The page needs no fonts,
scripts or network.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipelines.release import evidence_charts
from schemas import vocab

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


def _rows(folder: Path, table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    """The table's rows (only `columns`), or none when the release has no such file."""
    path = folder / f"{table}.parquet"
    if not path.is_file():
        return []
    return pq.read_table(path, columns=list(columns)).to_pylist()


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


def study_year(study: dict[str, Any], publication_years: dict[str, int | None]) -> int | None:
    """Registered studies by start year; literature-only studies by their earliest paper's year."""
    if study["evidence_source"] == "registry":
        start = study["start_date"]
        return start.year if isinstance(start, date) else None
    return publication_years.get(study["study_id"])


def earliest_publication_years(
    links: list[dict[str, Any]], publications: list[dict[str, Any]]
) -> dict[str, int | None]:
    """study_id -> earliest year among its linked publications."""
    years = {p["publication_id"]: p["year"] for p in publications if p["year"] is not None}
    earliest: dict[str, int | None] = {}
    for link in links:
        year = years.get(link["publication_id"])
        if year is None:
            earliest.setdefault(link["study_id"], None)
            continue
        current = earliest.get(link["study_id"])
        earliest[link["study_id"]] = year if current is None else min(current, year)
    return earliest


def year_design_counts(
    studies: list[dict[str, Any]], publication_years: dict[str, int | None]
) -> tuple[Counts, int]:
    """(year, design) -> studies, and how many studies have no year."""
    counts: Counter[tuple[str, str]] = Counter()
    undated = 0
    for study in studies:
        year = study_year(study, publication_years)
        if year is None:
            undated += 1
        else:
            counts[(str(year), study["design"] or NOT_GIVEN)] += 1
    return dict(counts), undated


def phase_label(phases: list[str] | None) -> str:
    return "+".join(phases) if phases else NOT_GIVEN


def status_phase_counts(studies: list[dict[str, Any]]) -> Counts:
    """(overall_status, phases) -> registered studies."""
    counts: Counter[tuple[str, str]] = Counter()
    for study in studies:
        if study["evidence_source"] == "registry":
            status = study["overall_status"] or NOT_GIVEN
            counts[(status, phase_label(study["phases"]))] += 1
    return dict(counts)


def table_counts(
    manifest: dict[str, Any], quarantine: list[dict[str, Any]]
) -> list[tuple[str, int, int]]:
    """(table, rows published, rows quarantined), tables sorted by name."""
    rows = {name: int(info.get("rows", 0)) for name, info in manifest.get("tables", {}).items()}
    held = Counter(row["table_name"] for row in quarantine)
    return [(name, rows.get(name, 0), held.get(name, 0)) for name in sorted(set(rows) | set(held))]


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


def _evidence_figure(folder: Path) -> str:
    rows = _rows(
        folder, "evidence_map", ("compound_id", "domain", "design", "studies", "long_term_studies")
    )
    counts = heatmap_counts(rows)
    compounds = sorted({r["compound_id"] for r in rows})
    domains = _vocab_order((r["domain"] for r in rows), vocab.OUTCOME_DOMAINS)
    studies = _rows(folder, "studies", ("long_term", "max_followup_days"))
    long_term = sum(bool(s["long_term"]) for s in studies)
    known = sum(s["max_followup_days"] is not None for s in studies)
    caption = (
        "Evidence map: for each compound and outcome domain, the number of studies (shade and "
        "number) and a strip at the foot of the cell split by study design in proportion. A dark "
        "corner marks a cell with long-term studies (studies.long_term: follow-up at or above "
        f"the long-term threshold). {long_term} of {len(studies)} studies are long term; the "
        f"follow-up of {known} is known."
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


def _composition_figure(folder: Path) -> str:
    rows = _rows(folder, "product_composition", COMPOSITION_COLUMNS)
    marks = evidence_charts.composition_marks(rows)
    label = "Alkaloid content per analyte and material, mg/g on a log scale"
    svg = evidence_charts.composition_chart(marks, PALETTE, label) if marks else _no_data(label)
    caption = (
        "Measured content of each analyte (rows) by material (colour), in mg per g on a log "
        "scale: a line is a reported range, a dot one value, a left-pointing triangle an upper "
        f"bound. {len(rows) - len(marks)} of {len(rows)} measurements are printed per dose, per "
        "mL or as detected only, and are not drawn."
    )
    return _figure("composition", svg, caption)


def _interactions_figure(folder: Path) -> str:
    rows = _rows(folder, "interaction_effects", INTERACTION_COLUMNS)
    panels, undrawn = evidence_charts.interaction_panels(rows)
    label = "Interaction effects: ratios with CI and in-vitro values on log axes"
    svg = evidence_charts.forest_chart(panels, PALETTE, label) if panels else _no_data(label)
    caption = (
        "Interactions: the victim drug's exposure with kratom over without (geometric mean ratio "
        "with its confidence interval where printed) in people and animals, on a log axis with "
        "lines at 1 (no change) and 1.25 (the mark of a weak inhibitor); in-vitro values apart, "
        f"below: predicted AUC ratios and inhibition constants in µM. {undrawn} in-vitro values "
        "in other units (kinact, constants of an extract in µg/mL) are not drawn."
    )
    return _figure("interaction-forest", svg, caption)


def _safety_figure(folder: Path) -> str:
    rows = _rows(folder, "safety_signals", SAFETY_COLUMNS)
    spans = evidence_charts.safety_spans(rows)
    label = "Safety signals by data source and period"
    svg = evidence_charts.safety_chart(spans, PALETTE, label) if spans else _no_data(label)
    undated = sum(s.start is None for s in spans)
    caption = (
        "Published counts of harms by data source (rows) and period, coloured by outcome; the "
        "number is the count, and its printed denominator. One source's counts often nest "
        "(deaths with kratom detected, of which kratom-involved), so they are not added. "
        f"{undated} of {len(spans)} figures print no period."
    )
    return _figure("safety-signals", svg, caption)


def _years_figure(folder: Path, studies: list[dict[str, Any]]) -> str:
    links = _rows(folder, "study_publications", ("study_id", "publication_id")) + [
        {"study_id": s["study_id"], "publication_id": s["source_publication_id"]}
        for s in studies
        if s["source_publication_id"]
    ]
    publications = _rows(folder, "publications", ("publication_id", "year"))
    counts, undated = year_design_counts(studies, earliest_publication_years(links, publications))
    years = sorted({int(c) for c, _ in counts})
    categories = [str(y) for y in range(years[0], years[-1] + 1)] if years else []
    designs = _vocab_order((s for _, s in counts), vocab.DESIGNS)
    svg = stacked_bars(counts, categories, designs, "Studies by year and design", "studies")
    caption = (
        "Studies by year, stacked by design: registered studies by start date, literature-only "
        f"studies by the year of their earliest publication. {undated} studies have no year."
    )
    return _figure("studies-by-year", svg, caption)


def _status_figure(studies: list[dict[str, Any]]) -> str:
    counts = status_phase_counts(studies)
    statuses = sorted({c for c, _ in counts})
    phases = sorted({s for _, s in counts})
    svg = stacked_bars(
        counts, statuses, phases, "Registered studies by status and phase", "registered studies"
    )
    caption = "Registered studies by overall status, stacked by registered phase(s)."
    return _figure("registered-status-phase", svg, caption)


def _tables_section(manifest: dict[str, Any], folder: Path) -> str:
    quarantine = _rows(folder, "quarantine", ("table_name",))
    tables = table_counts(manifest, quarantine)
    counts: Counts = {}
    for name, rows, held in tables:
        if rows:
            counts[(name, "published")] = rows
        if held:
            counts[(name, "quarantined")] = held
    svg = stacked_bars(
        counts,
        [name for name, _, _ in tables],
        ["published", "quarantined"],
        "Rows and quarantined records per table",
        "rows",
    )
    caption = "Rows published and records quarantined (rejected, with a reason) per table."
    cells = "".join(
        f"<tr><td>{_esc(name)}</td><td>{rows}</td><td>{held}</td></tr>"
        for name, rows, held in tables
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


def _adverse_events_section(folder: Path) -> str:
    counts = ("study_id", "event_group_id", "affected", "affected_text", "at_risk", "at_risk_text")
    events = _rows(folder, "adverse_events", (*counts, "event_type", "term"))
    totals = _rows(folder, "adverse_event_totals", (*counts, "total_type"))
    groups = [
        g
        for g in _rows(
            folder,
            "result_groups",
            ("study_id", "group_scope", "group_id", "group_title", "arm_label"),
        )
        if g["group_scope"] == "adverse_events"
    ]
    studies = sorted({r["study_id"] for r in events + totals})
    if not studies:
        return "<p>No study in this release posted adverse events.</p>"
    parts = [
        f"<p>Participants affected / at risk per arm, for the {len(studies)} studies that posted "
        f"adverse events: group totals, then the {TERMS_PER_STUDY} terms that affected most "
        "participants (the adverse_events table holds every term).</p>"
    ]
    by_study = [_by_study(part) for part in (events, totals, groups)]
    for study in studies:
        columns, rows = adverse_event_table(*(part.get(study, []) for part in by_study))
        head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
        body = "".join(
            f"<tr><td>{_esc(label)}</td>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>"
            for label, cells in rows
        )
        parts.append(
            f'<table data-study="{_esc(study)}"><caption>{_esc(study)}</caption>'
            f"<thead><tr><th>event</th>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    return "".join(parts)


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:72em;color:#222}"
    "figure{margin:2em 0}figcaption{color:#555;max-width:60em}"
    "svg{max-width:100%;height:auto}"
    "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd}"
    "td+td{text-align:right}caption{text-align:left;font-weight:bold;margin-top:1em}"
)


def render_report(folder: Path, manifest: dict[str, Any]) -> str:
    """The release's report page: four charts and tables, self-contained, same input same bytes."""
    studies = _rows(
        folder,
        "studies",
        (
            "study_id",
            "evidence_source",
            "start_date",
            "design",
            "overall_status",
            "phases",
            "source_publication_id",
        ),
    )
    version = manifest.get("version", "")
    snapshot = manifest.get("snapshot") or {}
    title = f"Kratom Evidence release {version}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
        f"<p>Snapshot captured {_esc(snapshot.get('captured_at', 'unknown'))}; "
        f"release created {_esc(manifest.get('created_at', 'unknown'))}; "
        f"{len(studies)} studies.</p>"
        "<h2>Evidence map</h2>"
        + _evidence_figure(folder)
        + "<h2>Evidence tables</h2>"
        + _composition_figure(folder)
        + _interactions_figure(folder)
        + _safety_figure(folder)
        + "<h2>Studies</h2>"
        + _years_figure(folder, studies)
        + _status_figure(studies)
        + "<h2>Adverse events per arm</h2>"
        + _adverse_events_section(folder)
        + "<h2>Tables</h2>"
        + _tables_section(manifest, folder)
        + "</body></html>\n"
    )


def write_report(folder: Path, manifest: dict[str, Any]) -> None:
    """Write report.html into the release folder (before checksums are taken)."""
    (folder / REPORT_FILE).write_text(render_report(folder, manifest), encoding="utf-8")

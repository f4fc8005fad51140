"""report.html: built from a real release, drawn by a real headless Chromium, offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import paths
from pipelines.release.report import (
    REPORT_FILE,
    open_release,
    render_report,
    status_phase_counts,
    table_counts,
    write_report,
    year_design_counts,
)

CHROMIUM = Path("/usr/bin/chromium")
CHARTS = (
    "evidence-heatmap",
    "composition",
    "interaction-forest",
    "safety-signals",
    "studies-by-year",
    "registered-status-phase",
    "rows-quarantine",
)
PROBE = """<script>
// Test-only probe: measure what the browser actually laid out in each chart.
for (const fig of document.querySelectorAll("figure[data-chart]")) {
  const svg = fig.querySelector("svg");
  const marks = [...svg.querySelectorAll("rect, path, line, g")].filter((el) => {
    const box = el.getBBox();
    return box.width > 0 || box.height > 0;
  });
  const box = svg.getBoundingClientRect();
  fig.dataset.drawn = marks.length;
  fig.dataset.data = marks.filter((el) => el.querySelector(":scope > title")).length;
  fig.dataset.size = `${Math.round(box.width)}x${Math.round(box.height)}`;
  fig.dataset.svgns = String(svg.namespaceURI === "http://www.w3.org/2000/svg");
}
document.body.dataset.resources = performance.getEntriesByType("resource").length;
</script>"""


@pytest.fixture(scope="module")
def release(
    tmp_path_factory: pytest.TempPathFactory, bundled_build: Path
) -> tuple[Path, dict[str, Any]]:
    """One release of the bundled snapshot (a copy: a test rewrites its report): its folder and
    manifest."""
    data_dir = Path(shutil.copytree(bundled_build, tmp_path_factory.mktemp("report") / "data"))
    (folder,) = (data_dir / "releases").iterdir()
    return folder, json.loads((folder / "manifest.json").read_text())


def chromium_dom(page: Path, profile: Path) -> str:
    """The DOM after Chromium loaded and laid out `page`, with networking features off."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing in CI: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI installs it")
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


class Figures(HTMLParser):
    """Collect each figure's data-* attributes and the tags inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, Any]] = {}
        self.current: str | None = None
        self.body: dict[str, str | None] = {}
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in {"src", "href"} and v]
        if tag == "body":
            self.body = values
        if tag == "figure":
            self.current = str(values["data-chart"])
            self.figures[self.current] = {"attrs": values, "tags": [], "text": ""}
        elif self.current is not None:
            self.figures[self.current]["tags"].append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.figures[self.current]["text"] += data


def test_report_draws_every_chart_offline_in_headless_chromium(
    release: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, manifest = release
    write_report(folder, manifest)
    report = (folder / REPORT_FILE).read_text(encoding="utf-8")
    assert "<script" not in report
    assert not re.search(r"https?://", report), "the page must not name any web resource"
    probed = tmp_path / "probed.html"
    probed.write_text(report.replace("</body>", PROBE + "</body>"), encoding="utf-8")

    parser = Figures()
    parser.feed(chromium_dom(probed, tmp_path / "profile"))

    assert sorted(parser.figures) == sorted(CHARTS)
    assert parser.body["data-resources"] == "0", "the page loaded an external resource"
    assert parser.urls == []
    con = duckdb.connect()
    studies, quarantine = folder / "studies.parquet", folder / "quarantine.parquet"
    (status_phase_pairs,) = con.sql(
        f"select count(distinct (coalesce(overall_status, ''), phases)) from '{studies}' "
        "where evidence_source = 'registry'"
    ).fetchone() or (0,)
    (quarantined_tables,) = con.sql(
        f"select count(distinct table_name) from '{quarantine}'"
    ).fetchone() or (0,)
    data_marks = {
        # One coloured mark per evidence_map row, per (status, phases) pair, per non-zero count,
        # per measurement with a content in mg/g, per interaction value on a log axis (a ratio, or
        # a constant in µM), per safety figure.
        "evidence-heatmap": pq.read_table(folder / "evidence_map.parquet").num_rows,
        "composition": _count(
            con,
            folder / "product_composition.parquet",
            "coalesce(value_mg_per_g, value_high_mg_per_g) is not null",
        ),
        "interaction-forest": _count(
            con,
            folder / "interaction_effects.parquet",
            "(parameter like '%ratio' and value is not null) or value_um is not null",
        ),
        "safety-signals": pq.read_table(folder / "safety_signals.parquet").num_rows,
        "registered-status-phase": status_phase_pairs,
        "rows-quarantine": sum(info["rows"] > 0 for info in manifest["tables"].values())
        + quarantined_tables,
    }
    for chart, figure in parser.figures.items():
        attrs = figure["attrs"]
        assert "svg" in figure["tags"] and "figcaption" in figure["tags"], chart
        assert attrs["data-svgns"] == "true", f"{chart} was not parsed as SVG"
        width, height = (int(n) for n in str(attrs["data-size"]).split("x"))
        assert width > 200 and height > 100, f"{chart} laid out at {attrs['data-size']}"
        drawn = int(str(attrs["data-data"]))
        assert drawn == data_marks.get(chart, drawn) and drawn >= 5, f"{chart}: {drawn} marks"
        assert int(str(attrs["data-drawn"])) > drawn, f"{chart} has no axes, grid or legend"
        assert "no data" not in figure["text"], chart


def _count(con: duckdb.DuckDBPyConnection, parquet: Path, where: str) -> int:
    (n,) = con.sql(f"select count(*) from '{parquet}' where {where}").fetchone() or (0,)
    return int(n)


def test_report_of_the_bundled_release_counts_what_the_tables_hold(
    release: tuple[Path, dict[str, Any]],
) -> None:
    folder, manifest = release
    report = render_report(folder, manifest)
    studies = pq.read_table(folder / "studies.parquet").num_rows
    assert f"{studies} studies." in report
    for name, info in manifest["tables"].items():
        assert f"<tr><td>{name}</td><td>{info['rows']}</td>" in report
    registered = pq.read_table(
        folder / "studies.parquet", filters=[("evidence_source", "=", "registry")]
    ).num_rows
    status = report.split('data-chart="registered-status-phase"')[1].split("</figure>")[0]
    bars = re.findall(r"<title>([^<]+): (\d+)</title></rect>", status)
    assert sum(int(n) for _, n in bars) == registered


def test_evidence_captions_count_what_the_charts_leave_out(
    release: tuple[Path, dict[str, Any]],
) -> None:
    folder, manifest = release
    report = render_report(folder, manifest)
    con = duckdb.connect()
    composition = folder / "product_composition.parquet"
    total = _count(con, composition, "true")
    per_dose = _count(con, composition, "coalesce(value_mg_per_g, value_high_mg_per_g) is null")
    assert f"{per_dose} of {total} measurements are printed per dose, per mL" in report
    other_units = _count(
        con,
        folder / "interaction_effects.parquet",
        "not (parameter like '%ratio' and value is not null) and value_um is null",
    )
    assert f"{other_units} in-vitro values in other units" in report
    signals = folder / "safety_signals.parquet"
    undated = _count(con, signals, "period_start is null")
    assert f"{undated} of {_count(con, signals, 'true')} figures print no period." in report
    studies = folder / "studies.parquet"
    long_term, known = (
        _count(con, studies, "long_term"),
        _count(con, studies, "max_followup_days is not null"),
    )
    n = _count(con, studies, "true")
    assert f"{long_term} of {n} studies are long term; the follow-up of {known} is known." in report


def test_report_is_the_same_bytes_in_another_process_and_ids_are_unique(
    release: tuple[Path, dict[str, Any]],
) -> None:
    """matplotlib salts its SVG ids per process unless told otherwise: pinned, they repeat."""
    folder, manifest = release
    report = render_report(folder, manifest)
    assert _rendered_elsewhere(folder, "sys.stdout.write(page)") == report
    ids = re.findall(r' id="([^"]+)"', report)
    assert ids and len(ids) == len(set(ids))


def test_the_report_draws_its_charts_without_importing_matplotlib_here(
    release: tuple[Path, dict[str, Any]],
) -> None:
    """The evidence charts come from a chart process: the build's own process never pays for
    matplotlib (bench/README.md, h10b)."""
    folder, _ = release
    shown = "print(page.count('<g class=\"mark\">'), 'matplotlib' in sys.modules)"
    marks, imported = _rendered_elsewhere(folder, shown).split()
    assert int(marks) > 0 and imported == "False"


def _rendered_elsewhere(folder: Path, then: str) -> str:
    """What a fresh Python process prints when it renders `folder`'s report into `page` and
    then runs `then`."""
    script = (
        "import json, sys; from pathlib import Path; "
        "from pipelines.release.report import render_report; f = Path(sys.argv[1]); "
        f"page = render_report(f, json.loads((f / 'manifest.json').read_text())); {then}"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        cwd=paths.PROJECT_ROOT,
    )
    return done.stdout


def test_literature_studies_are_dated_by_their_own_paper(
    release: tuple[Path, dict[str, Any]],
) -> None:
    """studies.source_publication_id gives a literature-only study its year (not a link)."""
    folder, manifest = release
    (undated,) = duckdb.sql(
        f"select count(*) from '{folder / 'studies.parquet'}' s "
        f"left join '{folder / 'publications.parquet'}' p "
        "on p.publication_id = s.source_publication_id "
        "where (s.evidence_source = 'registry' and s.start_date is null) "
        "or (s.evidence_source = 'literature' and p.year is null)"
    ).fetchone() or (0,)
    report = render_report(folder, manifest)
    assert f"{undated} studies have no year." in report


def test_report_is_byte_identical_for_the_same_release(
    release: tuple[Path, dict[str, Any]],
) -> None:
    folder, manifest = release
    assert render_report(folder, manifest) == render_report(folder, manifest)


def test_empty_release_draws_every_figure_saying_no_data(tmp_path: Path) -> None:
    """A release folder with no tables at all: the page still has all four charts."""
    report = render_report(tmp_path, {"version": "2026.01.01", "tables": {}})
    parser = Figures()
    parser.feed(report)
    assert sorted(parser.figures) == sorted(CHARTS)
    for chart, figure in parser.figures.items():
        assert "svg" in figure["tags"] and "rect" in figure["tags"], chart
        assert "no data" in figure["text"], chart


def study_row(study_id: str, source: str = "registry", **values: Any) -> dict[str, Any]:
    row = {
        "study_id": study_id,
        "evidence_source": source,
        "start_date": None,
        "design": "rct",
        "overall_status": None,
        "phases": None,
        "source_publication_id": None,
    }
    return {**row, **values}


STUDY_COLUMNS = pa.schema(
    [
        ("study_id", pa.string()),
        ("evidence_source", pa.string()),
        ("start_date", pa.date32()),
        ("design", pa.string()),
        ("overall_status", pa.string()),
        ("phases", pa.list_(pa.string())),
        ("source_publication_id", pa.string()),
    ]
)


def small_release(folder: Path, **tables: pa.Table) -> duckdb.DuckDBPyConnection:
    """A release folder holding only the given tables, opened as the report reads it."""
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return open_release(folder)


def test_years_come_from_start_date_or_earliest_publication(tmp_path: Path) -> None:
    studies = [
        study_row("NCT00000001", start_date=date(2018, 1, 23)),
        study_row("NCT00000002"),
        study_row("PMID:1", "literature"),
        study_row("PMID:3", "literature", design=None),
        study_row("PMID:4", "literature", source_publication_id="PMID:2"),
    ]
    con = small_release(
        tmp_path,
        studies=pa.Table.from_pylist(studies, schema=STUDY_COLUMNS),
        study_publications=pa.table(
            {
                "study_id": ["PMID:1", "PMID:1", "PMID:3"],
                "publication_id": ["PMID:1", "PMID:2", "PMID:9"],
            }
        ),
        publications=pa.table({"publication_id": ["PMID:1", "PMID:2"], "year": [2021, 2019]}),
    )
    assert year_design_counts(con) == ({("2018", "rct"): 1, ("2019", "rct"): 2}, 2)


def test_status_phase_counts_only_registered_studies(tmp_path: Path) -> None:
    studies = [
        study_row("NCT1", overall_status="COMPLETED", phases=["PHASE1"]),
        study_row("NCT2", overall_status="COMPLETED", phases=["PHASE1"]),
        study_row("NCT3", phases=["PHASE1", "PHASE2"]),
        study_row("NCT4", overall_status="RECRUITING", phases=[]),
        study_row("PMID:5", "literature"),
    ]
    con = small_release(tmp_path, studies=pa.Table.from_pylist(studies, schema=STUDY_COLUMNS))
    assert status_phase_counts(con) == {
        ("COMPLETED", "PHASE1"): 2,
        ("not given", "PHASE1+PHASE2"): 1,
        ("RECRUITING", "not given"): 1,
    }


def test_table_counts_joins_manifest_rows_and_quarantine() -> None:
    manifest = {"tables": {"studies": {"rows": 3}, "outcomes": {"rows": 0}}}
    assert table_counts(manifest, {"studies": 2, "x": 1}) == [
        ("outcomes", 0, 0),
        ("studies", 3, 2),
        ("x", 0, 1),
    ]

"""A hit count a source announces but does not deliver is a warning, not a failure: the real CLI
refresh against the emulator, whose ClinicalTrials.gov answer for one query announces two
studies more than it serves (`totalCount`) and whose Crossref answer for one query announces
three works more (`total-results`), publishes, names each mismatch in search_strategy.json and
prints it on stderr. A Crossref query a documented bound stops early sees fewer works than
announced on purpose: no warning, and search_strategy.json says how many were left and why."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.devtools.emulator import Reply, make_server, running
from pipelines.refresh import Credentials, HttpSettings, parse_base_urls, refresh
from tests.conftest import EMULATOR_RATE_SCALE

pytestmark = pytest.mark.slow

FIRST_KRATOM_PAGE = "/clinicaltrials/api/v2/studies?query.term=kratom&"
FIRST_CROSSREF_KRATOM_PAGE = "/crossref/works?query.bibliographic=kratom&"


def test_total_count_mismatch_is_a_warning_in_the_strategy_and_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_server(paths.BUNDLED_SNAPSHOT, rate_scale=EMULATOR_RATE_SCALE)
    answer = server.api.answer

    def announcing_more(target: str, arrived: float | None = None) -> Reply:
        reply = answer(target, arrived)
        if target.startswith(FIRST_KRATOM_PAGE) and "countTotal=true" in target:
            doc = json.loads(reply.body)
            doc["totalCount"] += 2
            return Reply(reply.status, json.dumps(doc).encode(), reply.content_type)
        if target.startswith(FIRST_CROSSREF_KRATOM_PAGE) and "cursor=%2A" in target:
            doc = json.loads(reply.body)
            doc["message"]["total-results"] += 3
            return Reply(reply.status, json.dumps(doc).encode(), reply.content_type, reply.headers)
        return reply

    server.api.answer = announcing_more  # type: ignore[method-assign]
    with running(server):
        code = main(
            [
                "refresh",
                "--data-dir",
                str(tmp_path),
                "--base-url",
                f"all={server.base_url}",
                "--pace",
                "0",
                "--no-progress",
            ]
        )

    assert code == 0
    (folder,) = sorted((tmp_path / "snapshots").iterdir())
    strategy = json.loads((folder / "search_strategy.json").read_text())
    crossref = {q["query"]: q for q in strategy["sources"]["crossref"]["queries"]}["kratom"]
    assert crossref["stopped"] == "end of results" and crossref["unseen"] == 0
    seen = crossref["hits"]
    expected = {
        "clinicaltrials": "query 'kratom': totalCount announced 12, 10 recorded",
        "crossref": f"query 'kratom': total-results announced {seen + 3}, {seen} recorded",
    }
    assert crossref["announced"] == seen + 3
    err = capsys.readouterr().err.splitlines()
    for source, warning in expected.items():
        assert f"kratom-evidence: warning: {source}: {warning}" in err
    warned = {n: s["warnings"] for n, s in strategy["sources"].items() if s["warnings"]}
    assert warned == {source: [warning] for source, warning in expected.items()}
    assert any((tmp_path / "releases").iterdir())


def test_a_bound_that_stops_crossref_early_is_the_stated_reason_not_a_warning(
    tmp_path: Path,
) -> None:
    """One page of 5 works per query (the page cap of a copy of search_bounds.csv) against the
    bundled snapshot's Crossref works: 'kratom' announces more than one page holds."""
    reference = tmp_path / "reference"
    shutil.copytree(paths.REFERENCE_DIR, reference)
    bounds = reference / "search_bounds.csv"
    with bounds.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["source"] == "crossref":
            row["max_pages"], row["min_score_share"] = "1", "0"
    with bounds.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    with running(make_server(paths.BUNDLED_SNAPSHOT, rate_scale=EMULATOR_RATE_SCALE)) as server:
        result = refresh(
            tmp_path / "data",
            parse_base_urls([f"all={server.base_url}"]),
            Credentials(email="bounds@example.org"),
            datetime.now(UTC),
            settings=HttpSettings(pace=0, backoff_base=0.01, page_size=5),
            reference_dir=reference,
            show_progress=False,
        )

    strategy = json.loads((result.snapshot_dir / "search_strategy.json").read_text())
    queries = {q["query"]: q for q in strategy["sources"]["crossref"]["queries"]}
    kratom = queries["kratom"]
    assert kratom["stopped"] == "page cap (1 pages)" and kratom["pages"] == 1
    assert kratom["hits"] == 5 and kratom["announced"] > 5
    assert kratom["unseen"] == kratom["announced"] - 5
    assert result.outcomes["crossref"].warnings == []
    assert strategy["sources"]["crossref"]["warnings"] == []

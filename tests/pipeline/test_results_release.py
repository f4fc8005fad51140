"""Posted results travel the whole way: v2 resultsSection → outcome_results in a validated release.

The bundled snapshot has no posted results (the facts give no result numbers), so these builds
read snapshots that do: the benchmark's synthetic studies (always) and the real ClinicalTrials.gov
samples in ../shared (when present). The expected row counts are counted here straight from the
JSON, independently of the parser.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipelines.cli import main

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CTGOV_SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "ctgov"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_ctgov", REPO_ROOT / "bench" / "generate_ctgov.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _studies(snapshot: Path) -> list[dict[str, Any]]:
    studies = []
    for path in sorted((snapshot / "clinicaltrials").glob("*.json")):
        body = json.loads(path.read_bytes())
        studies += body.get("studies", [body])
    return studies


def _result_cells(study: dict[str, Any]) -> int:
    """Measurements of every outcome-measure table plus one per adverse-event group statistic."""
    results = study.get("resultsSection") or {}
    measures = (results.get("outcomeMeasuresModule") or {}).get("outcomeMeasures") or []
    cells = sum(
        len(category.get("measurements") or [])
        for measure in measures
        for klass in measure.get("classes") or []
        for category in klass.get("categories") or []
    )
    adverse = results.get("adverseEventsModule") or {}
    events = (adverse.get("seriousEvents") or []) + (adverse.get("otherEvents") or [])
    return cells + sum(len(event.get("stats") or []) for event in events)


def _build_and_validate(snapshot: Path, data_dir: Path) -> Path:
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    (release,) = (p for p in (data_dir / "releases").iterdir() if not p.name.startswith("."))
    assert main(["validate", str(release)]) == 0
    return release


def _published_results(release: Path) -> tuple[int, int]:
    """Rows in outcome_results.parquet, and outcome_results rows sent to quarantine."""
    published = pq.read_table(release / "outcome_results.parquet").num_rows
    quarantine = pq.read_table(release / "quarantine.parquet", columns=["table_name"])
    quarantined = quarantine.column("table_name").to_pylist().count("outcome_results")
    return published, quarantined


def test_synthetic_results_are_published_cell_for_cell(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    _generator().write_snapshot(snapshot, 60, seed=3)
    expected = sum(_result_cells(study) for study in _studies(snapshot))
    assert expected > 100, "the generator should give a third of the studies posted results"

    release = _build_and_validate(snapshot, tmp_path / "data")

    assert _published_results(release) == (expected, 0)
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["tables"]["outcome_results"]["rows"] == expected


def test_real_sample_results_are_published_or_quarantined_with_a_reason(tmp_path: Path) -> None:
    if not CTGOV_SAMPLES.is_dir():
        pytest.skip("../shared/samples/ctgov is not present")
    snapshot = tmp_path / "snapshot"
    shutil.copytree(CTGOV_SAMPLES, snapshot / "clinicaltrials")
    (snapshot / "SNAPSHOT.json").write_text(
        json.dumps({"captured_at": "2026-11-20", "topic": "kratom", "method": "recorded"})
    )
    expected = sum(_result_cells(study) for study in _studies(snapshot))
    assert expected > 0

    release = _build_and_validate(snapshot, tmp_path / "data")

    published, quarantined = _published_results(release)
    assert published > 0
    assert published + quarantined == expected

"""Changing a reference vocabulary and rebuilding the same snapshot publishes `.1` with its changes.

The vocabularies are always read from the project's own `data/reference/`, so the
test copies the project's code and data into a temporary checkout, edits a vocabulary there the
way a curator would, and runs the real CLI in that checkout on a copy of the run's shared build
of the bundled snapshot (the release the unedited checkout would publish: same inputs).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import paths

pytestmark = pytest.mark.slow

BASE = "2026.11.25"
DROPPED_INSTRUMENT = "COWS"


def _checkout(target: Path) -> Path:
    """A copy of the code, schemas, vocabularies and bundled snapshot: a project of its own."""
    for part in ("pipelines", "schemas", "data/reference", "data/snapshot"):
        shutil.copytree(
            paths.PROJECT_ROOT / part,
            target / part,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return target


def _build(project: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "build", "--data-dir", str(data_dir)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _drop_instrument(reference_dir: Path, instrument: str) -> None:
    path = reference_dir / "outcome_instruments.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = [row for row in reader if row["instrument"] != instrument]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_vocabulary_change_publishes_the_next_suffix_with_its_changes(
    tmp_path: Path, bundled_build: Path
) -> None:
    project = _checkout(tmp_path / "project")
    data_dir = Path(shutil.copytree(bundled_build, tmp_path / "data"))
    releases = data_dir / "releases"
    outcomes = pq.read_table(releases / BASE / "outcomes.parquet").to_pylist()
    scored = sorted(r["outcome_id"] for r in outcomes if r["instrument"] == DROPPED_INSTRUMENT)
    assert scored, "the bundled release must have outcomes measured with COWS for this test"

    _drop_instrument(project / "data" / "reference", DROPPED_INSTRUMENT)
    second = _build(project, data_dir)
    assert second.returncode == 0, second.stderr

    version = f"{BASE}.1"
    assert sorted(p.name for p in releases.iterdir()) == [BASE, version]
    manifest = json.loads((releases / version / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["previous_version"] == BASE
    after = pq.read_table(releases / version / "outcomes.parquet").to_pylist()
    assert not any(r["instrument"] == DROPPED_INSTRUMENT for r in after)

    changes = (releases / version / "CHANGES.md").read_text(encoding="utf-8")
    assert f"Compared with release {BASE}," in changes
    assert "| studies | 0 | 0 | 0 |" in changes
    # History tables are counted in the summary, never listed row by row again.
    assert "| record_versions |" in changes and "\n## record_versions\n" not in changes
    outcome_section = changes.split("\n## outcomes\n", 1)[1].split("\n## ", 1)[0]
    changed = {
        line.split("`")[1]: line.split(": ", 1)[1].split(", ")
        for line in outcome_section.splitlines()
        if line.startswith("- `")
    }
    assert sorted(changed) == scored
    assert all("instrument" in columns for columns in changed.values())

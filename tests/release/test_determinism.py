"""Deterministic builds: one snapshot, two fresh data dirs, byte-identical Parquet files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import paths
from schemas import RELEASED
from tests.release._snapshots import fingerprint


def _other_hash_seed() -> str:
    """A hash seed unlike the test process's (random unless PYTHONHASHSEED fixes it)."""
    return "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"


def _build(data_dir: Path, hash_seed: str) -> Path:
    """Build in its own interpreter; a different hash seed changes set and dict-of-str order."""
    subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "build", "--data-dir", str(data_dir)],
        cwd=paths.PROJECT_ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        check=True,
        capture_output=True,
    )
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    return folder


@pytest.mark.slow
def test_two_builds_of_one_snapshot_give_byte_identical_parquet_files(
    tmp_path: Path, bundled_build: Path
) -> None:
    """The run's shared build (made in a test process, under its hash seed) against a CLI build
    in a fresh interpreter under another seed."""
    (shared,) = [p for p in (bundled_build / "releases").iterdir() if not p.name.startswith(".")]
    folders = [shared, _build(tmp_path / "second", _other_hash_seed())]
    first, second = (
        {name: sha for name, sha in fingerprint(folder).items() if name.endswith(".parquet")}
        for folder in folders
    )
    assert len(first) == len(RELEASED)
    assert first == second
    manifests = [json.loads((f / "manifest.json").read_text()) for f in folders]
    assert manifests[0]["tables"] == manifests[1]["tables"]
    assert manifests[0]["accounting"] == manifests[1]["accounting"]

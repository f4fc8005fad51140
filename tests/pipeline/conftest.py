"""A release built once from the bundled snapshot, shared by the pipeline tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bundled_release(tmp_path_factory: pytest.TempPathFactory, bundled_build: Path) -> Path:
    """Data dir holding one release of data/snapshot, built by the build service (this worker's
    copy of the run's one build)."""
    return Path(shutil.copytree(bundled_build, tmp_path_factory.mktemp("bundled") / "data"))


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME of the test's own, telemetry off: the build service records its runs there."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home

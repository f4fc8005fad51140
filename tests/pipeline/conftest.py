"""A release built once from the bundled snapshot, shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import paths
from pipelines.build import build
from pipelines.release.publish import DataDir


@pytest.fixture(scope="session")
def bundled_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data dir holding one release of data/snapshot, built by the build service."""
    data_dir = tmp_path_factory.mktemp("data")
    published = build(paths.BUNDLED_SNAPSHOT, DataDir(data_dir), created_at="2026-11-25T00:00:00Z")
    assert published.version == "2026.11.25"
    return data_dir

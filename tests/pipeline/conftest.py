"""A release built once from the bundled snapshot, shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import paths
from pipelines.cli import main


@pytest.fixture(scope="session")
def bundled_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data dir holding one release of data/snapshot."""
    data_dir = tmp_path_factory.mktemp("data")
    assert (
        main(["build", "--snapshot", str(paths.BUNDLED_SNAPSHOT), "--data-dir", str(data_dir)]) == 0
    )
    return data_dir

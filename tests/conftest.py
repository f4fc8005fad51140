"""What makes the suite fast on two workers: one shared build, and the slow files first.

A build of data/snapshot costs seconds of CPU; many test files need one only as their starting
point. `bundled_build` builds it once per run, shared by the xdist workers (the first to need it
builds, the other waits on a lock); each user copies the data dir and works in its copy.
Copies are true data dirs: the lake follows its folder (tests/release/test_moved_data_dir.py).

Files that hold `slow` tests are collected first, so with `--dist loadfile` and
`--no-loadscope-reorder` (pyproject addopts) the long files start early and the short ones fill
the end of the run on both workers.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.build import build
from pipelines.release.publish import DataDir

CREATED_AT = "2026-11-25T00:00:00Z"
BUNDLED_VERSION = "2026.11.25"
EMULATOR_RATE_SCALE = 20
"""The emulator's requests-a-second limits (Crossref's, NCBI's) times this, kept and announced
alike, in tests that do not test politeness: a refresh of the bundled snapshot waited about
9 s on Crossref's public pool (one list request a second). The tests of the limits themselves
(test_politeness, test_emulator_crossref, test_emulator_ncbi_rate) keep the service's."""


def _run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of this run that every xdist worker of it sees (the workers' common parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def bundled_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data dir holding one release of data/snapshot, built once per run. Never write into it:
    copy it (shutil.copytree) first."""
    shared = _run_dir(tmp_path_factory) / "bundled-build"
    shared.mkdir(exist_ok=True)
    data_dir, done = shared / "data", shared / "done"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(data_dir, ignore_errors=True)  # a build another worker did not finish
            published = build(paths.BUNDLED_SNAPSHOT, DataDir(data_dir), created_at=CREATED_AT)
            assert published.version == BUNDLED_VERSION
            done.touch()
    return data_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a `slow` test first, as collected; then the others, most tests first (xdist's
    own order). Each file's tests stay together and in order: the sort is stable."""
    tests = Counter(item.path for item in items)
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(
        key=lambda item: (item.path not in slow, 0 if item.path in slow else -tests[item.path])
    )

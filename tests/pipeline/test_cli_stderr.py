"""The command line as a user meets it: a child process, its exit code and its whole stderr.

In-process tests see warnings through pytest's capture; only a real process shows that nothing
but the one error line reaches the terminal (CONTRACT §2).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import paths

pytestmark = pytest.mark.slow

BOMB = paths.PROJECT_ROOT / "tests" / "data" / "bad_input" / "pubmed" / "entity_bomb.xml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_failed_build_writes_exactly_one_line_to_stderr(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, snapshot)
    shutil.copy(BOMB, snapshot / "pubmed" / BOMB.name)
    done = _cli("build", "--snapshot", str(snapshot), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kratom-evidence: ") and BOMB.name in lines[0]


def test_successful_build_writes_nothing_to_stderr(tmp_path: Path) -> None:
    done = _cli("build", "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "published release" in done.stdout

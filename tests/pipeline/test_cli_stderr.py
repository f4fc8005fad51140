"""The command line as a user meets it: a child process, its exit code and its whole stderr.

In-process tests see warnings through pytest's capture; only a real process shows that nothing
but the one error line reaches the terminal (README.md, The command line).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines import paths
from pipelines.devtools.emulator import make_server, running
from tests.conftest import EMULATOR_RATE_SCALE

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


def _closed_port() -> int:
    """A loopback port nothing listens on: bound to learn a free one, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("verbose", [False, True])
def test_refresh_with_a_source_down_writes_one_error_line_and_retries_only_when_verbose(
    tmp_path: Path, verbose: bool
) -> None:
    down = f"pubmed=http://127.0.0.1:{_closed_port()}"
    fast = ["--pace", "0", "--timeout", "0.5", "--backoff", "0.02", "--max-tries", "3"]
    with running(make_server(paths.BUNDLED_SNAPSHOT, rate_scale=EMULATOR_RATE_SCALE)) as emulator:
        done = _cli(
            "refresh",
            "--data-dir",
            str(tmp_path),
            "--base-url",
            f"all={emulator.base_url}",
            "--base-url",
            down,
            *fast,
            *(["-v"] if verbose else []),
        )

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("kratom-evidence: pubmed: giving up on http://127.0.0.1:")
    assert "left incomplete" in lines[-1]
    (folder,) = (tmp_path / "snapshots").iterdir()
    log = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    pubmed = [entry for entry in log if entry["source"] == "pubmed"]
    assert [e["attempt"] for e in pubmed] == [1, 2, 3]
    assert all(e["status"] is None and "ConnectError" in e["problem"] for e in pubmed)
    if not verbose:
        assert lines[:-1] == [], done.stderr
        return
    assert all(line.startswith("INFO:kratom_evidence.") for line in lines[:-1]), done.stderr
    announced = [_retry(line) for line in lines[:-1] if line.startswith(RETRY_LINE)]
    assert [(source, n) for source, n, _ in announced if source == "pubmed"] == [
        ("pubmed", 1),
        ("pubmed", 2),
    ]
    # One line per retried attempt of the request log: pubmed's two, and any other source's
    # (on a loaded machine the emulator may throttle a request that arrives late; its retry
    # is announced like any other)
    retried = {
        (e["source"], e["attempt"], e["url"])
        for e in log
        if e["problem"] and any(_next_try(e, later) for later in log)
    }
    assert sorted(announced) == sorted(retried), done.stderr


RETRY_LINE = "INFO:kratom_evidence.http:"


def _retry(line: str) -> tuple[str, int, str]:
    """(source, attempt, URL) of a verbose retry line: `<source>: try N/M of <url> failed ...`."""
    source, _, rest = line.removeprefix(RETRY_LINE).partition(": try ")
    attempt, _, rest = rest.partition("/")
    return source, int(attempt), rest.partition(" of ")[2].partition(" failed (")[0]


def _next_try(entry: dict[str, Any], later: dict[str, Any]) -> bool:
    """Whether `later` is the try after `entry` of the same request."""
    return (later["source"], later["url"], later["attempt"]) == (
        entry["source"],
        entry["url"],
        entry["attempt"] + 1,
    )

"""A refresh killed with SIGKILL mid-way, then run again, fetches no recorded page twice.

Except where the service's paging state expires: a cursor-paged query the kill left half-way
(`LiveSource.state_expires`) is restarted from its first page, its recorded pages rewritten,
so those pages are asked again and counted apart.

The real CLI runs in a child process against the emulator in this process, whose request list
is the evidence: after the kill, the snapshot is incomplete and `build` refuses it; the rerun
(the same command, run in this process like the clean refresh) finishes it asking only for
pages not recorded before the kill. The pages in flight at the kill (requested, not yet
written: at most one per source, each source fetching one page at a time) are the only ones
asked again, and the release equals a clean refresh's, table for table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.devtools.emulator import EmulatorServer, Reply, make_server, running
from pipelines.refresh import REQUEST_LOG, live_sources, load_queries
from pipelines.refresh.settings import live_units
from tests.conftest import EMULATOR_RATE_SCALE

pytestmark = pytest.mark.slow

KILL_AFTER_PAGES = 1
"""ClinicalTrials.gov pages recorded before the kill: its 16 queries take over 6 s at pace 0.3,
so the kill lands while it (and often PubMed, 8 requests at 0.105 s) is still paging."""
CT_ANSWER_SECONDS = 0.3
"""The emulator answers ClinicalTrials.gov this slowly here, so the kill finds a page in flight."""
CT_STUDIES = "/clinicaltrials/api/v2/studies?"
ESEARCH = "/pubmed/esearch.fcgi?"
"""esearch is asked again on resume (it opens the history the efetch pages need): not a page."""
EFETCH = "/pubmed/efetch.fcgi?"


class _SlowAnswers:
    """The emulator's router, `seconds` slower for targets under `prefix`; counts those in hand."""

    def __init__(self, answer: Callable[[str], Reply], prefix: str, seconds: float) -> None:
        self.answer, self.prefix, self.seconds = answer, prefix, seconds
        self.begun = self.done = 0

    def __call__(self, target: str) -> Reply:
        if not target.startswith(self.prefix):
            return self.answer(target)
        self.begun += 1
        time.sleep(self.seconds)
        self.done += 1
        return self.answer(target)


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = make_server(paths.BUNDLED_SNAPSHOT, rate_scale=EMULATOR_RATE_SCALE)
    slow = _SlowAnswers(server.api.answer, CT_STUDIES, CT_ANSWER_SECONDS)
    server.api.answer = slow  # type: ignore[method-assign]
    with running(server):
        yield server


def _refresh_args(data_dir: Path, url: str, pace: str) -> list[str]:
    return [
        "refresh",
        "--data-dir",
        str(data_dir),
        "--base-url",
        f"all={url}",
        "--no-progress",
        "--pace",
        pace,
    ]


def _snapshot(data_dir: Path) -> Path | None:
    folders = sorted((data_dir / "snapshots").glob("*/"))
    return folders[0] if folders else None


def _recorded(folder: Path) -> Counter[str]:
    """Pages written per source (a `.part` temp file is not a page yet)."""
    return Counter(
        path.parent.name
        for source in live_sources()
        for path in (folder / source).glob("*")
        if not path.name.startswith(".")
    )


def _page_files(folder: Path) -> dict[Path, tuple[int, int]]:
    """(inode, mtime) of every recorded page: a page rewritten by a restarted query changes."""
    return {
        path: (path.stat().st_ino, path.stat().st_mtime_ns)
        for source in live_sources()
        for path in (folder / source).glob("*")
        if not path.name.startswith(".")
    }


def _source(page: str) -> str:
    return page.lstrip("/").split("/", 1)[0]


def page_requests(requests: list[str]) -> tuple[list[str], int]:
    """One key per page asked, in order, esearch calls left out; and how many requests were
    left out as retries: the same page asked again at once by its source (each source asks
    one page at a time, so a retry follows the try it repeats; on a loaded machine the
    emulator's own rate limit can refuse a request that arrived late).

    The emulator's WebEnv is one constant, so the efetch URLs of two queries are the same: an
    efetch is keyed by the term of the esearch before it (PubMed is fetched one request at a
    time, so that is its query) as well as its URL.
    """
    pages, term, last, retries = [], "", {}, 0
    for path in requests:
        if path.startswith(ESEARCH):
            term = parse_qs(urlsplit(path).query)["term"][0]
            continue
        page = f"{path}#term={term}" if path.startswith(EFETCH) else path
        if last.get(_source(page)) == page:
            retries += 1
            continue
        last[_source(page)] = page
        pages.append(page)
    return pages, retries


def _page_retries(log: list[dict[str, object]]) -> int:
    """Attempts of a request log that retried a page (esearch calls left out)."""
    return sum(1 for e in log if e["attempt"] != 1 and ESEARCH not in str(e["url"]))


def _kill_with_page_in_flight(
    process: subprocess.Popen[bytes], data_dir: Path, server: EmulatorServer
) -> Path:
    """Poll until ClinicalTrials.gov has pages recorded and the emulator holds the next one.

    SIGKILL then lands with that page in flight: asked, not answered, so not recorded.
    """
    slow: _SlowAnswers = server.api.answer  # type: ignore[assignment]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        folder = _snapshot(data_dir)
        recorded = _recorded(folder)["clinicaltrials"] if folder is not None else 0
        if recorded >= KILL_AFTER_PAGES and slow.begun > slow.done:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            return folder
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"refresh ended or stalled before {KILL_AFTER_PAGES} pages were recorded")


def _table_hashes(data_dir: Path) -> dict[str, str]:
    (manifest,) = sorted((data_dir / "releases").glob("*/manifest.json"))
    tables = json.loads(manifest.read_text(encoding="utf-8"))["tables"]
    return {name: entry["sha256"] for name, entry in tables.items()}


def _request_log(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / REQUEST_LOG).read_text().splitlines()]


def test_sigkill_then_rerun_fetches_no_recorded_page_twice_and_publishes_clean_tables(
    tmp_path: Path, emulator: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            *_refresh_args(killed_dir, emulator.base_url, "0.3"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = _kill_with_page_in_flight(first, killed_dir, emulator)
    time.sleep(CT_ANSWER_SECONDS + 0.2)  # let handler threads finish what reached them
    killed_requests = list(emulator.requests)
    before, retried_before = page_requests(killed_requests)
    recorded = _recorded(folder)
    pages_asked = Counter(_source(p) for p in before)
    in_flight = {s: pages_asked[s] - recorded[s] for s in live_sources()}

    assert first.returncode == -signal.SIGKILL
    assert json.loads((folder / "SNAPSHOT.json").read_text())["complete"] is False
    assert main(["build", "--snapshot", str(folder), "--data-dir", str(tmp_path / "b")]) != 0
    assert "marked incomplete" in capsys.readouterr().err
    ct_queries = len(load_queries(paths.REFERENCE_DIR)["clinicaltrials"])
    assert KILL_AFTER_PAGES <= recorded["clinicaltrials"] < ct_queries
    assert in_flight["clinicaltrials"] == 1
    assert all(0 <= in_flight[s] <= 1 for s in live_sources()), in_flight
    # The request log is written as requests happen: the killed run's attempts are all there
    # but those unanswered at the kill, at most one per source (each source asks in turn).
    asked_by_killed = len(emulator.requests)
    logged_by_killed = _request_log(folder)
    assert sum(recorded.values()) <= len(logged_by_killed) <= asked_by_killed
    assert len(logged_by_killed) >= asked_by_killed - len(live_sources())
    # each retry left out of the pages is a retried attempt in the log (one in flight at the
    # kill is not logged yet: at most one per source)
    retried_logged = _page_retries(logged_by_killed)
    assert retried_logged <= retried_before <= retried_logged + len(live_sources())

    files_before = _page_files(folder)
    assert main(_refresh_args(killed_dir, emulator.base_url, "0")) == 0
    after, retried_after = page_requests(list(emulator.requests)[len(killed_requests) :])
    asked_before = set(before)
    again = Counter(_source(p) for p in after if p in asked_before)

    pages_after = Counter(_source(p) for p in after)
    finished = _recorded(folder)
    files_after = _page_files(folder)
    restarted = Counter(
        path.parent.name for path, stamp in files_before.items() if files_after.get(path) != stamp
    )
    sources = live_sources()

    assert all(restarted[s] == 0 for s in sources if not live_units()[s].state_expires), restarted
    assert {s: again[s] for s in sources} == {s: in_flight[s] + restarted[s] for s in sources}
    assert {s: pages_after[s] for s in sources} == {
        s: finished[s] - recorded[s] + restarted[s] for s in sources
    }
    assert list((killed_dir / "snapshots").iterdir()) == [folder]
    logged = _request_log(folder)
    assert logged[: len(logged_by_killed)] == logged_by_killed
    assert len(logged) - len(logged_by_killed) == len(emulator.requests) - asked_by_killed
    assert retried_after == _page_retries(logged[len(logged_by_killed) :])
    assert main(_refresh_args(clean_dir, emulator.base_url, "0")) == 0
    assert _recorded(_snapshot(clean_dir) or clean_dir) == finished
    assert _table_hashes(killed_dir) == _table_hashes(clean_dir)

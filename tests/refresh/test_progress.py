"""The refresh progress bar: one task per source, ending on its request and retry counts.

A refresh runs over loopback against the emulator (with seeded faults, so retries happen) and
draws into a recording rich Console; the last frame it leaves is read back as text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from pipelines import paths
from pipelines.devtools.emulator import make_server, running
from pipelines.refresh import (
    REQUEST_LOG,
    Credentials,
    HttpSettings,
    RefreshResult,
    live_sources,
    parse_base_urls,
    refresh,
)
from tests.conftest import EMULATOR_RATE_SCALE

FAST = HttpSettings(timeout=0.5, backoff_base=0.02, pace=0.0)
ROW = re.compile(r"^(\w+) +[━╸╺]+ +(\d+)/(\d+) +(\d+) requests +(\d+) retries +\d+:\d\d:\d\d$")


def _refresh_into(console: Console, data_dir: Path, faults: float = 0.0) -> RefreshResult:
    server = make_server(
        paths.BUNDLED_SNAPSHOT,
        faults=faults,
        seed=85,
        stall_seconds=0.1,
        retry_after_seconds=0,
        rate_scale=EMULATOR_RATE_SCALE,
    )
    with running(server):
        urls = parse_base_urls([f"all={server.base_url}"])
        return refresh(
            data_dir, urls, Credentials(), datetime.now(UTC), settings=FAST, console=console
        )


@pytest.mark.slow
def test_progress_has_one_finished_task_per_source_with_its_requests_and_retries(
    tmp_path: Path,
) -> None:
    console = Console(file=StringIO(), force_terminal=True, width=120, record=True)
    result = _refresh_into(console, tmp_path, faults=0.2)

    text = console.export_text()
    last_frame = text[text.rindex(f"{live_sources()[0]} ") :].splitlines()
    rows = [ROW.match(line) for line in last_frame]
    assert all(rows), last_frame
    shown = {m.group(1): tuple(int(g) for g in m.groups()[1:]) for m in rows if m}
    assert list(shown) == list(live_sources())
    logged = Counter(
        json.loads(line)["source"]
        for line in (result.snapshot_dir / REQUEST_LOG).read_text().splitlines()
    )
    for source, (done, total, requests, retries) in shown.items():
        outcome = result.outcomes[source]
        assert done == total > 0, source
        assert requests == outcome.requests == logged[source], source
        assert retries == outcome.retries, source
    assert sum(retries for *_, retries in shown.values()) > 0


def test_progress_draws_nothing_when_stderr_is_no_terminal(tmp_path: Path) -> None:
    piped = StringIO()
    result = _refresh_into(Console(file=piped), tmp_path)

    assert result.complete
    assert piped.getvalue() == ""

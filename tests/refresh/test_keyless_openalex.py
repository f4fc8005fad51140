"""A refresh with no OpenAlex key finishes (issue 13, done when), even when OpenAlex's keyless
budget for the day is already spent.

The emulator serves the bundled snapshot and keeps OpenAlex's keyless budget (10 searches a
day, https://developers.openalex.org/guides/authentication); ten keyless searches spend it
before the run. The real CLI refresh without OPENALEX_API_KEY then meets the documented 429
"daily limit exceeded" on its first OpenAlex search, says so in one line, records every other
source and publishes.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pipelines import paths, snapshot
from pipelines.cli import main
from pipelines.devtools.emulator import make_server, running
from pipelines.refresh import live_sources
from pipelines.sources import openalex
from tests.conftest import EMULATOR_RATE_SCALE

pytestmark = pytest.mark.slow

FAST = ["--pace", "0", "--timeout", "2", "--backoff", "0.02", "--no-progress"]


def test_a_keyless_refresh_finishes_and_publishes_when_the_day_budget_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    with running(make_server(paths.BUNDLED_SNAPSHOT, rate_scale=EMULATOR_RATE_SCALE)) as server:
        spend = f"{server.base_url}/openalex/works?search=kratom"
        assert [httpx.get(spend).status_code for _ in range(openalex.KEYLESS_SEARCHES)] == [
            200
        ] * openalex.KEYLESS_SEARCHES
        args = ["refresh", "--data-dir", str(tmp_path), *FAST]
        assert main([*args, "--base-url", f"all={server.base_url}"]) == 0

    said = [line for line in capsys.readouterr().err.splitlines() if "openalex" in line]
    assert len(said) == 1
    assert said[0].startswith("kratom-evidence: openalex: OpenAlex refused keyless searches")
    assert "HTTP 429" in said[0]
    (folder,) = (tmp_path / "snapshots").iterdir()
    info = json.loads((folder / snapshot.INFO_FILE).read_text())
    assert info["complete"] is True and "failed_sources" not in info
    strategy = json.loads((folder / "search_strategy.json").read_text())["sources"]
    assert strategy["openalex"]["error"] is None and "HTTP 429" in strategy["openalex"]["note"]
    assert strategy["openalex"]["queries"][0]["stopped"] == "keyless budget spent (HTTP 429)"
    log = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    answered = {e["source"] for e in log if e["status"] == 200}
    assert answered == set(live_sources()) - {"openalex"}
    assert {e["status"] for e in log if e["source"] == "openalex"} == {429}
    (release,) = (tmp_path / "releases").iterdir()
    assert (release / "manifest.json").is_file()

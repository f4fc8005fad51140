"""A hit count a source announces but does not deliver is a warning, not a failure: the real CLI
refresh against the emulator, whose ClinicalTrials.gov answer for one query announces two
studies more than it serves, publishes, names the mismatch in search_strategy.json and prints
it on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.devtools.emulator import Reply, make_server, running

pytestmark = pytest.mark.slow

FIRST_KRATOM_PAGE = "/clinicaltrials/api/v2/studies?query.term=kratom&"


def test_total_count_mismatch_is_a_warning_in_the_strategy_and_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_server(paths.BUNDLED_SNAPSHOT)
    answer = server.api.answer

    def announcing_two_more(target: str) -> Reply:
        reply = answer(target)
        if target.startswith(FIRST_KRATOM_PAGE) and "countTotal=true" in target:
            doc = json.loads(reply.body)
            doc["totalCount"] += 2
            return Reply(reply.status, json.dumps(doc).encode(), reply.content_type)
        return reply

    server.api.answer = announcing_two_more  # type: ignore[method-assign]
    with running(server):
        code = main(
            [
                "refresh",
                "--data-dir",
                str(tmp_path),
                "--base-url",
                f"all={server.base_url}",
                "--pace",
                "0",
                "--no-progress",
            ]
        )

    assert code == 0
    expected = "query 'kratom': totalCount announced 12, 10 recorded"
    err = capsys.readouterr().err.splitlines()
    assert f"kratom-evidence: warning: clinicaltrials: {expected}" in err
    (folder,) = sorted((tmp_path / "snapshots").iterdir())
    strategy = json.loads((folder / "search_strategy.json").read_text())
    assert strategy["sources"]["clinicaltrials"]["warnings"] == [expected]
    assert all(s["warnings"] == [] for n, s in strategy["sources"].items() if n != "clinicaltrials")
    assert any((tmp_path / "releases").iterdir())

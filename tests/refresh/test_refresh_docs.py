"""docs/refresh-and-politeness.md, "What a refresh records", against a real recorded snapshot.

A small synthetic snapshot is refreshed over loopback through seeded 503s and 429s, so the
request log holds retries; the section must name every key the files really have, and its
duckdb example, run as written on that log, must count what search_strategy.json counts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.devtools.emulator import make_server, running
from tests.conftest import EMULATOR_RATE_SCALE
from tests.refresh import synthetic

COUNTS = synthetic.Counts(
    clinicaltrials=4, pubmed=4, europepmc=4, openalex=4, crossref=4, chembl=4, cids=2
)
pytestmark = pytest.mark.slow  # the faulted refresh and its imports take ~5 s

ROW = re.compile(r"│\s*(\w+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│")


PAGE = paths.PROJECT_ROOT / "docs" / "refresh-and-politeness.md"


def _section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    return text.split("\n## What a refresh records\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot a refresh recorded through faults that are retried."""
    root = tmp_path_factory.mktemp("docs")
    served = synthetic.write_snapshot(root / "served", COUNTS)
    reference = synthetic.write_reference(root / "reference", COUNTS)
    server = make_server(
        served, faults=0.3, seed=3, retry_after_seconds=0, rate_scale=EMULATOR_RATE_SCALE
    )
    server.faults.kinds = ("http503", "http429_seconds")
    with running(server):
        result = synthetic.quick_refresh(
            root / "data", server.base_url, reference, page_size=2, backoff_base=0.01
        )
    assert result.complete, result.first_error
    assert server.faults.injected
    return result.snapshot_dir


def test_docs_name_every_key_the_recorded_files_have(recorded: Path) -> None:
    named = set(re.findall(r"`(\w+)`", _section()))
    info = json.loads((recorded / "SNAPSHOT.json").read_text())
    log = [json.loads(line) for line in (recorded / "requests.jsonl").read_text().splitlines()]
    strategy = json.loads((recorded / "search_strategy.json").read_text())
    keys = {
        "SNAPSHOT.json": set(info) | {"incremental_from", "supersedes"},
        "requests.jsonl": {key for entry in log for key in entry},
        "search_strategy.json": set(strategy).union(*strategy["sources"].values()),
    }

    assert {name: sorted(found - named) for name, found in keys.items()} == {
        name: [] for name in keys
    }


def test_docs_duckdb_example_counts_requests_and_retries_like_the_search_strategy(
    recorded: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", _section(), re.DOTALL)
    code = code.replace("data/snapshots/<stamp>", recorded.as_posix())
    capfd.readouterr()

    exec(compile(code, PAGE.name, "exec"), {})

    shown = {m[1]: (int(m[2]), int(m[3])) for m in ROW.finditer(capfd.readouterr().out)}
    strategy = json.loads((recorded / "search_strategy.json").read_text())["sources"]
    assert shown == {s: (o["requests"], o["retries"]) for s, o in strategy.items()}
    assert sum(retries for _, retries in shown.values()) > 0

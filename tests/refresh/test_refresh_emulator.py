"""`refresh` against `serve-snapshot`: same tables as `build`, through faults, or one clear stop.

Every test runs the real CLI over real loopback HTTP against the emulator serving data/snapshot,
with short timeouts and back-off so the faulted runs stay fast.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.devtools.emulator import FAULT_KINDS, EmulatorServer, make_server, running
from pipelines.http import redact_url
from schemas import HISTORY
from tests.conftest import EMULATOR_RATE_SCALE

pytestmark = pytest.mark.slow

HISTORY_NAMES = tuple(spec.name for spec in HISTORY)
FAST = ["--pace", "0", "--timeout", "0.5", "--backoff", "0.02", "--max-tries", "8", "--no-progress"]


def _serve(**kwargs: float) -> Iterator[EmulatorServer]:
    server = make_server(paths.BUNDLED_SNAPSHOT, rate_scale=EMULATOR_RATE_SCALE, **kwargs)  # type: ignore[arg-type]
    with running(server):
        yield server


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    yield from _serve()


BundledTables = Callable[[Path], dict[str, str]]


@pytest.fixture(scope="module")
def bundled_tables(tmp_path_factory: pytest.TempPathFactory) -> BundledTables:
    """sha256 of every table Parquet of `build` on data/snapshot, under a refresh's version.

    A refresh is captured today and data/snapshot on its own date; the history tables name the
    version, so the build publishes under the version the refresh got (`--release-version`) and
    every table, history included, is compared as the bytes of its file. Built once per version.
    """
    built: dict[str, dict[str, str]] = {}

    def like(refreshed: Path) -> dict[str, str]:
        version = _manifest(refreshed)["version"]
        if version not in built:
            data_dir = tmp_path_factory.mktemp("bundled")
            assert main(["build", "--data-dir", str(data_dir), "--release-version", version]) == 0
            built[version] = _table_hashes(data_dir)
        return built[version]

    return like


def _manifest(data_dir: Path) -> dict[str, Any]:
    (manifest,) = sorted((data_dir / "releases").glob("*/manifest.json"))
    return dict(json.loads(manifest.read_text()))


def _table_hashes(data_dir: Path) -> dict[str, str]:
    """sha256 of every released table's Parquet file (quarantine and history tables included)."""
    tables = _manifest(data_dir)["tables"]
    assert set(HISTORY_NAMES) <= set(tables)
    return {name: entry["sha256"] for name, entry in tables.items()}


def _refresh(data_dir: Path, *base_urls: str) -> int:
    args = ["refresh", "--data-dir", str(data_dir), *FAST]
    for url in base_urls:
        args += ["--base-url", url]
    return main(args)


def _recorded(data_dir: Path) -> Path:
    (folder,) = sorted((data_dir / "snapshots").iterdir())
    return folder


def test_refresh_from_emulator_publishes_tables_identical_to_build(
    tmp_path: Path, emulator: EmulatorServer, bundled_tables: BundledTables
) -> None:
    assert _refresh(tmp_path, f"all={emulator.base_url}") == 0

    assert _table_hashes(tmp_path) == bundled_tables(tmp_path)
    folder = _recorded(tmp_path)
    info = json.loads((folder / "SNAPSHOT.json").read_text())
    assert info["method"] == "recorded" and info["complete"] is True
    strategy = json.loads((folder / "search_strategy.json").read_text())
    hits = {q["query"]: q["hits"] for q in strategy["sources"]["clinicaltrials"]["queries"]}
    # The strict emulator searches: "kratom" finds 8 studies, and the 2 whose reconstructed
    # record holds no topic word are served to every query (serving.search).
    assert hits["kratom"] == 10 and hits["biak-biak"] == 2
    assert all(source["warnings"] == [] for source in strategy["sources"].values())
    log = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    assert len(log) == len(emulator.requests)
    assert {e["source"] for e in log} == {
        "clinicaltrials",
        "pubmed",
        "europepmc",
        "openalex",
        "crossref",
        "pubchem",
        "chembl",
    }
    assert all(e["status"] == 200 and len(e["sha256"]) == 64 for e in log)
    assert (folder / "registries" / "registries.csv").read_bytes() == (
        paths.BUNDLED_SNAPSHOT / "registries" / "registries.csv"
    ).read_bytes()


FAULT_SEED = 59
"""A seed whose faults on the bundled snapshot's 44 requests include every kind (10 faults, one
stall): found by replaying `FaultPlan`'s draw over those request targets. Any change to the URLs
a refresh asks (a parameter, a query) changes the draw: replay it again then (Crossref's
query.bibliographic and known-DOI look-up moved it from 81)."""


def test_refresh_through_seeded_faults_of_every_kind_publishes_the_same_tables(
    tmp_path: Path, bundled_tables: BundledTables, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KRATOM_EVIDENCE_EMAIL", "NCBI_API_KEY", "OPENALEX_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # they change the URLs the faults are keyed by
    for server in _serve(faults=0.2, seed=FAULT_SEED, stall_seconds=2.0):
        assert _refresh(tmp_path, f"all={server.base_url}") == 0
        base = server.base_url
        injected = [(kind, redact_url(base + target)) for kind, target in server.faults.injected]

    assert _table_hashes(tmp_path) == bundled_tables(tmp_path)
    assert {kind for kind, _ in injected} == set(FAULT_KINDS), injected
    log = [json.loads(line) for line in (_recorded(tmp_path) / "requests.jsonl").open()]
    problems = Counter((e["url"], _fault_seen(e)) for e in log if e["problem"])
    # Each injected fault is a failed attempt of the request it hit, seen as its kind...
    assert Counter((url, _FAULT_SEEN[kind]) for kind, url in injected) <= problems
    # ...and every failed attempt was tried again, whatever failed it
    assert sum(e["attempt"] > 1 for e in log) == problems.total()
    # Beyond the faults, only what a loaded machine causes: a connection or answer slower than
    # the client's 0.5 s timeout, or the emulator's own rate limit refusing a request that
    # arrived late (both retried like any fault)
    extra = problems - Counter((url, _FAULT_SEEN[kind]) for kind, url in injected)
    assert all(seen in ("no answer", "HTTP 429") for _, seen in extra), extra


_FAULT_SEEN = {
    "http500": "HTTP 500",
    "http502": "HTTP 502",
    "http503": "HTTP 503",
    "http429_seconds": "HTTP 429",
    "http429_date": "HTTP 429",
    "reset": "no answer",
    "stall": "no answer",
    "truncated": "no answer",
    "html200": "invalid body",
}
"""How the client's request log shows each injected fault kind."""


def _fault_seen(entry: dict[str, Any]) -> str:
    """A failed attempt as `_FAULT_SEEN` names it: its status, `invalid body` (a 200 that is not
    what was asked), or `no answer` (reset, stalled, or cut off before the body's end)."""
    if entry["status"] is None:
        return "no answer"
    if entry["problem"].startswith("invalid body"):
        return "invalid body"
    return f"HTTP {entry['status']}"


def test_source_down_for_good_stops_with_one_error_and_incomplete_snapshot(
    tmp_path: Path,
    emulator: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NCBI_API_KEY", "ncbi-SECRET-down")
    monkeypatch.setenv("KRATOM_EVIDENCE_EMAIL", "down@example.org")
    down = make_server(paths.BUNDLED_SNAPSHOT, faults=1.0, rate_scale=EMULATOR_RATE_SCALE)
    down.faults.kinds = ("http503",)
    with running(down):
        code = _refresh(tmp_path, f"all={emulator.base_url}", f"pubmed={down.base_url}/pubmed")

    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("kratom-evidence: pubmed: giving up on ")
    assert f"{down.base_url}/pubmed/esearch.fcgi?" in err[0]
    assert "api_key=***" in err[0] and "email=***" in err[0]
    assert "SECRET" not in err[0] and "down@example" not in err[0]
    assert len(down.requests) == 8
    folder = _recorded(tmp_path)
    assert json.loads((folder / "SNAPSHOT.json").read_text())["complete"] is False
    assert not (tmp_path / "releases").exists() or not any((tmp_path / "releases").iterdir())

    assert main(["build", "--snapshot", str(folder), "--data-dir", str(tmp_path / "b")]) == 1
    assert "incomplete" in capsys.readouterr().err


def test_secrets_never_reach_files_or_output(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = {
        "NCBI_API_KEY": "ncbi-SECRET-4f1c9e",
        "OPENALEX_API_KEY": "oa-SECRET-77d2b0",
        "KRATOM_EVIDENCE_EMAIL": "curator+secret@example.org",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    for server in _serve(faults=0.2, seed=11, stall_seconds=2.0):
        assert _refresh(tmp_path, f"all={server.base_url}") == 0
        sent = "\n".join(server.requests)

    forms = {f for v in secrets.values() for f in (v, quote(v, safe=""), quote_plus(v))}
    for value in secrets.values():
        assert any(f in sent for f in (value, quote(value, safe=""), quote_plus(value))), value
    out = capsys.readouterr()
    texts = {"stdout": out.out, "stderr": out.err, "log": caplog.text}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    leaks = [(where, f) for where, text in texts.items() for f in forms if f in text]
    assert leaks == []


def test_rerun_after_a_failed_refresh_resumes_without_fetching_a_page_twice(
    tmp_path: Path, bundled_tables: BundledTables, capsys: pytest.CaptureFixture[str]
) -> None:
    down = make_server(paths.BUNDLED_SNAPSHOT, faults=1.0, rate_scale=EMULATOR_RATE_SCALE)
    down.faults.kinds = ("http503",)
    with running(down):
        for first in _serve():
            code = _refresh(tmp_path, f"all={first.base_url}", f"crossref={down.base_url}/crossref")
            fetched_first = set(first.requests)
    assert code == 1
    folder = _recorded(tmp_path)
    assert any((folder / "clinicaltrials").iterdir())

    for second in _serve():
        assert _refresh(tmp_path, f"all={second.base_url}") == 0
        fetched_again = set(second.requests)

    assert _recorded(tmp_path) == folder
    # esearch is asked again (it opens the history the next efetch pages need); it is no page.
    refetched = {p for p in fetched_first & fetched_again if "/esearch.fcgi?" not in p}
    assert refetched == set()
    assert any(path.startswith("/crossref/") for path in fetched_again)
    assert _table_hashes(tmp_path) == bundled_tables(tmp_path)
    assert "left incomplete" in capsys.readouterr().err

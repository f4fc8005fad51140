"""One source never sinks the others (issue 13 part 4): a source that fails for good is named,
the others are recorded, and the failed one is carried over from the previous complete snapshot.

Real loopback HTTP against `serve-snapshot` on data/snapshot, a real closed port for Crossref,
and the real CLI refresh that builds and publishes.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines import paths, snapshot
from pipelines.cli import main
from pipelines.devtools.emulator import EmulatorServer, make_server, running
from pipelines.refresh import HttpSettings, live_sources, parse_base_urls, refresh
from pipelines.sources.base import Credentials
from tests.conftest import EMULATOR_RATE_SCALE

pytestmark = pytest.mark.slow

FAST = ["--pace", "0", "--timeout", "0.5", "--backoff", "0.02", "--max-tries", "3", "--no-progress"]


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = make_server(paths.BUNDLED_SNAPSHOT, rate_scale=EMULATOR_RATE_SCALE)
    with running(server):
        yield server


def _closed_port_url() -> str:
    """A loopback URL nothing listens on: the port was just bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _cli_lines(err: str) -> list[str]:
    """What the CLI said on stderr (the emulator's server threads may log there too), but the
    line a refresh without OPENALEX_API_KEY says about OpenAlex's keyless budget."""
    said = [line for line in err.splitlines() if line.startswith("kratom-evidence:")]
    return [line for line in said if not line.startswith("kratom-evidence: openalex: no ")]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _info(folder: Path) -> dict[str, object]:
    return dict(json.loads((folder / snapshot.INFO_FILE).read_text()))


def test_crossref_at_a_closed_port_is_carried_from_the_previous_snapshot_and_published(
    tmp_path: Path,
    emulator: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KRATOM_EVIDENCE_EMAIL", "carry-SECRET@example.org")
    earlier = refresh(
        tmp_path,
        parse_base_urls([f"all={emulator.base_url}"]),
        Credentials(),
        datetime.now(UTC) - timedelta(hours=1),
        settings=HttpSettings(timeout=0.5, backoff_base=0.02, pace=0.0),
        show_progress=False,
    )
    assert earlier.complete and earlier.failed == {}
    closed = _closed_port_url()

    args = ["refresh", "--data-dir", str(tmp_path), *FAST, "--base-url", f"all={emulator.base_url}"]
    assert main([*args, "--base-url", f"crossref={closed}"]) == 0

    folders = sorted((tmp_path / "snapshots").iterdir())
    assert folders[0] == earlier.snapshot_dir and len(folders) == 2
    folder = folders[1]
    (line,) = _cli_lines(capsys.readouterr().err)
    assert line.startswith("kratom-evidence: crossref: giving up on ")
    assert line.endswith(f"; crossref carried over from {earlier.snapshot_dir.name}")
    assert f"{closed}/works?" in line and "mailto=***" in line and "SECRET" not in line

    info = _info(folder)
    assert info["complete"] is True
    assert info["carried_from"] == {"crossref": earlier.snapshot_dir.name}
    failed = info["failed_sources"]
    assert isinstance(failed, dict) and set(failed) == {"crossref"}
    assert failed["crossref"] == line.removeprefix("kratom-evidence: ").split("; ")[0]
    assert snapshot.read_info(folder).carried_from == {"crossref": earlier.snapshot_dir.name}

    # Crossref: byte for byte the earlier snapshot's files, none of this run's.
    assert _files(folder / "crossref") == _files(earlier.snapshot_dir / "crossref")
    # Every other live source finished and was recorded by this run.
    log = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    answered = {e["source"] for e in log if e["status"] == 200}
    assert answered == set(live_sources()) - {"crossref"}
    assert {e["status"] for e in log if e["source"] == "crossref"} == {None}
    for source in answered:
        assert _files(folder / source) == _files(earlier.snapshot_dir / source), source
    strategy = json.loads((folder / "search_strategy.json").read_text())["sources"]
    assert strategy["crossref"]["carried_from"] == earlier.snapshot_dir.name
    assert strategy["crossref"]["error"] == failed["crossref"]
    assert all(strategy[s]["error"] is None for s in answered)

    (manifest_path,) = (tmp_path / "releases").glob("*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["snapshot"]["carried_from"] == {"crossref": earlier.snapshot_dir.name}
    assert manifest["snapshot"]["sha256"] == snapshot.snapshot_sha256(folder)


def test_a_failed_source_with_no_previous_snapshot_stops_after_the_others_are_recorded(
    tmp_path: Path, emulator: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = _closed_port_url()
    args = ["refresh", "--data-dir", str(tmp_path), *FAST, "--base-url", f"all={emulator.base_url}"]

    assert main([*args, "--base-url", f"crossref={closed}"]) == 1

    (folder,) = (tmp_path / "snapshots").iterdir()
    (line,) = _cli_lines(capsys.readouterr().err)
    assert line.startswith("kratom-evidence: crossref: giving up on ")
    assert "no earlier complete snapshot holds crossref to carry over" in line
    assert f"(snapshot {folder} left incomplete)" in line
    info = _info(folder)
    assert info["complete"] is False and "carried_from" not in info
    assert set(info["failed_sources"]) == {"crossref"}  # type: ignore[arg-type]
    assert not (folder / "crossref").exists()
    for source in set(live_sources()) - {"crossref"}:
        assert any((folder / source).iterdir()), source  # kept for the resume
    assert not (tmp_path / "releases").exists() or not any((tmp_path / "releases").iterdir())


def test_since_last_with_crossref_down_carries_crossref_from_its_base(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    settings = HttpSettings(timeout=0.5, backoff_base=0.02, pace=0.0, max_tries=3)
    urls = parse_base_urls([f"all={emulator.base_url}"])
    now = datetime.now(UTC)
    base = refresh(
        tmp_path,
        urls,
        Credentials(),
        now - timedelta(hours=1),
        settings=settings,
        show_progress=False,
    )
    assert base.complete

    down = {**urls, "crossref": _closed_port_url()}
    delta = refresh(
        tmp_path, down, Credentials(), now, settings=settings, show_progress=False, since_last=True
    )

    assert delta.complete and set(delta.failed) == {"crossref"}
    assert delta.carried_from == {"crossref": base.snapshot_dir.name}
    info = _info(delta.snapshot_dir)
    assert info["incremental_from"] == base.snapshot_dir.name
    assert info["carried_from"] == {"crossref": base.snapshot_dir.name}
    assert _files(delta.snapshot_dir / "crossref") == _files(base.snapshot_dir / "crossref")
    delta_pages = {p.parent.name for p in delta.snapshot_dir.glob("*/delta-*")}
    assert (
        "crossref" not in delta_pages and {"clinicaltrials", "europepmc", "openalex"} <= delta_pages
    )

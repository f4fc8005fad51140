"""Atomic publish: builds killed with SIGKILL mid-publish, and two builds at once.

A test-only hook (KRATOM_EVIDENCE_PAUSE_AT) makes publish leave a marker file and wait at a
named step; the test waits for the marker, then kills the build for real. The tests run in
order on one data dir: each kill leaves the state the next test recovers from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.release import catalog
from pipelines.release.publish import PAUSE_ENV, DataDir, pause_marker
from tests.release._snapshots import fingerprint, variant_snapshot

BASE = "2026.11.25"
MARKER_TIMEOUT_S = 600
pytestmark = pytest.mark.slow  # every test kills or runs a whole build


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, bundled_build: Path) -> tuple[Path, Path]:
    """A data dir holding one release of the bundled snapshot, and a variant snapshot."""
    root = tmp_path_factory.mktemp("atomic")
    data_dir = Path(shutil.copytree(bundled_build, root / "data"))
    return data_dir, variant_snapshot(root / "variant")


def _killed_build(data_dir: Path, snapshot: Path, point: str, *extra: str) -> subprocess.Popen:
    """Start a build paused at `point`; return it once the marker shows it got there."""
    marker = pause_marker(DataDir(data_dir), point)
    marker.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pipelines.cli", "build", "--snapshot", str(snapshot)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir), *extra],
        cwd=paths.PROJECT_ROOT,
        env={**os.environ, PAUSE_ENV: point},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + MARKER_TIMEOUT_S
    try:
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(f"build ended before {point}: {process.stderr.read().decode()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail(f"build never reached {point}")
            time.sleep(0.2)
        assert marker.read_text() == str(process.pid)
    except BaseException:
        process.kill()  # a paused build left behind holds the data dir's lock for later tests
        process.wait(timeout=60)
        raise
    marker.unlink()
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


def _published(data_dir: Path) -> list[str]:
    con = catalog.connect(DataDir(data_dir).lake, read_only=True)
    try:
        return [r.version for r in catalog.list_releases(con)]
    finally:
        con.close()


def _assert_release_intact(folder: Path) -> None:
    """Every file the manifest lists is there with its sha256."""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == folder.name
    for entry in manifest["tables"].values():
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]


def _unreferenced_files(data_dir: Path) -> list[str]:
    """Files under lake/files that no release's snapshot of any table lists."""
    con = catalog.connect(DataDir(data_dir).lake, read_only=True)
    try:
        referenced: set[Path] = set()
        for record in catalog.list_releases(con):
            for table in [*record.rows, catalog.RELEASES_TABLE]:
                listed = con.execute(
                    "SELECT data_file, delete_file FROM ducklake_list_files(?, ?, "
                    "snapshot_version => ?)",
                    [catalog.CATALOG_ALIAS, table, record.snapshot_id],
                ).fetchall()
                referenced |= {Path(f).resolve() for row in listed for f in row if f}
    finally:
        con.close()
    files = {p.resolve() for p in (data_dir / "lake" / "files").rglob("*") if p.is_file()}
    assert referenced <= files, "the catalog lists files that are missing"
    return sorted(str(p) for p in files - referenced)


def _hold_lock(data_dir: Path) -> subprocess.Popen:
    """Another process holding the data dir's build lock, as a running build would."""
    holder = (
        "import fcntl, sys, time\n"
        "handle = open(sys.argv[1], 'a+')\n"
        "fcntl.flock(handle, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder, str(DataDir(data_dir).lock_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    return process


def _count(data_dir: Path, version: str, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    args = ["query", "SELECT count(*) AS n FROM studies", "--data-dir", str(data_dir)]
    assert main([*args, "--release-version", version, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)[0]["n"]


def test_second_build_stops_with_a_clear_message_while_one_runs(
    lake: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, variant = lake
    before = fingerprint(data_dir / "releases" / BASE)
    running = _killed_build(data_dir, variant, "parquet-written")
    try:
        capsys.readouterr()
        assert main(["build", "--snapshot", str(variant), "--data-dir", str(data_dir)]) == 1
        assert capsys.readouterr().err.strip() == (
            f"kratom-evidence: another build is publishing into {data_dir}; wait for it to finish"
        )
    finally:
        _kill(running)
    assert _published(data_dir) == [BASE]
    assert fingerprint(data_dir / "releases" / BASE) == before


@pytest.mark.parametrize("point", ["parquet-written", "incoming-renamed", "catalog-before-commit"])
def test_kill_before_the_catalog_commit_leaves_the_previous_release(
    lake: tuple[Path, Path], point: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, variant = lake
    before = fingerprint(data_dir / "releases" / BASE)
    _kill(_killed_build(data_dir, variant, point))
    # Only a kill inside the DuckLake transaction leaves data files no snapshot references
    # (checked first: the query below recovers, as every command does). The tables are
    # written into it while the folder is documented, so it is open once the folder is renamed.
    inside = point in ("incoming-renamed", "catalog-before-commit")
    assert bool(_unreferenced_files(data_dir)) == inside
    assert _published(data_dir) == [BASE]
    assert fingerprint(data_dir / "releases" / BASE) == before
    _assert_release_intact(data_dir / "releases" / BASE)
    assert _count(data_dir, BASE, capsys) > 0


def test_the_build_after_kills_publishes_and_cleans_up(
    lake: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, variant = lake
    capsys.readouterr()
    assert main(["build", "--snapshot", str(variant), "--data-dir", str(data_dir)]) == 0
    assert f"published release {BASE}.1" in capsys.readouterr().out
    assert _published(data_dir) == [f"{BASE}.1", BASE]
    assert sorted(p.name for p in (data_dir / "releases").iterdir()) == [BASE, f"{BASE}.1"]
    for version in (BASE, f"{BASE}.1"):
        _assert_release_intact(data_dir / "releases" / version)
    assert _count(data_dir, BASE, capsys) == _count(data_dir, f"{BASE}.1", capsys) + 1
    assert _unreferenced_files(data_dir) == []


def test_kill_after_the_catalog_commit_is_finished_by_the_next_build(
    lake: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, variant = lake
    version = "2026.11.26"
    _kill(_killed_build(data_dir, variant, "catalog-committed", "--release-version", version))
    # The catalog is the truth: the commit happened, so the version is published ...
    assert _published(data_dir) == [version, f"{BASE}.1", BASE]
    capsys.readouterr()
    assert main(["build", "--snapshot", str(variant), "--data-dir", str(data_dir)]) == 0
    assert f"nothing changed since release {version}" in capsys.readouterr().out
    # ... and the next build moved its folder into place.
    names = sorted(p.name for p in (data_dir / "releases").iterdir())
    assert names == [BASE, f"{BASE}.1", version]
    for name in names:
        _assert_release_intact(data_dir / "releases" / name)
    assert _count(data_dir, version, capsys) == _count(data_dir, f"{BASE}.1", capsys)


def test_read_commands_finish_a_release_the_catalog_committed(
    lake: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`releases` lists V at once, so V's folder must appear without waiting for a build."""
    data_dir, variant = lake
    version, previous = "2026.11.27", "2026.11.26"
    releases = data_dir / "releases"
    _kill(_killed_build(data_dir, variant, "catalog-committed", "--release-version", version))
    assert (releases / f".incoming-{version}").is_dir() and not (releases / version).exists()
    holder = _hold_lock(data_dir)
    try:
        capsys.readouterr()
        assert main(["releases", "--data-dir", str(data_dir)]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith(f"{version}\t")
        assert captured.err == (
            f"kratom-evidence: a build is publishing into {data_dir}: release folders may lag "
            "the catalog until it finishes\n"
        )
        assert not (releases / version).exists()  # the lock holder's to finish, not ours
    finally:
        _kill(holder)
    # With the lock free, the first read command (here `query`) finishes the rename.
    assert _count(data_dir, version, capsys) == _count(data_dir, previous, capsys)
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in releases.iterdir()) == [BASE, f"{BASE}.1", previous, version]
    _assert_release_intact(releases / version)
    assert main(["validate", str(releases / version)]) == 0
    capsys.readouterr()
    assert main(["diff", previous, version, "--data-dir", str(data_dir), "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert (changes["old_version"], changes["new_version"]) == (previous, version)
    assert changes["tables"]["studies"]["added"] == changes["tables"]["studies"]["removed"] == 0
    assert _unreferenced_files(data_dir) == []

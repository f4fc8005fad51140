"""A build of the same inputs into the same data dir is answered without a run (it would publish
nothing); any changed input, or another release since, means a real run."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines import build_inputs, digests, paths
from pipelines.build import build
from pipelines.cli import main
from pipelines.release.publish import DataDir

MESSAGE = "nothing changed since release 2026.11.25: no new version published"


def _counting(read: Counter[str]) -> Callable[[Path], bytes]:
    """digests' file reader, counting the reads of each file by absolute path."""
    reader = digests.file_sha256

    def counted(path: Path) -> bytes:
        read[str(path.absolute())] += 1
        return reader(path)

    return counted


@pytest.mark.slow
def test_the_second_build_of_the_same_inputs_reports_what_a_run_would_without_one(
    bundled_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session's bundled build (tests/conftest.py): the build service's first build of
    # these inputs into a fresh data dir, here a copy of it.
    outputs = DataDir(bundled_release)
    record = outputs.root / build_inputs.RECORD_FILE
    last = json.loads(record.read_text(encoding="utf-8"))
    manifest = json.loads((outputs.releases / "2026.11.25" / "manifest.json").read_text())
    answered_steps, ran_steps = tmp_path / "answered.json", tmp_path / "ran.json"
    answered = build(paths.BUNDLED_SNAPSHOT, outputs, step_times=answered_steps)

    # A record naming a release that is not the catalog's newest (nor has a folder): a run.
    record.write_text(json.dumps({**last, "version": "2026.11.24"}), encoding="utf-8")
    read: Counter[str] = Counter()
    monkeypatch.setattr(digests, "file_sha256", _counting(read))
    ran = build(paths.BUNDLED_SNAPSHOT, outputs, step_times=ran_steps)

    assert not answered_steps.exists()  # answered without a run: no step ran
    (run,) = json.loads(ran_steps.read_text(encoding="utf-8"))["runs"]
    assert run["job"] == "build" and "release__published" in run["steps"]
    # Fingerprint, raw inventories and the release's snapshot hash: each file read once.
    snapshot_files = {str(p) for p in paths.BUNDLED_SNAPSHOT.rglob("*") if p.is_file()}
    assert snapshot_files <= set(read)
    assert {read[name] for name in snapshot_files} == {1}
    # The first build published the history tables; the record leaves them out.
    assert last["version"] == "2026.11.25" and "record_versions" in manifest["tables"]
    assert "record_versions" not in last["rows"]
    assert answered == ran
    assert answered.version is None and answered.previous == "2026.11.25"
    assert answered.message == MESSAGE and answered.folder == outputs.releases / "2026.11.25"
    assert "record_versions" not in answered.rows and answered.rows["studies"] == 79
    assert json.loads(record.read_text(encoding="utf-8")) == last


def test_the_cli_answers_unchanged_inputs_without_loading_the_build(
    bundled_release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importing the build service (Dagster, Pandera, pandas) now fails: only the early answer
    # of pipelines/build_inputs.py can print the summary.
    monkeypatch.setitem(sys.modules, "pipelines.build", None)
    capsys.readouterr()
    assert main(["build", "--data-dir", str(bundled_release)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(MESSAGE) and "studies" in out and "record_versions" not in out


def _inputs(snapshot: Path, reference: Path, catalog: str = "") -> str:
    return build_inputs.fingerprint(snapshot, reference, catalog, "")


def test_every_input_changes_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snapshot"
    reference = tmp_path / "reference"
    code = tmp_path / "code"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, snapshot)
    shutil.copytree(paths.REFERENCE_DIR, reference)
    shutil.copytree(paths.PROJECT_ROOT / "schemas", code, ignore=shutil.ignore_patterns("*.pyc"))
    monkeypatch.setattr(build_inputs, "CODE_DIRS", (code,))
    base = _inputs(snapshot, reference)
    (code / "__pycache__").mkdir(exist_ok=True)
    (code / "__pycache__" / "stale.pyc").write_bytes(b"\0")
    assert _inputs(snapshot, reference) == base

    changed = []
    edits = [
        snapshot / "SNAPSHOT.json",
        next(iter(sorted(reference.glob("*.csv")))),
        next(iter(sorted(code.glob("*.py")))),
    ]
    for path in edits:
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        changed.append(_inputs(snapshot, reference))
        path.write_bytes(original)
    changed.append(_inputs(snapshot, reference, catalog="postgresql://build@db/lake"))
    changed.append(build_inputs.fingerprint(snapshot, reference, "", "", parts=2))
    (snapshot / "SNAPSHOT.json").rename(snapshot / "SNAPSHOT.moved")
    changed.append(_inputs(snapshot, reference))

    assert len({base, *changed}) == len(changed) + 1


def test_an_installed_distribution_changes_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _inputs(paths.BUNDLED_SNAPSHOT, paths.REFERENCE_DIR)
    installed = tmp_path / "site" / "example_dist-1.0.dist-info"
    installed.mkdir(parents=True)
    (installed / "METADATA").write_text("Name: example-dist\nVersion: 1.0\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    added = _inputs(paths.BUNDLED_SNAPSHOT, paths.REFERENCE_DIR)
    (installed / "METADATA").write_text("Name: example-dist\nVersion: 1.1\n", encoding="utf-8")
    upgraded = _inputs(paths.BUNDLED_SNAPSHOT, paths.REFERENCE_DIR)

    assert len({base, added, upgraded}) == 3


def test_staging_in_parts_is_an_input_one_pass_is_one_whatever_asked_it(tmp_path: Path) -> None:
    """A bulk export staged in N parts holds its rows (and quarantine rows) in another order
    than one pass: a build with other workers is not "nothing changed"."""
    outputs = DataDir(tmp_path / "data")
    one = {build_inputs.of_build(paths.BUNDLED_SNAPSHOT, outputs, workers=w) for w in (None, 1)}
    parts = [build_inputs.of_build(paths.BUNDLED_SNAPSHOT, outputs, workers=w) for w in (2, 3)]
    assert len(one) == 1 and len({*one, *parts}) == 3


def test_a_fresh_data_dir_is_answered_without_reading_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: Counter[str] = Counter()
    monkeypatch.setattr(digests, "file_sha256", _counting(read))
    assert build_inputs.answer(paths.BUNDLED_SNAPSHOT, DataDir(tmp_path / "data")) is None
    assert not read


def test_a_digest_is_read_once_inside_the_block_and_again_after_it(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_bytes(b"first")
    with digests.read_once():
        first = digests.sha256(path)
        path.write_bytes(b"other")
        assert digests.sha256(path) == first  # the build's inputs do not change under it
        with digests.read_once():
            assert digests.sha256(path) == first  # a nested block shares the outer one
    assert digests.sha256(path) == hashlib.sha256(b"other").digest() != first


def test_warming_reads_the_files_on_another_thread_for_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [tmp_path / f"page-{n}.json" for n in range(3)]
    for n, path in enumerate(files):
        path.write_bytes(bytes([n]) * 1000)
    read: Counter[str] = Counter()
    monkeypatch.setattr(digests, "file_sha256", _counting(read))
    with digests.read_once():
        digests.warm(files).join()
        assert [digests.sha256(path) for path in files] == [
            hashlib.sha256(path.read_bytes()).digest() for path in files
        ]
    assert read == Counter(str(path) for path in files)


def test_a_file_being_read_holds_back_only_those_who_ask_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, page = tmp_path / "archive.zip", tmp_path / "page.json"
    archive.write_bytes(b"archive")
    page.write_bytes(b"page")
    reading, finish = threading.Event(), threading.Event()
    read: Counter[str] = Counter()
    counted = _counting(read)

    def slow(path: Path) -> bytes:
        if path == archive:
            reading.set()
            assert finish.wait(30)
        return counted(path)

    monkeypatch.setattr(digests, "file_sha256", slow)
    try:
        with digests.read_once():
            warming = digests.warm([archive])
            assert reading.wait(10)
            # While the archive is read: another block opens, another file is read, at once.
            page_got: list[bytes] = []
            other = threading.Thread(target=lambda: page_got.append(_in_a_block(page)))
            other.start()
            other.join(5)
            assert page_got == [hashlib.sha256(b"page").digest()]
            waiter_got: list[bytes] = []
            waiter = threading.Thread(target=lambda: waiter_got.append(digests.sha256(archive)))
            waiter.start()
            waiter.join(0.2)
            assert waiter.is_alive() and not waiter_got  # it waits for the archive's one read
            finish.set()
            waiter.join(10)
            warming.join(10)
    finally:
        finish.set()  # a failing test does not leave the reader waiting
    assert waiter_got == [hashlib.sha256(b"archive").digest()]
    assert read == Counter({str(archive): 1, str(page): 1})


def _in_a_block(path: Path) -> bytes:
    with digests.read_once():
        return digests.sha256(path)


def test_a_failed_read_is_not_remembered(tmp_path: Path) -> None:
    path = tmp_path / "late.json"
    with digests.read_once():
        with pytest.raises(FileNotFoundError):
            digests.sha256(path)
        path.write_bytes(b"late")
        assert digests.sha256(path) == hashlib.sha256(b"late").digest()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 3 * 64 + 5])
def test_a_file_is_hashed_whole_across_its_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(digests, "CHUNK_BYTES", 64)
    path = tmp_path / "archive.zip"
    data = bytes(range(256)) * 2
    path.write_bytes(data[:size])
    assert digests.file_sha256(path) == hashlib.sha256(data[:size]).digest()

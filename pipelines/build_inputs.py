"""Everything a build reads, as one fingerprint: a build of the same inputs into the same data
dir publishes nothing ("nothing changed since release X"), so it need not run at all.

The inputs are the snapshot's files, the reference files, the pipeline's own code (every file of
the `pipelines` and `schemas` packages), the Python and the installed distributions, where the
data dir publishes (its catalog) and how many parts a bulk export is staged in (`--workers`:
parts split by key hold rows, and so the quarantine's, in another order than one pass). The
build service (pipelines/build.py) records the fingerprint with what a build reported in
`<data dir>/last_build.json`, and answers the next build whose fingerprint is the same from it
while that release is still the catalog's newest.

Nothing here loads Dagster, Pandera or pandas: the CLI asks `answer` before importing the build,
so a `make release` that changes nothing costs the fingerprint and a catalog read, not the
build's imports (`answer`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines import digests, paths
from pipelines.release import catalog
from pipelines.release.datadir import DataDir, exclusive, recover

RECORD_FILE = "last_build.json"
CODE_DIRS = (paths.PROJECT_ROOT / "pipelines", paths.PROJECT_ROOT / "schemas")
"""The pipeline's code; found by path, since importing `schemas` loads Pandera (0.5 s)."""


def _files(folder: Path) -> Iterable[Path]:
    """A folder's files in a fixed order, Python's bytecode caches left out."""
    return sorted(
        path for path in folder.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )


def _tree(digest: Any, label: str, folder: Path) -> None:
    """Add every file of `folder` (its path below the folder and its bytes) to `digest`."""
    for path in _files(folder):
        digest.update(f"{label}/{path.relative_to(folder).as_posix()}\0".encode())
        digest.update(digests.sha256(path))


def _software() -> list[str]:
    """The SHA-256 of each installed distribution's metadata file (name and version in it),
    sorted: read as text, not parsed, since parsing 165 of them was 0.08 CPU s, nearly all of
    the fingerprint's time."""
    texts = (
        dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        for dist in metadata.distributions()
    )
    return sorted(hashlib.sha256(text.encode()).hexdigest() for text in texts)


def fingerprint(
    snapshot_dir: Path, reference_dir: Path, catalog: str, data_path: str, parts: int = 1
) -> str:
    """SHA-256 of a build's inputs: snapshot, reference files, code, software, catalog, and the
    parts a bulk export is staged in."""
    digest = hashlib.sha256()
    _tree(digest, "snapshot", snapshot_dir)
    _tree(digest, "reference", reference_dir)
    for folder in CODE_DIRS:
        _tree(digest, f"code/{folder.name}", folder)
    digest.update(json.dumps([sys.version, _software(), catalog, data_path, parts]).encode())
    return digest.hexdigest()


def staging_parts(workers: int | None) -> int:
    """How many parts a build with `workers` stages a bulk export in: `workers` when more than
    one, else one pass (pipelines/build.py; pages give the same rows either way)."""
    return workers if workers is not None and workers > 1 else 1


def of_build(
    snapshot_dir: Path,
    outputs: DataDir,
    reference_dir: Path | None = None,
    workers: int | None = None,
) -> str:
    """The fingerprint of what a build of `snapshot_dir` into `outputs` with `workers` reads."""
    return fingerprint(
        snapshot_dir,
        reference_dir or paths.REFERENCE_DIR,
        str(outputs.catalog_url or ""),
        str(outputs.data_path or ""),
        staging_parts(workers),
    )


def of_build_ahead(
    snapshot_dir: Path,
    outputs: DataDir,
    reference_dir: Path | None = None,
    workers: int | None = None,
) -> Future[str]:
    """`of_build` on a thread of its own, for a build to wait for only when it needs it: at
    once when the data dir has a record the fingerprint may match (`unchanged`), else when
    the build records it. A bulk archive's digest takes seconds (2.5 CPU s at 560 000
    studies): the build's run gets ready meanwhile."""
    fingerprint: Future[str] = Future()

    def run() -> None:
        try:
            fingerprint.set_result(of_build(snapshot_dir, outputs, reference_dir, workers))
        except BaseException as error:
            fingerprint.set_exception(error)

    threading.Thread(target=run, name="fingerprint", daemon=True).start()
    return fingerprint


def warm(snapshot_dir: Path) -> threading.Thread:
    """Hash the snapshot's files on a second thread into the open `digests.read_once` block,
    for the fingerprint and the raw inventories to find done (the CLI, before the imports)."""
    return digests.warm(_files(snapshot_dir))


def recorded(data_dir: Path) -> dict[str, Any]:
    """What the last build into `data_dir` recorded; empty when none did (or it is unreadable)."""
    try:
        record = json.loads((data_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def record(data_dir: Path, inputs: str, version: str, rows: dict[str, int]) -> None:
    """Remember a finished build: its inputs' fingerprint, the newest release and its rows."""
    text = json.dumps({"inputs": inputs, "version": version, "rows": rows}, indent=2)
    (data_dir / RECORD_FILE).write_text(text + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Published:
    """What a build's release step did (read back from its materialization), or what the last
    build of the same inputs did."""

    version: str | None
    previous: str | None
    message: str
    folder: Path | None
    rows: dict[str, int]


def unchanged(outputs: DataDir, inputs: str) -> Published | None:
    """What the last build into `outputs` reported, when it read the same inputs and its
    release is still the newest in the catalog with its folder in place; else None.

    Such a build would publish nothing: the same code on the same snapshot, reference files
    and software gives the same tables (tests/pipeline/test_recorded_hashes.py). Call it
    holding the data dir's lock.
    """
    last = recorded(outputs.root)
    version = last.get("version")
    if last.get("inputs") != inputs or not isinstance(version, str):
        return None
    folder = outputs.releases / version
    if not folder.is_dir() or not outputs.lake.exists():
        return None
    con = catalog.connect(outputs.lake, read_only=True)
    try:
        releases = catalog.list_releases(con)
    finally:
        con.close()
    if not releases or releases[0].version != version:
        return None
    return Published(
        version=None,
        previous=version,
        message=f"nothing changed since release {version}: no new version published",
        folder=folder,
        rows={str(name): int(count) for name, count in last.get("rows", {}).items()},
    )


def answer(snapshot_dir: Path, outputs: DataDir, workers: int | None = None) -> Published | None:
    """The last build's report when a build of `snapshot_dir` would publish nothing, else None.

    For the CLI, before it imports the build: no record (a fresh data dir) or a fingerprint
    that differs from it answers None at once; one that matches is confirmed under the data
    dir's lock, a half-done publish finished first, as the build service would
    (pipelines/build.py).
    """
    last = recorded(outputs.root).get("inputs")
    if last is None:
        return None
    inputs = of_build(snapshot_dir, outputs, workers=workers)
    if last != inputs:
        return None
    with exclusive(outputs):
        recover(outputs)
        return unchanged(outputs, inputs)

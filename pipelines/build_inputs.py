"""Everything a build reads, as one fingerprint: a build of the same inputs into the same data
dir publishes nothing ("nothing changed since release X"), so it need not run at all.

The inputs are the snapshot's files, the reference files, the pipeline's own code (every file of
the `pipelines` and `schemas` packages), the Python and the installed distributions, and where
the data dir publishes (its catalog). The build service (pipelines/build.py) records the
fingerprint with what a build reported in `<data dir>/last_build.json`, and answers the next build
whose fingerprint is the same from it while that release is still the catalog's newest.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines import paths

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
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())


def fingerprint(snapshot_dir: Path, reference_dir: Path, catalog: str, data_path: str) -> str:
    """SHA-256 of a build's inputs: snapshot, reference files, code, software and catalog."""
    digest = hashlib.sha256()
    _tree(digest, "snapshot", snapshot_dir)
    _tree(digest, "reference", reference_dir)
    for folder in CODE_DIRS:
        _tree(digest, f"code/{folder.name}", folder)
    software = sorted(
        f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions()
    )
    digest.update(json.dumps([sys.version, software, catalog, data_path]).encode())
    return digest.hexdigest()


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

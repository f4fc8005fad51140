"""Snapshot folders: the raw input of every build (docs/snapshot.md).

A snapshot is a folder of response bodies, one subfolder per source, and `SNAPSHOT.json`.
Reading is replay: the build sees exactly the bytes a refresh recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipelines.sources import SOURCES

INFO_FILE = "SNAPSHOT.json"
METHODS = ("recorded", "reconstructed")


class SnapshotError(ValueError):
    """The snapshot folder itself is unusable (missing, incomplete, bad SNAPSHOT.json)."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What SNAPSHOT.json says about a snapshot."""

    captured_at: date
    topic: str
    method: str
    notes: str
    complete: bool = True
    carried_from: dict[str, str] = field(default_factory=dict)
    """Source -> stamp of the earlier snapshot its files were carried over from, because it
    failed for good in the refresh that recorded this one (docs/refresh-and-politeness.md)."""


def read_info(snapshot_dir: Path) -> SnapshotInfo:
    """Read and check SNAPSHOT.json; refuse a snapshot a refresh did not finish."""
    path = snapshot_dir / INFO_FILE
    if not snapshot_dir.is_dir():
        raise SnapshotError(f"snapshot folder not found: {snapshot_dir}")
    if not path.is_file():
        raise SnapshotError(f"{path} is missing: not a snapshot folder")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        info = SnapshotInfo(
            captured_at=date.fromisoformat(raw["captured_at"]),
            topic=str(raw["topic"]),
            method=str(raw["method"]),
            notes=str(raw.get("notes", "")),
            complete=bool(raw.get("complete", True)),
            carried_from=_carried_from(raw.get("carried_from", {})),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path} is not valid: {exc}") from exc
    if info.method not in METHODS:
        raise SnapshotError(f"{path}: method must be one of {METHODS}, not {info.method!r}")
    if not info.complete:
        raise SnapshotError(f"{snapshot_dir} is marked incomplete (an unfinished refresh)")
    return info


def _carried_from(value: object) -> dict[str, str]:
    """SNAPSHOT.json `carried_from`: a map of registered source names to snapshot stamps."""
    if not isinstance(value, dict) or not all(
        name in SOURCES and isinstance(stamp, str) for name, stamp in value.items()
    ):
        raise ValueError(f"carried_from must map source names to snapshot stamps, not {value!r}")
    return dict(sorted(value.items()))


def source_files(snapshot_dir: Path, source: str) -> list[Path]:
    """Files of one registered source, sorted by name; none when the folder is absent.

    A file with another suffix is an error, not a silent skip (docs/snapshot.md).
    """
    folder = snapshot_dir / source
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    suffix = SOURCES[source].suffix
    for path in files:
        if not path.is_file() or path.suffix != suffix:
            raise SnapshotError(f"{path}: not a {source} file (expected *{suffix})")
    return files


SUPERSEDES = "supersedes"
"""SNAPSHOT.json key: {file relative to the snapshot: [record keys a newer record replaces]}."""


def superseded_records(snapshot_dir: Path) -> dict[str, frozenset[str]]:
    """The records SNAPSHOT.json says are superseded, by relative file; none when it says none
    (or when there is no SNAPSHOT.json: a folder of files staged on their own).

    Raises:
        SnapshotError: `supersedes` is not a map of file names to lists of keys.
    """
    path = snapshot_dir / INFO_FILE
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    listed = info.get(SUPERSEDES, {}) if isinstance(info, dict) else {}
    if not isinstance(listed, dict) or not all(
        isinstance(keys, list) and all(isinstance(k, str) for k in keys) for keys in listed.values()
    ):
        raise SnapshotError(f"{path}: {SUPERSEDES!r} must map files to key lists")
    return {str(name): frozenset(keys) for name, keys in listed.items()}


OFF_TOPIC = "off_topic"
"""SNAPSHOT.json key: {source: {record key: sha256 of the record}} of the works a refresh's
relevance screen dropped (`pipelines.sources.relevance`); the build quarantines them."""


def off_topic_records(snapshot_dir: Path) -> dict[str, dict[str, str]]:
    """The records SNAPSHOT.json lists as off topic, per source (none when it lists none).

    Raises:
        SnapshotError: `off_topic` is not a map of sources to {key: sha256}.
    """
    path = snapshot_dir / INFO_FILE
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    listed = info.get(OFF_TOPIC, {}) if isinstance(info, dict) else {}
    if not isinstance(listed, dict) or not all(
        isinstance(keys, dict) and all(isinstance(v, str) for v in keys.values())
        for keys in listed.values()
    ):
        raise SnapshotError(f"{path}: {OFF_TOPIC!r} must map sources to {{key: sha256}}")
    return {str(source): dict(keys) for source, keys in listed.items()}


def snapshot_sha256(snapshot_dir: Path) -> str:
    """Content hash of a snapshot: SNAPSHOT.json and every source file, by relative path."""
    digest = hashlib.sha256()
    paths = [snapshot_dir / INFO_FILE]
    for source in SOURCES:
        paths.extend(source_files(snapshot_dir, source))
    for path in paths:
        digest.update(path.relative_to(snapshot_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()

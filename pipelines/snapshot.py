"""Snapshot folders: the raw input of every build (docs/snapshot.md).

A snapshot is a folder of response bodies, one subfolder per source, and `SNAPSHOT.json`.
Reading is replay: the build sees exactly the bytes a refresh recorded.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from pipelines import bulkzip, digests
from pipelines.sources import SOURCES
from pipelines.sources.base import BulkExport, SnapshotFormatError, SourceUnit

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

    A source with a bulk export also takes its archives (ClinicalTrials.gov: `*.zip`). A file
    with another suffix is an error, not a silent skip (docs/snapshot.md).
    """
    folder = snapshot_dir / source
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    unit = SOURCES[source]
    suffixes = {unit.suffix, *([unit.bulk.suffix] if unit.bulk else [])}
    for path in files:
        if not path.is_file() or path.suffix not in suffixes:
            expected = " or ".join(f"*{s}" for s in sorted(suffixes))
            raise SnapshotError(f"{path}: not a {source} file (expected {expected})")
    return files


@dataclass(frozen=True)
class Shard:
    """Part `index` of `count` of a source's records, split by a stable hash of the record key,
    so that every version of one record (same key) falls in the same part and the parts can
    be staged in separate processes with the same de-duplication as one pass; with `files`,
    only the records of those snapshot files (`file_shards`)."""

    index: int = 0
    count: int = 1
    files: frozenset[str] | None = None
    """The snapshot files (relative names) read; None: every file of the source."""
    runs: bool = False
    """Split a bulk archive by position, not key: part `index` reads the `index`-th of `count`
    runs of consecutive members (about equal central-directory bytes), so the parts, in part
    order, read the records in one pass's order (`archive_runs`)."""

    def takes(self, entry: int, directory_bytes: int) -> bool:
        """Whether the archive member whose central-directory entry starts `entry` bytes into
        a directory of `directory_bytes` is this part's (always, unless split in `runs`)."""
        if not self.runs:
            return True
        return min(self.count - 1, entry * self.count // max(directory_bytes, 1)) == self.index

    def reads(self, name: str) -> bool:
        """Whether the snapshot file `name` (relative to the snapshot) is read at all."""
        return self.files is None or name in self.files

    def holds(self, key: str | None) -> bool:
        """Whether a record with this key is this part's; keyless records are part 0's."""
        if self.count == 1 or self.runs:
            return True
        if key is None:
            return self.index == 0
        return zlib.crc32(key.encode()) % self.count == self.index


WHOLE = Shard()
"""Every record: one part."""


def shard_files(snapshot_dir: Path, source: str, shard: Shard = WHOLE) -> list[Path]:
    """The files of a source that `shard` reads, in file order."""
    return [
        path
        for path in source_files(snapshot_dir, source)
        if shard.reads(path.relative_to(snapshot_dir).as_posix())
    ]


def file_shards(snapshot_dir: Path, source: str, count: int) -> list[Shard]:
    """A source's files dealt to at most `count` parts in runs of consecutive files of about
    equal bytes (a file goes to the part its middle byte falls in; empty parts left out).

    Read one after the other, the parts read the records in the order one pass does, so
    their staged rows, concatenated, are that pass's: only a key that comes again in a later
    part's files is decided differently (`pipelines.shards.combine` checks for one). No file is
    read to split them, unlike a split by key, which parses every record in every part.
    """
    files = source_files(snapshot_dir, source)
    sizes = [path.stat().st_size for path in files]
    total = max(sum(sizes), 1)
    parts: list[set[str]] = [set() for _ in range(count)]
    before = 0
    for path, size in zip(files, sizes, strict=True):
        part = min(count - 1, (2 * before + size) * count // (2 * total))
        parts[part].add(path.relative_to(snapshot_dir).as_posix())
        before += size
    return [Shard(files=frozenset(names)) for names in parts if names]


@dataclass(frozen=True)
class SnapshotRecord:
    """One record read from a snapshot file, or a member of a bulk archive that is not one."""

    file: str
    """The snapshot file, relative to the snapshot (what SNAPSHOT.json `supersedes` names)."""
    origin: str
    """Where the record was read: the file, or `<archive>/<member>` for a bulk archive's
    member (the lineage `_source_file` and quarantine `source_file`)."""
    value: Any
    """The unit's record (what `iter_records` yields); None when `problem` is set."""
    problem: str | None = None
    """Why an archive member holds no record: it is quarantined with this reason."""
    key: str | None = None
    """The key a bad member's name announces (its quarantine `record_key`)."""
    raw: str = ""
    """A bad member's text (its quarantine `raw`)."""


def source_records(
    snapshot_dir: Path, source: str, shard: Shard = WHOLE
) -> Iterator[SnapshotRecord]:
    """Every record of a source's snapshot files in file order (then record or member order),
    streamed; with `shard`, only that part's.

    A bulk archive is read in place member by member (`archive_members`: the central
    directory streamed, then one member at a time), never extracted; a member that is not a
    record comes back with a `problem` instead of stopping the build. Other files go through
    the unit's `iter_records`.

    Raises:
        SnapshotFormatError: a file (or an archive as a whole) is not in the source's format.
    """
    unit = SOURCES[source]
    for path in shard_files(snapshot_dir, source, shard):
        name = path.relative_to(snapshot_dir).as_posix()
        if unit.bulk is not None and path.suffix == unit.bulk.suffix:
            yield from _archive_records(unit, path, name, shard)
            continue
        for value in unit.iter_records(path):
            if shard.holds(unit.record_key(value)):
                yield SnapshotRecord(name, name, value)


def file_values(unit: SourceUnit, path: Path) -> Iterator[Any]:
    """The readable records of one snapshot file, archives included (members that are not
    records are left out): for readers that look records up rather than stage them."""
    name = f"{unit.name}/{path.name}"
    if unit.bulk is not None and path.suffix == unit.bulk.suffix:
        records = _archive_records(unit, path, name, WHOLE)
        yield from (r.value for r in records if r.problem is None)
    else:
        yield from unit.iter_records(path)


class ArchiveMember(NamedTuple):
    """One member of a bulk archive as read, before it is parsed: for readers that parse
    members themselves (a batch at a time) as well as for `source_records`."""

    member: str
    """Its path inside the archive (`35/NCT02252835.json`)."""
    key: str | None
    """The record key its path announces (`BulkExport.member_key`)."""
    body: bytes | None
    """Its bytes, decompressed; None when it cannot be read."""
    problem: str | None = None
    """Why it cannot be read (`unreadable member: ...`), quarantined with its announced key."""


def archive_members(path: Path, bulk: BulkExport, shard: Shard = WHOLE) -> Iterator[ArchiveMember]:
    """The members of one bulk archive in archive order, read one at a time (directory
    entries left out); with `shard`, only that part's, chosen by the key each member's name
    announces (or by its place in the archive, `Shard.runs`) before it is read. Memory stays
    flat in the member count: the central directory is streamed (`pipelines.bulkzip`), not
    held as one object per member.

    Raises:
        SnapshotFormatError: the file is not a readable ZIP archive.
    """
    try:
        with bulkzip.Archive(path) as archive:
            for entry in archive.members():
                if entry.name.endswith("/") or not shard.takes(
                    entry.entry, archive.directory_bytes
                ):
                    continue
                announced = bulk.member_key(entry.name)
                if not shard.holds(announced):
                    continue
                try:
                    body = archive.read(entry)
                except bulkzip.MemberError as exc:
                    yield ArchiveMember(entry.name, announced, None, f"unreadable member: {exc}")
                    continue
                yield ArchiveMember(entry.name, announced, body)
    except (bulkzip.ZipFormatError, OSError) as exc:
        raise SnapshotFormatError(path, f"not a readable ZIP archive: {exc}") from exc


def _archive_records(
    unit: SourceUnit, path: Path, name: str, shard: Shard
) -> Iterator[SnapshotRecord]:
    """The members of one bulk archive, in archive order, each read and parsed alone.

    A member's shard is decided from its name before it is decompressed; a member whose name
    and record disagree on the key is a bad member (it could otherwise sit in the wrong shard).
    """
    assert unit.bulk is not None
    for item in archive_members(path, unit.bulk, shard):
        origin = f"{name}/{item.member}"
        if item.body is None:
            yield SnapshotRecord(name, origin, None, item.problem, item.key)
            continue
        value, problem = member_record(unit, item.member, item.key, item.body)
        if problem is None:
            yield SnapshotRecord(name, origin, value)
        else:
            raw = item.body.decode("utf-8", errors="replace")
            yield SnapshotRecord(name, origin, None, problem, item.key, raw)


def member_record(
    unit: SourceUnit, member: str, announced: str | None, body: bytes
) -> tuple[Any, str | None]:
    """A bulk archive member's record, or why it is not one (the quarantine reason): a name
    without the unit's member suffix, bytes the unit's `read_member` refuses, or a record
    whose key is not the one its name announces.

    Public because set-wise staging (`pipelines.setwise`) parses members in DuckDB and asks
    this, the record-by-record reader's own check, only about the members DuckDB did not
    read as the record their name announces: both ways then give the same reasons.
    """
    bulk = unit.bulk
    assert bulk is not None
    if not member.endswith(bulk.member_suffix):
        return None, f"archive member {member} is not a {bulk.member_suffix} record"
    try:
        value = bulk.read_member(body)
    except ValueError as exc:
        return None, f"archive member {member}: {exc}"
    key = unit.record_key(value)
    if key is not None and announced is None:
        return None, f"archive member {member} holds record {key} but its name gives no key"
    if key is not None and key != announced:
        return None, f"archive member {member} holds record {key}, not {announced}"
    return value, None


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
        digest.update(digests.sha256(path))
    return digest.hexdigest()

"""What a finished refresh takes over from earlier snapshots: the snapshot-only sources' files,
a live source's files when that source failed for good, and for `--since-last` every file of
the base, with the records newer ones replace listed."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines import paths, snapshot
from pipelines.sources import SOURCES

FAILED_SOURCES = "failed_sources"
"""SNAPSHOT.json key: {source: one-line reason} for every live source that failed for good."""
CARRIED_FROM = "carried_from"
"""SNAPSHOT.json key: {source: stamp of the complete snapshot its files were copied from}."""


def previous_recorded(snapshots_dir: Path, exclude: Path, source: str) -> Path | None:
    """`source`'s folder in the newest complete snapshot under `snapshots_dir` that has one."""
    if snapshots_dir.is_dir():
        for folder in sorted(snapshots_dir.iterdir(), reverse=True):
            if folder == exclude or not (folder / source).is_dir():
                continue
            try:
                snapshot.read_info(folder)
            except snapshot.SnapshotError:
                continue
            return folder / source
    return None


def previous_folder(snapshots_dir: Path, exclude: Path, source: str) -> Path:
    """`source`'s folder in the newest complete snapshot that has one, else the bundled one."""
    recorded = previous_recorded(snapshots_dir, exclude, source)
    return recorded if recorded is not None else paths.BUNDLED_SNAPSHOT / source


def carry_sources(
    snapshots_dir: Path, folder: Path, failed: Iterable[str], base: Path | None
) -> dict[str, Path] | None:
    """Where each failed source's files would come from; None when one has nowhere to come from.

    With a `--since-last` base that is the base (whose files are carried anyway); otherwise
    the newest complete recorded snapshot holding the source. The bundled snapshot does not
    count: it is reconstructed, and carrying it would pass off old input as this refresh's.
    """
    sources: dict[str, Path] = {}
    for source in failed:
        found = (
            base / source if base is not None else previous_recorded(snapshots_dir, folder, source)
        )
        if found is None:
            return None
        sources[source] = found
    return sources


def carry_failed(folder: Path, sources: Mapping[str, Path], *, copy: bool) -> dict[str, str]:
    """Replace each failed source's partial pages in `folder` by its earlier files, byte for byte.

    What the failed source recorded before it failed is dropped: a snapshot never mixes pages
    of two runs of one source. With `copy` false (a `--since-last` run, whose `merge_base`
    copies the base's files), the pages are only dropped. Returns source -> stamp carried from.
    """
    for source, previous in sources.items():
        shutil.rmtree(folder / source, ignore_errors=True)
        if copy and previous.is_dir():
            shutil.copytree(previous, folder / source)
    return {source: previous.parent.name for source, previous in sorted(sources.items())}


def carry_snapshot_only(snapshots_dir: Path, folder: Path) -> None:
    """Copy every source without an API (kept by hand) from the newest snapshot holding it."""
    for name, unit in SOURCES.items():
        if unit.live is not None:
            continue
        previous = previous_folder(snapshots_dir, folder, name)
        if previous.is_dir():
            shutil.copytree(previous, folder / name)


@dataclass(frozen=True)
class Carried:
    """What carrying a base snapshot over did, and what it leaves superseded."""

    files: int
    supersedes: dict[str, list[str]]
    """Relative file -> keys of its records that newer records replace (SNAPSHOT.json)."""

    @property
    def superseded(self) -> int:
        """How many records of carried files the build skips."""
        return sum(len(keys) for keys in self.supersedes.values())


def superseded_keys(folder: Path, source: str, delta_name: str) -> set[str]:
    """Keys of the records this run recorded for `source`, plus the keys they replace.

    Only the delta pages count (named `<delta_name>-NNNN`), never a file already carried over.
    A record may replace older keys besides its own (the unit's `replaces`, e.g. a
    ClinicalTrials.gov study listing an old id in `nctIdAliases`).
    """
    unit = SOURCES[source]
    keys: set[str] = set()
    for path in snapshot.source_files(folder, source):
        if not path.name.startswith(f"{delta_name}-"):
            continue
        for record in snapshot.file_values(unit, path):
            key = unit.record_key(record)
            if key is not None:
                keys.add(key)
            keys.update(unit.replaces(record))
    return keys


def merge_base(folder: Path, base: Path, delta_name: str) -> Carried:
    """Carry every source file of `base` into `folder` byte for byte; list what is superseded.

    A snapshot holds bodies exactly as the sources returned them, so no carried file is
    rewritten: the records this run's delta pages replace (same key, or a key the new record
    `replaces`) are listed per file instead, on top of what the base already listed.
    """
    supersedes = {name: set(keys) for name, keys in snapshot.superseded_records(base).items()}
    files = 0
    for source, unit in SOURCES.items():
        drop = superseded_keys(folder, source, delta_name) if unit.live is not None else set()
        for path in snapshot.source_files(base, source):
            target = folder / source / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            files += 1
            if not drop:
                continue
            keys = (unit.record_key(r) for r in snapshot.file_values(unit, path))
            hit = {key for key in keys if key in drop}
            if hit:
                supersedes.setdefault(f"{source}/{path.name}", set()).update(hit)
    return Carried(files, {name: sorted(keys) for name, keys in sorted(supersedes.items())})

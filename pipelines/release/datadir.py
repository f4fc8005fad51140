"""A data dir's layout, its build lock, and its repair after an interrupted publish.

Apart from publishing (publish.py) so that a command which only needs the lock and the
catalog's word (`kratom-evidence build` answering "nothing changed", `releases`) loads no
Dagster, Pandera or pandas: those imports are most of such a command's time.
"""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines.release import catalog

INCOMING_PREFIX = ".incoming-"
VERSION_PATTERN = re.compile(r"^\d{4}\.\d{2}\.\d{2}(\.\d+)?$")
_HELD_LOCKS: set[Path] = set()


class PublishError(RuntimeError):
    """Publishing was refused (another build holds the lock, a version exists, ...)."""


class BusyError(PublishError):
    """Another process holds the data dir's build lock."""


@dataclass(frozen=True)
class DataDir:
    """The outputs of builds under one --data-dir (docs/releases-and-time-travel.md)."""

    root: Path
    catalog_url: str | None = None
    """`postgresql://user@host:port/dbname` for a shared catalog; None keeps it in `lake/`."""
    data_path: str | None = None
    """Folder or object-store URL of the Parquet data files; None means `lake/files/`."""

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def spill_dir(self) -> Path:
        """Where the publish step's DuckDB spills sorts and joins larger than its memory."""
        return self.root / ".spill"

    @property
    def lake(self) -> catalog.LakeLocation:
        return catalog.LakeLocation.choose(self.lake_dir, self.catalog_url, self.data_path)


@contextmanager
def exclusive(data_dir: DataDir) -> Iterator[None]:
    """Hold the data dir's build lock, or stop at once with a clear message.

    Re-entrant within one process: the CLI holds it for the whole build (the warehouse is
    shared too) and publish takes it again without deadlocking. The kernel drops the lock
    when the process dies, so a killed build never leaves it stale.
    """
    data_dir.root.mkdir(parents=True, exist_ok=True)
    key = data_dir.lock_file.resolve()
    if key in _HELD_LOCKS:
        yield
        return
    with open(data_dir.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(
                f"another build is publishing into {data_dir.root}; wait for it to finish"
            ) from None
        _HELD_LOCKS.add(key)
        try:
            yield
        finally:
            _HELD_LOCKS.discard(key)
            fcntl.flock(handle, fcntl.LOCK_UN)


def folder_versions(releases: Path) -> set[str]:
    """Version-named folders in `releases/`: taken even when no catalog lists them."""
    if not releases.is_dir():
        return set()
    return {p.name for p in releases.iterdir() if p.is_dir() and VERSION_PATTERN.match(p.name)}


def unlisted_folders(releases: Path, published: set[str]) -> list[str]:
    """Release folders no committed release owns (a lost or replaced catalog), sorted."""
    return sorted(folder_versions(releases) - published)


def recover(data_dir: DataDir) -> None:
    """Make folders and data files agree with the catalog after an interrupted publish.

    Call it holding the lock. Orphaned data files (a publish killed inside its catalog
    transaction) go too: every one with a local catalog, which has one writer; only old ones
    with a PostgreSQL catalog, where a build on another machine may be writing right now.

    Raises:
        PublishError: a version-named folder the catalog does not list; nothing is touched.
    """
    con = catalog.connect(data_dir.lake) if data_dir.lake.exists() else None
    try:
        published = {r.version for r in catalog.list_releases(con)} if con else set()
        unlisted = unlisted_folders(data_dir.releases, published)
        if unlisted:
            raise PublishError(
                f"release folder(s) {', '.join(unlisted)} in {data_dir.releases} are not in the "
                "catalog (lake missing or replaced?) and published versions are never "
                "overwritten: restore the catalog that published them, or move them out"
            )
        for entry in sorted(data_dir.releases.glob(f"{INCOMING_PREFIX}*")):
            version = entry.name.removeprefix(INCOMING_PREFIX)
            final = data_dir.releases / version
            if version in published and not final.exists():
                entry.rename(final)
            else:
                shutil.rmtree(entry)
        if con is not None:
            catalog.delete_orphaned_files(con, every=not data_dir.lake.is_postgres)
    finally:
        if con is not None:
            con.close()


def interrupted(data_dir: DataDir) -> bool:
    """Whether a publish left an unfinished `.incoming-*` folder behind."""
    return any(data_dir.releases.glob(f"{INCOMING_PREFIX}*"))


def finish_interrupted(data_dir: DataDir) -> str | None:
    """For read commands: finish a publish a killed build left half done, unless one runs.

    After a kill between the catalog commit and the folder rename, `releases` lists a version
    whose folder is still `.incoming-V`. Returns a one-line note when a running build holds
    the lock (it finishes the folders itself), else None.
    """
    if not interrupted(data_dir):
        return None
    try:
        with exclusive(data_dir):
            recover(data_dir)
    except BusyError:
        return (
            f"a build is publishing into {data_dir.root}: release folders may lag the catalog "
            "until it finishes"
        )
    return None

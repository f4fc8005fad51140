"""Raw layer: the snapshot's files per source, inventoried (the bytes stay where they are)."""

import hashlib
from collections.abc import Iterable

import dagster as dg

from pipelines import snapshot
from pipelines.assets.snapshot import SNAPSHOT_KEY
from pipelines.resources import SnapshotResource
from pipelines.sources import SOURCES
from pipelines.sources.base import SourceUnit


def raw_asset(unit: SourceUnit) -> dg.AssetsDefinition:
    """The inventory of one source's snapshot files, with when and how the snapshot was taken."""
    source = unit.name

    @dg.asset(
        key=["raw", source],
        group_name="raw",
        deps=[SNAPSHOT_KEY],
        kinds={"json" if unit.suffix == ".json" else "file"},
        description=f"Response bodies of {source} in the snapshot, exactly as recorded.",
    )
    def raw_source(snapshot_store: SnapshotResource) -> dg.MaterializeResult:
        info = snapshot_store.info()
        files = snapshot.source_files(snapshot_store.folder, source)
        digest = hashlib.sha256()
        total = 0
        for path in files:
            total += path.stat().st_size
            digest.update(path.name.encode() + b"\0" + snapshot.file_sha256(path).digest())
        return dg.MaterializeResult(
            metadata={
                "files": len(files),
                "bytes": total,
                "sha256": digest.hexdigest(),
                "folder": dg.MetadataValue.path(str(snapshot_store.folder / source)),
                "captured_at": info.captured_at.isoformat(),
                "method": info.method,
            }
        )

    return raw_source


def raw_assets(units: Iterable[SourceUnit]) -> list[dg.AssetsDefinition]:
    """One raw asset per source unit."""
    return [raw_asset(unit) for unit in units]


RAW_ASSETS = raw_assets(SOURCES.values())

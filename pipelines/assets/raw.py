"""Raw layer: the snapshot's files per source, inventoried (the bytes stay where they are)."""

import hashlib
from collections.abc import Iterable, Iterator

import dagster as dg

from pipelines import digests, snapshot
from pipelines.assets.snapshot import SNAPSHOT_KEY
from pipelines.resources import SnapshotResource
from pipelines.sources import SOURCES
from pipelines.sources.base import SourceUnit


def raw_key(source: str) -> dg.AssetKey:
    """The inventory asset of one source's snapshot files."""
    return dg.AssetKey(["raw", source])


def inventory(snapshot_store: SnapshotResource, source: str) -> dict[str, dg.MetadataValue]:
    """One source's files in the snapshot: count, bytes, a digest of names and contents, and
    when and how the snapshot was taken."""
    info = snapshot_store.info()
    files = snapshot.source_files(snapshot_store.folder, source)
    digest = hashlib.sha256()
    total = 0
    for path in files:
        total += path.stat().st_size
        digest.update(path.name.encode() + b"\0" + digests.sha256(path))
    return {
        "files": dg.MetadataValue.int(len(files)),
        "bytes": dg.MetadataValue.int(total),
        "sha256": dg.MetadataValue.text(digest.hexdigest()),
        "folder": dg.MetadataValue.path(str(snapshot_store.folder / source)),
        "captured_at": dg.MetadataValue.text(info.captured_at.isoformat()),
        "method": dg.MetadataValue.text(info.method),
    }


def raw_assets(units: Iterable[SourceUnit]) -> list[dg.AssetsDefinition]:
    """One inventory asset per source unit, all taken in one step (a subset takes only the
    selected sources'): a step per source cost more in Dagster's bookkeeping than the
    inventory itself."""
    units = list(units)
    sources = [unit.name for unit in units]
    specs = [
        dg.AssetSpec(
            raw_key(unit.name),
            group_name="raw",
            deps=[SNAPSHOT_KEY],
            kinds={"json" if unit.suffix == ".json" else "file"},
            description=f"Response bodies of {unit.name} in the snapshot, exactly as recorded.",
        )
        for unit in units
    ]

    @dg.multi_asset(name="raw", specs=specs, can_subset=True)
    def raw_sources(
        context: dg.AssetExecutionContext, snapshot_store: SnapshotResource
    ) -> Iterator[dg.MaterializeResult]:
        for source in sources:
            if raw_key(source) in context.selected_asset_keys:
                yield dg.MaterializeResult(
                    asset_key=raw_key(source), metadata=inventory(snapshot_store, source)
                )

    return [raw_sources]


RAW_ASSETS = raw_assets(SOURCES.values())

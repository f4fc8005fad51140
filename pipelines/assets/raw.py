"""Raw layer: the snapshot's files per source, inventoried (the bytes stay where they are)."""

import hashlib

import dagster as dg

from pipelines import snapshot
from pipelines.resources import SnapshotResource
from pipelines.staging import PARSERS


def _raw_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", source],
        group_name="raw",
        kinds={"json" if snapshot.SOURCE_SUFFIX[source] == ".json" else "file"},
        description=f"Response bodies of {source} in the snapshot, exactly as recorded.",
    )
    def raw_source(snapshot_store: SnapshotResource) -> dg.MaterializeResult:
        snapshot_store.info()
        files = snapshot.source_files(snapshot_store.folder, source)
        digest = hashlib.sha256()
        total = 0
        for path in files:
            body = path.read_bytes()
            total += len(body)
            digest.update(path.name.encode() + b"\0" + hashlib.sha256(body).digest())
        return dg.MaterializeResult(
            metadata={
                "files": len(files),
                "bytes": total,
                "sha256": digest.hexdigest(),
                "folder": dg.MetadataValue.path(str(snapshot_store.folder / source)),
            }
        )

    return raw_source


RAW_ASSETS = [_raw_asset(source) for source in PARSERS]

"""Head of the graph: the snapshot a run builds, recorded from the live sources or read as is.

Every per-source raw asset depends on it, so a refresh run (mode `record`, requested by the
schedule or the version sensor, pipelines/automation.py) and a build of an existing folder
(mode `read`, the CLI and the UI's default) materialize the same graph.
"""

from pathlib import Path

import dagster as dg

from pipelines.automation import record
from pipelines.resources import (
    LiveCredentialsResource,
    LiveSourcesResource,
    ReleaseResource,
    SnapshotResource,
)
from pipelines.snapshot import SnapshotError, read_info

SNAPSHOT_KEY = dg.AssetKey(["raw", "snapshot"])


def _finished(folder: Path) -> bool:
    """Whether a refresh already finished this folder: a re-executed run does not fetch again."""
    try:
        read_info(folder)
    except SnapshotError:
        return False
    return True


@dg.asset(
    key=SNAPSHOT_KEY,
    group_name="raw",
    kinds={"file"},
    description="The snapshot folder this run builds: recorded from the live sources into "
    "DATA/snapshots/<stamp>/ (snapshot_store mode record) or an existing folder (mode read).",
)
def snapshot_folder(
    context: dg.AssetExecutionContext,
    snapshot_store: SnapshotResource,
    live_sources: LiveSourcesResource,
    live_credentials: LiveCredentialsResource,
    release: ReleaseResource,
) -> dg.MaterializeResult:
    folder = snapshot_store.folder
    recorded: dict[str, dg.MetadataValue] = {}
    if snapshot_store.mode == "record" and not _finished(folder):
        recorded = record(folder, live_sources, live_credentials, release.reference)
        context.log.info(f"recorded {folder}")
    info = snapshot_store.info()
    return dg.MaterializeResult(
        metadata={
            **recorded,
            "folder": dg.MetadataValue.path(str(folder)),
            "captured_at": dg.MetadataValue.text(info.captured_at.isoformat()),
            "method": dg.MetadataValue.text(info.method),
            "topic": dg.MetadataValue.text(info.topic),
            "recorded_now": dg.MetadataValue.bool(bool(recorded)),
        }
    )

"""Dagster resources: the side effects of a build (snapshot files, warehouse, release outputs)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines import paths
from pipelines.release.publish import DataDir
from pipelines.snapshot import SnapshotInfo, read_info


class SnapshotResource(dg.ConfigurableResource):
    """The snapshot folder a build replays (the bundled one unless told otherwise)."""

    path: str = str(paths.BUNDLED_SNAPSHOT)

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def info(self) -> SnapshotInfo:
        return read_info(self.folder)


class ReleaseResource(dg.ConfigurableResource):
    """Where releases go, where the reference vocabularies are read, and an optional version."""

    data_dir: str = str(paths.DEFAULT_DATA_DIR)
    reference_dir: str = str(paths.REFERENCE_DIR)
    release_version: str | None = None
    catalog: str | None = None
    """`postgresql://…` to keep the DuckLake catalog in PostgreSQL; None keeps it in `lake/`."""
    catalog_data_path: str | None = None
    """Folder or object-store URL for the lake's Parquet files; None means `lake/files/`."""
    created_at: str | None = None
    """UTC time of the build, ISO 8601; set by the CLI so metadata never reads the clock itself."""

    @property
    def outputs(self) -> DataDir:
        return DataDir(Path(self.data_dir), self.catalog, self.catalog_data_path)

    @property
    def reference(self) -> Path:
        return Path(self.reference_dir)

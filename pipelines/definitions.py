"""The Dagster code location: raw → staging → curated → release, and their resources."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines import paths
from pipelines.assets.curated import CURATED_ASSETS, CURATED_CHECKS
from pipelines.assets.raw import RAW_ASSETS
from pipelines.assets.release import published_release
from pipelines.assets.staging import STAGING_ASSETS
from pipelines.automation import clinicaltrials_version_sensor, refresh_job, weekly_refresh
from pipelines.resources import (
    LiveCredentialsResource,
    LiveSourcesResource,
    ReleaseResource,
    SnapshotResource,
)

ASSETS = [*RAW_ASSETS, *STAGING_ASSETS, *CURATED_ASSETS, published_release]
CHECKS = [*CURATED_CHECKS]


def make_definitions(
    snapshot: str = str(paths.BUNDLED_SNAPSHOT),
    data_dir: str = str(paths.DEFAULT_DATA_DIR),
    release_version: str | None = None,
    created_at: str | None = None,
    catalog: str | None = None,
    catalog_data_path: str | None = None,
) -> dg.Definitions:
    """Definitions wired to one snapshot and one data dir (the CLI builds its own)."""
    release = ReleaseResource(
        data_dir=data_dir,
        release_version=release_version,
        created_at=created_at,
        catalog=catalog,
        catalog_data_path=catalog_data_path,
    )
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        resources={
            "snapshot_store": SnapshotResource(path=snapshot),
            "warehouse": DuckDBResource(database=str(release.outputs.warehouse)),
            "release": release,
            "live_sources": LiveSourcesResource(),
            # Names, not values: Dagster resolves them at run time and never displays them.
            "live_credentials": LiveCredentialsResource(
                email=dg.EnvVar("KRATOM_EVIDENCE_EMAIL"),
                ncbi_api_key=dg.EnvVar("NCBI_API_KEY"),
                openalex_api_key=dg.EnvVar("OPENALEX_API_KEY"),
            ),
        },
        jobs=[dg.define_asset_job("build", selection=dg.AssetSelection.all()), refresh_job],
        schedules=[weekly_refresh],
        sensors=[clinicaltrials_version_sensor],
    )


defs = make_definitions()

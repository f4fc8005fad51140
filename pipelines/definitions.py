"""The Dagster code location: raw → staging → curated → release, and their resources.

The resources hold defaults (the bundled snapshot, the repository's data dir); what a run builds
is its run config (`pipelines/build.py` `run_config`), so the CLI, the UI, the schedule and the
sensor all run these same definitions.
"""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines import build, paths
from pipelines.assets.curated import CURATED_ASSETS, CURATED_CHECKS
from pipelines.assets.raw import RAW_ASSETS
from pipelines.assets.release import published_release
from pipelines.assets.staging import STAGING_ASSETS
from pipelines.automation import clinicaltrials_version_sensor, refresh_job, weekly_refresh
from pipelines.release.publish import DataDir
from pipelines.resources import (
    LiveCredentialsResource,
    LiveSourcesResource,
    ReleaseResource,
    SnapshotResource,
)

BUILD_JOB = dg.define_asset_job(
    build.JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Every asset from the configured snapshot, checks included, then the release.",
    executor_def=dg.in_process_executor,
)
ASSETS = [*RAW_ASSETS, *STAGING_ASSETS, *CURATED_ASSETS, published_release]
CHECKS = [*CURATED_CHECKS]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    resources={
        "snapshot_store": SnapshotResource(path=str(paths.BUNDLED_SNAPSHOT)),
        "warehouse": DuckDBResource(database=str(DataDir(paths.DEFAULT_DATA_DIR).warehouse)),
        "release": ReleaseResource(data_dir=str(paths.DEFAULT_DATA_DIR)),
        "live_sources": LiveSourcesResource(),
        # Names, not values: Dagster resolves them at run time and never displays them.
        "live_credentials": LiveCredentialsResource(
            email=dg.EnvVar("KRATOM_EVIDENCE_EMAIL"),
            ncbi_api_key=dg.EnvVar("NCBI_API_KEY"),
            openalex_api_key=dg.EnvVar("OPENALEX_API_KEY"),
        ),
    },
    jobs=[BUILD_JOB, refresh_job],
    # One process for the whole run, as in `kratom-evidence build`: a process per step would
    # cost seconds of imports each and could not share the data dir's lock.
    executor=dg.in_process_executor,
    schedules=[weekly_refresh],
    sensors=[clinicaltrials_version_sensor],
)


def build_job() -> dg.JobDefinition:
    """The asset job, resolved: what `pipelines/build.py` reconstructs and runs by name."""
    return defs.resolve_job_def(build.JOB_NAME)

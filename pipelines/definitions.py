"""The Dagster code location: raw → staging → curated → release, and their resources.

The resources hold defaults (the bundled snapshot, the deployment's data dir and live URLs,
pipelines/deployment.py); what a run builds is its run config (`pipelines/build.py`
`run_config`), so the CLI, the UI, the schedule and the sensors all run these same definitions.
"""

from __future__ import annotations

import os

import dagster as dg

from pipelines import paths
from pipelines.assets.curated import CURATED_ASSETS, REFERENCE_ASSETS
from pipelines.assets.raw import RAW_ASSETS
from pipelines.assets.release import published_release
from pipelines.assets.snapshot import snapshot_folder
from pipelines.assets.staging import STAGING_ASSETS
from pipelines.automation import refresh_schedule, version_sensors
from pipelines.build import BUILD_JOB, JOB_NAME, STAGE_JOB, STAGE_JOB_NAME
from pipelines.deployment import deployment
from pipelines.refresh import EMAIL_ENV, api_key_envs
from pipelines.release.publish import DataDir
from pipelines.resources import (
    LiveCredentialsResource,
    LiveSourcesResource,
    ReleaseResource,
    SnapshotResource,
    WarehouseResource,
)

DEPLOYMENT = deployment(os.environ)
"""Data dir, refresh cron and live URLs of this code location (pipelines/deployment.py)."""
DATA_DIR = DataDir(DEPLOYMENT.data_dir)
ASSETS: list[dg.AssetsDefinition | dg.AssetSpec] = [
    snapshot_folder,
    *RAW_ASSETS,
    *REFERENCE_ASSETS,
    *STAGING_ASSETS,
    *CURATED_ASSETS,
    published_release,
]

defs = dg.Definitions(
    assets=ASSETS,
    resources={
        "snapshot_store": SnapshotResource(path=str(paths.BUNDLED_SNAPSHOT)),
        "warehouse": WarehouseResource(
            database=str(DATA_DIR.warehouse), memory_limit=DEPLOYMENT.memory_limit
        ),
        "release": ReleaseResource(data_dir=str(DATA_DIR.root)),
        "live_sources": LiveSourcesResource(base_urls=DEPLOYMENT.base_urls, pace=DEPLOYMENT.pace),
        # Names, not values: Dagster resolves them at run time and never displays them.
        "live_credentials": LiveCredentialsResource(
            email=dg.EnvVar(EMAIL_ENV),
            api_keys={source: dg.EnvVar(name) for source, name in api_key_envs().items()},
        ),
    },
    jobs=[BUILD_JOB, STAGE_JOB],
    # "Materialize" in the UI runs the implicit asset job: in one process too (see BUILD_JOB).
    executor=dg.in_process_executor,
    schedules=[refresh_schedule(DATA_DIR, DEPLOYMENT.refresh_cron)],
    sensors=version_sensors(DATA_DIR),
)


def build_job() -> dg.JobDefinition:
    """The asset job, resolved: what `pipelines/build.py` reconstructs and runs by name."""
    return defs.resolve_job_def(JOB_NAME)


def stage_job() -> dg.JobDefinition:
    """The parallel stage job, resolved: what a build with workers runs first."""
    return defs.resolve_job_def(STAGE_JOB_NAME)

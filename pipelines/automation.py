"""The live refresh in Dagster: a `refresh` job, a weekly schedule, a ClinicalTrials.gov sensor.

The job is op-based, not assets: the snapshot a refresh records is only known once it has run,
while the asset graph is wired to one snapshot folder when the definitions are made. So one op
records the snapshot (`refresh.refresh`) and a second publishes it through the very function
`kratom-evidence build` and `refresh` use (`build.build`), which materialises the
asset graph on that folder. Two steps let a failed publish be re-executed without fetching again.

Secrets reach the job only through `LiveCredentialsResource` (wired with `dg.EnvVar`); metadata
holds counts and paths, and any failure is one line with every secret value replaced by `***`.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx
import orjson

from pipelines.build import Published, build
from pipelines.refresh import LIVE_SOURCES, RefreshResult, refresh
from pipelines.resources import LiveCredentialsResource, LiveSourcesResource, ReleaseResource

JOB_NAME = "refresh"
VERSION_PATH = "/api/v2/version"
WEEKLY_CRON = "0 3 * * 1"
"""Mondays 03:00 UTC: ClinicalTrials.gov and PubMed are quiet, the week's updates are in."""
POLL_SECONDS = 3600
"""The version sensor asks ClinicalTrials.gov once an hour at most."""


def one_line(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """First line of an error, with every secret value shown as `***`."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    for secret in secrets:
        line = line.replace(secret, "***")
    return line


def data_timestamp(body: bytes) -> str:
    """`dataTimestamp` of a ClinicalTrials.gov `/api/v2/version` answer.

    Raises:
        ValueError: the body is not JSON or carries no timestamp.
    """
    doc = orjson.loads(body)
    stamp = doc.get("dataTimestamp") if isinstance(doc, dict) else None
    if not isinstance(stamp, str) or not stamp:
        raise ValueError(f"{VERSION_PATH} answered without a dataTimestamp")
    return stamp


def poll_data_timestamp(base_url: str, timeout: float) -> str:
    """GET `<base_url>/api/v2/version` once and return its dataTimestamp."""
    response = httpx.get(base_url.rstrip("/") + VERSION_PATH, timeout=timeout)
    response.raise_for_status()
    return data_timestamp(response.content)


def outcome_metadata(result: RefreshResult) -> dict[str, dg.MetadataValue]:
    """What a refresh did, per source, for the op's output: counts and a path, never a secret."""
    outcomes = [result.outcomes[s] for s in LIVE_SOURCES if s in result.outcomes]
    return {
        "snapshot": dg.MetadataValue.path(str(result.snapshot_dir)),
        "requests": dg.MetadataValue.json({o.source: o.requests for o in outcomes}),
        "retries": dg.MetadataValue.json({o.source: o.retries for o in outcomes}),
        "pages": dg.MetadataValue.json({o.source: o.pages for o in outcomes}),
        "requests_total": dg.MetadataValue.int(sum(o.requests for o in outcomes)),
    }


@dg.op(
    description="Query every live source and record each body into DATA/snapshots/<stamp>/.",
    out=dg.Out(str, description="The recorded snapshot folder."),
)
def record_snapshot(
    context: dg.OpExecutionContext,
    live_sources: LiveSourcesResource,
    live_credentials: LiveCredentialsResource,
    release: ReleaseResource,
) -> dg.Output[str]:
    creds = live_credentials.credentials()
    result: RefreshResult | None = None
    error = ""
    try:
        result = refresh(
            release.outputs.root,
            live_sources.urls(),
            creds,
            datetime.now(UTC),
            settings=live_sources.settings(),
            reference_dir=release.reference,
            show_progress=False,
        )
    except Exception as exc:  # any failure leaves as one redacted line
        error = one_line(exc, creds.secrets())
    # Raised outside the except block, so no traceback carrying a secret is chained on.
    if result is None:
        raise dg.Failure(description=f"refresh failed: {error}")
    metadata = outcome_metadata(result)
    for outcome in result.outcomes.values():
        context.log.info(
            f"{outcome.source}: {outcome.pages} pages, {outcome.requests} requests, "
            f"{outcome.retries} retries"
        )
    if not result.complete:
        stop = result.first_error or "a source stopped"
        raise dg.Failure(
            description=f"{stop} (snapshot {result.snapshot_dir} left incomplete)",
            metadata=metadata,
        )
    return dg.Output(str(result.snapshot_dir), metadata=metadata)


@dg.op(description="Build every asset from the recorded snapshot and publish a release.")
def publish_recorded(
    context: dg.OpExecutionContext, release: ReleaseResource, snapshot_dir: str
) -> dg.Output[str]:
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    published: Published | None = None
    error = ""
    try:
        published = build(Path(snapshot_dir), release.outputs, None, created_at)
    except Exception as exc:  # one line, like the CLI
        error = one_line(exc)
    if published is None:
        raise dg.Failure(description=f"publish failed: {error}")
    context.log.info(published.message)
    version = published.version or ""
    return dg.Output(
        version,
        metadata={
            "version": version,
            "published": published.version is not None,
            "message": published.message,
            "folder": dg.MetadataValue.path(str(published.folder or "")),
            "rows": dg.MetadataValue.json(published.rows),
            "snapshot": dg.MetadataValue.path(snapshot_dir),
        },
    )


@dg.job(
    name=JOB_NAME,
    description="Live refresh: record every source into a new snapshot, then publish from it.",
    # A run-queue tag limit on this tag keeps scheduled and sensor runs from overlapping.
    tags={"kratom-evidence/kind": "refresh"},
)
def refresh_job() -> None:
    publish_recorded(record_snapshot())


weekly_refresh = dg.ScheduleDefinition(
    name="weekly_refresh",
    job=refresh_job,
    cron_schedule=WEEKLY_CRON,
    execution_timezone="UTC",
    description="Refresh from the live sources every Monday at 03:00 UTC.",
)


@dg.sensor(
    name="clinicaltrials_version",
    job=refresh_job,
    minimum_interval_seconds=POLL_SECONDS,
    description="Start a refresh when ClinicalTrials.gov's /api/v2/version dataTimestamp changes.",
)
def clinicaltrials_version_sensor(
    context: dg.SensorEvaluationContext, live_sources: LiveSourcesResource
) -> dg.SensorResult | dg.SkipReason:
    """The cursor keeps the last dataTimestamp seen; a new one is the run key of one refresh."""
    base_url = live_sources.urls()["clinicaltrials"]
    try:
        stamp = poll_data_timestamp(base_url, live_sources.timeout)
    except (httpx.HTTPError, ValueError) as exc:
        return dg.SkipReason(f"version poll failed: {one_line(exc)}")
    if stamp == context.cursor:
        return dg.SkipReason(f"dataTimestamp {stamp} unchanged")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=stamp)],
        cursor=stamp,
    )

"""Live refresh in the asset graph: what a weekly schedule and the version sensors ask for.

A version sensor polls a source that says when its data changed (a unit's `live.version`, e.g.
ClinicalTrials.gov's `/api/v2/version`). Both request a run of the asset job (`build`,
pipelines/build.py) whose run config sets the snapshot store to `record` into
`DATA/snapshots/<stamp>/`: the head asset `raw/snapshot`
records the live sources there (`record`), then raw → staging → curated → release materialize
from that folder in the same run, checks included, and the UI shows every one of them. The stamp
is chosen when the run is requested, so it sits in run config and in the run's snapshot tag; a
snapshot a failed refresh left unfinished is resumed under its own stamp.

Secrets reach the run only through `LiveCredentialsResource` (wired with `dg.EnvVar`); metadata
holds counts and paths, and any failure is one line with every secret value replaced by `***`.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx

from pipelines.build import BUILD_JOB, SNAPSHOT_TAG, run_config
from pipelines.deployment import CRON_ENV, WEEKLY_CRON
from pipelines.refresh import RefreshResult, refresh
from pipelines.refresh.resume import free_stamp_time, snapshot_stamp, unfinished_snapshot
from pipelines.release.publish import DataDir
from pipelines.resources import LiveCredentialsResource, LiveSourcesResource
from pipelines.sources import SOURCES
from pipelines.sources.base import VersionFeed

POLL_SECONDS = 3600
"""A version sensor asks its source once an hour at most."""
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
"""How `pipelines/refresh/resume.py` names a recorded snapshot's folder (`snapshot_stamp`)."""
KIND_TAG = "kratom-evidence/kind"
"""A run-queue limit on this tag (value `refresh`) keeps scheduled and sensor runs apart."""


def one_line(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """First line of an error, with every secret value shown as `***`."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    for secret in secrets:
        line = line.replace(secret, "***")
    return line


def poll_version(base_url: str, feed: VersionFeed, timeout: float) -> str:
    """GET the source's version endpoint once and return the stamp in its answer."""
    response = httpx.get(base_url.rstrip("/") + feed.path, timeout=timeout)
    response.raise_for_status()
    return feed.stamp(response.content)


def outcome_metadata(result: RefreshResult) -> dict[str, dg.MetadataValue]:
    """What a refresh did, per source: counts and a path, never a secret."""
    outcomes = list(result.outcomes.values())
    return {
        "snapshot": dg.MetadataValue.path(str(result.snapshot_dir)),
        "requests": dg.MetadataValue.json({o.source: o.requests for o in outcomes}),
        "retries": dg.MetadataValue.json({o.source: o.retries for o in outcomes}),
        "pages": dg.MetadataValue.json({o.source: o.pages for o in outcomes}),
        "requests_total": dg.MetadataValue.int(sum(o.requests for o in outcomes)),
        "failed_sources": dg.MetadataValue.json(result.failed),
        "carried_from": dg.MetadataValue.json(result.carried_from),
    }


def recording_folder(outputs: DataDir, now: datetime) -> Path:
    """Where a refresh requested at `now` records: the unfinished snapshot, else a new stamp."""
    unfinished = unfinished_snapshot(outputs.snapshots)
    if unfinished is not None:
        return unfinished
    return outputs.snapshots / snapshot_stamp(free_stamp_time(outputs.snapshots, now))


def stamp_time(stamp: str) -> datetime:
    """The UTC time a snapshot stamp names: a refresh run records as of its request.

    Raises:
        ValueError: `stamp` is not a folder name `snapshot_stamp` makes.
    """
    now = datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC)
    if snapshot_stamp(now) != stamp:
        raise ValueError(f"{stamp!r} is not a snapshot stamp ({STAMP_FORMAT})")
    return now


def refresh_request(outputs: DataDir, now: datetime, run_key: str | None) -> dg.RunRequest:
    """A run of the asset job that records a snapshot at `now`, then builds and publishes it."""
    folder = recording_folder(outputs, now)
    return dg.RunRequest(
        run_key=run_key,
        run_config=run_config(folder, outputs, record=True),
        tags={SNAPSHOT_TAG: folder.name, KIND_TAG: "refresh"},
    )


def record(
    folder: Path,
    live_sources: LiveSourcesResource,
    live_credentials: LiveCredentialsResource,
    reference_dir: Path,
) -> dict[str, dg.MetadataValue]:
    """Record every live source into `folder` (`DATA/snapshots/<stamp>`); its metadata.

    Raises:
        dg.Failure: the refresh failed or stopped (one redacted line), or it resumed another
            unfinished snapshot than `folder`.
    """
    if folder.parent.name != "snapshots":
        raise dg.Failure(description=f"record mode writes DATA/snapshots/<stamp>, not {folder}")
    creds = live_credentials.credentials()
    result: RefreshResult | None = None
    error = ""
    try:
        now = stamp_time(folder.name)
        result = refresh(
            folder.parent.parent,
            live_sources.urls(),
            creds,
            now,
            settings=live_sources.settings(),
            reference_dir=reference_dir,
            show_progress=False,
        )
    except Exception as exc:  # any failure leaves as one redacted line
        error = one_line(exc, creds.secrets())
    # Raised outside the except block, so no traceback carrying a secret is chained on.
    if result is None:
        raise dg.Failure(description=f"refresh failed: {error}")
    metadata = outcome_metadata(result)
    if result.snapshot_dir != folder:
        raise dg.Failure(
            description=f"refresh resumed the unfinished snapshot {result.snapshot_dir.name}, "
            f"not {folder.name}: request a run for that one",
            metadata=metadata,
        )
    if not result.complete:
        stop = result.first_error or "a source stopped"
        raise dg.Failure(
            description=f"{stop} (snapshot {result.snapshot_dir} left incomplete)",
            metadata=metadata,
        )
    return metadata


def refresh_schedule(outputs: DataDir, cron: str = WEEKLY_CRON) -> dg.ScheduleDefinition:
    """A refresh run recording into `outputs` on `cron` (UTC): every Monday at 03:00 unless
    a deployment sets another."""

    @dg.schedule(
        name="weekly_refresh",
        job=BUILD_JOB,
        cron_schedule=cron,
        execution_timezone="UTC",
        description="Record the live sources (every Monday at 03:00 UTC unless "
        f"{CRON_ENV} says otherwise), then build and publish.",
    )
    def weekly_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        when = context.scheduled_execution_time or datetime.now(UTC)
        return refresh_request(outputs, when.astimezone(UTC), run_key=None)

    return weekly_refresh


def version_sensor(outputs: DataDir, source: str) -> dg.SensorDefinition:
    """A refresh run recording into `outputs` whenever `source`'s version endpoint changes.

    Raises:
        ValueError: `source` is not a registered live source with a version endpoint.
    """
    unit = SOURCES.get(source)
    feed = unit.live.version if unit is not None and unit.live is not None else None
    if feed is None:
        raise ValueError(f"{source!r} is not a registered live source with a version endpoint")

    @dg.sensor(
        name=f"{source}_version",
        job=BUILD_JOB,
        minimum_interval_seconds=POLL_SECONDS,
        description=f"Record, build and publish when {source}'s {feed.path} answer changes.",
    )
    def source_version(
        context: dg.SensorEvaluationContext, live_sources: LiveSourcesResource
    ) -> dg.SensorResult | dg.SkipReason:
        """The cursor keeps the last stamp seen; a new one is the run key of a refresh."""
        base_url = live_sources.urls()[source]
        try:
            stamp = poll_version(base_url, feed, live_sources.timeout)
        except (httpx.HTTPError, ValueError) as exc:
            return dg.SkipReason(f"version poll failed: {one_line(exc)}")
        if stamp == context.cursor:
            return dg.SkipReason(f"version {stamp} unchanged")
        request = refresh_request(outputs, datetime.now(UTC), run_key=stamp)
        return dg.SensorResult(run_requests=[request], cursor=stamp)

    return source_version


def version_sensors(outputs: DataDir) -> list[dg.SensorDefinition]:
    """One version sensor per registered live source that has a version endpoint."""
    return [
        version_sensor(outputs, name)
        for name, unit in SOURCES.items()
        if unit.live is not None and unit.live.version is not None
    ]

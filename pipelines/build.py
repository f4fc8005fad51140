"""The one build service: lock, recovery, version check, the asset run, and the publish step.

`kratom-evidence build` and `refresh`, the Dagster runs (UI, schedule, sensor) and the tests all
go through here, so every build publishes alike. A run is one asset job (raw → staging →
curated → release, checks included) launched with `dg.execute_job` in this process; what it
builds is run config (`run_config`), never definitions made for the occasion. The lock is taken
twice on purpose: here, before the run starts, so a busy data dir or a taken version is one
clear line; and by the release resource for the whole run, so a run launched from the UI holds
it too (the lock is re-entrant within a process).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from pipelines import build_inputs, digests
from pipelines.build_inputs import Published
from pipelines.deployment import MEMORY_LIMIT_ENV, memory_limit
from pipelines.lean_instance import CAPTURED_LOGS, lean_instance
from pipelines.release import catalog, history
from pipelines.release.datadir import DataDir, exclusive, folder_versions, recover
from pipelines.release.describe import begin_describe
from pipelines.release.publish import PublishResult, ReleaseTable, check_requested, publish
from pipelines.shards import WAREHOUSE_TAGS
from pipelines.snapshot import read_info, snapshot_sha256
from pipelines.warehouse import ran_out_of_memory

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

JOB_NAME = "build"
DEFINITIONS_MODULE = "pipelines.definitions"
SNAPSHOT_TAG = "kratom-evidence/snapshot"
"""Run tag naming the snapshot a run builds: its folder name (a recorded stamp, or `snapshot`)."""
RELEASE_KEY = dg.AssetKey(["release", "published"])
NO_CREDENTIALS: dict[str, Any] = {"email": "", "api_keys": {}}
"""A build that reads a snapshot asks no source, so it needs no secret from the environment."""

BUILD_JOB = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="The snapshot (recorded, or read as is), then every asset from it, checks "
    "included, then the release.",
    # One process for the whole run, as in `kratom-evidence build`: a process per step would
    # cost seconds of imports each and could not share the data dir's lock.
    executor_def=dg.in_process_executor,
)
STAGE_JOB_NAME = "stage"
STAGE_SELECTION = (
    dg.AssetSelection.groups("raw") - dg.AssetSelection.assets(dg.AssetKey(["raw", "snapshot"]))
) | dg.AssetSelection.groups("staging")
"""The raw inventories and staging: the part of a build a parallel run spreads over processes."""
PARALLEL_EXECUTOR = dg.multiprocess_executor.configured(
    lambda config: {
        "max_concurrent": config["workers"],
        # DuckDB lets one process write a file: the steps that open the warehouse go one at a
        # time, the parts of a sharded source (each its own file) side by side.
        "tag_concurrency_limits": [
            {"key": k, "value": v, "limit": 1} for k, v in WAREHOUSE_TAGS.items()
        ],
        # Workers fork from a server that has imported the code location once: a step costs
        # no fresh import of Dagster and the pipeline.
        "start_method": {"forkserver": {"preload_modules": [DEFINITIONS_MODULE]}},
    },
    name="parallel",
    config_schema={"workers": dg.Field(int, default_value=2, description="processes at once")},
)
STAGE_JOB = dg.define_asset_job(
    STAGE_JOB_NAME,
    selection=STAGE_SELECTION,
    description="The raw inventories and staging in parallel processes: a source with a bulk "
    "export staged in parts (op config `parts`), each part a step and a DuckDB file of its own.",
    executor_def=PARALLEL_EXECUTOR,
)
HISTORY_TABLES = (history.RECORD_VERSIONS, history.REMOVED_RECORDS)
"""Tables a publish adds to a new version only; a build that publishes nothing lists none."""
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
"""A failure becomes one line (`first_failure`); Dagster's own ERROR event would add its trace."""


class BuildError(RuntimeError):
    """A build failed; the message is one line naming the step or check."""


def refuse_published(outputs: DataDir, version: str) -> None:
    """Stop before building when the requested version exists (a release is never rewritten)."""
    taken = folder_versions(outputs.releases)
    if outputs.lake.exists():
        con = catalog.connect(outputs.lake)
        try:
            taken |= {r.version for r in catalog.list_releases(con)}
        finally:
            con.close()
    check_requested(version, taken)


@contextmanager
def held(outputs: DataDir, release_version: str | None = None) -> Iterator[None]:
    """Hold the data dir's lock, with a half-done publish finished first and the version free.

    Raises:
        PublishError: another build holds the lock, a release folder the catalog does not
            list, or the requested version is taken.
    """
    with exclusive(outputs):
        recover(outputs)  # before the build: a folder the catalog does not list stops it here
        if release_version:
            refuse_published(outputs, release_version)
        yield


def run_config(
    snapshot_dir: Path,
    outputs: DataDir,
    release_version: str | None = None,
    created_at: str | None = None,
    *,
    record: bool = False,
    reference_dir: Path | None = None,
) -> dict[str, Any]:
    """Resource config of a build run: which snapshot, which data dir, which version.

    With `record`, the run first records the live sources into `snapshot_dir`, which must be
    `<data dir>/snapshots/<stamp>`; the live credentials then come from the environment
    (`dg.EnvVar`), else none are needed. The warehouse follows the data dir, so the two never
    part; its DuckDB memory limit is the deployment's (`KRATOM_EVIDENCE_DUCKDB_MEMORY_LIMIT`).
    `reference_dir` replaces the project's data/reference/ (tests build with an edited copy).
    """
    release: dict[str, Any] = {"data_dir": str(outputs.root)}
    optional = {
        "release_version": release_version,
        "created_at": created_at,
        "catalog": outputs.catalog_url,
        "catalog_data_path": outputs.data_path,
        "reference_dir": str(reference_dir) if reference_dir else None,
    }
    release.update({key: value for key, value in optional.items() if value is not None})
    resources: dict[str, Any] = {
        "snapshot_store": {
            "config": {"path": str(snapshot_dir), "mode": "record" if record else "read"}
        },
        "release": {"config": release},
        "warehouse": {
            "config": {
                "database": str(outputs.warehouse),
                "memory_limit": memory_limit(os.environ),
            }
        },
    }
    if not record:
        resources["live_credentials"] = {"config": NO_CREDENTIALS}
    return {"resources": resources}


@contextmanager
def _instance(parallel: bool = False) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance of DAGSTER_HOME when one is set (so `dagster dev` lists CLI builds
    too), else a throwaway one: in memory (pipelines/lean_instance.py), or in a temporary
    folder for a parallel run (its worker processes read the run from storage)."""
    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            yield instance
    elif parallel:
        with (
            tempfile.TemporaryDirectory() as folder,
            dg.DagsterInstance.local_temp(folder, overrides=CAPTURED_LOGS) as instance,
        ):
            yield instance
    else:
        with lean_instance() as instance:
            yield instance


def parts_config(parts: int) -> dict[str, Any]:
    """Op config staging every source with a bulk export in `parts` parts."""
    from pipelines.sources import SOURCES

    return {
        f"staging_{name}": {"ops": {f"plan_{name}": {"config": {"parts": parts}}}}
        for name, unit in SOURCES.items()
        if unit.bulk is not None
    }


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while code loads: imports allocate about a million objects that
    live as long as the process and leave next to no garbage, so the collections they trigger
    (0.4 CPU s of a bundled build's imports) free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _collector_spared() -> Iterator[None]:
    """Keep the objects alive before the run (modules, definitions) out of the garbage
    collector's scans during it, with the collector on: a build allocates millions of rows,
    and each full collection would walk every library object again (about 15 % of a bundled
    build's CPU). No collection first: loading leaves next to no garbage to freeze."""
    enabled = gc.isenabled()
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        gc.unfreeze()
        if not enabled:
            gc.disable()


def build(
    snapshot_dir: Path,
    outputs: DataDir,
    release_version: str | None = None,
    created_at: str | None = None,
    reference_dir: Path | None = None,
    workers: int | None = None,
    step_times: Path | None = None,
) -> Published:
    """Build every asset from a snapshot and publish a release, in this process.

    With `workers` > 1 the raw inventories and staging run first as their own run (`stage`)
    on that many processes, a source with a bulk export staged in `workers` parts side by
    side; the rest of the build then runs here as today, on the staged warehouse. With 1 or
    None (the default) everything runs in this process, staging running a batch's statements
    on two cores (`setwise.STATEMENT_CURSORS`). With `step_times`, each step's start and end are
    written there as JSON once the runs end (`write_step_times`).

    Raises:
        BuildError: the run failed (one line naming the step or check).
        PublishError: the data dir is busy or the requested version is taken.
        SnapshotError: the snapshot is missing or incomplete.
    """
    read_info(snapshot_dir)
    config = run_config(
        snapshot_dir, outputs, release_version, created_at, reference_dir=reference_dir
    )
    tags = {SNAPSHOT_TAG: snapshot_dir.name}
    with ExitStack() as loaded:
        loaded.enter_context(held(outputs, release_version))
        # The fingerprint, the raw inventories and the release hash the snapshot's files once.
        loaded.enter_context(digests.read_once())
        # A requested version is always published (or refused): never answered from the record.
        inputs = (
            None
            if release_version
            else build_inputs.of_build_ahead(snapshot_dir, outputs, reference_dir, workers)
        )
        if inputs is not None and build_inputs.recorded(outputs.root).get("inputs") is not None:
            unchanged = build_inputs.unchanged(outputs, inputs.result())
            if unchanged is not None:
                return unchanged
        with collector_paused():  # the definitions' and the instance's imports
            job = dg.build_reconstructable_job(DEFINITIONS_MODULE, "build_job")
            parts = build_inputs.staging_parts(workers)
            instance = loaded.enter_context(_instance(parallel=parts > 1))
        loaded.enter_context(_collector_spared())
        runs: list[dg.JobExecutionResult] = []
        if step_times is not None:
            loaded.callback(lambda: write_step_times(step_times, instance, runs))
        rest = None
        if parts > 1:
            staged = dg.execute_job(
                dg.build_reconstructable_job(DEFINITIONS_MODULE, "stage_job"),
                instance=instance,
                run_config={
                    **config,
                    **QUIET,
                    "ops": parts_config(parts),
                    "execution": {"config": {"workers": parts}},
                },
                tags=tags,
                raise_on_error=False,
            )
            runs.append(staged)
            if not staged.success:
                raise BuildError(first_failure(staged.all_events))
            rest = unstaged_keys()
        result = dg.execute_job(
            job,
            instance=instance,
            run_config={**config, **QUIET},
            tags=tags,
            raise_on_error=False,
            asset_selection=rest,
        )
        runs.append(result)
        if not result.success:
            raise BuildError(first_failure(result.all_events))
        done = published(result.all_events)
        newest = done.version or done.previous
        if inputs is not None and newest:
            # What "nothing changed" reports: the built tables, not the history of versions.
            rows = {k: v for k, v in done.rows.items() if k not in HISTORY_TABLES}
            build_inputs.record(outputs.root, inputs.result(), newest, rows)
        return done


STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
}


def write_step_times(
    path: Path, instance: dg.DagsterInstance, runs: Sequence[dg.JobExecutionResult]
) -> None:
    """Write each run's steps that started, with their start and end (unix seconds), process
    id and the warnings they logged (a curated builder run again after running out of memory),
    from the run's events in the instance: where a build spends its time, read by the bench
    (bench/bench_ctgov.py) from a build run as a user runs it."""
    written = []
    for run in runs:
        steps: dict[str, dict[str, Any]] = {}
        for entry in instance.all_logs(run.run_id):
            if entry.step_key is None:
                continue
            step = steps.setdefault(entry.step_key, {})
            event = entry.dagster_event
            if event is None:
                if _level(entry.level) >= logging.WARNING:
                    step.setdefault("warnings", []).append(entry.user_message)
            elif event.event_type in STEP_EVENTS:
                step["pid"] = event.pid
                start = event.event_type == dg.DagsterEventType.STEP_START
                step["start" if start else "end"] = entry.timestamp
        ran = {key: step for key, step in steps.items() if "start" in step}
        written.append({"job": run.job_def.name, "run_id": run.run_id, "steps": ran})
    path.write_text(json.dumps({"runs": written}, indent=2) + "\n", encoding="utf-8")


def _level(level: str | int) -> int:
    """A log entry's level as a number (Dagster keeps a name or a number)."""
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level)
    return number if isinstance(number, int) else logging.NOTSET


def unstaged_keys() -> list[dg.AssetKey]:
    """Every asset of the build job but what the stage job materializes."""
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    return sorted((dg.AssetSelection.all() - STAGE_SELECTION).resolve(graph))


def published(events: Sequence[dg.DagsterEvent]) -> Published:
    """The release step's outcome, from its materialization event in a run's events."""
    (metadata,) = [
        e.event_specific_data.materialization.metadata  # type: ignore[union-attr]
        for e in events
        if e.is_step_materialization
        and e.event_specific_data.materialization.asset_key == RELEASE_KEY  # type: ignore[union-attr]
    ]
    folder = metadata["folder"].value
    return Published(
        version=str(metadata["version"].value) or None,
        previous=str(metadata["previous_version"].value) or None,
        message=str(metadata["message"].value),
        folder=Path(str(folder)) if folder else None,
        rows=dict(metadata["rows"].value),  # type: ignore[arg-type]
    )


def first_failure(events: Sequence[dg.DagsterEvent]) -> str:
    """One line for the first failed step, check or resource of a run."""
    for event in events:
        if event.is_step_failure:
            return f"build failed in {event.step_key}: {_cause(event.step_failure_data.error)}"
        if event.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE:
            error = event.event_specific_data.error  # type: ignore[union-attr]
            return f"build failed before its first step: {_cause(error)}"
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed:
                return _check_failure(evaluation)
    return "build failed"


def _check_failure(evaluation: dg.AssetCheckEvaluation) -> str:
    """One line for a failed check: its first problem and how many more (the run's check
    evaluation holds them all), else its metadata's values."""
    problems = evaluation.metadata.get("problems")
    found = problems.value if problems is not None else None
    if isinstance(found, list) and found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return f"check {evaluation.check_name} failed: {found[0]}{more}"
    values = ", ".join(f"{name} {value.value}" for name, value in evaluation.metadata.items())
    return f"check {evaluation.check_name} failed: {values}"


def _cause(error: SerializableErrorInfo | None) -> str:
    """The first line of what our code raised, under Dagster's wrappers.

    Its message names the file or record; the causes below it are the library's detail.
    """
    if error is None:
        return "no error recorded"
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    lines = [line for line in error.message.strip().splitlines() if line.strip()]
    line = lines[0] if lines else str(error.cls_name)
    if ran_out_of_memory(error.cls_name or "", error.message):
        line += (
            f" (the warehouse's DuckDB memory_limit is {memory_limit(os.environ)}; "
            f"set {MEMORY_LIMIT_ENV} higher)"
        )
    return line


def publish_tables(
    outputs: DataDir,
    tables: Mapping[str, ReleaseTable],
    snapshot_dir: Path,
    accounting: dict[str, object],
    created_at: str,
    release_version: str | None,
) -> PublishResult:
    """The release step: publish the assembled tables of a snapshot, with their documentation.

    The version is the requested one, else the snapshot's capture date (`.N` when taken); when
    nothing changed since the last release, none is published.
    """
    return publish(
        outputs,
        tables,
        read_info(snapshot_dir),
        snapshot_sha256(snapshot_dir),
        accounting,
        created_at,
        requested_version=release_version,
        describe=begin_describe,
    )

"""The weekly schedule and the version sensor request asset-job runs; run here against the emulator.

The sensor polls `/api/v2/version` of a `serve-snapshot` emulator, whose dataTimestamp comes from
the served snapshot's captured_at. Each requested run is executed in a temporary Dagster instance
with the live sources pointed at the emulator: the refresh records into the data dir's
snapshots, then every asset materializes in that instance, tagged with the snapshot. Every place
a secret could land is searched for it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest

from pipelines import paths
from pipelines.automation import (
    one_line,
    refresh_request,
    refresh_schedule,
    version_sensor,
    version_sensors,
)
from pipelines.build import SNAPSHOT_TAG
from pipelines.definitions import build_job, defs
from pipelines.devtools.emulator import EmulatorServer, make_server, running
from pipelines.refresh import api_key_envs, emulator_paths, live_sources
from pipelines.release.publish import DataDir
from pipelines.resources import LiveSourcesResource
from pipelines.sources.clinicaltrials import data_timestamp
from schemas import TABLES
from tests.conftest import EMULATOR_RATE_SCALE

if TYPE_CHECKING:
    from dagster._core.definitions.sensor_definition import SensorExecutionData

SECRETS = {
    "NCBI_API_KEY": "ncbi-SECRET-5be07a",
    "OPENALEX_API_KEY": "oa-SECRET-c3119d",
    "KRATOM_EVIDENCE_EMAIL": "curator+dagster@example.org",
}
FAST = {"pace": 0.0, "timeout": 0.5, "backoff_base": 0.02, "backoff_cap": 1.2, "max_tries": 8}
"""The refresh CLI tests' fast client knobs (tests/refresh/test_refresh_emulator.py)."""
MONDAY = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
CURATED_KEYS = {dg.AssetKey(["curated", spec.name]) for spec in TABLES}
RELEASE_KEY = dg.AssetKey(["release", "published"])


def _serve(
    snapshot_dir: Path = paths.BUNDLED_SNAPSHOT, **kwargs: float
) -> Iterator[EmulatorServer]:
    server = make_server(snapshot_dir, rate_scale=EMULATOR_RATE_SCALE, **kwargs)  # type: ignore[arg-type]
    with running(server):
        yield server


def _urls(base_url: str, **overrides: str) -> dict[str, str]:
    """Every source under one emulator (like `--base-url all=URL`)."""
    return {**{s: base_url + emulator_paths()[s] for s in live_sources()}, **overrides}


def _sources(base_url: str) -> LiveSourcesResource:
    return LiveSourcesResource(base_urls=_urls(base_url), **FAST)  # type: ignore[arg-type]


def _snapshot_captured(tmp_path: Path, captured_at: str) -> Path:
    """A copy of the bundled snapshot claiming another capture date (so another dataTimestamp)."""
    folder = tmp_path / f"snapshot-{captured_at}"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, folder)
    info_path = folder / "SNAPSHOT.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info_path.write_text(json.dumps({**info, "captured_at": captured_at}), encoding="utf-8")
    return folder


def _tick(
    sensor: dg.SensorDefinition, server: EmulatorServer, cursor: str | None
) -> SensorExecutionData:
    context = dg.build_sensor_context(
        cursor=cursor, resources={"live_sources": _sources(server.base_url)}
    )
    return sensor.evaluate_tick(context)


def _run(
    request: dg.RunRequest, instance: dg.DagsterInstance, urls: dict[str, str]
) -> dg.ExecuteInProcessResult:
    """Execute a requested run as the daemon would, its live sources at the emulator."""
    config: dict[str, Any] = json.loads(json.dumps(request.run_config))
    config["resources"]["live_sources"] = {"config": {"base_urls": urls, **FAST}}
    return build_job().execute_in_process(
        run_config=config, instance=instance, tags=request.tags, raise_on_error=False
    )


def _materialized(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """Assets with a materialization event of this run in the instance's own event log."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return {r.asset_key for r in records if r.asset_key is not None}


def _instance(home: Path) -> ContextManager[dg.DagsterInstance]:
    """A temporary Dagster instance keeping its event log and captured logs under `home`."""
    home.mkdir()
    return dg.instance_for_test(temp_dir=str(home))


def _forms(values: list[str]) -> set[str]:
    """Each secret as sent and as it would look URL-encoded."""
    return {f for v in values for f in (v, quote(v, safe=""), quote_plus(v))}


def _texts_under(folder: Path) -> dict[str, str]:
    """Every file's bytes as text (binary files too: a secret would show as its bytes)."""
    return {
        str(path): path.read_bytes().decode("utf-8", errors="replace")
        for path in folder.rglob("*")
        if path.is_file()
    }


def _run_texts(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Every event-log record of a run (messages, metadata, errors) and the run record."""
    texts = {f"event {i}": str(entry) for i, entry in enumerate(instance.all_logs(run_id))}
    texts["run"] = str(instance.get_run_by_id(run_id))
    return texts


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return list(SECRETS.values())


def test_data_timestamp_reads_the_version_answer() -> None:
    body = b'{"apiVersion": "2.0.3", "dataTimestamp": "2026-11-24T09:00:12"}'
    assert data_timestamp(body) == "2026-11-24T09:00:12"


def test_data_timestamp_missing_is_an_error() -> None:
    with pytest.raises(ValueError, match="without a dataTimestamp"):
        data_timestamp(b'{"apiVersion": "2.0.3"}')


def test_one_line_keeps_the_first_line_and_masks_secrets() -> None:
    error = RuntimeError("giving up on https://x/esearch?api_key=k-123&email=a@b\ntraceback")
    assert (
        one_line(error, ["k-123", "a@b"]) == "giving up on https://x/esearch?api_key=***&email=***"
    )


def test_sensor_requests_a_run_on_first_tick_then_only_when_the_timestamp_changes(
    tmp_path: Path,
) -> None:
    sensor = version_sensor(DataDir(tmp_path / "data"), "clinicaltrials")
    for server in _serve():
        first = _tick(sensor, server, None)
        same = _tick(sensor, server, first.cursor)
    for server in _serve(_snapshot_captured(tmp_path, "2026-12-02")):
        changed = _tick(sensor, server, first.cursor)

    assert [r.run_key for r in first.run_requests or []] == ["2026-11-25T00:00:00"]
    assert first.cursor == "2026-11-25T00:00:00"
    assert not same.run_requests
    assert same.skip_message == "version 2026-11-25T00:00:00 unchanged"
    assert same.cursor in (None, "2026-11-25T00:00:00")
    assert [r.run_key for r in changed.run_requests or []] == ["2026-12-02T00:00:00"]
    assert changed.cursor == "2026-12-02T00:00:00"


def test_sensor_failed_poll_skips_with_one_line_and_keeps_the_cursor(tmp_path: Path) -> None:
    sensor = version_sensor(DataDir(tmp_path / "data"), "clinicaltrials")
    for server in _serve(faults=1.0):
        server.faults.kinds = ("http503",)
        tick = _tick(sensor, server, "2026-11-25T00:00:00")
        asked = list(server.requests)

    assert asked == ["/clinicaltrials/api/v2/version"]
    assert not tick.run_requests
    assert tick.skip_message is not None
    assert tick.skip_message.startswith("version poll failed: Server error '503")
    assert "\n" not in tick.skip_message
    assert tick.cursor in (None, "2026-11-25T00:00:00")


def test_weekly_schedule_requests_a_recording_build_on_monday_three_utc(tmp_path: Path) -> None:
    outputs = DataDir(tmp_path / "data")
    schedule = refresh_schedule(outputs)
    data = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=MONDAY))

    (request,) = data.run_requests or []
    snapshot_config = request.run_config["resources"]["snapshot_store"]["config"]
    assert snapshot_config == {
        "path": str(outputs.snapshots / "20261130T030000Z"),
        "mode": "record",
    }
    assert request.run_config["resources"]["release"]["config"]["data_dir"] == str(outputs.root)
    assert request.tags[SNAPSHOT_TAG] == "20261130T030000Z"
    assert schedule.job_name == "build"
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.execution_timezone == "UTC"


def test_schedule_on_another_cron_still_requests_the_asset_job(tmp_path: Path) -> None:
    every_minute = refresh_schedule(DataDir(tmp_path / "data"), "* * * * *")
    assert every_minute.cron_schedule == "* * * * *" and every_minute.job_name == "build"
    with pytest.raises(dg.DagsterInvalidDefinitionError):
        refresh_schedule(DataDir(tmp_path / "data"), "every monday")


def test_version_sensors_are_made_for_the_sources_with_a_version_endpoint(tmp_path: Path) -> None:
    sensors = version_sensors(DataDir(tmp_path / "data"))
    assert [s.name for s in sensors] == ["clinicaltrials_version"]
    with pytest.raises(ValueError, match="'pubmed' is not a registered live source with a version"):
        version_sensor(DataDir(tmp_path / "data"), "pubmed")


def test_a_refresh_request_resumes_the_unfinished_snapshot_under_its_stamp(tmp_path: Path) -> None:
    outputs = DataDir(tmp_path / "data")
    unfinished = outputs.snapshots / "20261123T030000Z"
    unfinished.mkdir(parents=True)
    (unfinished / "SNAPSHOT.json").write_text(
        json.dumps(
            {
                "captured_at": "2026-11-23",
                "topic": "kratom",
                "method": "recorded",
                "complete": False,
            }
        ),
        encoding="utf-8",
    )
    request = refresh_request(outputs, MONDAY, run_key=None)
    assert request.tags[SNAPSHOT_TAG] == "20261123T030000Z"
    assert request.run_config["resources"]["snapshot_store"]["config"]["path"] == str(unfinished)


def test_definitions_register_schedule_and_sensor_on_the_asset_job_and_secret_names_only() -> None:
    assert defs.resolve_schedule_def("weekly_refresh").job_name == "build"
    assert defs.resolve_sensor_def("clinicaltrials_version").job_name == "build"
    job = defs.resolve_job_def("build")
    assert RELEASE_KEY in job.asset_layer.executable_asset_keys
    credentials = defs.resources["live_credentials"]
    keys = {source: value.env_var_name for source, value in credentials.api_keys.items()}
    assert keys == api_key_envs() == {"pubmed": "NCBI_API_KEY", "openalex": "OPENALEX_API_KEY"}
    assert {credentials.email.env_var_name, *keys.values()} == set(SECRETS)


@pytest.mark.slow
def test_schedule_and_sensor_runs_materialize_every_asset_tagged_with_their_snapshot(
    tmp_path: Path,
    secrets: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outputs = DataDir(tmp_path / "data")
    with _instance(tmp_path / "dagster") as instance:
        for server in _serve(faults=0.2, seed=11, stall_seconds=2.0):
            context = dg.build_schedule_context(instance=instance, scheduled_execution_time=MONDAY)
            (scheduled,) = refresh_schedule(outputs).evaluate_tick(context).run_requests or []
            weekly = _run(scheduled, instance, _urls(server.base_url))
            sent = "\n".join(server.requests)
            sent_count = len(server.requests)
            injected = list(server.faults.injected)
        for server in _serve(_snapshot_captured(tmp_path, "2026-12-02")):
            (polled,) = (
                _tick(version_sensor(outputs, "clinicaltrials"), server, None).run_requests or []
            )
            on_change = _run(polled, instance, _urls(server.base_url))
        runs = {
            run.run_id: (run.tags, _materialized(instance, run.run_id))
            for run in (weekly.dagster_run, on_change.dagster_run)
        }
        texts = {
            f"{run_id} {where}": text
            for run_id in runs
            for where, text in _run_texts(instance, run_id).items()
        }
        snapshot_events = instance.get_records_for_run(
            weekly.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records

    assert weekly.success and on_change.success
    for tags, materialized in runs.values():
        assert CURATED_KEYS | {RELEASE_KEY, dg.AssetKey(["raw", "snapshot"])} <= materialized
        assert (outputs.snapshots / tags[SNAPSHOT_TAG] / "SNAPSHOT.json").is_file()
    assert runs[weekly.run_id][0][SNAPSHOT_TAG] == "20261130T030000Z"
    manifest = json.loads((outputs.releases / "2026.11.30" / "manifest.json").read_text())
    assert manifest["snapshot"]["method"] == "recorded" and manifest["tables"]["studies"]["rows"]
    (head,) = [
        r.event_log_entry.asset_materialization
        for r in snapshot_events
        if r.asset_key == dg.AssetKey(["raw", "snapshot"])
    ]
    assert head is not None
    # Every attempt the client counted is in its request log; the emulator saw them all but
    # those whose connection never reached it (a connect timeout, as on a loaded machine)
    snapshot = outputs.snapshots / runs[weekly.run_id][0][SNAPSHOT_TAG]
    log = [json.loads(line) for line in (snapshot / "requests.jsonl").open()]
    assert head.metadata["requests_total"].value == len(log)
    unconnected = sum(e["status"] is None and e["problem"].startswith("Connect") for e in log)
    assert 0 <= len(log) - sent_count <= unconnected
    assert sum(head.metadata["retries"].value.values()) > 0 and injected  # type: ignore[union-attr]
    # The check below can fail: every secret did travel, as request parameters.
    for value in secrets:
        assert any(f in sent for f in _forms([value])), value

    out = capsys.readouterr()
    texts.update({"stdout": out.out, "stderr": out.err, "log": caplog.text})
    texts.update(_texts_under(outputs.root))
    texts.update(_texts_under(tmp_path / "dagster"))
    assert any(path.endswith("requests.jsonl") for path in texts)
    assert any(path.endswith(".parquet") for path in texts)
    leaks = [(where, f) for where, text in texts.items() for f in _forms(secrets) if f in text]
    assert leaks == []


@pytest.mark.slow
def test_refresh_run_with_a_source_down_fails_in_the_head_asset_with_one_masked_line(
    tmp_path: Path, secrets: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = DataDir(tmp_path / "data")
    request = refresh_request(outputs, MONDAY, run_key=None)
    with _instance(tmp_path / "dagster") as instance:
        for down in _serve(faults=1.0):
            down.faults.kinds = ("http503",)
            for server in _serve():
                urls = _urls(server.base_url, pubmed=f"{down.base_url}/pubmed")
                result = _run(request, instance, urls)
            asked_down = len(down.requests)
        texts = _run_texts(instance, result.run_id)
        materialized = _materialized(instance, result.run_id)

    assert not result.success
    assert asked_down == FAST["max_tries"]
    assert materialized == set()
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "raw__snapshot"
    error = failure.step_failure_data.error
    assert error is not None and error.cause is None
    description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert description.startswith("pubmed: giving up on ")
    assert "api_key=***" in description and "email=***" in description
    assert description.endswith("left incomplete)")
    assert not outputs.releases.exists()

    out = capsys.readouterr()
    texts.update({"stdout": out.out, "stderr": out.err})
    texts.update(_texts_under(outputs.root))
    leaks = [(where, f) for where, text in texts.items() for f in _forms(secrets) if f in text]
    assert leaks == []

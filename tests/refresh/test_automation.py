"""The Dagster refresh job, weekly schedule and version sensor, against the real emulator.

The sensor polls `/api/v2/version` of a `serve-snapshot` emulator, whose dataTimestamp comes from
the served snapshot's captured_at. The job runs in process with its resources pointed at a faulty
emulator; then every place a secret could land is searched for it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest

from pipelines import paths
from pipelines.automation import (
    clinicaltrials_version_sensor,
    data_timestamp,
    one_line,
    refresh_job,
    weekly_refresh,
)
from pipelines.definitions import defs
from pipelines.emulator import EmulatorServer, make_server, running
from pipelines.refresh import EMULATOR_PATHS, LIVE_SOURCES
from pipelines.resources import LiveCredentialsResource, LiveSourcesResource, ReleaseResource

if TYPE_CHECKING:
    from dagster._core.definitions.sensor_definition import SensorExecutionData

SECRETS = {
    "NCBI_API_KEY": "ncbi-SECRET-5be07a",
    "OPENALEX_API_KEY": "oa-SECRET-c3119d",
    "KRATOM_EVIDENCE_EMAIL": "curator+dagster@example.org",
}
FAST = {"pace": 0.0, "timeout": 0.5, "backoff_base": 0.02, "backoff_cap": 1.2, "max_tries": 8}
"""The refresh CLI tests' fast client knobs (tests/refresh/test_refresh_emulator.py)."""


def _serve(
    snapshot_dir: Path = paths.BUNDLED_SNAPSHOT, **kwargs: float
) -> Iterator[EmulatorServer]:
    server = make_server(snapshot_dir, **kwargs)  # type: ignore[arg-type]
    with running(server):
        yield server


def _sources(base_url: str, **overrides: str) -> LiveSourcesResource:
    """Every source under one emulator (like `--base-url all=URL`), with the fast knobs."""
    urls = {s: base_url + EMULATOR_PATHS[s] for s in LIVE_SOURCES}
    return LiveSourcesResource(base_urls={**urls, **overrides}, **FAST)  # type: ignore[arg-type]


def _credentials() -> LiveCredentialsResource:
    """Wired exactly as in the definitions: environment variable names, resolved at run time."""
    return LiveCredentialsResource(
        email=dg.EnvVar("KRATOM_EVIDENCE_EMAIL"),
        ncbi_api_key=dg.EnvVar("NCBI_API_KEY"),
        openalex_api_key=dg.EnvVar("OPENALEX_API_KEY"),
    )


def _snapshot_captured(tmp_path: Path, captured_at: str) -> Path:
    """A copy of the bundled snapshot claiming another capture date (so another dataTimestamp)."""
    folder = tmp_path / f"snapshot-{captured_at}"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, folder)
    info_path = folder / "SNAPSHOT.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info_path.write_text(json.dumps({**info, "captured_at": captured_at}), encoding="utf-8")
    return folder


def _tick(server: EmulatorServer, cursor: str | None) -> SensorExecutionData:
    context = dg.build_sensor_context(
        cursor=cursor, resources={"live_sources": _sources(server.base_url)}
    )
    return clinicaltrials_version_sensor.evaluate_tick(context)


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


def _instance(home: Path) -> dg.DagsterInstance:
    """A Dagster instance keeping its event log and captured logs as files under `home`."""
    home.mkdir()
    return dg.DagsterInstance.local_temp(str(home))


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
    for server in _serve():
        first = _tick(server, None)
        same = _tick(server, first.cursor)
    for server in _serve(_snapshot_captured(tmp_path, "2026-12-02")):
        changed = _tick(server, first.cursor)

    assert [r.run_key for r in first.run_requests or []] == ["2026-11-25T00:00:00"]
    assert first.cursor == "2026-11-25T00:00:00"
    assert not same.run_requests
    assert same.skip_message == "dataTimestamp 2026-11-25T00:00:00 unchanged"
    assert same.cursor in (None, "2026-11-25T00:00:00")
    assert [r.run_key for r in changed.run_requests or []] == ["2026-12-02T00:00:00"]
    assert changed.cursor == "2026-12-02T00:00:00"


def test_sensor_failed_poll_skips_with_one_line_and_keeps_the_cursor() -> None:
    for server in _serve(faults=1.0):
        server.faults.kinds = ("http503",)
        tick = _tick(server, "2026-11-25T00:00:00")
        asked = list(server.requests)

    assert asked == ["/clinicaltrials/api/v2/version"]
    assert not tick.run_requests
    assert tick.skip_message is not None
    assert tick.skip_message.startswith("version poll failed: Server error '503")
    assert "\n" not in tick.skip_message
    assert tick.cursor in (None, "2026-11-25T00:00:00")


def test_weekly_schedule_requests_the_refresh_job_on_monday_three_utc() -> None:
    monday = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    context = dg.build_schedule_context(scheduled_execution_time=monday)
    data = weekly_refresh.evaluate_tick(context)

    assert len(data.run_requests or []) == 1
    assert weekly_refresh.job_name == "refresh"
    assert weekly_refresh.cron_schedule == "0 3 * * 1"
    assert weekly_refresh.execution_timezone == "UTC"


def test_definitions_register_job_schedule_sensor_and_secret_names_only() -> None:
    assert defs.resolve_job_def("refresh").name == "refresh"
    assert defs.resolve_schedule_def("weekly_refresh").job_name == "refresh"
    assert defs.resolve_sensor_def("clinicaltrials_version").job_name == "refresh"
    credentials = defs.resources["live_credentials"]
    wired = {
        getattr(credentials, field).env_var_name
        for field in ("email", "ncbi_api_key", "openalex_api_key")
    }
    assert wired == set(SECRETS)


@pytest.mark.slow
def test_refresh_job_through_faults_publishes_and_no_secret_leaks(
    tmp_path: Path,
    secrets: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    data_dir = tmp_path / "data"
    with _instance(tmp_path / "dagster") as instance:
        for server in _serve(faults=0.2, seed=11, stall_seconds=2.0):
            result = refresh_job.execute_in_process(
                instance=instance,
                resources={
                    "live_sources": _sources(server.base_url),
                    "live_credentials": _credentials(),
                    "release": ReleaseResource(data_dir=str(data_dir)),
                },
                raise_on_error=False,
            )
            sent = "\n".join(server.requests)
            injected = list(server.faults.injected)
        texts = _run_texts(instance, result.run_id)

    assert result.success
    recorded = result.output_for_node("record_snapshot")
    assert Path(recorded).parent == data_dir / "snapshots"
    captured_at = json.loads((Path(recorded) / "SNAPSHOT.json").read_text())["captured_at"]
    version = captured_at.replace("-", ".")
    assert result.output_for_node("publish_recorded") == version
    manifest = json.loads((data_dir / "releases" / version / "manifest.json").read_text())
    assert manifest["version"] == version and manifest["tables"]["studies"]["rows"] > 0
    (record_step,) = [
        e for e in result.all_events if e.is_successful_output and e.step_key == "record_snapshot"
    ]
    metadata = record_step.step_output_data.metadata
    assert metadata["requests_total"].value == len(server.requests)
    assert sum(metadata["retries"].value.values()) > 0 and injected
    assert metadata["snapshot"].value == recorded
    # The check below can fail: every secret did travel, as request parameters.
    for value in secrets:
        assert any(f in sent for f in _forms([value])), value

    out = capsys.readouterr()
    texts.update({"stdout": out.out, "stderr": out.err, "log": caplog.text})
    texts.update(_texts_under(data_dir))
    texts.update(_texts_under(tmp_path / "dagster"))
    assert any(path.endswith("requests.jsonl") for path in texts)
    assert any(path.endswith(".parquet") for path in texts)
    leaks = [(where, f) for where, text in texts.items() for f in _forms(secrets) if f in text]
    assert leaks == []


@pytest.mark.slow
def test_refresh_job_with_a_source_down_fails_with_one_masked_line(
    tmp_path: Path, secrets: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    with _instance(tmp_path / "dagster") as instance:
        for down in _serve(faults=1.0):
            down.faults.kinds = ("http503",)
            for server in _serve():
                result = refresh_job.execute_in_process(
                    instance=instance,
                    resources={
                        "live_sources": _sources(server.base_url, pubmed=f"{down.base_url}/pubmed"),
                        "live_credentials": _credentials(),
                        "release": ReleaseResource(data_dir=str(data_dir)),
                    },
                    raise_on_error=False,
                )
            asked_down = len(down.requests)
        texts = _run_texts(instance, result.run_id)

    assert not result.success
    assert asked_down == FAST["max_tries"]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "record_snapshot"
    error = failure.step_failure_data.error
    assert error is not None and error.cause is None
    description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert description.startswith("pubmed: giving up on ")
    assert "api_key=***" in description and "email=***" in description
    assert description.endswith("left incomplete)")
    assert not (data_dir / "releases").exists()

    out = capsys.readouterr()
    texts.update({"stdout": out.out, "stderr": out.err})
    texts.update(_texts_under(data_dir))
    leaks = [(where, f) for where, text in texts.items() for f in _forms(secrets) if f in text]
    assert leaks == []

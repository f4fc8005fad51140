"""`dagster dev` on the real definitions: a scheduled refresh run materializes every asset.

Starts the emulator (`kratom-evidence serve-snapshot data/snapshot`) and `dagster dev` in a
temporary DAGSTER_HOME, with the deployment variables of pipelines/deployment.py pointing the
code location at the emulator, a temporary data dir and a schedule that ticks every minute. It
starts `weekly_refresh` through the webserver's GraphQL, waits for the daemon to launch one run,
stops the schedule, and when the run ends asks the webserver, for every materializable asset,
which run made its latest materialization. Then it times a build of the bundled snapshot
launched through the webserver (what "Materialize all" runs) against `kratom-evidence build`.

    .venv/bin/python scripts/scheduled_refresh_demo.py [--keep DIR]

Prints one JSON report; exits 1 when an asset lacks a materialization from the scheduled run.
docs/running-past-one-machine.md shows a measured report. Not a test: waiting for the next
minute's tick and starting the webserver take one to three minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCHEDULE = "weekly_refresh"
SNAPSHOT_TAG = "kratom-evidence/snapshot"
ASSETS_QUERY = """
{ assetNodes { assetKey { path } isMaterializable
    assetMaterializations(limit: 1) { runId timestamp } } }
"""
START = """
mutation($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
  __typename ... on ScheduleStateResult { scheduleState { id status } }
  ... on PythonError { message } } }
"""
STOP = """
mutation($id: String!) { stopRunningSchedule(id: $id) {
  __typename ... on ScheduleStateResult { scheduleState { status } }
  ... on PythonError { message } } }
"""
WORKSPACE_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
  ... on RepositoryLocation { repositories { name schedules { name } } } } } } } }
"""
RUNS_QUERY = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results { runId } } } }
"""
SCHEDULE_TAG = {"key": "dagster/schedule_name", "value": SCHEDULE}
RUN_QUERY = """
query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { status tags { key value } startTime endTime } } }
"""
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
DAGSTER_YAML = """telemetry:
  enabled: false
run_queue:
  tag_concurrency_limits:
    - key: kratom-evidence/kind
      value: refresh
      limit: 1
"""
"""One refresh run at a time, as docs/refresh-and-politeness.md advises."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_signals() -> None:
    """A shell's background job ignores SIGINT and SIGTERM; the child must not inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def process(args: list[str], env: Mapping[str, str], log: Path) -> Iterator[None]:
    """A child in its own process group for the length of the block, its output in `log`.

    Ended with SIGINT (`dagster dev` then stops its webserver, daemon and code server), and
    the group it leads killed if it has not ended after a minute.
    """
    with log.open("wb") as out:
        child = subprocess.Popen(
            args,
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=out,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        try:
            yield
        finally:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """Poll `check` until it returns something truthy; an error naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(every)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None) -> Any:
    response = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    return body["data"]


def finished_run(url: str, run_id: str) -> dict[str, Any] | None:
    run = graphql(url, RUN_QUERY, {"id": run_id})["runOrError"]
    return run if run.get("status") in DONE else None


def schedule_home(url: str) -> tuple[str, str]:
    """(code location, repository) that hold the refresh schedule, as the webserver names them."""
    entries = graphql(url, WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
    for entry in entries:
        for repository in (entry.get("locationOrLoadError") or {}).get("repositories", []):
            if SCHEDULE in {schedule["name"] for schedule in repository["schedules"]}:
                return entry["name"], repository["name"]
    raise SystemExit(f"no code location holds {SCHEDULE}: {entries}")


def scheduled_run_id(url: str) -> str | None:
    """The first run the schedule launched, once there is one."""
    runs = graphql(url, RUNS_QUERY, {"filter": {"tags": [SCHEDULE_TAG]}})["runsOrError"]
    return runs["results"][-1]["runId"] if runs["results"] else None


def latest_materializations(url: str) -> dict[str, str | None]:
    """Materializable asset -> run id of its latest materialization (None: never)."""
    nodes = graphql(url, ASSETS_QUERY)["assetNodes"]
    return {
        "/".join(node["assetKey"]["path"]): (
            node["assetMaterializations"][0]["runId"] if node["assetMaterializations"] else None
        )
        for node in nodes
        if node["isMaterializable"]
    }


def demo(work: Path) -> dict[str, Any]:
    """Run the whole demo inside `work`; the report."""
    home, data = work / "dagster_home", work / "data"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    emulator_port, web_port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    url = f"http://127.0.0.1:{web_port}/graphql"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "KRATOM_EVIDENCE_DATA_DIR": str(data),
        "KRATOM_EVIDENCE_REFRESH_CRON": "* * * * *",
        "KRATOM_EVIDENCE_BASE_URL": f"all={emulator}",
        "KRATOM_EVIDENCE_PACE": "0",
        "NCBI_API_KEY": "",
        "OPENALEX_API_KEY": "",
        "KRATOM_EVIDENCE_EMAIL": "",
    }
    serve = [str(BIN / "kratom-evidence"), "serve-snapshot", "data/snapshot"]
    dev = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(web_port)]
    report: dict[str, Any] = {"work": str(work)}
    with (
        process([*serve, "--port", str(emulator_port)], env, work / "emulator.log"),
        process(dev, env, work / "dagster_dev.log"),
    ):
        started = time.monotonic()
        wait_for("the code location", lambda: latest_materializations(url), 600, 2)
        report["webserver_ready_s"] = round(time.monotonic() - started, 1)
        location, repository = schedule_home(url)
        selector = {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "scheduleName": SCHEDULE,
        }
        result = graphql(url, START, {"selector": selector})["startSchedule"]
        if result["__typename"] != "ScheduleStateResult":
            raise SystemExit(f"could not start {SCHEDULE}: {result}")
        started = time.monotonic()
        run_id = wait_for("the scheduled run", lambda: scheduled_run_id(url), 180, 2)
        report["tick_wait_s"] = round(time.monotonic() - started, 1)
        graphql(url, STOP, {"id": result["scheduleState"]["id"]})
        run = wait_for("the scheduled run to end", lambda: finished_run(url, run_id), 900, 2)
        latest = latest_materializations(url)
        report["scheduled_run"] = {
            "run_id": run_id,
            "status": run["status"],
            "snapshot_tag": {t["key"]: t["value"] for t in run["tags"]}.get(SNAPSHOT_TAG),
            "run_seconds": round(run["endTime"] - run["startTime"], 1),
            "materializable_assets": len(latest),
            "latest_materialization_from_this_run": sum(r == run_id for r in latest.values()),
            "assets_without_it": sorted(key for key, r in latest.items() if r != run_id),
        }
        report["ui_build"] = ui_build(url, location, repository, work / "ui_data")
    report["scheduled_run"]["asset_checks_passed"] = checks_passed(home, run_id)
    report["cli_build_s"] = cli_build(work / "cli_data")
    return report


def checks_passed(home: Path, run_id: str) -> str:
    """`passed/evaluated` asset checks of a run, read from the instance's own event log."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    events = [r.event_log_entry.dagster_event for r in records]
    evaluations = [e.event_specific_data for e in events if e is not None]
    passed = sum(bool(getattr(e, "passed", False)) for e in evaluations)
    return f"{passed}/{len(evaluations)}"


def ui_build(url: str, location: str, repository: str, data_dir: Path) -> dict[str, float]:
    """The bundled snapshot built by a run launched through the webserver, as the launchpad does."""
    from dagster_graphql import DagsterGraphQLClient

    from pipelines.build import run_config
    from pipelines.paths import BUNDLED_SNAPSHOT
    from pipelines.release.publish import DataDir

    host, port = url.removeprefix("http://").removesuffix("/graphql").split(":")
    client = DagsterGraphQLClient(host, port_number=int(port))
    config = run_config(BUNDLED_SNAPSHOT, DataDir(data_dir))
    started = time.monotonic()
    run_id = client.submit_job_execution("build", location, repository, run_config=config)
    run = wait_for("the UI build", lambda: finished_run(url, run_id), 900, 0.5)
    if run["status"] != "SUCCESS":
        raise SystemExit(f"UI build {run_id} ended {run['status']}")
    return {
        "launch_to_success_s": round(time.monotonic() - started, 1),
        "run_seconds": round(run["endTime"] - run["startTime"], 1),
    }


def cli_build(data_dir: Path) -> float:
    """Wall seconds of `kratom-evidence build` of the bundled snapshot (no DAGSTER_HOME)."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "kratom-evidence"), "build", "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return round(time.monotonic() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kratom-dagster-demo-"))
    try:
        report = demo(work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report["load_average"] = [round(x, 1) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))
    scheduled = report["scheduled_run"]
    return 0 if scheduled["status"] == "SUCCESS" and not scheduled["assets_without_it"] else 1


if __name__ == "__main__":
    sys.exit(main())

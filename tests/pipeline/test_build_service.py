"""The build service's run, as the UI launches it: the asset job on run config, in one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines import paths
from pipelines.build import RELEASE_KEY, SNAPSHOT_TAG, build, first_failure, run_config
from pipelines.definitions import build_job
from pipelines.release.publish import DataDir

HOLD_LOCK = (
    "import fcntl, sys, time; handle = open(sys.argv[1], 'a+'); "
    "fcntl.flock(handle, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)"
)
"""Another process holding the data dir's lock, as a running `kratom-evidence build` does."""


def _launch(outputs: DataDir, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The build job of the bundled snapshot, as the UI's launchpad would run it."""
    config = run_config(paths.BUNDLED_SNAPSHOT, outputs, None, "2026-11-25T00:00:00Z")
    return build_job().execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )


@pytest.mark.slow
def test_a_ui_run_holds_the_lock_and_its_release_links_version_report_and_manifest(
    tmp_path: Path,
) -> None:
    outputs = DataDir(tmp_path / "data")
    outputs.root.mkdir()
    with dg.DagsterInstance.ephemeral() as instance:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(outputs.lock_file)], stdout=subprocess.PIPE
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            busy = _launch(outputs, instance)
        finally:
            holder.kill()
            holder.wait()
        built = _launch(outputs, instance)

    assert not busy.success
    assert "another build is publishing into" in first_failure(busy.all_events)
    assert not [e for e in busy.all_events if e.is_step_start]
    assert built.success
    (release,) = [
        e.materialization.metadata
        for e in built.get_asset_materialization_events()
        if e.asset_key == RELEASE_KEY
    ]
    folder = outputs.releases / "2026.11.25"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert release["version"].value == "2026.11.25" and release["published"].value is True
    assert release["manifest"].value == str(folder / "manifest.json")
    assert release["report"].value == str(folder / "report.html")
    assert (folder / "report.html").is_file()
    assert release["rows"].value == {k: v["rows"] for k, v in manifest["tables"].items()}


@pytest.mark.slow
def test_a_cli_build_with_dagster_home_is_a_run_of_that_instance_tagged_with_its_snapshot(
    tmp_path: Path, dagster_home: Path
) -> None:
    published = build(paths.BUNDLED_SNAPSHOT, DataDir(tmp_path / "data"))

    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        release = instance.get_latest_materialization_event(RELEASE_KEY)
    assert run.job_name == "build" and run.tags[SNAPSHOT_TAG] == "snapshot"
    assert release is not None and release.run_id == run.run_id
    assert published.version == "2026.11.25"

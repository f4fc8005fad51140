"""A source larger than `part_mib` is staged in runs, each by a fresh process, into the warehouse.

Real-shape pages (copies of the real v2 samples beside the repository) of about 1.1 MiB in
all, staged with `part_mib=1`: two runs of files, each staged by a process forked from the
forkserver straight into a real warehouse file, the second after the first. The tables are
one pass's, row for row; this process stages nothing itself.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import zipfile
from pathlib import Path

import dagster as dg
import duckdb
import orjson
import pytest

from pipelines import shards
from pipelines.assets.staging import table_key, written_tables
from pipelines.build import run_config
from pipelines.definitions import build_job
from pipelines.release.publish import DataDir
from pipelines.sources import SOURCES
from pipelines.sources.base import SnapshotFormatError
from pipelines.staging import StageStats
from schemas import QUARANTINE
from tests.pipeline.test_parallel_staging import (
    PAGES,
    PER_PAGE,
    SAMPLES,
    _one_pass,
    _passes,
    realshape_pages,
    staged_tables,
)

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples absent")


def _bounded(snap: Path, database: Path, part_mib: int = 1) -> tuple[StageStats, dict]:
    runs = shards.plan_runs("clinicaltrials", snap, database, {}, part_mib)
    assert [(run.into, run.place.first, run.place.last) for run in runs] == [
        (str(database), True, False),
        (str(database), False, True),
    ]
    stats = shards.stage_runs(runs)
    con = duckdb.connect(str(database))
    tables = staged_tables(con)
    leftovers = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE starts_with(table_name, '_sw')"
    ).fetchall()
    con.close()
    assert leftovers == []  # the seen keys the runs shared are dropped by the last
    return stats, tables


def test_the_pages_make_two_runs_of_one_mib_and_none_at_zero(tmp_path: Path) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    size = sum(p.stat().st_size for p in (snap / "clinicaltrials").iterdir())
    assert 2**20 < size <= 2 * 2**20  # the premise of the file's tests
    assert shards.bounded_parts(snap, "clinicaltrials", 1) == 2
    assert shards.bounded_parts(snap, "clinicaltrials", 2) == 1
    assert shards.bounded_parts(snap, "clinicaltrials", 0) == 1


def test_runs_staged_by_fresh_processes_give_one_pass_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    one, one_tables = _one_pass(snap, tmp_path / "one.duckdb")
    here = _passes(monkeypatch)  # stage_source calls in this process
    bounded, bounded_tables = _bounded(snap, tmp_path / "bounded.duckdb")

    assert bounded == one and one.staged == PAGES * PER_PAGE
    assert bounded_tables == one_tables
    assert sum(len(rows) for _, rows in one_tables.values()) > PAGES * PER_PAGE
    assert here == []  # both runs were staged by other processes
    assert len(bounded.process_peaks_mib) == 2 and one.process_peaks_mib == []
    assert not (tmp_path / "bounded.shards").exists()  # no file but the warehouse


def test_each_run_is_staged_by_a_process_of_its_own(tmp_path: Path) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    tasks = shards.plan("clinicaltrials", snap, tmp_path / "w.duckdb", 2)
    parts = shards.stage_in_processes(tasks)
    for task in tasks:
        task.path.unlink()
    processes = {part.process for part in parts}
    assert len(processes) == 2 and os.getpid() not in processes
    # each its own peak: DuckDB's and staging's imports at least
    assert all(part.stats.process_peaks_mib[0] > 50 for part in parts)
    assert [part.stats.staged for part in parts] == [2 * PER_PAGE, 2 * PER_PAGE]


def test_a_study_on_pages_of_both_runs_is_decided_as_by_one_pass(tmp_path: Path) -> None:
    """The second run reads the keys the first kept, and the first's record again from its
    file to compare them: one exact copy counted, one changed copy quarantined."""
    snap = realshape_pages(tmp_path / "snapshot", repeat=True)
    one, one_tables = _one_pass(snap, tmp_path / "one.duckdb")
    bounded, bounded_tables = _bounded(snap, tmp_path / "bounded.duckdb")

    assert (one.duplicates, one.quarantined) == (1, 1)
    assert bounded == one
    assert bounded_tables == one_tables


def test_a_bad_page_in_the_second_run_stops_staging_naming_it(tmp_path: Path) -> None:
    snap = realshape_pages(tmp_path / "snapshot")
    page = snap / "clinicaltrials" / "page-00004.json"
    page.write_bytes(b"x" + page.read_bytes()[1:])  # not JSON, the same size: still two runs
    assert shards.bounded_parts(snap, "clinicaltrials", 1) == 2
    runs = shards.plan_runs("clinicaltrials", snap, tmp_path / "w.duckdb", {}, 1)
    with pytest.raises(SnapshotFormatError, match=r"page-00004\.json"):
        shards.stage_runs(runs)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    leftovers = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE starts_with(table_name, '_sw')"
    ).fetchall()
    con.close()
    assert leftovers == []  # a failed run ends the source's staging


def test_a_bulk_archive_stays_one_pass(tmp_path: Path) -> None:
    """An archive is read in smaller batches than pages, and runs would each walk its whole
    directory: the registry's export is staged in one pass whatever its size."""
    snap = realshape_pages(tmp_path / "snapshot")
    folder = snap / "clinicaltrials"
    path = folder / "ctg-studies.json.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # as large as the pages
        for page in sorted(folder.glob("*.json")):
            for study in orjson.loads(page.read_bytes())["studies"]:
                nct = study["protocolSection"]["identificationModule"]["nctId"]
                archive.writestr(f"{nct}.json", orjson.dumps(study))
            page.unlink()
    assert path.stat().st_size > 2**20
    assert shards.bounded_parts(snap, "clinicaltrials", 1) == 1


def test_the_staged_tables_show_the_staging_processes_in_dagster(tmp_path: Path) -> None:
    """What the UI shows on the source's accounting (its quarantine table's materialization):
    how many processes staged the pages and the largest one's peak, which the step's own
    memory does not include."""
    snap = realshape_pages(tmp_path / "snapshot")
    outputs = DataDir(tmp_path / "data")
    outputs.root.mkdir()
    config = run_config(snap, outputs, None, "2026-11-25T00:00:00Z")
    combine = {"combine_clinicaltrials": {"config": {"part_mib": 1}}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = build_job().execute_in_process(
            run_config={**config, "ops": {"staging_clinicaltrials": {"ops": combine}}},
            instance=instance,
            asset_selection=[dg.AssetKey(["raw", "clinicaltrials"]), *_staged_keys()],
        )
    metadata = {
        event.asset_key: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    accounting = metadata[table_key("clinicaltrials", QUARANTINE.name)]
    assert accounting["records_staged"].value == PAGES * PER_PAGE
    assert accounting["staging_processes"].value == 2
    assert 50 < accounting["staging_process_peak_mib"].value < 4096


def _staged_keys() -> list[dg.AssetKey]:
    return [table_key("clinicaltrials", t) for t in written_tables(SOURCES["clinicaltrials"])]


def _killed(tasks: list[shards.ShardTask]) -> BaseException:
    """What staging `tasks` in processes raises when its processes are SIGKILLed."""
    outcome: list[BaseException] = []

    def stage() -> None:
        try:
            shards.stage_in_processes(tasks)
        except BaseException as exc:  # what the step would raise
            outcome.append(exc)

    runner = threading.Thread(target=stage)
    runner.start()
    deadline = time.monotonic() + 60
    while not multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.01)
    for child in multiprocessing.active_children():
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    runner.join(120)
    (error,) = outcome
    return error


def test_a_staging_process_that_dies_stops_staging_naming_its_part(tmp_path: Path) -> None:
    """Killed (as the kernel kills a process for its memory): a clear error, no part file."""
    snap = realshape_pages(tmp_path / "snapshot")
    tasks = shards.plan("clinicaltrials", snap, tmp_path / "w.duckdb", 2)

    error = _killed(tasks)
    assert isinstance(error, shards.StagingProcessError)
    assert "part 1 of 2 ended without a result (exit code -9)" in str(error)
    assert not any(task.path.exists() for task in tasks)


def test_a_run_that_dies_leaves_the_warehouse_and_what_else_it_holds(tmp_path: Path) -> None:
    """A run stages into the warehouse itself: its death must not take the file with it (part
    files are deleted on failure, the warehouse never is)."""
    snap = realshape_pages(tmp_path / "snapshot")
    database = tmp_path / "w.duckdb"
    con = duckdb.connect(str(database))
    con.execute("CREATE TABLE kept AS SELECT 1 AS n")
    con.close()

    error = _killed(shards.plan_runs("clinicaltrials", snap, database, {}, 1))
    assert isinstance(error, shards.StagingProcessError)
    assert "part 1 of 2 ended without a result" in str(error)
    con = duckdb.connect(str(database))
    assert con.execute("SELECT n FROM kept").fetchall() == [(1,)]
    con.close()

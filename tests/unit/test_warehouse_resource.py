"""The warehouse's DuckDB keeps to a fixed memory limit, the deployment's, and spills beside it;
its allocator hands freed memory back in the background; a run opens it once another process
has let go of its lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines import paths
from pipelines.build import run_config
from pipelines.deployment import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV, deployment
from pipelines.release.publish import DataDir
from pipelines.resources import WarehouseResource

SETTINGS = (
    "SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
    "current_setting('allocator_background_threads')"
)


def _settings_in_a_run(config: dict[str, object]) -> tuple[str, str, str]:
    """What a step's warehouse cursor reports, in a run of the build's warehouse config."""
    seen: list[tuple[str, str, str]] = []

    @dg.asset
    def probe(warehouse: WarehouseResource) -> None:
        with warehouse.get_connection() as con:
            row = con.execute(SETTINGS).fetchone()
            assert row is not None
            seen.append((str(row[0]), str(row[1]), str(row[2])))

    defs = dg.Definitions(
        assets=[probe], resources={"warehouse": WarehouseResource(database=":memory:")}
    )
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        run_config={"resources": {"warehouse": config}}
    )
    assert result.success
    (settings,) = seen
    return settings


def test_a_build_run_caps_the_warehouse_at_the_default_and_spills_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    outputs = DataDir(tmp_path / "data")
    outputs.root.mkdir()
    config = run_config(paths.BUNDLED_SNAPSHOT, outputs)["resources"]["warehouse"]

    assert deployment({}).memory_limit == DEFAULT_MEMORY_LIMIT == "512MB"
    assert _settings_in_a_run(config) == ("488.2 MiB", f"{outputs.warehouse}.tmp", "True")


def test_the_deployment_variable_sets_the_limit_of_cli_and_code_location_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, " 100MB ")
    outputs = DataDir(tmp_path / "data")
    outputs.root.mkdir()
    config = run_config(paths.BUNDLED_SNAPSHOT, outputs)["resources"]["warehouse"]

    assert deployment({MEMORY_LIMIT_ENV: "2GB"}).memory_limit == "2GB"
    assert deployment({MEMORY_LIMIT_ENV: " "}).memory_limit == DEFAULT_MEMORY_LIMIT
    assert _settings_in_a_run(config)[0] == "95.3 MiB"


def test_outside_a_run_each_connection_keeps_the_limit_too(tmp_path: Path) -> None:
    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"), memory_limit="100MB")
    with warehouse.get_connection() as con:
        row = con.execute(SETTINGS).fetchone()
    assert row == ("95.3 MiB", f"{tmp_path / 'w.duckdb'}.tmp", True)


def test_a_run_waits_for_another_process_to_let_go_of_the_file(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FILE, str(database)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    seen: list[int] = []

    @dg.asset
    def reader(warehouse: WarehouseResource) -> None:
        with warehouse.get_connection() as con:
            row = con.execute("SELECT n FROM t").fetchone()
            assert row is not None
            seen.append(int(row[0]))

    defs = dg.Definitions(
        assets=[reader], resources={"warehouse": WarehouseResource(database=str(database))}
    )
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert holder.wait(timeout=30) == 0
    assert result.success and seen == [7]


def test_a_step_lets_another_process_write_the_warehouse_then_reads_what_it_wrote(
    tmp_path: Path,
) -> None:
    """`released`: the run's connection is closed while a process of its own writes the file
    (as a run of pages staged by a fresh process does), then opened again for the step."""
    database = tmp_path / "w.duckdb"
    seen: list[object] = []

    @dg.asset
    def writer_elsewhere(warehouse: WarehouseResource) -> None:
        with warehouse.get_connection() as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS n")
        with warehouse.released():
            subprocess.run([sys.executable, "-c", WRITE_THE_FILE, str(database)], check=True)
        with warehouse.get_connection() as con:
            seen.extend(con.execute("SELECT n FROM t ORDER BY n").fetchall())
            seen.append(con.execute("SELECT current_setting('memory_limit')").fetchone())

    defs = dg.Definitions(
        assets=[writer_elsewhere],
        resources={"warehouse": WarehouseResource(database=str(database), memory_limit="100MB")},
    )
    assert defs.resolve_implicit_global_asset_job_def().execute_in_process().success
    assert seen == [(1,), (2,), ("95.3 MiB",)]  # the other's row; the limit set again


WRITE_THE_FILE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("INSERT INTO t VALUES (2)")
con.close()
"""
"""A process that opens the warehouse to write: it fails while another process holds it."""


HOLD_THE_FILE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE t AS SELECT 7 AS n")
print("holding", flush=True)
time.sleep(1.5)
con.close()
"""
"""A process that writes the warehouse and keeps it locked for 1.5 s (a step process whose
success was reported but which has not closed the file yet)."""

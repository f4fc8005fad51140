"""A blocking check that fails inside the one curated step stops the build there: its failed
evaluation is in the run, no table that needs it is built, no release is published, and the
CLI says which check failed in one line. (Builders run two at a time, so a builder that does not
need the broken table may have run beside it.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from pipelines import paths, tables
from pipelines.assets import curated
from pipelines.cli import main

pytestmark = pytest.mark.slow

BROKEN = "compounds"
"""The first table the curated step builds (`curated.build_order`), needed by many others."""


def _repeating_a_row(
    build_table: Callable[..., dict[str, Any]],
) -> Callable[..., dict[str, Any]]:
    """`build_table` that, once `BROKEN` is written, stores its first row a second time: a
    repeated primary key the gate never let through, which only the table's check can see."""

    def build(
        con: duckdb.DuckDBPyConnection, builder: tables.Builder, *args: Any
    ) -> dict[str, Any]:
        metadata = build_table(con, builder, *args)
        if builder.table == BROKEN:
            con.execute(f"INSERT INTO curated.{BROKEN} SELECT * FROM curated.{BROKEN} LIMIT 1")
        return metadata

    return build


def test_a_failed_check_stops_the_curated_step_and_the_release(
    tmp_path: Path,
    dagster_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    order = [b.table for b in curated.build_order(list(tables.BUILDERS.values()))]
    assert order[0] == BROKEN
    monkeypatch.setattr(curated, "build_table", _repeating_a_row(curated.build_table))
    data_dir = tmp_path / "out"

    times = tmp_path / "steps.json"
    argv = ["build", "--snapshot", str(paths.BUNDLED_SNAPSHOT), "--data-dir", str(data_dir)]
    code = main([*argv, "--step-times", str(times)])

    error = capsys.readouterr().err.strip()
    assert code == 1
    assert error == (
        f"kratom-evidence: check {BROKEN}_matches_schema failed: "
        f"table {BROKEN}, primary key compound_id has 1 duplicate rows"
    )
    assert not (data_dir / "releases").exists() or not any((data_dir / "releases").iterdir())
    # The failed run's steps are written too: the curated step ended, the release never ran.
    (timed,) = json.loads(times.read_text())["runs"]
    assert timed["steps"]["curated"]["end"] >= timed["steps"]["curated"]["start"]
    assert "release__published" not in timed["steps"]
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        evaluations = [
            event.dagster_event.asset_check_evaluation_data
            for event in instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if event.dagster_event is not None
        ]
        built = {
            name
            for name in order
            if instance.get_latest_materialization_event(dg.AssetKey(["curated", name]))
        }
    assert run.status == dg.DagsterRunStatus.FAILURE
    (evaluation,) = [e for e in evaluations if not e.passed]
    assert evaluation.asset_key == dg.AssetKey(["curated", BROKEN])
    assert evaluation.metadata["problems"].value == [
        f"table {BROKEN}, primary key compound_id has 1 duplicate rows"
    ]
    assert BROKEN in built and not built & _needing(BROKEN)
    assert len(built) < len(order) - len(_needing(BROKEN))  # the step stopped


def _needing(table: str) -> set[str]:
    """The builders that need `table`'s, directly or through others (`curated.build_order`'s
    dependencies)."""
    builders = list(tables.BUILDERS.values())
    needs = curated.needs(builders)
    found: set[str] = set()
    more = {table}
    while more:
        more = {name for name, needed in needs.items() if needed & more} - found
        found |= more
    return found

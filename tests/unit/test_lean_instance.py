"""The build's throwaway Dagster instance: a whole run on the connections its storages hold."""

from __future__ import annotations

import logging
import threading

import dagster as dg
import sqlalchemy

from pipelines import setwise
from pipelines.lean_instance import lean_instance


@dg.asset
def upstream() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset(deps=[upstream])
def downstream() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 2})


@dg.asset_check(asset=downstream)
def downstream_has_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def test_a_run_stores_and_reads_back_its_events_without_opening_a_connection() -> None:
    job = dg.Definitions(
        assets=[upstream, downstream], asset_checks=[downstream_has_rows]
    ).resolve_implicit_global_asset_job_def()
    opened: list[object] = []
    with lean_instance() as instance:
        for storage in (instance.run_storage, instance.event_log_storage):
            sqlalchemy.event.listen(storage._engine, "connect", lambda *args: opened.append(args))  # type: ignore[attr-defined]
        result = job.execute_in_process(instance=instance)
        (run,) = instance.get_runs()
        latest = instance.get_latest_materialization_event(downstream.key)
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [downstream_has_rows.check_key]
        )

    assert result.success and run.run_id == result.run_id and run.is_success
    assert latest is not None and latest.asset_materialization is not None
    # The downstream step read upstream's materialization back (its data version's provenance).
    tags = latest.asset_materialization.tags or {}
    assert any(key.startswith("dagster/input_data_version/") for key in tags)
    assert check[downstream_has_rows.check_key].status.value == "SUCCEEDED"
    assert opened == []


def test_the_event_log_asks_its_schema_once_not_per_event() -> None:
    job = dg.Definitions(assets=[upstream, downstream]).resolve_implicit_global_asset_job_def()
    asked: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("PRAGMA"):
            asked.append(statement)

    with lean_instance() as instance:
        engine = instance.event_log_storage._engine  # type: ignore[attr-defined]
        sqlalchemy.event.listen(engine, "before_cursor_execute", count)
        assert job.execute_in_process(instance=instance).success
        first = len(asked)
        assert job.execute_in_process(instance=instance).success

    assert first > 0 and len(asked) == first, asked


@dg.asset
def staged_beside_others() -> dg.MaterializeResult:
    """Logs as staging does when a statement runs again alone (pipelines/setwise.py)."""
    setwise.LOG.warning("a staging statement ran out of DuckDB memory beside others; again alone")
    return dg.MaterializeResult(metadata={"rows": 1})


def test_staging_warnings_are_the_steps_own_events() -> None:
    """Staging logs to Python's logging, free of Dagster; the build's instance captures them
    into the step's events, where the bench and the UI read a step's warnings."""
    job = dg.Definitions(assets=[staged_beside_others]).resolve_implicit_global_asset_job_def()
    with lean_instance() as instance:
        result = job.execute_in_process(instance=instance)
        warnings = [
            entry
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING and entry.step_key
        ]
    assert [entry.user_message for entry in warnings] == [
        "a staging statement ran out of DuckDB memory beside others; again alone"
    ]


@dg.asset
def staged_on_a_cursor_thread() -> dg.MaterializeResult:
    """Logs as staging does from the thread of one of its cursors (`setwise._Cursors`)."""
    thread = threading.Thread(
        target=setwise.LOG.warning, args=("ran out of DuckDB memory beside others",)
    )
    thread.start()
    thread.join()
    return dg.MaterializeResult(metadata={"rows": 1})


def test_a_warning_logged_on_another_thread_is_stored_not_a_failed_run() -> None:
    """SQLite refuses a connection another thread made: a warning from a staging cursor's
    thread once failed a 200 000-study build (bench/README.md, Session 22)."""
    job = dg.Definitions(assets=[staged_on_a_cursor_thread]).resolve_implicit_global_asset_job_def()
    with lean_instance() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        warnings = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING and entry.step_key
        ]
    assert result.success
    assert warnings == ["ran out of DuckDB memory beside others"]

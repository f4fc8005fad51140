"""A curated builder that runs out of DuckDB memory beside another builder is run again alone
(with DuckDB on both builder threads), then with the whole limit, and the release is the same
bytes; one that runs out of memory with the whole limit fails the build.

Builders run two at a time and share the warehouse's `memory_limit`: at 560 000 studies two
large ones side by side ran out of it (bench/README.md, session 7). The fault is injected where
a builder starts (`curated.build_table`), as DuckDB raises it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import paths, tables
from pipelines.assets import curated
from pipelines.build import BuildError, build
from pipelines.deployment import DEFAULT_MEMORY_LIMIT
from pipelines.release.publish import DataDir
from tests.conftest import CREATED_AT
from tests.pipeline.test_recorded_hashes import RECORDED, release_hashes

pytestmark = pytest.mark.slow

TARGET = "outcomes"
"""A builder in the middle of the curated step: others are built before, beside and after it."""


class Runs:
    """Each builder run's table, DuckDB's memory limit and the runs it overlapped, recorded by
    a wrapped build_table that raises DuckDB's out-of-memory error on the target's first
    `failures` runs."""

    def __init__(self, failures: int, error: duckdb.Error | None = None) -> None:
        self.failures = failures
        self.error = error or duckdb.OutOfMemoryException(
            "Out of Memory Error: failed to pin block (raised by the test)\n\n"
            "Possible solutions:\n* Reducing the number of threads (as DuckDB says)"
        )
        self.lock = threading.Lock()
        self.events: list[tuple[str, str, int]] = []  # (start | end, table, run number)
        self.limits: list[tuple[str, str]] = []  # (table, memory_limit) of each run
        self.threads: list[tuple[str, int]] = []  # (table, DuckDB threads) of each run

    def wrap(self, build_table: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def run(con: duckdb.DuckDBPyConnection, builder: tables.Builder, *args: Any) -> Any:
            (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
            (threads,) = con.execute("SELECT current_setting('threads')").fetchone() or (0,)
            with self.lock:
                self.threads.append((builder.table, int(threads)))
                number = len(self.events)
                self.events.append(("start", builder.table, number))
                self.limits.append((builder.table, str(limit)))
                fail = builder.table == TARGET and self.failures > 0
                self.failures -= fail
            try:
                if fail:
                    raise self.error
                return build_table(con, builder, *args)
            finally:
                with self.lock:
                    self.events.append(("end", builder.table, number))

        return run

    def overlapping(self, table: str) -> list[set[str]]:
        """For each run of `table`, the tables whose runs overlapped it."""
        spans: dict[int, tuple[str, int, int]] = {}
        for index, (kind, name, number) in enumerate(self.events):
            start = index if kind == "start" else spans[number][1]
            spans[number] = (name, start, index)
        return [
            {o for o, o_start, o_end in spans.values() if o_start < end and o_end > start} - {table}
            for name, start, end in spans.values()
            if name == table
        ]


@pytest.mark.parametrize("failures", [1, 2])
def test_a_builder_out_of_memory_beside_another_runs_again_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    """Out of memory beside another, a builder runs again alone under the same share of the
    limit; out of memory then too, alone with the whole limit. Each run again is a warning of
    the curated step in the step times the bench reads."""
    runs = Runs(failures=failures)
    monkeypatch.setattr(curated, "build_table", runs.wrap(curated.build_table))
    times = tmp_path / "steps.json"

    build(
        paths.BUNDLED_SNAPSHOT, DataDir(tmp_path / "data"), created_at=CREATED_AT, step_times=times
    )

    steps = {k: v for run in json.loads(times.read_text())["runs"] for k, v in run["steps"].items()}
    warnings = steps["curated"]["warnings"]
    assert len(warnings) == failures
    assert all(f"curated builder {TARGET} ran out of DuckDB memory" in w for w in warnings)
    assert all(
        w.endswith("(Out of Memory Error: failed to pin block (raised by the test))")
        for w in warnings
    )
    assert not any("warnings" in step for name, step in steps.items() if name != "curated")

    # Whether another builder ran beside the first run depends on timing; every later run had
    # the warehouse to itself whatever the timing.
    _first, *again = runs.overlapping(TARGET)
    assert again == [set()] * failures
    whole = _mib(_printed(DEFAULT_MEMORY_LIMIT))
    shared = curated.BESIDE_ANOTHER_SHARE * whole
    limits = [(table, _mib(limit)) for table, limit in runs.limits]
    expected = [shared, shared, whole][: failures + 1]
    target = [limit for table, limit in limits if table == TARGET]
    assert len(target) == len(expected)
    assert all(_near(limit, want) for limit, want in zip(target, expected, strict=True))
    assert all(_near(limit, shared) for table, limit in limits if table != TARGET)
    # Alone, a builder has DuckDB on both builder threads; beside another, on one.
    target_threads = [n for table, n in runs.threads if table == TARGET]
    assert target_threads[1:] == [curated.BUILDER_THREADS] * failures
    assert all(n == 1 for table, n in runs.threads if table != TARGET)
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    assert release_hashes(tmp_path / "data") == recorded


def _printed(limit: str) -> str:
    """A `memory_limit` as DuckDB prints it (`488.2 MiB`)."""
    with duckdb.connect(config={"memory_limit": limit}) as con:
        (printed,) = con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    return str(printed)


def _near(limit: float, expected: float) -> bool:
    """DuckDB keeps a limit to 0.1 MiB, and reads one it printed back up to 0.1 MiB short."""
    return abs(limit - expected) <= 0.2


def _mib(size: str) -> float:
    number, unit = size.split()
    assert unit == "MiB", size
    return float(number)


COMMIT_OUT_OF_MEMORY = duckdb.TransactionException(
    "TransactionContext Error: Failed to commit: failed to pin block of size 256.0 KiB "
    "(raised by the test)"
)
"""DuckDB's error for a commit that could not pin a block: not run again (`setwise.Turns`)."""


@pytest.mark.parametrize(
    ("runs", "error", "match"),
    [
        (3, None, r"curated: .*OutOfMemoryException.*raised by the test"),
        (1, COMMIT_OUT_OF_MEMORY, r"curated: .*Failed to commit"),
    ],
)
def test_a_builder_out_of_memory_with_the_whole_limit_or_at_its_commit_fails_the_build(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runs: int,
    error: duckdb.Error | None,
    match: str,
) -> None:
    """Its line names the setting to raise."""
    recorded = Runs(failures=runs, error=error)
    monkeypatch.setattr(curated, "build_table", recorded.wrap(curated.build_table))

    with pytest.raises(BuildError, match=match) as failed:
        build(paths.BUNDLED_SNAPSHOT, DataDir(tmp_path / "data"), created_at=CREATED_AT)

    assert str(failed.value).endswith(
        f"(the warehouse's DuckDB memory_limit is {DEFAULT_MEMORY_LIMIT}; "
        "set KRATOM_EVIDENCE_DUCKDB_MEMORY_LIMIT higher)"
    )
    assert len(recorded.overlapping(TARGET)) == runs
    assert not (tmp_path / "data" / "releases").exists()


@pytest.mark.parametrize("long_one", ["outcome_results", "baseline_measures"])
def test_builders_go_on_beside_a_long_one_while_a_shorter_chain_waits_to_run_alone(
    monkeypatch: pytest.MonkeyPatch, long_one: str
) -> None:
    """Of outcome_results and baseline_measures, the first to start runs (held by the test) and
    the other runs out of memory beside it. When the one held is the costlier (by staged rows),
    the three small builders run beside it meanwhile (before, the builder waiting to run alone
    held them back, and the held one waited for them in vain), then the other runs alone. When
    the one that ran out of memory is the costlier, it runs alone next, before the small ones."""
    failing = "baseline_measures" if long_one == "outcome_results" else "outcome_results"
    small = ("arms", "conditions", "interventions")
    small_done, failed, long_started = threading.Event(), threading.Event(), threading.Event()
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def run_builder(
        con: duckdb.DuckDBPyConnection, builder: tables.Builder, *args: Any
    ) -> curated.BuilderRun:
        with lock:
            events.append(("start", builder.table))
            fail = builder.table == failing and not failed.is_set()
        try:
            if fail:
                assert long_started.wait(timeout=20)
                failed.set()
                raise duckdb.OutOfMemoryException("Out of Memory Error (raised by the test)")
            if builder.table == long_one:
                long_started.set()
                assert failed.wait(timeout=20)
                small_done.wait(timeout=2 if long_one == "baseline_measures" else 20)
            return builder, {}, None
        finally:
            with lock:
                events.append(("end", builder.table))
                if set(small) <= {table for kind, table in events if kind == "end"}:
                    small_done.set()

    monkeypatch.setattr(curated, "_run_builder", run_builder)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging; CREATE SCHEMA curated")
    for table, rows in (("outcome_results", 2000), ("baseline_measures", 1000)):
        con.execute(
            f"CREATE TABLE staging.clinicaltrials__{table} AS SELECT range FROM range({rows})"
        )
    builders = [tables.BUILDERS[t] for t in ("outcome_results", "baseline_measures", *small)]

    built = [
        run[0].table for run in curated.run_builders(con, builders, paths.REFERENCE_DIR, set())
    ]

    assert sorted(built) == sorted(b.table for b in builders)
    assert sorted(events[:2]) == [("start", "baseline_measures"), ("start", "outcome_results")]
    rerun = events.index(("start", failing), events.index(("end", failing)) + 1)
    assert events[rerun - 1] == ("end", long_one)
    assert events[rerun + 1] == ("end", failing)
    before = {table for kind, table in events[:rerun] if kind == "end"}
    assert set(small) <= before if long_one == "outcome_results" else not before & set(small)

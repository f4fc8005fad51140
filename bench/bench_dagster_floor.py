"""Dagster's own floor under a bundled build: the build's asset graph run with no work in it.

    .venv/bin/python bench/bench_dagster_floor.py

Issue 15 asks a fresh bundled build under 4 s of wall time. How much of that can Dagster's own
machinery take? This imports Dagster and the build's throwaway instance (`lean_instance`), then
runs a job with the build's shape: one asset per asset of `pipelines.definitions` (the same
keys, dependencies and checks, each step yielding a materialization per key and a passing
result per check) on the same in-process executor and instance, its console logs as quiet as
the build's. The real definitions are imported only to read that shape, outside every figure.
Compare with a fresh bundled build: `kratom-evidence build --data-dir <empty dir>`
(bench/README.md, Session 26).
"""

import gc
import time
from collections.abc import Iterator

_STARTED = (time.perf_counter(), time.process_time())
gc.disable()  # as the build loads its code (pipelines/build.py, collector_paused)

import dagster as dg  # noqa: E402

from pipelines.lean_instance import lean_instance  # noqa: E402

_IMPORTED = (time.perf_counter(), time.process_time())


def since(mark: tuple[float, float]) -> tuple[float, float]:
    """Wall and CPU seconds since `mark`."""
    return time.perf_counter() - mark[0], time.process_time() - mark[1]


def empty_asset(assets: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """An asset with the keys, dependencies and checks of `assets`, and no work."""
    specs = list(assets.specs)
    checks = list(assets.check_specs)

    # No `from __future__ import annotations` here: Dagster reads this hint at definition time.
    def nothing(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key, metadata={"rows": 1})
        for check in checks:
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    name = assets.node_def.name.replace(".", "_")
    return dg.multi_asset(specs=specs, check_specs=checks, name=name)(nothing)


def main() -> None:
    imported = (_IMPORTED[0] - _STARTED[0], _IMPORTED[1] - _STARTED[1])
    from pipelines import definitions  # the shape only: not timed
    from pipelines.build import QUIET

    mark = (time.perf_counter(), time.process_time())
    mirrored = [a if isinstance(a, dg.AssetSpec) else empty_asset(a) for a in definitions.ASSETS]
    job = dg.Definitions(
        assets=mirrored,
        jobs=[dg.define_asset_job("build", selection=dg.AssetSelection.all())],
        executor=dg.in_process_executor,
    ).resolve_job_def("build")
    defined = since(mark)
    gc.freeze()
    gc.enable()
    mark = (time.perf_counter(), time.process_time())
    with lean_instance() as instance:
        opened = since(mark)
        mark = (time.perf_counter(), time.process_time())
        result = job.execute_in_process(instance=instance, run_config=QUIET)
        ran = since(mark)
    if not result.success:
        raise SystemExit("the empty job failed")
    events = result.all_events
    kinds = [event.event_type_value for event in events]
    print(
        f"steps {len({e.step_key for e in events if e.step_key})}, "
        f"materializations {kinds.count('ASSET_MATERIALIZATION')}, "
        f"check results {kinds.count('ASSET_CHECK_EVALUATION')}, events {len(events)}"
    )
    print(f"{'part':<36}{'wall s':>8}{'CPU s':>8}")
    parts = [
        ("import dagster and lean_instance", imported),
        ("define the empty job", defined),
        ("open the instance", opened),
        ("run the job", ran),
    ]
    parts.append(("total", (sum(p[1][0] for p in parts), sum(p[1][1] for p in parts))))
    for name, (wall, cpu) in parts:
        print(f"{name:<36}{wall:>8.2f}{cpu:>8.2f}")


if __name__ == "__main__":
    main()

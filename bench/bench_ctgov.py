"""ClinicalTrials.gov staging at scale: our streaming path against a naive pandas baseline.

For each size N, `generate_ctgov.write_snapshot` writes N synthetic studies as v2 list pages,
then each method runs in its own subprocess so its peak RSS is its own (read from `os.wait4`):

- `stage_source`: `pipelines.staging.stage_source` into a fresh DuckDB file (ijson stream,
  batched Arrow inserts), i.e. what the staging asset does;
- `json_normalize`: for each page `json.load` then `pandas.json_normalize(page["studies"])`.

Then `kratom-evidence build` runs end to end once on the smallest size, and once more in-process
to read each Dagster step's duration. Prints a table and writes `bench/out/ctgov-<stamp>.json`.
Not a test: run `python bench/bench_ctgov.py [--sizes 10000 100000]`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
METHODS = ("stage_source", "json_normalize")


# --- child side: one measured run per process --------------------------------------------------


def run_stage_source(snapshot_dir: Path, work: Path) -> int:
    """Stage the snapshot's clinicaltrials folder into a fresh DuckDB file; studies staged."""
    import duckdb

    from pipelines.staging import stage_source
    from pipelines.warehouse import ensure_schemas

    con = duckdb.connect(str(work / "bench.duckdb"))
    ensure_schemas(con)
    stats = stage_source(con, snapshot_dir, "clinicaltrials")
    con.close()
    return stats.staged


def run_json_normalize(snapshot_dir: Path, work: Path) -> int:
    """Naive baseline: load each page whole and flatten its studies with pandas."""
    import pandas as pd

    count = 0
    for path in sorted((snapshot_dir / "clinicaltrials").glob("*.json")):
        with path.open("rb") as handle:
            page = json.load(handle)
        count += len(pd.json_normalize(page["studies"]))
    return count


def run_build_steps(snapshot_dir: Path, work: Path) -> dict[str, Any]:
    """The build job in-process, as `kratom-evidence build` runs it, with each step's duration."""
    import dagster as dg

    from pipelines.build import run_config
    from pipelines.definitions import build_job
    from pipelines.release.publish import DataDir

    config = run_config(snapshot_dir, DataDir(work / "data"), None, "2026-11-25T00:00:00Z")
    result = build_job().execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=True,
        run_config={**config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    steps = {
        event.step_key: round(event.event_specific_data.duration_ms / 1000, 2)
        for event in result.all_events
        if event.is_step_success
    }
    return dict(sorted(steps.items(), key=lambda item: -item[1]))


_IMPORTS = {
    "stage_source": ("duckdb", "pipelines.staging", "pipelines.warehouse"),
    "json_normalize": ("pandas",),
    "build_steps": ("dagster", "pipelines.definitions"),
}
"""Modules each method imports, loaded before the clock starts: we time work, not imports."""


def child(method: str, snapshot_dir: Path) -> None:
    """Run one method, print one JSON line: count (or step times) and seconds."""
    runs = {
        "stage_source": run_stage_source,
        "json_normalize": run_json_normalize,
        "build_steps": run_build_steps,
    }
    for module in _IMPORTS[method]:
        importlib.import_module(module)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        outcome = runs[method](snapshot_dir, Path(tmp))
        seconds = time.perf_counter() - started
    print(json.dumps({"result": outcome, "seconds": seconds}))


# --- parent side ------------------------------------------------------------------------------


def measured(argv: list[str]) -> tuple[str, float, float]:
    """Run argv to completion: (stdout, wall seconds, peak RSS MiB of that process alone)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{argv[:4]} failed:\n{err.read().decode()[-2000:]}")
        return out.read().decode(), seconds, usage.ru_maxrss / 1024  # KiB on Linux


def run_method(method: str, snapshot_dir: Path) -> dict[str, Any]:
    """One method in a fresh interpreter; its own count, seconds and peak RSS."""
    stdout, _, peak = measured(
        [sys.executable, __file__, "--child", method, "--snapshot", str(snapshot_dir)]
    )
    report = json.loads(stdout.strip().splitlines()[-1])
    return {"result": report["result"], "seconds": report["seconds"], "peak_rss_mib": peak}


def run_cli_build(snapshot_dir: Path) -> dict[str, Any]:
    """`kratom-evidence build` end to end into a fresh data dir: wall seconds and peak RSS."""
    cli = shutil.which("kratom-evidence", path=str(Path(sys.executable).parent))
    if cli is None:
        raise SystemExit("kratom-evidence is not installed in this interpreter's environment")
    with tempfile.TemporaryDirectory() as tmp:
        _, seconds, peak = measured(
            [cli, "build", "--snapshot", str(snapshot_dir), "--data-dir", tmp]
        )
    return {"seconds": seconds, "peak_rss_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-build", action="store_true", help="skip the end-to-end build")
    parser.add_argument("--child", choices=(*METHODS, "build_steps"), help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.snapshot)
        return

    sys.path.insert(0, str(BENCH_DIR))
    from generate_ctgov import write_snapshot

    OUT_DIR.mkdir(exist_ok=True)
    rows = []
    build: dict[str, Any] = {}
    header = f"{'method':<16}{'N':>9}{'seconds':>10}{'studies/s':>11}{'peak RSS MiB':>14}"
    print(header)
    for size in sorted(args.sizes):
        snapshot_dir = OUT_DIR / f"ctgov-{size}"
        write_snapshot(snapshot_dir, size, args.seed)
        for method in METHODS:
            run = run_method(method, snapshot_dir)
            if run["result"] != size:
                raise SystemExit(f"{method} read {run['result']} studies, not {size}")
            row = {"method": method, "studies": size} | run
            row["studies_per_second"] = size / run["seconds"]
            rows.append(row)
            print(
                f"{method:<16}{size:>9}{run['seconds']:>10.2f}"
                f"{row['studies_per_second']:>11.0f}{run['peak_rss_mib']:>14.1f}",
                flush=True,
            )
        if not args.no_build and not build:
            cli = run_cli_build(snapshot_dir)
            steps = run_method("build_steps", snapshot_dir)
            build = {"studies": size, "cli": cli, "in_process": steps}
            print(
                f"{'build (CLI)':<16}{size:>9}{cli['seconds']:>10.2f}"
                f"{size / cli['seconds']:>11.0f}{cli['peak_rss_mib']:>14.1f}",
                flush=True,
            )
    if build:
        steps = build["in_process"]
        print(
            f"build in-process: {steps['seconds']:.2f} s, of which steps' own compute "
            f"{sum(steps['result'].values()):.2f} s over {len(steps['result'])} steps"
        )
        print("slowest build steps (s):")
        for step, seconds in list(build["in_process"]["result"].items())[:8]:
            print(f"  {step:<40}{seconds:>8.2f}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "created_at": stamp,
        "seed": args.seed,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "runs": rows,
        "build": build,
    }
    path = OUT_DIR / f"ctgov-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results: {path}")


if __name__ == "__main__":
    main()

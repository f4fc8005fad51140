"""ClinicalTrials.gov at scale: the build end to end against a naive flatten, on the same pages.

For each size N a generator writes N studies as v2 list pages of 1000 (`generate_realshape`:
byte copies of the real v2 bodies in ../shared/samples/ctgov under new NCT9 ids, the default;
`generate_ctgov`: studies drawn from the bundled snapshot's shapes, `--shape synthetic`). Then
each method runs in its own process, so its peak RSS is its own (`os.wait4`, as
`/usr/bin/time -v` reads it):

- `naive`: per page `json.load`, `pandas.json_normalize` into four tables (studies, conditions,
  interventions, outcomes), Parquet out; no validation;
- `stage_source`: `pipelines.staging.stage_source` into a fresh DuckDB file with the
  warehouse's DuckDB settings, staging alone;
- `build`: `kratom-evidence build` end to end (staging, curation, checks, publish) into a fresh
  data dir.

With `--input zip` the studies are written as the registry's bulk download instead (one ZIP,
one study per member, `generate_realshape.write_archive`) and read in place by `stage_source`
and `build`; `--workers N` builds with N processes (`build --workers`: the archive staged in N
parts at once). `make bench` runs the 20 000 pages with all three methods (the ratio build /
naive), then the build of 20 000, 200 000 and 560 000 studies from a ZIP as a user runs it,
one process, each step's time and memory listed (an archive generated before is reused).
Where `/usr/bin/time` is installed the build runs under `/usr/bin/time -v`, and its maximum
RSS, user and system seconds and elapsed time are printed below the build's line.

Prints one line per method (wall and CPU seconds, studies per wall and per CPU second, peak
RSS, all of its whole process), under `naive` and `stage_source` the same of their work alone
(imports and the interpreter's exit left out), and the ratio build / naive, and writes
`bench/out/ctgov-<stamp>.json`. Peak RSS is the largest of the process and the children it
waited for (what `/usr/bin/time -v` prints), not their sum: with `--workers` the parts run side
by side, so add theirs. The build runs as a user runs it (no DAGSTER_HOME); its `--step-times`
file gives the wall time outside every step, printed under the build's line, and with `--steps`
every step's duration. `--profile` then runs the same command again under cProfile
(`bench/out/profile-ctgov-<shape>-<N>.pstats`, top functions printed).
Not a test: `python bench/bench_ctgov.py [--sizes 20000 200000]`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"


# --- child side: one measured run per process --------------------------------------------------


def run_stage_source(snapshot_dir: Path, work: Path) -> int:
    """Stage the snapshot's clinicaltrials folder into a fresh DuckDB file with the warehouse's
    DuckDB settings (its memory limit above all), as the build stages; studies staged."""
    import duckdb

    from pipelines.resources import WarehouseResource
    from pipelines.staging import stage_source
    from pipelines.warehouse import ensure_schemas

    database = work / "bench.duckdb"
    con = duckdb.connect(str(database), config=WarehouseResource(database=str(database)).settings())
    ensure_schemas(con)
    stats = stage_source(con, snapshot_dir, "clinicaltrials")
    con.close()
    return stats.staged


NAIVE_TABLES = {
    "conditions": (("conditionsModule", "conditions"),),
    "interventions": (("armsInterventionsModule", "interventions"),),
    "outcomes": (
        ("outcomesModule", "primaryOutcomes"),
        ("outcomesModule", "secondaryOutcomes"),
        ("outcomesModule", "otherOutcomes"),
    ),
}
"""The naive baseline's child tables: the protocolSection lists each one flattens."""


def run_naive(snapshot_dir: Path, work: Path) -> int:
    """Naive baseline: per page `json.load`, `pandas.json_normalize` into studies, conditions,
    interventions and outcomes, each written to Parquet; no validation, no classification."""
    import pandas as pd

    out = work / "naive"
    for table in ("studies", *NAIVE_TABLES):
        (out / table).mkdir(parents=True)
    count = 0
    for path in sorted((snapshot_dir / "clinicaltrials").glob("*.json")):
        with path.open("rb") as handle:
            studies = json.load(handle)["studies"]
        frames = {"studies": pd.json_normalize(studies)}
        for table, lists in NAIVE_TABLES.items():
            parts = []
            for module, key in lists:
                having = [
                    {"nct_id": s["protocolSection"]["identificationModule"]["nctId"], key: items}
                    for s in studies
                    if (items := s["protocolSection"].get(module, {}).get(key))
                ]
                parts.append(
                    pd.json_normalize(having, record_path=key, meta="nct_id")
                    .rename(columns={0: "value"})
                    .assign(list=key)
                )
            frames[table] = pd.concat(parts, ignore_index=True)
        for table, frame in frames.items():
            frame.to_parquet(out / table / f"{path.stem}.parquet")
        count += len(studies)
    return count


_IMPORTS = {
    "stage_source": ("duckdb", "pipelines.resources", "pipelines.staging", "pipelines.warehouse"),
    "naive": ("pandas", "pyarrow.parquet"),
}
"""Modules each method imports, loaded before the clock starts: we time work, not imports."""

_RUNS = {"stage_source": run_stage_source, "naive": run_naive}


def child(method: str, snapshot_dir: Path) -> None:
    """Run one method, print one JSON line: count (or step times) and seconds."""
    for module in _IMPORTS[method]:
        importlib.import_module(module)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        cpu_started = time.process_time()  # every thread of this process: DuckDB's too
        outcome = _RUNS[method](snapshot_dir, Path(tmp))
        cpu_seconds = time.process_time() - cpu_started
        seconds = time.perf_counter() - started
    print(json.dumps({"result": outcome, "seconds": seconds, "cpu_seconds": cpu_seconds}))


# --- parent side ------------------------------------------------------------------------------


def measured(
    argv: list[str], sample_s: float = 0.0, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run argv to completion: stdout, wall and CPU seconds, peak RSS MiB of that process (the
    largest of it and the children it waited for: `/usr/bin/time -v`'s figure). With
    `sample_s`, the resident set of its whole process tree is also read from /proc every
    `sample_s` seconds (parts running side by side add up; `ru_maxrss` cannot say that).
    Interrupted (Ctrl-C, SIGINT), the run is ended and what it reached is returned, marked
    `interrupted`: a whole-registry build may outlast the time one has."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started_at = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
        sampler = TreeSampler(process.pid, sample_s) if sample_s > 0 else None
        interrupted = False
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except KeyboardInterrupt:
            interrupted = True
            os.killpg(process.pid, signal.SIGTERM)  # the build and the workers it started
            _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        ended_at = time.time()
        samples = sampler.stop() if sampler else []
        if interrupted:
            status = 0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{argv[:4]} failed:\n{err.read().decode()[-2000:]}")
        out.seek(0)
        err.seek(0)
        run = {
            "stdout": out.read().decode(),
            "stderr_tail": err.read().decode(errors="replace")[-4000:],
            "wall_s": seconds,
            "started_at": started_at,
            "ended_at": ended_at,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        }
        if sampler:
            run["tree_peak_rss_mib"] = max((s["tree_kib"] for s in samples), default=0) / 1024
            run["tree_peak_pss_mib"] = max((s["tree_pss_kib"] for s in samples), default=0) / 1024
            run["tree_cpu_s"] = max((s["tree_cpu_s"] for s in samples), default=0.0)
            run["process_peak_mib"] = max((s["largest_hwm_kib"] for s in samples), default=0) / 1024
            run["samples"] = samples
        if interrupted:
            run["interrupted"] = True
        return run


class TreeSampler:
    """Reads the resident set of a process and its descendants every `interval` seconds, in a
    thread, until stopped: one sample per read (unix time, summed VmRSS and Pss in KiB, the
    largest one process's VmRSS and VmHWM, processes, the root's VmHWM, the tree's CPU seconds
    so far). The largest VmHWM is the peak `/usr/bin/time -v` misses: the staging runs'
    processes are the forkserver's children, which the build never waits for (a run's growth
    in its last `interval` before it ends is missed here).
    Pss counts a page shared by several processes (the workers forked with the same libraries
    loaded) once in all; VmRSS counts it in each.

    CPU seconds are each process's own user + system time, the last read of every process
    seen, summed: `wait4` (and `/usr/bin/time`) count a descendant only when its parent waited
    for it, and the build's step processes are children of multiprocessing's forkserver,
    which the build never waits for, so its parts' CPU is missing from that figure. A process
    that starts and ends between two reads is missed here instead (each a second or less)."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[dict[str, Any]] = []
        self.cpu: dict[int, float] = {}
        """Each process's own CPU seconds, as last read."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            tree = _descendants(self.pid)
            sizes = {pid: _status_kib(pid) for pid in tree}
            for pid in tree:
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), _own_cpu_s(pid))
            self.samples.append(
                {
                    "t": time.time(),
                    "tree_kib": sum(v.get("VmRSS", 0) for v in sizes.values()),
                    "tree_pss_kib": sum(v.get("Pss", 0) for v in sizes.values()),
                    "largest_kib": max((v.get("VmRSS", 0) for v in sizes.values()), default=0),
                    "largest_hwm_kib": max((v.get("VmHWM", 0) for v in sizes.values()), default=0),
                    "processes": len(tree),
                    "root_hwm_kib": sizes.get(self.pid, {}).get("VmHWM", 0),
                    "tree_cpu_s": sum(self.cpu.values()),
                }
            )


def _own_cpu_s(pid: int) -> float:
    """A process's own user + system CPU seconds (not its children's); 0 when it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    """`root` and every process below it, from the parent ids in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _status_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM and Pss of a process in KiB (empty when it has ended)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        lines += Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    return {
        name: int(value.split()[0])
        for name, _, value in (line.partition(":") for line in lines)
        if name in ("VmRSS", "VmHWM", "Pss")
    }


def read_steps(path: Path) -> list[dict[str, Any]]:
    """Each step of the build's runs with its start, end and the warnings it logged (a
    curated builder run again after running out of memory), from the file the build wrote
    (`kratom-evidence build --step-times`), in order of start."""
    runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
    steps = [
        {
            "step": key,
            "start": step["start"],
            "end": step.get("end", step["start"]),
            "warnings": step.get("warnings", []),
        }
        for run in runs
        for key, step in run["steps"].items()
        if "start" in step
    ]
    return sorted(steps, key=lambda step: step["start"])


def outside_steps(steps: list[dict[str, Any]], started_at: float, ended_at: float) -> dict:
    """Where the build's wall time went outside every step: before the first step started
    (interpreter, imports, fingerprint, Dagster's instance and run), between steps (none
    running) and after the last ended (the run's end, the summary, the process's exit);
    `steps_s` is the time at least one step ran."""
    busy, gaps, reached = 0.0, 0.0, steps[0]["start"]
    for step in steps:
        if step["start"] > reached:
            gaps += step["start"] - reached
        busy += max(0.0, step["end"] - max(step["start"], reached))
        reached = max(reached, step["end"])
    return {
        "steps_s": busy,
        "before_s": steps[0]["start"] - started_at,
        "between_s": gaps,
        "after_s": ended_at - reached,
    }


def step_peaks(samples: list[dict[str, Any]], steps: list[dict[str, Any]]) -> list[dict]:
    """The largest sampled memory of the process tree (Pss) and of one process in it (VmRSS:
    the build process itself while a step runs in it) while each step ran; largest first."""
    peaks = []
    for step in steps:
        during = [s for s in samples if step["start"] <= s["t"] <= step["end"]]
        if during:
            peaks.append(
                {
                    "step": step["step"],
                    "seconds": round(step["end"] - step["start"], 1),
                    "peak_mib": max(s["tree_pss_kib"] for s in during) / 1024,
                    "process_mib": max(s.get("largest_kib", 0) for s in during) / 1024,
                }
            )
    return sorted(peaks, key=lambda peak: -peak["peak_mib"])


def run_method(method: str, snapshot_dir: Path) -> dict[str, Any]:
    """One method in a fresh interpreter: its own result, wall and CPU seconds, peak RSS (the
    process's, its imports and exit included), and the wall and CPU seconds of its work alone
    (`work_s`, `work_cpu_s`)."""
    run = measured([sys.executable, __file__, "--child", method, "--snapshot", str(snapshot_dir)])
    if run.get("interrupted"):
        raise SystemExit(f"{method}: interrupted")
    report = json.loads(run.pop("stdout").strip().splitlines()[-1])
    return run | {
        "result": report["result"],
        "work_s": report["seconds"],
        "work_cpu_s": report["cpu_seconds"],
    }


def run_cli_build(
    snapshot_dir: Path,
    workers: int | None = None,
    sample_s: float = 0.0,
    keep: Path | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """`kratom-evidence build` end to end into a fresh data dir (beside the snapshot: a
    whole-registry build writes gigabytes, more than a small /tmp may hold), or into
    `keep`/<snapshot name>, kept for a look at its warehouse afterwards. It runs as a user
    runs it (no DAGSTER_HOME: Dagster's throwaway in-memory instance); its `--step-times`
    file gives each step's start and end, so that each step gets the largest resident set
    sampled while it ran and the wall time outside the steps is known. With `profile`, the
    same command runs under cProfile (stats written there): slower, for the profile only."""
    cli = shutil.which("kratom-evidence", path=str(Path(sys.executable).parent))
    if cli is None:
        raise SystemExit("kratom-evidence is not installed in this interpreter's environment")
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        data = keep / snapshot_dir.name if keep else Path(tmp) / "data"
        if data.exists():
            raise SystemExit(f"{data} exists: the build must start from an empty data dir")
        times = Path(tmp) / "steps.json"
        argv = [cli, "build", "--snapshot", str(snapshot_dir), "--data-dir", str(data)]
        argv += ["--step-times", str(times)]
        if profile is not None:
            argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *argv]
        if TIME_V.is_file():
            argv = [str(TIME_V), "-v", *argv]
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        given = [] if workers is None else ["--workers", str(workers)]
        run = measured([*argv, *given], sample_s, env)
        if times.is_file():
            steps = read_steps(times)
            run["step_spans"] = steps
            run["outside_steps"] = outside_steps(steps, run["started_at"], run["ended_at"])
            run["steps"] = step_peaks(run.get("samples", []), steps)
    if TIME_V.is_file() and not run.get("interrupted"):
        run["time_v"] = time_v_figures(run["stderr_tail"])
    del run["stdout"], run["stderr_tail"]
    return run


TIME_V = Path("/usr/bin/time")
"""GNU time: the build runs under `/usr/bin/time -v` when it is installed, so each build
reports the figures the issue asks for from that tool too (the same `wait4` as `peak RSS`)."""

_TIME_V_FIELDS = {
    "Maximum resident set size (kbytes)": "max_rss_kib",
    "User time (seconds)": "user_s",
    "System time (seconds)": "system_s",
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "elapsed",
}


def time_v_figures(stderr: str) -> dict[str, Any]:
    """Max RSS, user and system seconds and elapsed wall time from `/usr/bin/time -v`'s report."""
    found: dict[str, Any] = {}
    for text in stderr.splitlines():
        name, _, value = text.strip().rpartition(": ")
        if name in _TIME_V_FIELDS:
            found[_TIME_V_FIELDS[name]] = value if name.startswith("Elapsed") else float(value)
    return found


def write_snapshot(shape: str, out: Path, size: int, seed: int, archive: bool = False) -> None:
    """N studies of the chosen shape as v2 pages, or with `archive` as one bulk ZIP (real
    shape only); the generators live beside this script."""
    sys.path.insert(0, str(BENCH_DIR))
    if archive:
        if shape != "real":
            raise SystemExit("--input zip needs --shape real")
        from generate_realshape import write_archive

        write_archive(out, size)
    elif shape == "real":
        from generate_realshape import write_snapshot as write_real

        write_real(out, size)
    else:
        from generate_ctgov import write_snapshot as write_synthetic

        write_synthetic(out, size, seed)


def line(method: str, size: int, run: dict[str, Any]) -> str:
    tree = run.get("tree_peak_pss_mib")
    return (
        f"{method:<14}{size:>9}{run['wall_s']:>9.2f}{run['cpu_s']:>9.2f}"
        f"{size / run['wall_s']:>10.0f}{size / run['cpu_s']:>10.0f}{run['peak_rss_mib']:>11.1f}"
        + (f"{tree:>11.1f}" if tree is not None else f"{'':>11}")
        + f"{run['load_average'][1][0]:>7.1f}"
        + ("  interrupted: not finished" if run.get("interrupted") else "")
    )


def work_line(size: int, run: dict[str, Any]) -> str:
    """A method's work alone: the line above is its whole process, imports and exit included
    (`stage_source` imports Dagster through the resources; bench/README.md, Session 26)."""
    return (
        f"its work alone (no imports, no exit): {run['work_s']:.2f} s wall, "
        f"{run['work_cpu_s']:.2f} CPU s, {size / run['work_cpu_s']:.0f} studies per CPU s"
    )


def print_top(pstats_path: str, count: int = 25) -> None:
    """The profile's functions by own time, then by cumulative time."""
    stats = pstats.Stats(pstats_path)
    stats.sort_stats("tottime").print_stats(count)
    stats.sort_stats("cumulative").print_stats(count)


HEADER = (
    f"{'method':<14}{'N':>9}{'wall s':>9}{'CPU s':>9}{'/wall s':>10}{'/CPU s':>10}{'RSS MiB':>11}"
    f"{'tree MiB':>11}{'load':>7}"
)
"""RSS MiB: the peak of the process or of one child it waited for (`/usr/bin/time -v`); tree
MiB: the largest sampled Pss summed over the build's process tree (parts running side by side,
shared pages counted once); load: the 1-minute load average when the method ended."""


def bench_size(
    snapshot_dir: Path,
    size: int,
    methods: list[str],
    workers: int | None = None,
    sample_s: float = 0.0,
    keep: Path | None = None,
    steps_listed: bool = False,
) -> list[dict[str, Any]]:
    """Each method once on the snapshot, printed as it ends, then the ratio build / naive;
    with `steps_listed`, every step of the build with its duration."""
    runs: dict[str, dict[str, Any]] = {}
    for method in methods:
        load_before = os.getloadavg()
        if method == "build":
            run = run_cli_build(snapshot_dir, workers, sample_s, keep) | {"workers": workers}
        else:
            run = run_method(method, snapshot_dir)
            if run["result"] != size:
                raise SystemExit(f"{method} read {run['result']} studies, not {size}")
        runs[method] = run | {"load_average": [load_before, os.getloadavg()]}
        print(line(method, size, runs[method]), flush=True)
        if "work_cpu_s" in run:
            print(f"    {work_line(size, run)}", flush=True)
        if "tree_cpu_s" in run:
            print(
                f"    process tree: CPU {run['tree_cpu_s']:.1f} s (every process's own, sampled; "
                f"CPU s above is wait4's), peak Pss {run['tree_peak_pss_mib']:.1f} MiB, "
                f"largest peak of one process {run['process_peak_mib']:.1f} MiB (VmHWM, "
                "sampled; RSS MiB above is wait4's)",
                flush=True,
            )
        if "time_v" in run:
            figures = run["time_v"]
            print(
                f"    /usr/bin/time -v: max RSS {figures.get('max_rss_kib', 0) / 1024:.1f} MiB, "
                f"user {figures.get('user_s', 0):.1f} s + system {figures.get('system_s', 0):.1f}"
                f" s, elapsed {figures.get('elapsed', '?')}",
                flush=True,
            )
        if "outside_steps" in run:
            out = run["outside_steps"]
            print(
                f"    steps ran {out['steps_s']:.2f} s of {run['wall_s']:.2f} s wall; outside "
                f"them {run['wall_s'] - out['steps_s']:.2f} s: before the first "
                f"{out['before_s']:.2f}, between {out['between_s']:.2f}, after the last "
                f"{out['after_s']:.2f}",
                flush=True,
            )
        for step in run.get("step_spans", []):
            for warning in step["warnings"]:
                print(f"    warning in {step['step']}: {warning}", flush=True)
        for step in run.get("steps", [])[:5]:
            print(
                f"    peak {step['peak_mib']:>8.1f} MiB (one process {step['process_mib']:.1f}) "
                f"during {step['step']} ({step['seconds']} s)"
            )
        if steps_listed and "step_spans" in run:
            for step in sorted(run["step_spans"], key=lambda s: s["start"] - s["end"]):
                print(f"    {step['step']:<48}{step['end'] - step['start']:>8.2f} s")
        if run.get("interrupted"):
            break
    rows = [{"method": method, "studies": size} | run for method, run in runs.items()]
    if "build" in runs and "naive" in runs and not runs["build"].get("interrupted"):
        ratio = runs["build"]["wall_s"] / runs["naive"]["wall_s"]
        rows.append({"method": "ratio build/naive", "studies": size, "wall": ratio})
        print(f"ratio build / naive (wall) at N={size}: {ratio:.2f}", flush=True)
    return rows


def summary(rows: list[dict[str, Any]], commit: str) -> str:
    """Every figure of this invocation again, at the end, with the commit it measured."""
    lines = [f"summary (commit {commit}, input as above):", HEADER]
    for row in rows:
        if "wall_s" in row:
            lines.append(line(row["method"], row["studies"], row))
            if "work_cpu_s" in row:
                lines.append(f"    {work_line(row['studies'], row)}")
        else:
            lines.append(f"ratio build / naive (wall) at N={row['studies']}: {row['wall']:.2f}")
    return "\n".join(lines)


def _git(*args: str) -> str:
    """What a git command run on this checkout prints, stripped."""
    return subprocess.run(
        ["git", "-C", str(BENCH_DIR), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def commit_id() -> str:
    """The checked-out commit (with `+` when the work tree has changes), or `unknown`."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def build_profile(snapshot_dir: Path, size: int, workers: int | None) -> dict[str, Any]:
    """`kratom-evidence build` again, under cProfile (its main process), top functions printed;
    the stats go to bench/out/profile-<snapshot>.pstats."""
    path = OUT_DIR / f"profile-{snapshot_dir.name}.pstats"
    run = run_cli_build(snapshot_dir, workers, profile=path)
    print(f"build under cProfile N={size}: {run['wall_s']:.2f} s wall, {run['cpu_s']:.2f} CPU s")
    print_top(str(path))
    return run | {"pstats": str(path)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    parser.add_argument("--shape", choices=("real", "synthetic"), default="real")
    parser.add_argument("--seed", type=int, default=0, help="synthetic shape only")
    parser.add_argument("--methods", nargs="*", default=["naive", "stage_source", "build"])
    parser.add_argument("--input", choices=("pages", "zip"), default="pages")
    parser.add_argument(
        "--workers", type=int, default=None, help="build --workers (default: the build's own)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep a snapshot generated by an earlier run"
    )
    parser.add_argument(
        "--sample",
        type=float,
        default=2.0,
        help="seconds between samples of the build's process tree RSS (0: none)",
    )
    parser.add_argument(
        "--keep-data",
        type=Path,
        help="build into KEEP_DATA/<snapshot name> and keep it (default: a temporary folder)",
    )
    parser.add_argument("--steps", action="store_true", help="every build step's duration")
    parser.add_argument(
        "--profile", action="store_true", help="then the build again, under cProfile"
    )
    parser.add_argument("--child", choices=tuple(_RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.snapshot)
        return

    OUT_DIR.mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    archive = args.input == "zip"
    if archive and "naive" in args.methods:
        raise SystemExit("the naive baseline reads pages: leave it out with --input zip")
    print(f"input: {args.input}, build workers: {args.workers}")
    print(HEADER)
    for size in sorted(args.sizes):
        snapshot_dir = OUT_DIR / f"ctgov-{args.shape}-{args.input}-{size}"
        if not (args.reuse and (snapshot_dir / "SNAPSHOT.json").is_file()):
            write_snapshot(args.shape, snapshot_dir, size, args.seed, archive)
        rows += bench_size(
            snapshot_dir,
            size,
            args.methods,
            args.workers,
            args.sample,
            args.keep_data,
            args.steps,
        )
        if any(row.get("interrupted") for row in rows):
            break
        if args.profile:
            details[f"build_profile-{size}"] = build_profile(snapshot_dir, size, args.workers)
    commit = commit_id()
    print(summary(rows, commit))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "created_at": stamp,
        "commit": commit,
        "workers": args.workers,
        "shape": args.shape,
        "input": args.input,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average": os.getloadavg(),
        "runs": rows,
        "build_detail": details,
    }
    path = OUT_DIR / f"ctgov-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"results: {path}")


if __name__ == "__main__":
    main()

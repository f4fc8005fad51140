"""Where staging's memory goes: DuckDB's own count against the process's RSS, sampled.

    .venv/bin/python bench/bench_staging_memory.py bench/out/ctgov-real-pages-20000
    .venv/bin/python bench/bench_staging_memory.py bench/out/ctgov-real-pages-200000
    DUCKDB_JE_MALLOC_CONF=dirty_decay_ms:100,muzzy_decay_ms:100 \\
        .venv/bin/python bench/bench_staging_memory.py bench/out/ctgov-real-pages-200000

Stages the snapshot's ClinicalTrials.gov folder (`pipelines.staging.stage_source`) into a fresh
DuckDB file with the warehouse's settings (its `memory_limit`, the allocator's background
threads), while a thread samples every `--every` seconds the process's VmRSS, DuckDB's memory
by tag (`duckdb_memory()`, on a cursor of its own) and glibc's heap (`mallinfo2`). It prints the
percentiles of the RSS, of DuckDB's count and of the rest (RSS less DuckDB's count: the
interpreter, glibc's heap, and pages DuckDB's allocator freed but has not given back), and
the samples at the peak. `DUCKDB_JE_MALLOC_CONF` sets the allocator's options (jemalloc, as
DuckDB builds it on Linux) for the run.
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from pipelines.deployment import DEFAULT_MEMORY_LIMIT
from pipelines.staging import stage_source
from pipelines.warehouse import ensure_schemas


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo2


def _glibc_heap_mib() -> int:
    """Bytes glibc's malloc holds for the process (its arenas and mapped blocks), in MiB."""
    info = _LIBC.mallinfo2()
    return int(info.arena + info.hblkhd) >> 20


def _rss_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    raise RuntimeError("no VmRSS in /proc/self/status")


Sample = tuple[float, int, int, int, dict[str, int]]
"""Seconds since the start, RSS, DuckDB's count, glibc's heap (MiB), DuckDB's MiB by tag."""


def _sampled(con: duckdb.DuckDBPyConnection, every: float, stop: threading.Event) -> list[Sample]:
    samples: list[Sample] = []
    cursor = con.cursor()
    start = time.perf_counter()
    while not stop.is_set():
        tags = {
            str(tag): int(size) >> 20
            for tag, size in cursor.execute(
                "SELECT tag, memory_usage_bytes FROM duckdb_memory() "
                "WHERE memory_usage_bytes >= 1048576"
            ).fetchall()
        }
        samples.append(
            (
                time.perf_counter() - start,
                _rss_mib(),
                sum(tags.values()),
                _glibc_heap_mib(),
                tags,
            )
        )
        stop.wait(every)
    return samples


def _percentiles(values: list[int]) -> str:
    ordered = sorted(values)
    return " / ".join(str(ordered[int(q * (len(ordered) - 1))]) for q in (0.5, 0.9, 0.99, 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", type=Path, help="a snapshot folder (bench_ctgov.py's inputs)")
    parser.add_argument("--memory-limit", default=DEFAULT_MEMORY_LIMIT)
    parser.add_argument("--every", type=float, default=0.05, help="seconds between samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        con = duckdb.connect(str(Path(work) / "bench.duckdb"))
        con.execute("SET memory_limit = ?", [args.memory_limit])
        con.execute("SET allocator_background_threads = true")
        ensure_schemas(con)
        stop = threading.Event()
        samples: list[Sample] = []
        sampler = threading.Thread(target=lambda: samples.extend(_sampled(con, args.every, stop)))
        sampler.start()
        cpu = time.process_time()
        try:
            staged = stage_source(con, args.snapshot, "clinicaltrials").staged
        finally:
            stop.set()
            sampler.join()
        cpu = time.process_time() - cpu
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(f"{staged} studies staged, {cpu:.1f} CPU s, peak RSS {peak} MiB, {len(samples)} samples")
    print("MiB at p50 / p90 / p99 / max:")
    print(f"  RSS                     {_percentiles([s[1] for s in samples])}")
    print(f"  DuckDB's count          {_percentiles([s[2] for s in samples])}")
    print(f"  RSS less DuckDB's count {_percentiles([s[1] - s[2] for s in samples])}")
    print(f"  glibc's heap            {_percentiles([s[3] for s in samples])}")
    print("the highest samples (s, RSS, DuckDB's count, glibc's heap, DuckDB's by tag):")
    for when, rss, counted, heap, tags in sorted(samples, key=lambda s: -s[1])[:5]:
        print(f"  {when:7.2f} {rss:5d} {counted:5d} {heap:4d} {tags}")


if __name__ == "__main__":
    main()

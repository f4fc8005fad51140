"""The release step alone (`release__published`) on a built warehouse, in its own process.

    kratom-evidence build --snapshot bench/out/ctgov-real-20000 --data-dir bench/out/d20k
    .venv/bin/python bench/bench_release.py bench/out/d20k bench/out/ctgov-real-20000
    .venv/bin/python bench/bench_release.py bench/out/d20k bench/out/ctgov-real-20000 --copies 10

It publishes the warehouse's curated tables and quarantine into a fresh data dir (the Parquet
files, history, documentation and DuckLake snapshot of a first release) and prints wall and CPU
seconds and the peak RSS of that process (`os.wait4`, as `/usr/bin/time -v` reports it), the
imports loaded before the clock starts. `--copies K` first writes a scaled warehouse beside
the bench's output: every row whose key names a study of the generated range (NCT9...) is
there K times, the copies' ids made unique (`NCT9` becomes `NCT9<k>` in every text and text
list column), the source counts of ClinicalTrials.gov and every table's rows in multiplied
by K. That is a release
of K times as many real-shape studies without staging and curating them again; its counts are
synthetic, its shapes are the warehouse's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

OUT_DIR = Path(__file__).resolve().parent / "out"
GENERATED = "NCT9"
"""The generators' NCT id prefix (a range the registry has not issued)."""
CLINICALTRIALS = "clinicaltrials"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_sql(con: duckdb.DuckDBPyConnection, table: str, key: list[str], copies: int) -> str:
    """The table with every generated-study row `copies` times, ids unique per copy."""
    columns = con.execute(f"DESCRIBE src.{table}").fetchall()
    names = [str(c[0]) for c in columns]
    picked = [c for c in key if c in names] or (["record_key"] if "record_key" in names else [])
    if not picked:
        return f"SELECT * FROM src.{table}"
    marker = f"contains(concat_ws('|', {', '.join(_quote(c) for c in picked)}), '{GENERATED}')"
    parts = [f"SELECT * FROM src.{table}"]
    for k in range(copies - 1):
        moved = f"'{GENERATED}{k}'"
        select = []
        for name, kind, *_ in columns:
            column = _quote(str(name))
            if kind == "VARCHAR":
                select.append(f"replace({column}, '{GENERATED}', {moved}) AS {column}")
            elif kind == "VARCHAR[]":
                lifted = f"list_transform({column}, x -> replace(x, '{GENERATED}', {moved}))"
                select.append(f"{lifted} AS {column}")
            else:
                select.append(column)
        parts.append(f"SELECT {', '.join(select)} FROM src.{table} WHERE {marker}")
    return " UNION ALL ".join(parts)


def scaled_warehouse(source: Path, target: Path, copies: int) -> None:
    """What the release step reads from `source`, with the generated studies `copies` times."""
    from schemas import TABLES_BY_NAME

    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' "
        "AND (schema_name = 'curated' OR (schema_name = 'staging' "
        "AND (ends_with(table_name, '__quarantine') OR table_name = 'source_stats'))) "
        "ORDER BY ALL"
    ).fetchall()
    for schema in ("curated", "staging"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for schema, table in tables:
        name = f"{schema}.{_quote(table)}"
        spec = TABLES_BY_NAME.get(table) if schema == "curated" else None
        key = list(spec.primary_key) if spec else []
        if table in ("source_stats", "table_stats"):
            sql = f"SELECT * FROM src.{name}"
        else:
            sql = _copy_sql(con, name, key, copies)
        con.execute(f"CREATE TABLE {name} AS {sql}")
    con.execute(
        f"UPDATE staging.source_stats SET records_read = records_read * {copies}, "
        f"staged = staged * {copies}, quarantined = quarantined * {copies}, "
        f"duplicates = duplicates * {copies}, superseded = superseded * {copies} "
        f"WHERE source = '{CLINICALTRIALS}'"
    )
    con.execute(
        f"UPDATE curated.table_stats SET rows_in = rows_in * {copies}, "
        f"rows_rejected = rows_rejected * {copies}"
    )
    con.close()


def child(warehouse: Path, snapshot: Path, memory: str) -> None:
    """Publish from `warehouse` into a fresh data dir; print rows and seconds as JSON."""
    from pipelines.assets.release import publish_release
    from pipelines.release.publish import DataDir

    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        con = duckdb.connect(str(warehouse), read_only=True)
        if memory:
            con.execute(f"SET memory_limit = '{memory}'")
            con.execute(f"SET temp_directory = '{tmp}/warehouse.tmp'")
        started, cpu = time.perf_counter(), time.process_time()
        result = publish_release(
            con.cursor(), snapshot, DataDir(Path(tmp)), "2026-11-25T00:00:00Z", None
        )
        print(
            json.dumps(
                {
                    "seconds": time.perf_counter() - started,
                    "cpu_s": time.process_time() - cpu,
                    "rows": result.rows,
                }
            )
        )


def measured(argv: list[str]) -> dict[str, object]:
    """Run argv: its last stdout line as JSON, wall and CPU seconds, peak RSS MiB."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:3]} failed")
    report = json.loads(out.strip().splitlines()[-1])
    return report | {
        "wall_s": time.perf_counter() - started,
        "process_cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a built data dir (its warehouse.duckdb)")
    parser.add_argument("snapshot", type=Path, help="the snapshot it was built from")
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep and reuse a scaled warehouse")
    parser.add_argument(
        "--warehouse-memory",
        default="",
        help="DuckDB memory_limit of the warehouse connection (default: DuckDB's own)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    if args.child:
        child(args.child, args.snapshot, args.warehouse_memory)
        return
    warehouse = args.data_dir / "warehouse.duckdb"
    if args.copies > 1:
        scaled = OUT_DIR / f"{args.data_dir.name}-x{args.copies}.duckdb"
        if not (args.reuse and scaled.exists()):
            started = time.perf_counter()
            scaled_warehouse(warehouse, scaled, args.copies)
            print(f"scaled warehouse x{args.copies}: {time.perf_counter() - started:.1f} s")
        warehouse = scaled
    argv = [sys.executable, __file__, str(args.data_dir), str(args.snapshot)]
    memory = ["--warehouse-memory", args.warehouse_memory]
    run = measured([*argv, *memory, "--child", str(warehouse)])
    rows = run["rows"]
    assert isinstance(rows, dict)
    studies = rows.get("studies", 0)
    print(
        f"release step, {studies} studies, {sum(rows.values())} rows: wall {run['wall_s']:.1f} s, "
        f"step CPU {run['cpu_s']:.1f} s (process {run['process_cpu_s']:.1f} s), "
        f"peak RSS {run['peak_rss_mib']:.1f} MiB, load average {os.getloadavg()[0]:.1f}"
    )
    if args.copies > 1 and not args.reuse:
        warehouse.unlink()


if __name__ == "__main__":
    main()

"""Staging against its floor: what parsing the pages alone and writing the staged rows alone cost.

    .venv/bin/python bench/bench_staging_floor.py bench/out/ctgov-real-pages-20000

Issue 15 asks staging for 5 000 real-shape studies per CPU second. Whatever the flattening
costs, staging cannot do better than the two steps every design of it keeps: parsing the pages
(DuckDB's `from_json` with the structure staging reads, in the groups staging reads them in),
and writing the staged rows into the warehouse. This measures, in one process and one after
the other:

1. `stage_source` into a fresh DuckDB file with the warehouse's settings, as the build stages;
2. the parse alone: the same `from_json` over the same groups of pages, unnested into a
   throwaway table, nothing else;
3. the write alone: every table step 1 staged, held in memory first, copied into a fresh DuckDB
   file (DuckDB's own compression, as staging writes it), then the same rows to Parquet
   (snappy) for a design that staged into files instead.

It prints each step's CPU seconds (`time.process_time`: every thread of this process, DuckDB's
included) and studies per CPU second, and the ceiling the parse and the write leave: studies /
(parse + write), with no flattening at all.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson

from pipelines import setwise
from pipelines.resources import WarehouseResource
from pipelines.sources import SOURCES
from pipelines.staging import stage_source
from pipelines.warehouse import ensure_schemas

SOURCE = "clinicaltrials"
_T = TypeVar("_T")


def cpu_timed(work: Callable[[], _T]) -> tuple[_T, float]:
    """What `work` returns, and the CPU seconds of every thread of this process while it ran."""
    started = time.process_time()
    result = work()
    return result, time.process_time() - started


def page_groups(folder: Path) -> Iterator[list[Path]]:
    """The source's page files in the groups staging parses at once (`setwise.GROUP_BYTES`)."""
    group: list[Path] = []
    size = 0
    for path in sorted(folder.glob("*.json")):
        if group and size + path.stat().st_size > setwise.GROUP_BYTES:
            yield group
            group, size = [], 0
        group.append(path)
        size += path.stat().st_size
    if group:
        yield group


def parse_alone(con: duckdb.DuckDBPyConnection, folder: Path) -> int:
    """Every page parsed with staging's structure and unnested to one row per study."""
    spec = SOURCES[SOURCE].setwise
    assert spec is not None
    structure = setwise.merge_structures([part.structure for part in spec.parts])
    page = orjson.dumps({spec.page_list: [structure]}).decode()
    studies = 0
    for group in page_groups(folder):
        con.execute(
            f"""CREATE OR REPLACE TABLE parsed AS SELECT unnest(l) AS doc FROM (
                SELECT from_json(content, '{page}').{spec.page_list} AS l FROM read_text(?))""",
            [[str(path) for path in group]],
        )
        (count,) = con.execute("SELECT count(*) FROM parsed").fetchone()  # type: ignore[misc]
        studies += count
    return studies


def staged_tables(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    """The source's staging tables in an attached database."""
    return [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
            "AND schema_name = 'staging' AND starts_with(table_name, ?) ORDER BY table_name",
            [database, f"{SOURCE}__"],
        ).fetchall()
    ]


def write_alone(staged: Path, work: Path, settings: dict[str, Any]) -> tuple[float, float]:
    """CPU seconds to write every staged table, held in memory, into a fresh DuckDB file
    (checkpointed), then to Parquet files."""
    con = duckdb.connect(str(work / "written.duckdb"), config=settings)
    con.execute(f"ATTACH '{staged}' AS staged (READ_ONLY)")
    con.execute("ATTACH ':memory:' AS held")
    names = staged_tables(con, "staged")
    for name in names:
        con.execute(f"CREATE TABLE held.{name} AS SELECT * FROM staged.staging.{name}")

    def into_duckdb() -> None:
        con.execute("BEGIN")
        for name in names:
            con.execute(f"CREATE TABLE main.{name} AS SELECT * FROM held.{name}")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")

    def into_parquet() -> None:
        for name in names:
            target = work / f"{name}.parquet"
            con.execute(f"COPY held.{name} TO '{target}' (FORMAT parquet, COMPRESSION snappy)")

    _, duckdb_s = cpu_timed(into_duckdb)
    _, parquet_s = cpu_timed(into_parquet)
    con.close()
    return duckdb_s, parquet_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path, help="a snapshot folder of ClinicalTrials pages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        staged = work / "staged.duckdb"
        settings = WarehouseResource(database=str(staged)).settings()
        con = duckdb.connect(str(staged), config=settings)
        ensure_schemas(con)
        stats, stage_s = cpu_timed(lambda: stage_source(con, args.snapshot, SOURCE))
        con.close()
        studies = stats.staged
        parsing = duckdb.connect(config=settings)
        parsed, parse_s = cpu_timed(lambda: parse_alone(parsing, args.snapshot / SOURCE))
        parsing.close()
        if parsed != studies:
            raise SystemExit(f"the parse read {parsed} studies, staging {studies}")
        duckdb_s, parquet_s = write_alone(staged, work, settings)
    rows = [
        ("stage_source (the build's staging)", stage_s),
        ("parse alone (from_json, unnest)", parse_s),
        ("write alone into DuckDB", duckdb_s),
        ("write alone into Parquet (snappy)", parquet_s),
        ("ceiling: parse + DuckDB write", parse_s + duckdb_s),
        ("ceiling: parse + Parquet write", parse_s + parquet_s),
    ]
    print(f"{studies} studies from {args.snapshot}")
    print(f"{'step':<40}{'CPU s':>9}{'studies / CPU s':>18}")
    for name, seconds in rows:
        print(f"{name:<40}{seconds:>9.2f}{studies / seconds:>18.0f}")


if __name__ == "__main__":
    main()

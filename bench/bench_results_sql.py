"""The results side of ClinicalTrials.gov staging, Python per row against DuckDB SQL per batch.

Both produce the same staged rows (tests/unit/test_clinicaltrials_results_sql.py) from the same
studies: Python with `clinicaltrials._results` + `clinicaltrials_results.parse_results` per study
and the `StagingSink` into DuckDB tables; SQL with `clinicaltrials_results_sql`'s statements over a
`ct_docs` relation of BATCH page files, each written to a table. Making `ct_docs` (read_text +
from_json of the results fields) is the staging framework's step and is reported on its own. CPU
seconds (`time.process_time`, DuckDB on one thread), so a busy machine changes the wall time,
not the figures.

Run `python bench/bench_results_sql.py DIR [--batch PAGES]` on a folder
`bench/generate_realshape.py` wrote.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import duckdb

from pipelines.sources import clinicaltrials as ct
from pipelines.sources import clinicaltrials_results as cr
from pipelines.sources import clinicaltrials_results_sql as sql
from pipelines.warehouse import StagingSink


def python_side(pages: list[Path]) -> tuple[int, float, float]:
    """(studies, CPU s parsing, CPU s in the sink) of the per-row path."""
    studies = [s for page in pages for s in ct.iter_records(page)]
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("CREATE SCHEMA staging")
    sink = StagingSink(con, ct.SOURCE)
    parse = 0.0
    start = time.process_time()
    for study in studies:
        before = time.process_time()
        nct = ct.record_key(study) or ""
        outcomes, values = ct._results(nct, study.get("resultsSection") or {})
        rows = {"outcomes": outcomes, "outcome_results": values, **cr.parse_results(nct, study)}
        parse += time.process_time() - before
        for table in sorted(rows):
            sink.add_rows(table, rows[table], "page")
    sink.close()
    return len(studies), parse, time.process_time() - start - parse


def sql_side(pages: list[Path], batch: int) -> tuple[float, dict[str, float], dict[str, int]]:
    """(CPU s making ct_docs, CPU s per statement, rows per table) of the set-wise path."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    sql.register(con)
    for statement in sql.setup_sql():
        con.execute(statement)
    structure = json.dumps({"studies": [sql.RESULTS_STRUCTURE]})
    statements = {**sql.tables_sql(), "problems": sql.problems_sql()}
    docs = 0.0
    cpu = dict.fromkeys(statements, 0.0)
    rows = dict.fromkeys(statements, 0)
    for first in range(0, len(pages), batch):
        files = [str(p) for p in pages[first : first + batch]]
        start = time.process_time()
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ct_docs AS SELECT 'page' AS _source_file, "
            "row_number() OVER () AS _rec, 'NCT' || lpad((row_number() OVER ())::VARCHAR, 8, "
            "'0') AS nct, doc FROM (SELECT unnest(from_json(content, ?).studies) AS doc "
            "FROM read_text(?))",
            [structure, files],
        )
        docs += time.process_time() - start
        for name, query in statements.items():
            start = time.process_time()
            if name == "problems":
                sql.screen(con)
            con.execute(f"CREATE OR REPLACE TEMP TABLE out_{name} AS {query}")
            cpu[name] += time.process_time() - start
            rows[name] += con.execute(f"SELECT count(*) FROM out_{name}").fetchone()[0]  # type: ignore[index]
    return docs, cpu, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path, help="a folder generate_realshape.py wrote")
    parser.add_argument("--batch", type=int, default=1, help="page files per ct_docs batch")
    args = parser.parse_args()
    pages = sorted((args.snapshot / "clinicaltrials").glob("*.json"))
    gc.disable()  # as stage_source runs
    studies, parse, sink = python_side(pages)
    docs, cpu, rows = sql_side(pages, args.batch)
    total = sum(cpu.values())
    per_k = 1000 / studies
    print(f"{studies} real-shape studies, {len(pages)} page files, batches of {args.batch}")
    print(f"python: parse {parse * per_k:.3f} + sink {sink * per_k:.3f} CPU s per 1000 studies")
    for name in cpu:
        print(f"  sql {name:22s} {rows[name]:9d} rows {cpu[name] * per_k:.3f} CPU s per 1000")
    print(f"sql: {total * per_k:.3f} CPU s per 1000 studies (ct_docs {docs * per_k:.3f} more)")
    print(f"python / sql: {(parse + sink) / total:.2f}")


if __name__ == "__main__":
    main()

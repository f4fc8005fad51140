"""Curated layer: every builder's tables as assets of one step, each table's check inside it.

Lineage comes from each builder's declaration (`pipelines.tables.builds`): a curated table
depends on the staged tables it reads (of every source staging them), on the reference files
it opens (external assets `reference/<file>`), on the curated and working tables it reads, and
on its foreign-key parents (the gate reads their keys). Every curated table is guarded by the
blocking check `pipelines.rules` derives from its model and keys.
"""

from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from graphlib import TopologicalSorter
from pathlib import Path
from typing import cast

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from pipelines import paths, tables
from pipelines.assets.staging import table_key
from pipelines.resources import ReleaseResource
from pipelines.rules import (
    Rows,
    check_spec,
    gate,
    kept_in_place,
    ordered_frame_rows,
    query_rows,
    table_check,
    warehouse_parents,
)
from pipelines.sources import SOURCES
from pipelines.warehouse import (
    duckdb_setting,
    duckdb_threads,
    first_line,
    in_kib,
    size_bytes,
    write_table,
)
from schemas import QUARANTINE, TABLES, TABLES_BY_NAME, TableSpec
from schemas.arrow import arrow_schema, to_arrow
from schemas.working import WORKING_BY_NAME

STATS_TABLE = "curated.table_stats"
BUILDER_THREADS = 2
"""Curated builders run at once, each on a cursor of its own (`run_builders`)."""
BESIDE_ANOTHER_SHARE = 0.6
"""The share of the warehouse's `memory_limit` DuckDB may hold while builders run side by side.
The step holds Python rows, frames and results beside DuckDB (about 250 MiB at 200 000
studies), and DuckDB fills whatever limit it has (its sorts and the gate's copies spill past
it): with the whole limit the step peaked at 890-1 040 MiB at 200 000 studies, with three
quarters at 770-870 (h9c); with 0.6 the step alone peaked at 809-818 MiB against 854-891 at
0.75 for 200 000 studies, and at 696-719 against 774-780 for 20 000, for the same CPU and wall
(bench/README.md, lead session 11). A builder that runs out of it beside another runs again
alone under it, then with the whole limit (`run_builders`)."""


def reference_key(file: str) -> dg.AssetKey:
    """The external asset of a data/reference file: `reference/<file name without .csv>`."""
    return dg.AssetKey(["reference", file.removesuffix(".csv")])


def column_schema(spec: TableSpec) -> dg.TableSchema:
    """Each column's Arrow type, nullability and the description its Pandera field gives."""
    columns = spec.model.to_schema().columns
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                field.name,
                str(field.type),
                description=columns[field.name].description or "",
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in arrow_schema(spec.model)
        ]
    )


def staging_deps(builder: tables.Builder) -> list[dg.AssetKey]:
    """The staged tables the builder reads, of every source that stages them."""
    return [
        table_key(source, table)
        for source, unit in SOURCES.items()
        for table in unit.tables
        if table in builder.staged
    ]


def builder_deps(builder: tables.Builder) -> list[dg.AssetKey]:
    """Everything the builder reads, as asset keys."""
    return [
        *staging_deps(builder),
        *(reference_key(f) for f in builder.reference),
        *(dg.AssetKey(["curated", t]) for t in builder.curated),
    ]


def _rows_in(con: duckdb.DuckDBPyConnection, built: tables.Built, rows: Rows) -> dict[str, int]:
    """Rows in by source: the builder's own count when it merged rows, else its rows' sources."""
    if built.rows_in is not None:
        return built.rows_in
    if built.queries is not None:  # `rows` holds every column of the rows
        counted = con.execute(
            f"SELECT _source, count(*) FROM {rows.relation} WHERE _source IS NOT NULL "
            "GROUP BY _source"
        ).fetchall()
        return {str(source): int(count) for source, count in counted}
    frame = built.frame
    return _count_values(frame["_source"]) if frame is not None and "_source" in frame else {}


def _count_values(column: pd.Series) -> dict[str, int]:
    """Rows per value of a column (a source name), as plain str -> int."""
    return {str(value): int(count) for value, count in column.value_counts().items()}


def _create_stats(con: duckdb.DuckDBPyConnection) -> None:
    """`table_stats`, once before builders run side by side (each then only writes rows)."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATS_TABLE} (table_name VARCHAR, source VARCHAR, "
        "rows_in BIGINT, rows_rejected BIGINT)"
    )


def _record_stats(
    con: duckdb.DuckDBPyConnection, table: str, rows_in: dict[str, int], rejects: pd.DataFrame
) -> None:
    _create_stats(con)
    con.execute(f"DELETE FROM {STATS_TABLE} WHERE table_name = ?", [table])
    rejected = _count_values(rejects["source"]) if not rejects.empty else {}
    for source in sorted(set(rows_in) | set(rejected)):
        con.execute(
            f"INSERT INTO {STATS_TABLE} VALUES (?, ?, ?, ?)",
            [table, source, int(rows_in.get(source, 0)), int(rejected.get(source, 0))],
        )


class TableWriter:
    """Writes a curated table: chunk by chunk in the model's Arrow types, or as the query of
    rows that live in DuckDB, or, when those rows were sorted into its `sorted_table`, by
    making that table the curated one (no copy of its rows)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, spec: TableSpec):
        self._con = con
        self._spec = spec
        self.rows = 0
        self.name = f"curated.{spec.name}"
        self.sorted_table = f"curated._sorted__{spec.name}"
        """Where the gate may sort the table's rows (`rules.sorted_rows`), to be taken whole."""
        write_table(con, self.name, arrow_schema(spec.model).empty_table())

    def append(self, frame: pd.DataFrame) -> None:
        self._con.register("_incoming", to_arrow(frame, self._spec.model))
        try:
            self._con.execute(f"INSERT INTO {self.name} SELECT * FROM _incoming")
        finally:
            self._con.unregister("_incoming")
        self.rows += len(frame)

    def insert(self, select: str, table: str) -> None:
        if table != self.sorted_table:
            (count,) = cast(
                tuple[int], self._con.execute(f"INSERT INTO {self.name} {select}").fetchone()
            )
            self.rows += count
            return
        kept_in_place(self._con, table, self._spec)
        self._con.execute(f"DROP TABLE {self.name}")
        self._con.execute(f"ALTER TABLE {table} RENAME TO {self._spec.name}")
        (self.rows,) = cast(
            tuple[int], self._con.execute(f"SELECT count(*) FROM {self.name}").fetchone()
        )


def _table_metadata(spec: TableSpec, rows: int) -> dict[str, dg.MetadataValue]:
    """What every table asset's materialization carries: its rows and described columns."""
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": dg.MetadataValue.table_schema(column_schema(spec)),
    }


def _specs(builder: tables.Builder) -> list[dg.AssetSpec]:
    spec = TABLES_BY_NAME[builder.table]
    reads = builder_deps(builder)
    parents = [dg.AssetKey(["curated", fk.ref_table]) for fk in spec.foreign_keys]
    deps = sorted(set(reads + parents), key=lambda key: key.to_user_string())
    main = dg.AssetSpec(
        ["curated", spec.name],
        group_name="curated",
        deps=deps,
        kinds={"duckdb", "pandera"},
        description=spec.description,
        metadata={"primary_key": list(spec.primary_key), **_static(spec)},
    )
    working = [
        dg.AssetSpec(
            ["curated", name],
            group_name="curated",
            deps=reads,
            kinds={"duckdb"},
            description=f"{WORKING_BY_NAME[name].description} Written by the {spec.name} "
            "builder; not published.",
            metadata=_static(WORKING_BY_NAME[name]),
        )
        for name in builder.writes
    ]
    return [main, *working]


def _static(spec: TableSpec) -> dict[str, dg.TableSchema]:
    return {"dagster/column_schema": column_schema(spec)}


def build_table(
    con: duckdb.DuckDBPyConnection, builder: tables.Builder, reference_dir: Path
) -> dict[str, dict[str, dg.MetadataValue]]:
    """Run one builder through the gate: its table, its rejects and counts, and its working
    tables written; the metadata of each table it wrote, by name."""
    spec = TABLES_BY_NAME[builder.table]
    built = builder.build(con, reference_dir)
    writer = TableWriter(con, spec)
    try:
        if built.queries is not None:
            rows = query_rows(con, spec, built.queries, writer.sorted_table, built.staged_order)
        else:
            rows = ordered_frame_rows(con, built.frame, spec)
        rows_in = _rows_in(con, built, rows)  # before the gate, which may take the rows' table
        rejects = gate(con, rows, spec, warehouse_parents(spec), writer)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {writer.sorted_table}")
    if built.rejects is not None and not built.rejects.empty:
        rejects = pd.concat([built.rejects, rejects], ignore_index=True)
    write_table(con, f"curated.rejects__{spec.name}", to_arrow(rejects, QUARANTINE.model))
    _record_stats(con, spec.name, rows_in, rejects)
    metadata: dict[str, dict[str, dg.MetadataValue]] = {
        spec.name: {
            **_table_metadata(spec, writer.rows),
            "rows_quarantined": dg.MetadataValue.int(len(rejects)),
        }
    }
    for name in builder.writes:
        metadata[name] = _table_metadata(WORKING_BY_NAME[name], row_count(con, name))
    return metadata


def row_count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Rows of `curated.<name>`."""
    found = con.execute(f"SELECT count(*) FROM curated.{name}").fetchone()
    return int(found[0]) if found else 0


def _reads(builder: tables.Builder) -> tuple[str, ...]:
    """The curated tables a builder's run needs: those it reads and its foreign-key parents."""
    parents = (fk.ref_table for fk in TABLES_BY_NAME[builder.table].foreign_keys)
    return (*builder.curated, *parents)


def needs(builders: list[tables.Builder]) -> dict[str, set[str]]:
    """Each builder's table -> the tables of the builders (among these) it must run after."""
    writer = {name: b.table for b in builders for name in (b.table, *b.writes)}
    return {
        b.table: {writer[t] for t in _reads(b) if writer.get(t, b.table) != b.table}
        for b in builders
    }


def build_order(builders: list[tables.Builder]) -> list[tables.Builder]:
    """The builders, each after the builders of every curated table it needs."""
    by_table = {b.table: b for b in builders}
    return [by_table[table] for table in TopologicalSorter(needs(builders)).static_order()]


def staged_rows(con: duckdb.DuckDBPyConnection, builders: list[tables.Builder]) -> dict[str, int]:
    """Each builder's table -> the rows of the staged tables it reads, of every source, and of
    the staged namesakes of the curated tables it reads (DuckDB's own count of each table, no
    scan): what its run costs grows with them."""
    sizes: dict[str, int] = {}
    for name, size in con.execute(
        "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'staging'"
    ).fetchall():
        table = str(name).rpartition("__")[2]
        sizes[table] = sizes.get(table, 0) + int(size)
    return {b.table: sum(sizes.get(t, 0) for t in {*b.staged, *b.curated}) for b in builders}


def critical_paths(required: dict[str, set[str]], cost: dict[str, int]) -> dict[str, int]:
    """Each table -> its builder's cost plus the costliest chain of builders that wait for it:
    started first, the long chains (studies, outcomes, outcome_results) do not leave one
    thread to finish them alone while the other idles."""
    waiting_for: dict[str, set[str]] = {table: set() for table in required}
    for table, needed in required.items():
        for name in needed:
            waiting_for[name].add(table)
    longest: dict[str, int] = {}
    for table in reversed(list(TopologicalSorter(required).static_order())):
        after = max((longest[t] for t in waiting_for[table]), default=0)
        longest[table] = 1 + cost.get(table, 0) + after
    return longest


BuilderRun = tuple[
    tables.Builder, dict[str, dict[str, dg.MetadataValue]], dg.AssetCheckResult | None
]
"""A builder run: its tables' metadata by name, and its table's check (None: not selected)."""


def share_of(size: str, share: float) -> str:
    """`share` of a size as DuckDB prints a setting (`488.2 MiB`), in whole KiB (DuckDB reads
    a fraction of a MiB back 0.1 MiB short)."""
    return in_kib(int(size_bytes(size) * share))


def _run_builder(
    con: duckdb.DuckDBPyConnection,
    builder: tables.Builder,
    reference_dir: Path,
    check: bool,
    settings: Mapping[str, object] | None = None,
) -> BuilderRun:
    """One builder through the gate, then its table's blocking check, on a cursor of its own;
    with `settings`, DuckDB's for the run (the database's: nothing may run beside it)."""
    with con.cursor() as cursor, ExitStack() as stack:
        for name, value in (settings or {}).items():
            stack.enter_context(duckdb_setting(cursor, name, value))
        metadata = build_table(cursor, builder, reference_dir)
        result = table_check(cursor, TABLES_BY_NAME[builder.table]) if check else None
    return builder, metadata, result


def _alone(limit: str | None) -> dict[str, object]:
    """DuckDB's settings for a builder run alone: every builder thread's DuckDB thread (a sort
    of outcome_results at 200 000 studies ran alone 36 s on one core while the other idled),
    and `limit` as its memory_limit (None: the share it had beside another)."""
    return {"threads": BUILDER_THREADS, **({"memory_limit": limit} if limit else {})}


def run_builders(
    con: duckdb.DuckDBPyConnection,
    builders: list[tables.Builder],
    reference_dir: Path,
    checks: set[str],
) -> Iterator[BuilderRun]:
    """Run `builders` (and the checks of the tables in `checks`), BUILDER_THREADS at a time,
    each as soon as the builders of the tables it reads are done, the one heading the costliest
    chain first (`critical_paths`); yield each when done.

    Two builders at once, each with DuckDB on one thread, take less CPU and wall time than
    one at a time with DuckDB on two (a second DuckDB thread cost 25-35 % more CPU on these
    sorts and inserts; bench/README.md, h5p session 5); DuckDB releases the GIL while a
    statement runs. The two share BESIDE_ANOTHER_SHARE of the warehouse's `memory_limit`: two
    large builders side by side can need more than that, so a builder that runs out of memory
    is run again alone once the others are done, under the same limit, then, out of memory
    again, alone with the whole limit (its tables are all replaced, so a run again starts
    clean); out of memory then, the step fails. Alone under the share, a builder holds what
    two did side by side: the whole limit at once raised the step's peak by about 100 MiB at
    200 000 studies (bench/README.md, lead session 10). While it waits for the running builders
    to end, the next ones start beside them, unless its chain is the longest left (then they
    would only delay it): at 200 000 studies baseline_measures, out of memory beside
    outcome_results, held every other builder back for the 35 s that one still ran. A failed
    check stops new builders; those running finish first.
    """
    required = needs(builders)
    by_table = {b.table: b for b in builders}
    longest = critical_paths(required, staged_rows(con, builders))
    waiting = sorted(required, key=lambda table: (-longest[table], table))
    done: set[str] = set()
    alone: dict[str, str | None] = {}
    """Builders to run alone, each with its limit: None (the share), then the whole."""
    _create_stats(con)
    (whole,) = cast(tuple[str], con.execute("SELECT current_setting('memory_limit')").fetchone())
    with (
        duckdb_threads(con, 1),
        duckdb_setting(con, "memory_limit", share_of(whole, BESIDE_ANOTHER_SHARE)),
        ThreadPoolExecutor(BUILDER_THREADS, thread_name_prefix="builder") as pool,
    ):
        running: dict[Future[BuilderRun], str] = {}
        failed = False
        while waiting or running:
            for table in [t for t in waiting if required[t] <= done] if not failed else []:
                if len(running) == BUILDER_THREADS or alone.keys() & set(running.values()):
                    break  # no free thread, or a builder runs alone: none starts beside it
                if table in alone and running:
                    if longest[table] >= max(longest[t] for t in running.values()):
                        break  # the longest chain left: it runs next, alone
                    continue  # it waits for the running ones; the others go on beside them
                waiting.remove(table)
                future = pool.submit(
                    _run_builder,
                    con,
                    by_table[table],
                    reference_dir,
                    table in checks,
                    _alone(alone[table]) if table in alone else None,
                )
                running[future] = table
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: running[f]):
                table = running.pop(future)
                if _out_of_memory(future) and alone.get(table, "") != whole:
                    where = "alone" if table in alone else "beside another builder"
                    alone[table] = whole if table in alone else None
                    limit = "the whole" if alone[table] else "the same"
                    dg.get_dagster_logger().warning(
                        f"curated builder {table} ran out of DuckDB memory {where}: running "
                        f"it again alone with {limit} memory limit "
                        f"({first_line(future.exception())})"
                    )
                    waiting.insert(0, table)
                    continue
                built = future.result()
                done.add(table)
                failed = failed or (built[2] is not None and not built[2].passed)
                yield built
            if failed and not running:
                return


def _out_of_memory(future: Future[BuilderRun]) -> bool:
    """Whether a finished builder failed for want of DuckDB memory. Not one whose commit did:
    see `setwise.Turns`."""
    return isinstance(future.exception(), duckdb.OutOfMemoryException)


def curated_asset(builders: list[tables.Builder]) -> dg.AssetsDefinition:
    """Every curated table as one step: each builder's table and working tables are assets of
    their own, each table's blocking check runs right after it is written, builders run two
    at a time (`run_builders`), and a subset runs only the builders of the selected tables.
    One step, not one per table and check: the steps' own bookkeeping was a quarter of a
    bundled build (bench/README.md)."""
    ordered = build_order(builders)

    @dg.multi_asset(
        name="curated",
        specs=[s for b in builders for s in _specs(b)],
        check_specs=[check_spec(TABLES_BY_NAME[b.table]) for b in builders],
        can_subset=True,
    )
    def curated_tables(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource, release: ReleaseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        selected = {key.path[-1] for key in context.selected_asset_keys}
        checks = {key.asset_key.path[-1] for key in context.selected_asset_check_keys}
        chosen = [b for b in ordered if selected & {b.table, *b.writes}]
        with warehouse.get_connection() as con:
            for builder, written, check in run_builders(con, chosen, release.reference, checks):
                for name, metadata in written.items():
                    if name in selected:
                        yield dg.MaterializeResult(asset_key=["curated", name], metadata=metadata)
                if check is None:
                    continue
                yield check
                if not check.passed:
                    raise dg.Failure(
                        f"check {check.check_name} failed: the curated tables that need "
                        f"{builder.table} were not built"
                    )

    return curated_tables


def _reference_asset(file: str) -> dg.AssetSpec:
    readers = sorted(b.table for b in tables.BUILDERS.values() if file in b.reference)
    return dg.AssetSpec(
        reference_key(file),
        group_name="reference",
        kinds={"csv"},
        description=f"data/reference/{file}: curated reference rows (each with its source), "
        f"read by the {', '.join(readers)} builder(s).",
        metadata={"path": dg.MetadataValue.path(str(paths.REFERENCE_DIR / file))},
    )


def _builder(spec: TableSpec) -> tables.Builder:
    builder = tables.BUILDERS.get(spec.name)
    if builder is None:
        raise LookupError(
            f"curated table {spec.name} has no builder: register one in pipelines/tables.py "
            "with @builds(...) or staged_as_is(...)"
        )
    return builder


CURATED_ASSETS = [curated_asset([_builder(spec) for spec in TABLES])]
REFERENCE_ASSETS = [
    _reference_asset(f) for f in sorted({f for b in tables.BUILDERS.values() for f in b.reference})
]
CURATED_KEYS = [key for asset in CURATED_ASSETS for key in asset.keys]
"""Every curated and working table's asset key (what the release may read)."""

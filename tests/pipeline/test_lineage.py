"""The graph's lineage is what the builders really read; the catalog describes every table.

The bundled snapshot is materialised once through Dagster (raw → staging → curated); each
builder is then re-run on a warehouse holding only what its asset depends on, and once more
with each of those inputs taken away.
"""

from __future__ import annotations

import csv
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from pipelines import paths, tables
from pipelines.assets import curated
from pipelines.assets.curated import (
    CURATED_ASSETS,
    CURATED_KEYS,
    REFERENCE_ASSETS,
    build_order,
    reference_key,
    staging_deps,
)
from pipelines.assets.raw import RAW_ASSETS
from pipelines.assets.staging import STAGING_ASSETS, table_key, written_tables
from pipelines.definitions import defs
from pipelines.normalize.evidence_tables import publication_references
from pipelines.resources import ReleaseResource, SnapshotResource
from pipelines.sources import SOURCES
from pipelines.warehouse import read_frame
from schemas import QUARANTINE, TABLES, TABLES_BY_NAME
from schemas.working import WORKING_BY_NAME

CHECK_EVALUATION = dg.DagsterEventType.ASSET_CHECK_EVALUATION


@dataclass(frozen=True)
class Materialized:
    warehouse: Path
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    """Raw, staging and curated assets of the bundled snapshot, checks included."""
    data_dir = tmp_path_factory.mktemp("lineage")
    warehouse = data_dir / "warehouse.duckdb"
    result = dg.materialize(
        [*RAW_ASSETS, *REFERENCE_ASSETS, *STAGING_ASSETS, *CURATED_ASSETS],
        resources={
            "snapshot_store": SnapshotResource(path=str(paths.BUNDLED_SNAPSHOT)),
            "warehouse": DuckDBResource(database=str(warehouse)),
            "release": ReleaseResource(data_dir=str(data_dir)),
        },
    )
    assert result.success
    return Materialized(warehouse, result)


def _table_names(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]
    ).fetchall()
    return {name for (name,) in rows}


@dataclass(frozen=True)
class Inputs:
    """What one builder run may see: staging and curated tables, and reference files."""

    staging: frozenset[str]
    curated: frozenset[str]
    reference: frozenset[str]

    def without_reference(self, file: str) -> Inputs:
        return Inputs(self.staging, self.curated, self.reference - {file})


class RecordingConnection:
    """A DuckDB connection that keeps the SQL (and parameters) of every query run through it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.queries: list[tuple[str, list[Any]]] = []

    def execute(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        self.queries.append((sql, list(params or [])))
        return self._con.execute(sql, params or [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def curated_reads(self) -> set[str]:
        """Curated and working tables selected from."""
        return {t for sql, _ in self.queries for t in re.findall(CURATED_READ, sql)}

    def staged_reads(self) -> set[str]:
        """Staged tables looked up (`warehouse.staging_tables` lists every source's `__t`)."""
        return {
            str(params[0]).removeprefix("__")
            for sql, params in self.queries
            if "information_schema.tables" in sql and "'staging'" in sql and params
        }


CURATED_READ = re.compile(r"(?:FROM|JOIN)\s+curated\.(\w+)", re.IGNORECASE)


def declared(builder: tables.Builder) -> Inputs:
    """The inputs the builder's asset depends on (staged tables: `staging/<source>/<table>`)."""
    return Inputs(
        frozenset(f"{key.path[1]}__{key.path[2]}" for key in staging_deps(builder)),
        frozenset(builder.curated),
        frozenset(builder.reference),
    )


@dataclass(frozen=True)
class Outcome:
    frame: pd.DataFrame
    written: dict[str, pd.DataFrame]
    curated_reads: set[str]
    staged_reads: set[str]


def run_builder(
    builder: tables.Builder, full: Path, inputs: Inputs | None, workdir: Path
) -> Outcome:
    """Run a builder on a copy of the full warehouse, or on one holding only `inputs`."""
    workdir.mkdir(parents=True)
    reference = workdir / "reference"
    if inputs is None:
        shutil.copy(full, workdir / "w.duckdb")
        shutil.copytree(paths.REFERENCE_DIR, reference)
    else:
        reference.mkdir()
        for file in inputs.reference:
            shutil.copy(paths.REFERENCE_DIR / file, reference / file)
    con = duckdb.connect(str(workdir / "w.duckdb"))
    try:
        if inputs is not None:
            _copy_inputs(con, full, inputs)
        before = _table_names(con, "curated")
        recording = RecordingConnection(con)
        built = builder.build(cast(duckdb.DuckDBPyConnection, recording), reference)
        new = _table_names(con, "curated") - before
        assert inputs is None or new == set(builder.writes), (builder.table, new)
        written = {w: read_frame(con, f"SELECT * FROM curated.{w}") for w in builder.writes}
        frame = built.frame if built.queries is None else queried_frame(con, built.queries)
    finally:
        con.close()
    # A builder reads the tables its returned queries select from too (the gate runs them).
    handed = {t for sql in built.queries or [] for t in re.findall(CURATED_READ, sql)}
    return Outcome(frame, written, recording.curated_reads() | handed, recording.staged_reads())


def queried_frame(con: duckdb.DuckDBPyConnection, queries: list[str]) -> pd.DataFrame:
    """The rows of the queries a builder hands the gate to read in place."""
    union = " UNION ALL BY NAME ".join(f"({q})" for q in queries)
    return read_frame(con, f"SELECT * FROM ({union}) ORDER BY ALL") if queries else pd.DataFrame()


def _copy_inputs(con: duckdb.DuckDBPyConnection, full: Path, inputs: Inputs) -> None:
    con.execute(f"ATTACH '{full}' AS src (READ_ONLY)")
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE SCHEMA curated")
    present = {
        (schema, name)
        for schema, name in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = 'src'"
        ).fetchall()
    }
    for schema, names in (("staging", inputs.staging), ("curated", inputs.curated)):
        for name in sorted(names):
            if (schema, name) in present:
                con.execute(
                    f'CREATE TABLE {schema}."{name}" AS SELECT * FROM src.{schema}."{name}"'
                )
    con.execute("DETACH src")


def _same(left: Outcome, right: Outcome) -> bool:
    try:
        pd.testing.assert_frame_equal(left.frame, right.frame)
        for name, frame in left.written.items():
            pd.testing.assert_frame_equal(frame, right.written[name])
    except AssertionError:
        return False
    return True


BUILDERS = sorted(tables.BUILDERS)


MASKED = {("publications", "study_publication_links.csv")}
"""Declared files the bundled data cannot show to be needed, each checked to still be masked."""


def links_stub_only_evidence_papers(publications: pd.DataFrame) -> bool:
    """The links file's only mark on publications is a stub for a linked paper no literature
    source returned; when every such stub is also an evidence-file paper, the builder stubs the
    same papers without the links file, so the bundled data cannot show the file is needed."""
    reference = paths.REFERENCE_DIR
    with open(reference / "study_publication_links.csv", newline="", encoding="utf-8") as handle:
        linked = {f"PMID:{row['pmid']}" for row in csv.DictReader(handle)}
    stubs = set(publications.loc[publications["is_stub"].astype(bool), "publication_id"])
    evidence = {form for paper in publication_references(reference) for form in paper.forms}
    return (linked & stubs) <= evidence


@pytest.mark.parametrize("table", BUILDERS)
def test_builder_reads_exactly_what_it_declares(
    table: str, materialized: Materialized, tmp_path: Path
) -> None:
    """The tables it selects are the declared ones; a warehouse and reference folder holding
    only the declared inputs give the same result; each declared reference file is needed."""
    builder = tables.BUILDERS[table]
    inputs = declared(builder)
    full = run_builder(builder, materialized.warehouse, None, tmp_path / "full")
    assert full.curated_reads == set(builder.curated)
    assert full.staged_reads == set(builder.staged)
    only = run_builder(builder, materialized.warehouse, inputs, tmp_path / "declared")
    assert _same(full, only), f"{table} reads something its declaration does not name"
    for file in builder.reference:
        if (table, file) in MASKED:
            assert links_stub_only_evidence_papers(full.frame), f"{file} is not masked in {table}"
            continue
        workdir = tmp_path / f"without-{file}"
        try:
            less = run_builder(
                builder, materialized.warehouse, inputs.without_reference(file), workdir
            )
        except FileNotFoundError:
            continue
        assert not _same(full, less), f"{table} declares {file} but does not need it"


def test_sources_stage_only_the_tables_they_declare(materialized: Materialized) -> None:
    con = duckdb.connect(str(materialized.warehouse), read_only=True)
    try:
        staged = _table_names(con, "staging")
    finally:
        con.close()
    for source, unit in SOURCES.items():
        written = {n.removeprefix(f"{source}__") for n in staged if n.startswith(f"{source}__")}
        assert written or not (paths.BUNDLED_SNAPSHOT / source).is_dir(), source
        assert written - {"quarantine"} <= set(unit.tables), source


def test_curated_assets_depend_on_exactly_what_their_builders_declare() -> None:
    graph = defs.resolve_asset_graph()
    for builder in tables.BUILDERS.values():
        spec = TABLES_BY_NAME[builder.table]
        expected = {
            *staging_deps(builder),
            *(reference_key(f) for f in builder.reference),
            *(dg.AssetKey(["curated", t]) for t in builder.curated),
            *(dg.AssetKey(["curated", fk.ref_table]) for fk in spec.foreign_keys),
        }
        assert graph.get(dg.AssetKey(["curated", builder.table])).parent_keys == expected
        for written in builder.writes:
            assert dg.AssetKey(["curated", written]) in graph.get_all_asset_keys()


def test_every_staged_table_is_an_asset_with_its_described_columns_and_rows(
    materialized: Materialized,
) -> None:
    """Each table a source's staging step writes is an asset of its own with the table's
    columns (each described) and rows; one it did not write has 0 rows and no columns; the
    source's quarantine asset accounts for every record read."""
    events = materialized.result.get_asset_materialization_events()
    by_key = {e.asset_key: e.materialization.metadata for e in events}
    con = duckdb.connect(str(materialized.warehouse), read_only=True)
    try:
        staged = _table_names(con, "staging") - {"source_stats"}
        for source, unit in SOURCES.items():
            for table in written_tables(unit):
                metadata = by_key[table_key(source, table)]
                name = f"{source}__{table}"
                if name not in staged:
                    assert metadata["dagster/row_count"].value == 0, name
                    assert "dagster/column_schema" not in metadata, name
                    continue
                columns = con.execute(f'SELECT * FROM staging."{name}" LIMIT 0').description
                schema = metadata["dagster/column_schema"].value
                assert [c.name for c in schema.columns] == [c[0] for c in columns], name
                assert all(c.description for c in schema.columns), name
                (count,) = con.execute(f'SELECT count(*) FROM staging."{name}"').fetchone() or (0,)
                assert metadata["dagster/row_count"].value == count, name
            own = {n.removeprefix(f"{source}__") for n in staged if n.startswith(f"{source}__")}
            assert own <= set(written_tables(unit)), source
            books = by_key[table_key(source, QUARANTINE.name)]
            assert books["records_read"].value == sum(
                books[k].value
                for k in (
                    "records_staged",
                    "records_quarantined",
                    "exact_duplicates",
                    "records_superseded",
                )
            ), source
    finally:
        con.close()


def test_every_table_materialization_has_described_columns_and_a_row_count(
    materialized: Materialized,
) -> None:
    events = materialized.result.get_asset_materialization_events()
    by_key = {e.asset_key: e.materialization.metadata for e in events}
    table_keys = [key for asset in CURATED_ASSETS for key in asset.keys]
    assert len(table_keys) == len(TABLES) + len(WORKING_BY_NAME)
    con = duckdb.connect(str(materialized.warehouse), read_only=True)
    try:
        for key in table_keys:
            name = key.path[-1]
            spec = TABLES_BY_NAME.get(name) or WORKING_BY_NAME[name]
            metadata = by_key[key]
            schema = metadata["dagster/column_schema"].value
            fields = spec.model.to_schema().columns
            assert [c.name for c in schema.columns] == list(fields), key
            for column in schema.columns:
                assert column.description == fields[column.name].description
                assert column.description, (key, column.name)
            (rows,) = con.execute(f"SELECT count(*) FROM curated.{name}").fetchone() or (None,)
            assert metadata["dagster/row_count"].value == rows, key
            columns = read_frame(con, f"SELECT * FROM curated.{name} LIMIT 0").columns
            assert list(columns) == list(fields), key
    finally:
        con.close()


def test_the_curated_step_runs_each_builder_after_the_tables_it_needs() -> None:
    ordered = [b.table for b in build_order(list(tables.BUILDERS.values()))]
    assert sorted(ordered) == sorted(tables.BUILDERS)
    written_by = {w: b.table for b in tables.BUILDERS.values() for w in (b.table, *b.writes)}
    for builder in tables.BUILDERS.values():
        spec = TABLES_BY_NAME[builder.table]
        needed = {*builder.curated, *(fk.ref_table for fk in spec.foreign_keys)}
        for table in needed - {builder.table, *builder.writes}:
            assert ordered.index(written_by[table]) < ordered.index(builder.table), table


def test_the_curated_step_and_checks_of_the_whole_layer_in_one_step(
    materialized: Materialized,
) -> None:
    """Every curated table and working table shows its own materialization, every table its
    check's evaluation, all from the one curated step."""
    result = materialized.result
    curated = {k for a in CURATED_ASSETS for k in a.keys}
    events = [e for e in result.all_events if e.step_key == "curated"]
    assert {e.asset_key for e in events if e.is_step_materialization} == curated
    checks = [e.event_specific_data for e in events if e.event_type == CHECK_EVALUATION]
    assert sorted(c.check_name for c in checks) == sorted(
        f"{spec.name}_matches_schema" for spec in TABLES
    )
    assert all(c.passed for c in checks)


def test_a_subset_of_the_curated_step_builds_only_the_selected_tables(
    materialized: Materialized, tmp_path: Path
) -> None:
    """Materializing one curated table (as from the UI) runs its builder and its check only,
    on the warehouse of an earlier run."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(materialized.warehouse, warehouse)
    compounds = dg.AssetKey(["curated", "compounds"])
    result = dg.materialize(
        [*RAW_ASSETS, *REFERENCE_ASSETS, *STAGING_ASSETS, *CURATED_ASSETS],
        selection=[compounds],
        resources={
            "snapshot_store": SnapshotResource(path=str(paths.BUNDLED_SNAPSHOT)),
            "warehouse": DuckDBResource(database=str(warehouse)),
            "release": ReleaseResource(data_dir=str(tmp_path)),
        },
    )
    assert result.success
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [compounds]
    checks = [e.event_specific_data for e in result.all_events if e.event_type == CHECK_EVALUATION]
    assert [c.check_name for c in checks] == ["compounds_matches_schema"]
    assert [e.step_key for e in result.all_events if e.is_step_start] == ["curated"]


def _curated_run(
    warehouse: Path, tmp_path: Path
) -> tuple[dg.ExecuteInProcessResult, list[tuple[str, str, float, float]]]:
    """The curated step on a copy of `warehouse`; every builder's (table, thread, start, end)."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    runs: list[tuple[str, str, float, float]] = []
    build = curated.build_table

    def timed(con: duckdb.DuckDBPyConnection, builder: tables.Builder, reference: Path) -> Any:
        start = time.monotonic()
        metadata = build(con, builder, reference)
        runs.append((builder.table, threading.current_thread().name, start, time.monotonic()))
        return metadata

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(curated, "build_table", timed)
        result = dg.materialize(
            [*RAW_ASSETS, *REFERENCE_ASSETS, *STAGING_ASSETS, *CURATED_ASSETS],
            selection=CURATED_KEYS,
            resources={
                "snapshot_store": SnapshotResource(path=str(paths.BUNDLED_SNAPSHOT)),
                "warehouse": DuckDBResource(database=str(copy)),
                "release": ReleaseResource(data_dir=str(tmp_path)),
            },
        )
    return result, runs


def test_the_curated_builders_run_two_at_a_time_each_after_those_it_needs(
    materialized: Materialized, tmp_path: Path
) -> None:
    result, runs = _curated_run(materialized.warehouse, tmp_path)
    assert result.success
    assert sorted(table for table, *_ in runs) == sorted(tables.BUILDERS)
    ended = {table: end for table, _, _, end in runs}
    needs = curated.needs(list(tables.BUILDERS.values()))
    for table, _, start, _ in runs:
        for needed in needs[table]:
            assert start >= ended[needed], (table, needed)
    assert len({thread for _, thread, _, _ in runs}) == curated.BUILDER_THREADS
    overlapping = [
        (a, b) for a, _, s1, e1 in runs for b, _, s2, e2 in runs if a < b and s1 < e2 and s2 < e1
    ]
    assert overlapping  # two builders did run at once
    with duckdb.connect(str(materialized.warehouse), read_only=True) as con:
        rows = curated.staged_rows(con, list(tables.BUILDERS.values()))
        staged = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'staging' "
                "AND ends_with(table_name, '__study_identifiers')"
            ).fetchall()
        ]
        counts = [con.execute(f"SELECT count(*) FROM staging.{t}").fetchone() for t in staged]
    builder = tables.BUILDERS["study_identifiers"]
    assert builder.staged == ("study_identifiers",) and not builder.curated
    assert len(staged) > 1  # registered in two sources: both count
    assert rows["study_identifiers"] == sum(c[0] for c in counts if c) > 0
    longest = curated.critical_paths(needs, rows)
    heading = max((t for t in longest if not needs[t]), key=lambda t: (longest[t], t))
    assert heading in {table for table, *_ in sorted(runs, key=lambda run: run[2])[:2]}


def test_the_builder_heading_the_costliest_chain_goes_first() -> None:
    required = {"a": set(), "b": {"a"}, "c": set(), "d": {"b"}, "e": {"a", "c"}}
    cost = {"a": 1, "b": 10, "c": 50, "d": 100, "e": 5}
    assert curated.critical_paths(required, cost) == {
        "d": 101,
        "b": 112,
        "e": 6,
        "c": 57,
        "a": 114,
    }

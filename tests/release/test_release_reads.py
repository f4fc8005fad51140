"""The release step reads the warehouse's tables under a small memory limit, then lets go of what
DuckDB cached of them.

DuckDB keeps the blocks a scan read until its `memory_limit` needs the room; in the release
step the files being written and then the publish session's DuckDB (a limit of its own) fill
next to it, so both added up: at 200 000 studies 202 MiB of cached warehouse blocks
(bench/README.md, h8r, h9c). Real DuckDB files, real streams."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import paths
from pipelines.assets import release
from pipelines.assets.release import READING_LIMIT, Reads, evict_cache, publish_release, streamed
from pipelines.release.publish import DataDir
from schemas import TABLES_BY_NAME
from tests.conftest import CREATED_AT

LIMIT = "512MB"
ROWS = 2_000_000


def cached_mib(con: duckdb.DuckDBPyConnection) -> float:
    """What the database holds of its tables' blocks (DuckDB's own accounting), MiB."""
    found = con.execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
    ).fetchone()
    return int(found[0] if found else 0) / 2**20


def limit(con: duckdb.DuckDBPyConnection) -> str:
    found = con.execute("SELECT current_setting('memory_limit')").fetchone()
    return str(found[0] if found else "")


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A warehouse file of two million rows, opened read-only at the build's limit."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"CREATE TABLE t AS SELECT range AS id, 'study ' || range AS title FROM range({ROWS})"
        )
    con = duckdb.connect(str(path), read_only=True)
    con.execute(f"SET memory_limit = '{LIMIT}'")
    yield con
    con.close()


def test_cache_kept_until_the_last_stream_ends(warehouse: duckdb.DuckDBPyConnection) -> None:
    before = limit(warehouse)
    reads = Reads(warehouse)
    first, second = (streamed(warehouse, "SELECT * FROM t", reads=reads) for _ in range(2))
    assert sum(batch.num_rows for batch in first()) == ROWS
    assert cached_mib(warehouse) > 5  # DuckDB keeps what it read, one stream still to come
    assert sum(batch.num_rows for batch in second()) == ROWS
    assert cached_mib(warehouse) < 1  # at most what the evicting limit (1MB) leaves
    assert limit(warehouse).startswith(before[:4])  # put back (as DuckDB prints it: "488.")


def test_evict_cache_keeps_the_limit_when_memory_is_held(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    """Memory DuckDB cannot evict (a temporary table, with nowhere to spill it): DuckDB
    raises, having set the lower limit; the limit is put back all the same."""
    warehouse.execute("SET temp_directory = ''")
    holder = warehouse.cursor()
    holder.execute(f"CREATE TEMP TABLE held AS SELECT range, 'x' || range AS s FROM range({ROWS})")
    before = limit(warehouse)
    evict_cache(warehouse)
    assert limit(warehouse).startswith(before[:4])
    holder.close()


def test_publish_release_lets_go_of_the_warehouse_cache(
    bundled_build: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copy(bundled_build / "warehouse.duckdb", tmp_path / "warehouse.duckdb"))
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute(f"SET memory_limit = '{LIMIT}'")
        result = publish_release(
            con, paths.BUNDLED_SNAPSHOT, DataDir(tmp_path / "data"), CREATED_AT, None
        )
        assert result.version is not None
        assert result.rows["studies"] > 0
        assert cached_mib(con) < 1
        for name in result.rows:
            if name in TABLES_BY_NAME:
                con.execute(f"SELECT * FROM curated.{name}").to_arrow_table()
        assert cached_mib(con) > 3  # what the same reads leave (and the release left before)
    finally:
        con.close()


def test_the_release_reads_the_warehouse_under_the_reading_limit(
    bundled_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = Path(shutil.copy(bundled_build / "warehouse.duckdb", tmp_path / "warehouse.duckdb"))
    con = duckdb.connect(str(path), read_only=True)
    read_under: list[str] = []
    publish_tables = release.publish_tables

    def publish(*args: Any) -> Any:
        read_under.append(limit(con))
        return publish_tables(*args)

    monkeypatch.setattr(release, "publish_tables", publish)
    try:
        con.execute(f"SET memory_limit = '{LIMIT}'")
        before = limit(con)
        publish_release(con, paths.BUNDLED_SNAPSHOT, DataDir(tmp_path / "data"), CREATED_AT, None)
        with duckdb.connect(config={"memory_limit": READING_LIMIT}) as other:
            assert read_under == [limit(other)]
        assert limit(con).startswith(before[:4])  # put back (as DuckDB prints it: "488.")
    finally:
        con.close()

"""How a release's tables enter the DuckLake catalog: linked where they lie, else copied later.

A release file under a local data path is registered as it is (a hard link in its table's
folder, `ducklake_add_data_files`), not decoded and encoded again; a table the catalog must
copy (an empty file, an object store, another file system) is left to the caller, which copies
it once the record history no longer shares the publish session's memory (bench/README.md,
h7r: the copy beside the history ran out of memory at 200 000 studies).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipelines.release import catalog


def _lake(folder: Path) -> catalog.LakeLocation:
    """A new local catalog's place (its folder made, as the publish step makes it)."""
    (folder / "lake").mkdir()
    return catalog.LakeLocation.in_folder(folder / "lake")


def _file(folder: Path, name: str, rows: int) -> Path:
    path = folder / f"{name}.parquet"
    duckdb.execute(
        f"COPY (SELECT range AS n, 'row ' || range AS label FROM range({rows})) "
        f"TO '{path}' (FORMAT parquet)"
    )
    return path


def test_local_files_are_linked_and_the_rest_left_to_copy_after(tmp_path: Path) -> None:
    files = {"full": _file(tmp_path, "full", 3), "empty": _file(tmp_path, "empty", 0)}
    location = _lake(tmp_path)
    con = catalog.connect(location)
    try:
        snapshot_id, left = catalog.begin_release(con, files, location.data_path)
        assert left == {"empty": files["empty"]}
        catalog.add_tables(con, left, location.data_path)
        catalog.commit_release(con, snapshot_id, "2026.11.25", "now", {}, {})
        (linked,) = catalog.table_files(con, ["full"])
        assert os.path.samefile(linked, files["full"])  # one file, two names
        assert catalog.table_files(con, ["empty"]) == []
        assert con.execute("SELECT sum(n), count(*) FROM lake.full").fetchone() == (3, 3)
        assert con.execute("SELECT count(*) FROM lake.empty").fetchone() == (0,)
    finally:
        con.close()
    files["full"].unlink()  # the release folder's name goes; the catalog's stays
    con = catalog.connect(location, read_only=True)
    try:
        assert con.execute("SELECT max(label) FROM lake.full").fetchone() == ("row 2",)
    finally:
        con.close()


def test_an_object_store_leaves_every_table_to_copy(tmp_path: Path) -> None:
    files = {"full": _file(tmp_path, "full", 3)}
    location = _lake(tmp_path)
    con = catalog.connect(location)
    try:
        _, left = catalog.begin_release(con, files, "s3://bucket/files/")
        con.execute("ROLLBACK")
    finally:
        con.close()
    assert left == files
    assert not (tmp_path / "lake" / "files" / catalog.SCHEMA_FOLDER).exists()

"""The DuckLake catalog in a real PostgreSQL server: two releases published, both read back.

The test starts Debian's PostgreSQL 15 on a free loopback port (the server refuses to run as
root, so it runs as `postgres`) and stops it at the end. It skips only on a machine without
the binaries, never in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipelines import paths
from pipelines.release.catalog import postgres_catalog
from tests.release._snapshots import run_cli, study_counts, variant_snapshot
from tests.release.conftest import ObjectStore

PG_BIN = Path("/usr/lib/postgresql/15/bin")
BASE = "2026.11.25"


def test_postgres_url_becomes_a_ducklake_catalog_string() -> None:
    assert postgres_catalog("postgresql://ana:s%40cret@db.example:6543/lake") == (
        "ducklake:postgres:dbname=lake host=db.example port=6543 user=ana password=s@cret"
    )
    assert postgres_catalog("postgres://127.0.0.1/lake") == (
        "ducklake:postgres:dbname=lake host=127.0.0.1"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: str) -> None:
    runner = ["su", "postgres", "-c", command] if os.geteuid() == 0 else ["sh", "-c", command]
    done = subprocess.run(runner, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: {done.stdout} {done.stderr}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A running PostgreSQL server with an empty `lake` database; yields its URL."""
    if not (PG_BIN / "pg_ctl").exists():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL binaries missing under {PG_BIN} in CI")
        pytest.skip(f"PostgreSQL binaries missing under {PG_BIN}")
    # Not under pytest's tmp folder: the `postgres` user cannot enter root's private folders.
    root = Path(tempfile.mkdtemp(prefix="kratom-evidence-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    port = _free_port()
    data = root / "data"
    _as_postgres(f"{PG_BIN}/initdb -A trust -U postgres -D {data}")
    options = f"-p {port} -h 127.0.0.1 -k {root}"
    _as_postgres(f"{PG_BIN}/pg_ctl -D {data} -o '{options}' -l {root}/server.log -w start")
    try:
        _as_postgres(f"{PG_BIN}/createdb -h 127.0.0.1 -p {port} -U postgres lake")
        yield f"postgresql://postgres@127.0.0.1:{port}/lake"
    finally:
        _as_postgres(f"{PG_BIN}/pg_ctl -D {data} -m fast -w stop")
        shutil.rmtree(root)


def test_two_releases_in_postgres_read_back_with_time_travel(
    postgres: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(tmp_path / "data")
    files = tmp_path / "shared-files"
    where = ["--data-dir", data_dir, "--catalog", postgres, "--catalog-data-path", str(files)]
    assert "no release published yet" in run_cli(capsys, "releases", *where)
    variant = variant_snapshot(tmp_path / "variant")
    out = run_cli(capsys, "build", "--snapshot", str(paths.BUNDLED_SNAPSHOT), *where)
    assert f"published release {BASE}" in out
    out = run_cli(capsys, "build", "--snapshot", str(variant), *where)
    assert f"published release {BASE}.1" in out

    listed = run_cli(capsys, "releases", *where).splitlines()
    assert [line.split("\t")[0] for line in listed] == [f"{BASE}.1", BASE]
    # The catalog lives in PostgreSQL, the lake's Parquet files in the named folder.
    assert not (tmp_path / "data" / "lake" / "catalog.ducklake").exists()
    assert list(files.rglob("*.parquet"))
    counts = study_counts(capsys, (BASE, f"{BASE}.1"), *where)
    assert counts[BASE]["dropped"] == 1 and counts[f"{BASE}.1"]["dropped"] == 0
    assert counts[BASE]["n"] == counts[f"{BASE}.1"]["n"] + 1
    # The same version read from the release folder agrees with the catalog.
    manifest = json.loads((tmp_path / "data" / "releases" / BASE / "manifest.json").read_text())
    assert manifest["tables"]["studies"]["rows"] == counts[BASE]["n"]


def test_postgres_catalog_with_data_files_in_an_object_store(
    postgres: str,
    object_store: ObjectStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both halves off the machine: the catalog in PostgreSQL, the Parquet files in S3."""
    port = urlsplit(postgres).port
    _as_postgres(f"{PG_BIN}/createdb -h 127.0.0.1 -p {port} -U postgres lake_s3")
    catalog = postgres.rsplit("/", 1)[0] + "/lake_s3"
    url = f"s3://{object_store.bucket}/shared"
    where = ["--data-dir", str(tmp_path / "data"), "--catalog", catalog, "--catalog-data-path", url]
    variant = variant_snapshot(tmp_path / "variant")
    assert f"published release {BASE}" in run_cli(capsys, "build", *where)
    assert f"published release {BASE}.1" in run_cli(
        capsys, "build", "--snapshot", str(variant), *where
    )
    stored = object_store.object_keys()
    assert stored and all(key.startswith("shared/") for key in stored)
    assert not list((tmp_path / "data").rglob("*.ducklake"))
    counts = study_counts(capsys, (BASE, f"{BASE}.1"), *where)
    dropped = {version: count["dropped"] for version, count in counts.items()}
    assert dropped == {BASE: 1, f"{BASE}.1": 0}

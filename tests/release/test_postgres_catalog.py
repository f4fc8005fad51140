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
from pipelines.build import run_config
from pipelines.cli import _outputs, main, parser
from pipelines.release.catalog import (
    CatalogError,
    LakeLocation,
    connect,
    mask_secrets,
    postgres_catalog,
    redact_url,
    split_password,
)
from pipelines.release.diff import diff_releases
from pipelines.release.validate import validate_release
from tests.release._snapshots import run_cli, study_counts, variant_snapshot
from tests.release.conftest import (
    FIRST_VERSION,
    SECOND_VERSION,
    ObjectStore,
    TwoReleases,
    edit_snapshot,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
BASE = "2026.11.25"
PW_USER = "kratom_pw"
PW_SECRET = "Sx9-pw-only-for-this-test"


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
    # PW_USER must give its password (the first matching line wins); `postgres` is trusted.
    hba = data / "pg_hba.conf"
    hba.write_text(f"host all {PW_USER} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    options = f"-p {port} -h 127.0.0.1 -k {root}"
    _as_postgres(f"{PG_BIN}/pg_ctl -D {data} -o '{options}' -l {root}/server.log -w start")
    try:
        _as_postgres(f"{PG_BIN}/createdb -h 127.0.0.1 -p {port} -U postgres lake")
        role = f"CREATE ROLE {PW_USER} LOGIN CREATEDB PASSWORD '{PW_SECRET}'"
        _as_postgres(f'{PG_BIN}/psql -h 127.0.0.1 -p {port} -U postgres -c "{role}"')
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


def test_password_is_split_off_and_masked_in_messages() -> None:
    url = f"postgresql://{PW_USER}:s%40cret@db.example:6543/lake"
    assert split_password(url) == (f"postgresql://{PW_USER}@db.example:6543/lake", "s@cret")
    assert split_password("postgresql://ana@db/lake") == ("postgresql://ana@db/lake", None)
    said = "at \"dbname=lake user=ana password=s@cret\": refused; password='a b\\' c' too"
    assert mask_secrets(said) == 'at "dbname=lake user=ana password=***": refused; password=*** too'
    assert redact_url("postgresql://ana:p@ss@db:x/lake") == "postgresql://ana:***@db:x/lake"
    assert postgres_catalog("postgresql://ana:a%20b'c@h/l") == (
        "ducklake:postgres:dbname=l host=h user=ana password='a b\\'c'"
    )


@pytest.mark.usefixtures("no_pgpassword")
def test_cli_hands_dagster_a_catalog_url_without_the_password() -> None:
    """What the CLI passes on (DataDir, then the build run's config) holds no password."""
    url = f"postgresql://{PW_USER}:{PW_SECRET}@127.0.0.1:5432/lake"
    outputs = _outputs(parser().parse_args(["build", "--catalog", url]))
    assert outputs.catalog_url == f"postgresql://{PW_USER}@127.0.0.1:5432/lake"
    assert os.environ["PGPASSWORD"] == PW_SECRET
    config = run_config(paths.BUNDLED_SNAPSHOT, outputs)
    assert config["resources"]["release"]["config"]["catalog"] == outputs.catalog_url
    assert PW_SECRET not in repr(config) and PW_SECRET not in outputs.lake.catalog


def _cli(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one CLI run, read at the file descriptors."""
    capfd.readouterr()
    code = main(list(args))
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture
def no_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start without PGPASSWORD and restore it afterwards (the CLI moves a URL's password there)."""
    monkeypatch.setenv("PGPASSWORD", "")
    monkeypatch.delenv("PGPASSWORD")


@pytest.mark.slow
@pytest.mark.usefixtures("no_pgpassword")
def test_password_never_reaches_stderr(
    postgres: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    port = urlsplit(postgres).port
    where = ["--data-dir", str(tmp_path / "data")]
    secret = f"{PW_USER}:{PW_SECRET}"
    cases = {
        "no server": f"postgresql://{secret}@127.0.0.1:{_free_port()}/lake",
        "bad port": f"postgresql://{secret}@127.0.0.1:five/lake",
        "no database": f"postgresql://{secret}@127.0.0.1:{port}",
        "not postgres": f"mysql://{secret}@127.0.0.1:{port}/lake",
        "wrong password": f"postgresql://{secret}-wrong@127.0.0.1:{port}/lake",
    }
    commands = (
        ["releases"],
        ["query", "select 1"],
        ["diff", "2026.01.01", "2026.01.02"],
        ["build", "--release-version", "2026.01.01"],
    )
    for case, url in cases.items():
        for command in commands:
            code, out, err = _cli(capfd, *command, *where, "--catalog", url)
            assert code == 1, (case, command, out)
            assert PW_SECRET not in out + err, (case, command)
            assert len(err.strip().splitlines()) == 1, (case, command, err)
            assert err.startswith("kratom-evidence: "), (case, command, err)
        if case == "wrong password":
            assert f'password authentication failed for user "{PW_USER}"' in err
    # A library caller that keeps the password in the URL gets the same masked message.
    location = LakeLocation.choose(tmp_path, cases["wrong password"], None)
    with pytest.raises(CatalogError) as raised:
        connect(location, read_only=True)
    assert "password=***" in str(raised.value) and PW_SECRET not in str(raised.value)


@pytest.mark.usefixtures("no_pgpassword")
def test_password_from_pgpassword_or_pgpass_file(
    postgres: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/running-past-one-machine.md: no password in the URL; libpq finds it elsewhere."""
    port = urlsplit(postgres).port
    _as_postgres(f"{PG_BIN}/createdb -h 127.0.0.1 -p {port} -U postgres -O {PW_USER} lake_pw")
    where = ["--data-dir", str(tmp_path / "data")]
    where += ["--catalog", f"postgresql://{PW_USER}@127.0.0.1:{port}/lake_pw"]
    code, _, err = _cli(capfd, "releases", *where)
    assert code == 1 and "no password supplied" in err
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{port}:lake_pw:{PW_USER}:{PW_SECRET}\n", encoding="utf-8")
    pgpass.chmod(0o600)  # libpq ignores a password file others can read
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert _cli(capfd, "releases", *where) == (0, "no release published yet\n", "")
    monkeypatch.delenv("PGPASSFILE")
    monkeypatch.setenv("PGPASSWORD", PW_SECRET)
    assert _cli(capfd, "releases", *where) == (0, "no release published yet\n", "")


@pytest.mark.slow
@pytest.mark.usefixtures("no_pgpassword")
def test_second_machine_continues_history_and_diffs_from_the_shared_catalog(
    postgres: str, two_releases: TwoReleases, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two data dirs (two machines) share one catalog and data files, not release folders.

    The second publishes the next release: its history and CHANGES.md continue the first's
    release, read from the catalog by time travel, and equal those of a one-machine build.
    """
    port = urlsplit(postgres).port
    _as_postgres(f"{PG_BIN}/createdb -h 127.0.0.1 -p {port} -U postgres -O {PW_USER} lake_two")
    url = f"postgresql://{PW_USER}:{PW_SECRET}@127.0.0.1:{port}/lake_two"
    shared = ["--catalog", url, "--catalog-data-path", str(tmp_path / "shared-files")]
    one, two = tmp_path / "one", tmp_path / "two"
    edited = Path(shutil.copytree(paths.BUNDLED_SNAPSHOT, tmp_path / "edited"))
    edit_snapshot(edited)
    runs = [
        _cli(capfd, "build", "--data-dir", str(one), *shared),
        _cli(capfd, "build", "--snapshot", str(edited), "--data-dir", str(two), *shared),
    ]
    assert [code for code, _, _ in runs] == [0, 0], [err for _, _, err in runs]
    assert f"published release {FIRST_VERSION}" in runs[0][1]
    assert f"published release {SECOND_VERSION}" in runs[1][1]
    assert not (two / "releases" / FIRST_VERSION).exists()
    second = two / "releases" / SECOND_VERSION
    for name in ("CHANGES.md", "record_versions.parquet", "removed_records.parquet"):
        assert (second / name).read_bytes() == (two_releases.second / name).read_bytes(), name
    assert validate_release(second) == []

    expected = diff_releases(two_releases.first, two_releases.second).to_dict()
    for data_dir in (one, two):
        code, out, err = _cli(
            capfd,
            "diff",
            FIRST_VERSION,
            SECOND_VERSION,
            "--json",
            "--data-dir",
            str(data_dir),
            *shared,
        )
        assert code == 0, err
        assert json.loads(out) == expected
        runs.append((code, out, err))
    assert all(PW_SECRET not in out + err for _, out, err in runs)

"""Versions and time travel (docs/releases-and-time-travel.md): builds of the bundled snapshot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.release import catalog
from pipelines.release.publish import (
    DataDir,
    PublishError,
    check_requested,
    folder_versions,
    next_version,
)
from tests.cli_query import query_json
from tests.release._snapshots import DROPPED_STUDY, fingerprint, variant_snapshot

BASE = "2026.11.25"


def test_next_version_is_the_base_when_free() -> None:
    assert next_version(BASE, set()) == BASE
    assert next_version(BASE, {"2026.11.24", "2026.11.24.1"}) == BASE


def test_next_version_takes_the_first_free_suffix() -> None:
    assert next_version(BASE, {BASE}) == f"{BASE}.1"
    assert next_version(BASE, {BASE, f"{BASE}.1", f"{BASE}.2"}) == f"{BASE}.3"
    assert next_version(BASE, {BASE, f"{BASE}.2"}) == f"{BASE}.1"


def test_requested_version_must_be_free_and_well_formed() -> None:
    check_requested("2026.12.01.4", {BASE})
    with pytest.raises(PublishError, match="already published and is never overwritten"):
        check_requested(BASE, {BASE})
    with pytest.raises(PublishError, match=r"is not YYYY\.MM\.DD"):
        check_requested("v1", set())


def test_folder_versions_counts_release_folders_only(tmp_path: Path) -> None:
    for name in (BASE, f"{BASE}.3", ".incoming-2026.11.26", ".incoming-pending", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "2026.11.27").write_text("a file, not a release folder")
    assert folder_versions(tmp_path) == {BASE, f"{BASE}.3"}
    assert folder_versions(tmp_path / "absent") == set()
    # A folder no catalog lists still takes its version.
    assert next_version(BASE, folder_versions(tmp_path)) == f"{BASE}.1"


def _build(snapshot: Path, data_dir: Path, *extra: str) -> int:
    return main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir), *extra])


@pytest.fixture(scope="module")
def two_releases(
    tmp_path_factory: pytest.TempPathFactory, bundled_build: Path
) -> tuple[Path, Path]:
    """A data dir with the bundled release and the release of a variant of the same snapshot."""
    root = tmp_path_factory.mktemp("versions")
    variant = variant_snapshot(root / "variant")
    data_dir = Path(shutil.copytree(bundled_build, root / "data"))
    assert _build(variant, data_dir) == 0
    return data_dir, variant


def _releases(data_dir: Path) -> list[catalog.ReleaseRecord]:
    con = catalog.connect(DataDir(data_dir).lake, read_only=True)
    try:
        return catalog.list_releases(con)
    finally:
        con.close()


@pytest.mark.slow
def test_same_snapshot_with_different_tables_gets_the_next_suffix(
    two_releases: tuple[Path, Path],
) -> None:
    data_dir, _ = two_releases
    assert [r.version for r in _releases(data_dir)] == [f"{BASE}.1", BASE]
    manifest = json.loads((data_dir / "releases" / f"{BASE}.1" / "manifest.json").read_text())
    assert manifest["version"] == f"{BASE}.1"
    assert manifest["previous_version"] == BASE
    assert manifest["snapshot"]["captured_at"] == "2026-11-25"


def test_rebuild_with_identical_tables_publishes_nothing_and_says_so(
    two_releases: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, variant = two_releases
    before = fingerprint(data_dir / "releases")
    capsys.readouterr()
    assert _build(variant, data_dir) == 0
    out = capsys.readouterr().out
    assert f"nothing changed since release {BASE}.1: no new version published" in out
    assert [r.version for r in _releases(data_dir)] == [f"{BASE}.1", BASE]
    assert fingerprint(data_dir / "releases") == before


def test_overwriting_a_published_version_is_refused_and_changes_nothing(
    two_releases: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, _ = two_releases
    before = fingerprint(data_dir / "releases")
    releases_before = _releases(data_dir)
    capsys.readouterr()
    assert _build(paths.BUNDLED_SNAPSHOT, data_dir, "--release-version", f"{BASE}.1") == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"kratom-evidence: release {BASE}.1 is already published and is never overwritten; "
        "choose another version"
    )
    assert fingerprint(data_dir / "releases") == before
    assert _releases(data_dir) == releases_before


def test_releases_table_records_version_snapshot_time_and_rows(
    two_releases: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, _ = two_releases
    newest, oldest = _releases(data_dir)
    assert newest.snapshot_id > oldest.snapshot_id
    for record in (newest, oldest):
        folder = data_dir / "releases" / record.version
        manifest = json.loads((folder / "manifest.json").read_text())
        assert record.created_at == manifest["created_at"]
        assert record.rows == {name: t["rows"] for name, t in manifest["tables"].items()}
        assert record.tables_sha256 == {name: t["sha256"] for name, t in manifest["tables"].items()}
    assert oldest.rows["studies"] - newest.rows["studies"] == 1
    capsys.readouterr()
    assert main(["releases", "--data-dir", str(data_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"{BASE}.1", BASE]
    assert f"studies={oldest.rows['studies']}" in lines[1]


def test_query_release_version_reads_that_snapshot(
    two_releases: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, _ = two_releases
    sql = f"SELECT count(*) AS n, count(*) FILTER (study_id = '{DROPPED_STUDY}') AS dropped "
    sql += "FROM studies"
    old = query_json(data_dir, sql, capsys, "--release-version", BASE)
    new = query_json(data_dir, sql, capsys, "--release-version", f"{BASE}.1")
    latest = query_json(data_dir, sql, capsys)
    assert old[0]["dropped"] == 1 and new[0]["dropped"] == 0
    assert old[0]["n"] == new[0]["n"] + 1
    assert latest == new


def test_query_of_an_unknown_version_is_one_clear_error(
    two_releases: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, _ = two_releases
    capsys.readouterr()
    args = ["query", "SELECT 1", "--data-dir", str(data_dir), "--release-version", "2020.01.01"]
    assert main(args) == 1
    assert capsys.readouterr().err.strip() == (
        f"kratom-evidence: no release '2020.01.01' in the catalog (published: {BASE}.1, {BASE})"
    )


def test_release_folders_without_their_catalog_stop_the_build_untouched(
    two_releases: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data dir copied without lake/: the build must not delete or republish any folder."""
    source, _ = two_releases
    data_dir = tmp_path / "copy"
    shutil.copytree(source / "releases", data_dir / "releases")
    before = fingerprint(data_dir / "releases")
    capsys.readouterr()
    assert _build(paths.BUNDLED_SNAPSHOT, data_dir) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        f"kratom-evidence: release folder(s) {BASE}, {BASE}.1 in {data_dir / 'releases'} "
        "are not in the catalog"
    )
    assert "restore the catalog that published them, or move them out" in err
    assert fingerprint(data_dir / "releases") == before
    assert sorted(p.name for p in data_dir.iterdir()) == [".lock", "releases"]

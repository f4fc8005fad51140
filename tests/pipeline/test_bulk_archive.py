"""ClinicalTrials.gov's bulk export (a ZIP of one v2 study JSON per study) as snapshot input.

The bundled snapshot is rebuilt with its ClinicalTrials.gov studies packed into one ZIP in the
layout the registry serves (`NN/NCTxxxxxxxx.json`), plus bad members; the build through the
build service, into a real DuckDB warehouse, must publish the same tables as the bundled
release (recorded hashes), with the bad members quarantined and the rest untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines import paths, shards, snapshot
from pipelines.build import STAGE_JOB_NAME, build
from pipelines.release.publish import DataDir
from pipelines.sources import SOURCES
from pipelines.sources.base import SnapshotFormatError
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import ensure_schemas
from tests.pipeline.test_parallel_staging import staged_tables
from tests.pipeline.test_recorded_hashes import RECORDED, release_hashes

ARCHIVE = "clinicaltrials/ctg-studies.json.zip"
BAD_MEMBERS = {
    "00/NCT00000000.json": b"<html>Service Unavailable</html>",
    "01/NCT00000001.json": b'{"protocolSection": {"statusModule": {}}}',
    "02/NCT00000002.json": b'{"studies": []}',
    "03/NCT00000003.json": b'{"protocolSection": {"identificationModule": '
    b'{"nctId": "NCT00000004"}}}',
    "README.txt": b"not a study",
}
"""Member -> bytes: not JSON, no NCT id, a page not a study, another study's id, not .json."""


def bulk_snapshot(target: Path, bad: dict[str, bytes] | None = None) -> Path:
    """The bundled snapshot with clinicaltrials/*.json replaced by one bulk ZIP of its studies."""
    shutil.copytree(paths.BUNDLED_SNAPSHOT, target)
    folder = target / "clinicaltrials"
    studies = sorted(folder.glob("*.json"))
    with zipfile.ZipFile(target / ARCHIVE, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in studies:
            archive.writestr(f"{path.stem[-2:]}/{path.name}", path.read_bytes())
        for name, body in (bad or {}).items():
            archive.writestr(name, body)
    for path in studies:
        path.unlink()
    return target


@pytest.fixture(scope="module")
def bulk_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data dir with one release built from the bulk-archive snapshot, bad members included."""
    root = tmp_path_factory.mktemp("bulk")
    snap = bulk_snapshot(root / "snapshot", BAD_MEMBERS)
    data_dir = root / "data"
    published = build(snap, DataDir(data_dir), created_at="2026-11-25T00:00:00Z")
    assert published.version == "2026.11.25"
    return data_dir


@pytest.mark.slow
def test_the_archive_builds_the_same_tables_as_the_bundled_files(bulk_release: Path) -> None:
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    built = release_hashes(bulk_release)
    changed = sorted(n for n in recorded if n != "quarantine" and built.get(n) != recorded[n])
    assert not changed, f"tables differ from the bundled release: {changed}"


@pytest.mark.slow
def test_bad_members_are_quarantined_with_a_reason(bulk_release: Path) -> None:
    (folder,) = (bulk_release / "releases").iterdir()
    quarantine = pq.read_table(folder / "quarantine.parquet").to_pylist()
    members = {
        row["source_file"].removeprefix(f"{ARCHIVE}/"): row
        for row in quarantine
        if row["source_file"].startswith(ARCHIVE)
    }
    assert set(members) == set(BAD_MEMBERS)
    assert "not JSON" in members["00/NCT00000000.json"]["reason"]
    assert members["00/NCT00000000.json"]["record_key"] == "NCT00000000"
    assert members["00/NCT00000000.json"]["raw"] == "<html>Service Unavailable</html>"
    assert "nctId" in members["01/NCT00000001.json"]["reason"]
    assert "not a v2 study" in members["02/NCT00000002.json"]["reason"]
    assert "holds record NCT00000004, not NCT00000003" in members["03/NCT00000003.json"]["reason"]
    assert "not a .json record" in members["README.txt"]["reason"]
    assert all(row["table_name"] == "studies" for row in members.values())
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["snapshot"]["sha256"] == snapshot.snapshot_sha256(
        bulk_release.parent / "snapshot"
    )


def test_shards_split_the_archive_and_together_stage_every_record(tmp_path: Path) -> None:
    snap = bulk_snapshot(tmp_path / "snapshot", BAD_MEMBERS)
    whole = duckdb.connect(str(tmp_path / "whole.duckdb"))
    whole.execute("CREATE SCHEMA staging")
    everything = stage_source(whole, snap, "clinicaltrials")
    parts = []
    for index in range(3):
        con = duckdb.connect(str(tmp_path / f"part{index}.duckdb"))
        con.execute("CREATE SCHEMA staging")
        parts.append(stage_source(con, snap, "clinicaltrials", snapshot.Shard(index, 3)))
        con.close()
    assert all(p.records_read < everything.records_read for p in parts)
    assert sum(p.records_read for p in parts) == everything.records_read == 11 + len(BAD_MEMBERS)
    assert sum(p.staged for p in parts) == everything.staged == 11
    assert sum(p.quarantined for p in parts) == everything.quarantined == len(BAD_MEMBERS)
    for table, rows in everything.rows.items():
        assert sum(p.rows.get(table, 0) for p in parts) == rows


def test_a_file_that_is_no_zip_stops_the_build_naming_it(tmp_path: Path) -> None:
    snap = bulk_snapshot(tmp_path / "snapshot")
    (snap / ARCHIVE).write_bytes(b"PK\x03\x04 cut off")
    with pytest.raises(SnapshotFormatError, match=r"ctg-studies\.json\.zip: not a readable ZIP"):
        list(snapshot.source_records(snap, "clinicaltrials"))


@pytest.mark.slow
def test_a_parallel_build_stages_the_archive_in_parts_in_other_processes(
    tmp_path: Path, bulk_release: Path, dagster_home: Path
) -> None:
    snap = bulk_snapshot(tmp_path / "snapshot", BAD_MEMBERS)
    data_dir = tmp_path / "data"
    build(snap, DataDir(data_dir), created_at="2026-11-25T00:00:00Z", workers=2)

    # runs of members: one pass's rows in its order, the quarantine's too
    assert release_hashes(data_dir) == release_hashes(bulk_release)
    assert _quarantine_rows(data_dir) == _quarantine_rows(bulk_release)
    with dg.DagsterInstance.get() as instance:
        stage = instance.get_runs(dg.RunsFilter(job_name=STAGE_JOB_NAME))
        (run,) = stage
        starts = {
            event.step_key: event.dagster_event.pid
            for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
            if event.dagster_event is not None
        }
    parts = {key: pid for key, pid in starts.items() if "stage_clinicaltrials_part" in key}
    assert len(parts) == 2
    assert len(set(starts.values())) > 1 and os.getpid() not in starts.values()
    assert not (data_dir / "warehouse.shards").exists() or not any(
        (data_dir / "warehouse.shards").iterdir()
    )


def _quarantine_rows(data_dir: Path) -> list[str]:
    (folder,) = (data_dir / "releases").iterdir()
    rows = pq.read_table(folder / "quarantine.parquet").to_pylist()
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def test_a_damaged_member_is_quarantined_and_the_others_read(tmp_path: Path) -> None:
    snap = bulk_snapshot(tmp_path / "snapshot")
    path = snap / ARCHIVE
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        count = len(archive.infolist())
    data = bytearray(path.read_bytes())
    at = first.header_offset + 30 + len(first.filename) + 10
    data[at] ^= 0xFF  # one byte inside the first member's deflated data
    path.write_bytes(bytes(data))

    records = list(snapshot.source_records(snap, "clinicaltrials"))
    assert len(records) == count
    bad = [r for r in records if r.problem is not None]
    assert [r.origin for r in bad] == [f"{ARCHIVE}/{first.filename}"]
    assert bad[0].problem.startswith("unreadable member: ")  # type: ignore[union-attr]
    assert bad[0].key == first.filename.split("/")[1].removesuffix(".json")
    assert all(r.value is not None for r in records if r.problem is None)


def _staged_by(snap: Path, database: Path, parts: int) -> tuple[StageStats, dict]:
    con = duckdb.connect(str(database))
    ensure_schemas(con)
    stats = shards.stage_here(con, snap, "clinicaltrials", database, parts)
    tables = staged_tables(con)
    con.close()
    return stats, tables


def test_runs_of_members_stage_one_passs_tables_in_its_order(tmp_path: Path) -> None:
    snap = bulk_snapshot(tmp_path / "snapshot", BAD_MEMBERS)
    bulk = SOURCES["clinicaltrials"].bulk
    assert bulk is not None
    parts = shards.plan("clinicaltrials", snap, tmp_path / "w.duckdb", 2)
    read = [
        [m.member for m in snapshot.archive_members(snap / ARCHIVE, bulk, task.shard)]
        for task in parts
    ]
    every = [m.member for m in snapshot.archive_members(snap / ARCHIVE, bulk)]
    assert all(read) and read[0] + read[1] == every  # two runs, in archive order

    one, one_tables = _staged_by(snap, tmp_path / "one.duckdb", 1)
    two, two_tables = _staged_by(snap, tmp_path / "two.duckdb", 2)
    assert two == one and one.quarantined == len(BAD_MEMBERS)
    assert two_tables == one_tables  # rows in stored order, quarantine included


def test_a_key_in_both_runs_of_members_is_decided_by_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = bulk_snapshot(tmp_path / "snapshot")
    with zipfile.ZipFile(snap / ARCHIVE) as archive:
        first = archive.infolist()[0]
        study = json.loads(archive.read(first))
    study["protocolSection"]["identificationModule"]["briefTitle"] = "Changed title"
    with zipfile.ZipFile(snap / ARCHIVE, "a") as archive:  # the last member: the second run's
        archive.writestr(f"zz/{first.filename.split('/')[-1]}", json.dumps(study))

    one, one_tables = _staged_by(snap, tmp_path / "one.duckdb", 1)
    passes: list[snapshot.Shard] = []
    real = shards.stage_source

    def counted(*args: Any) -> StageStats:
        passes.append(args[3] if len(args) > 3 else snapshot.WHOLE)
        return real(*args)

    monkeypatch.setattr(shards, "stage_source", counted)
    two, two_tables = _staged_by(snap, tmp_path / "two.duckdb", 2)
    assert one.quarantined == 1 and two == one
    assert two_tables == one_tables
    assert passes[-1] == snapshot.WHOLE  # the parts, then the whole source in one pass


def test_a_part_connects_with_the_warehouses_duckdb_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = bulk_snapshot(tmp_path / "snapshot")
    limits: list[str] = []
    connect = duckdb.connect

    def recording(database: str, *args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        con = connect(database, *args, **kwargs)  # type: ignore[arg-type]
        limits.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])  # type: ignore[index]
        return con

    monkeypatch.setattr(shards.duckdb, "connect", recording)
    settings = {"memory_limit": "200MB"}  # 100MB: a part ran out of memory now and then
    first, _ = shards.plan("clinicaltrials", snap, tmp_path / "w.duckdb", 2, settings)
    staged = shards.stage_shard(first)
    assert staged.stats.staged > 0
    expected = connect(config=settings).execute("SELECT current_setting('memory_limit')")
    assert limits == [expected.fetchone()[0]]  # type: ignore[index]

"""Adding a source is one module and one registration: a toy source gets its snapshot files
read, its records staged (bad ones quarantined), its raw and staging assets, and its snapshot
served by the emulator to its own pager, with no other module touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from toy_source import SOURCE, UNIT

from pipelines import snapshot
from pipelines.assets.raw import raw_assets
from pipelines.assets.staging import STATS_TABLE, staging_assets
from pipelines.devtools.emulator import make_server, running
from pipelines.http import ResponseRecorder, SourceHttp
from pipelines.refresh.record import RecordingClient
from pipelines.resources import SnapshotResource
from pipelines.sources import SOURCES, register, unregister
from pipelines.sources.base import LiveRun
from pipelines.staging import stage_source
from pipelines.warehouse import ensure_schemas

LINES = [
    "10.5555/toy.1\tFirst toy paper",
    "10.5555/toy.2\tSecond toy paper",
    "10.5555/toy.1\tFirst toy paper",  # the same record on a second page: a duplicate
    "no-doi\tA line without a DOI",
    "10.5555/toy.3\t",
]


@pytest.fixture
def toy() -> Iterator[str]:
    """The toy source, registered for the length of one test."""
    register(UNIT)
    try:
        yield SOURCE
    finally:
        unregister(SOURCE)


def _snapshot(folder: Path) -> Path:
    (folder / SOURCE).mkdir(parents=True)
    (folder / SOURCE / "page-0001.tsv").write_text("\n".join(LINES) + "\n")
    info = {"captured_at": "2026-03-04", "topic": "kratom", "method": "reconstructed", "notes": ""}
    (folder / snapshot.INFO_FILE).write_text(json.dumps(info))
    return folder


def test_registering_twice_is_refused(toy: str) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register(UNIT)


def test_toy_source_files_are_read_and_a_foreign_suffix_refused(toy: str, tmp_path: Path) -> None:
    folder = _snapshot(tmp_path / "snap")
    assert [p.name for p in snapshot.source_files(folder, toy)] == ["page-0001.tsv"]
    before = snapshot.snapshot_sha256(folder)
    (folder / toy / "stray.json").write_text("{}")
    with pytest.raises(snapshot.SnapshotError, match=r"not a toybase file \(expected \*\.tsv\)"):
        snapshot.source_files(folder, toy)
    (folder / toy / "stray.json").unlink()
    (folder / toy / "page-0001.tsv").write_text(LINES[1])
    assert snapshot.snapshot_sha256(folder) != before  # its files are part of the snapshot


def test_toy_source_gets_raw_and_staging_assets_that_stage_its_rows(
    toy: str, tmp_path: Path
) -> None:
    folder = _snapshot(tmp_path / "snap")
    units = [SOURCES[toy]]
    assets = [*raw_assets(units), *staging_assets(units)]
    keys = {key for asset in assets for key in asset.keys}
    assert keys == {dg.AssetKey(["raw", toy]), dg.AssetKey(["staging", toy])}
    database = tmp_path / "warehouse.duckdb"
    result = dg.materialize(
        assets,
        resources={
            "snapshot_store": SnapshotResource(path=str(folder)),
            "warehouse": DuckDBResource(database=str(database)),
        },
    )
    assert result.success
    [raw_meta] = [
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(["raw", toy])
    ]
    assert raw_meta["files"].value == 1
    assert raw_meta["captured_at"].value == "2026-03-04"
    assert raw_meta["method"].value == "reconstructed"
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            f'SELECT publication_id, title, _source_file FROM staging."{toy}__publications" '
            "ORDER BY publication_id"
        ).fetchall()
        quarantined = con.execute(
            f'SELECT record_key, reason FROM staging."{toy}__quarantine" ORDER BY reason'
        ).fetchall()
        stats = con.execute(
            f"SELECT files, records_read, staged, quarantined, duplicates FROM {STATS_TABLE} "
            "WHERE source = ?",
            [toy],
        ).fetchone()
    assert rows == [
        ("DOI:10.5555/toy.1", "First toy paper", f"{toy}/page-0001.tsv"),
        ("DOI:10.5555/toy.2", "Second toy paper", f"{toy}/page-0001.tsv"),
    ]
    assert quarantined == [
        ("DOI:10.5555/toy.3", "DOI:10.5555/toy.3 has no title"),
        (None, "no DOI in 'no-doi'"),
    ]
    assert stats == (1, 5, 2, 2, 1)


def test_toy_source_is_served_by_the_emulator_and_recorded_by_its_own_pager(
    toy: str, tmp_path: Path
) -> None:
    folder = _snapshot(tmp_path / "snap")
    info = json.loads((folder / snapshot.INFO_FILE).read_text())
    info[snapshot.SUPERSEDES] = {f"{toy}/page-0001.tsv": ["DOI:10.5555/toy.2"]}
    (folder / snapshot.INFO_FILE).write_text(json.dumps(info))
    live = SOURCES[toy].live
    assert live is not None
    out = tmp_path / "recorded"
    clients: list[RecordingClient] = []

    def client(prefix: str = "", fixed: Any = None) -> RecordingClient:
        clients.append(RecordingClient(http, prefix, live.check_body, None, fixed))
        return clients[-1]

    with running(make_server(folder)) as server:
        url = server.base_url + live.emulator_path
        with SourceHttp(toy, url, recorder=ResponseRecorder(out)) as http:
            hits = live.fetch(LiveRun(client, ["kratom"], 2, lambda units: None))
    assert hits == {"kratom": 4}  # five lines, one superseded: not served
    assert [c.pages for c in clients] == [3]  # two full pages, then an empty one ends
    pages = snapshot.source_files(out, toy)
    assert [p.name for p in pages] == [f"kratom__lines-000{n}.tsv" for n in (1, 2, 3)]
    assert [request.split("?")[0] for request in server.requests] == [
        f"{live.emulator_path}/lines"
    ] * 3
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_schemas(con)
        stats = stage_source(con, out, toy)
    assert (stats.records_read, stats.staged, stats.duplicates, stats.quarantined) == (4, 1, 1, 2)

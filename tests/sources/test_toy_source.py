"""Adding a source is one module and one registration: a toy source gets its snapshot files
read, its records staged (bad ones quarantined), its raw and staging assets, its snapshot
served by the emulator to its own pager, its rank in the merge of literature records, a version
sensor, and its share of a refresh although it is registered after every module was imported,
with no other module touched."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from toy_source import SOURCE, UNIT, parse_line

from pipelines import paths, snapshot
from pipelines.assets.raw import raw_assets
from pipelines.assets.staging import STATS_TABLE, staging_assets
from pipelines.automation import version_sensors
from pipelines.devtools.emulator import make_server, running
from pipelines.http import ResponseRecorder, SourceHttp
from pipelines.normalize.dedup import merge_publications
from pipelines.refresh import Credentials, HttpSettings, parse_base_urls, refresh
from pipelines.refresh.record import RecordingClient
from pipelines.release.publish import DataDir
from pipelines.resources import LiveSourcesResource, SnapshotResource
from pipelines.sources import (
    SOURCES,
    publication_precedence,
    publication_sources,
    register,
    unregister,
)
from pipelines.sources.base import LiveRun
from pipelines.staging import stage_source
from pipelines.warehouse import ensure_schemas
from schemas.arrow import arrow_schema
from schemas.literature import Publication
from tests.conftest import EMULATOR_RATE_SCALE

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
    assert keys == {
        dg.AssetKey(["raw", toy]),
        dg.AssetKey(["staging", toy, "publications"]),
        dg.AssetKey(["staging", toy, "quarantine"]),
    }
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
    assert raw_meta["bytes"].value == (folder / toy / "page-0001.tsv").stat().st_size
    assert raw_meta["captured_at"].value == "2026-03-04"
    assert raw_meta["method"].value == "reconstructed"
    staged = {
        event.asset_key.path[-1]: event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[:2] == ["staging", toy]
    }
    staging_meta = staged["publications"]
    assert staging_meta["dagster/row_count"].value == 2
    columns = staging_meta["dagster/column_schema"].value.columns
    assert [c.name for c in columns] == [
        *(f.name for f in arrow_schema(Publication)),
        "_source",
        "_source_file",
        "_seq",
    ]
    described = {c.name: c.description for c in columns}
    assert described["doi"] == Publication.to_schema().columns["doi"].description
    assert described["_source_file"].startswith("Snapshot file the record was read from")
    quarantine = staged["quarantine"]["dagster/column_schema"].value.columns
    assert {"reason", "raw"} <= {c.name for c in quarantine} and all(
        c.description for c in quarantine
    )
    assert (
        staged["quarantine"]["dagster/row_count"].value
        == staged["quarantine"]["records_quarantined"].value
    )
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

    with running(make_server(folder, rate_scale=EMULATOR_RATE_SCALE)) as server:
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


def test_toy_literature_source_takes_its_rank_in_the_merge_of_records(toy: str) -> None:
    precedence = publication_precedence()
    assert precedence.bibliographic == ("pubmed", toy, "europepmc", "crossref", "openalex")
    assert precedence.metrics == ("openalex", "europepmc", "crossref", "pubmed", toy)
    (toy_row,) = parse_line(["10.5555/toy.1", "Toy title"])["publications"]
    crossref_row = {
        "publication_id": "DOI:10.5555/toy.1",
        "doi": "10.5555/toy.1",
        "title": "Crossref title",
        "cited_by_count": 4,
        "sources": ["crossref"],
    }
    (merged,) = merge_publications([crossref_row, toy_row], precedence).publications
    assert (merged["title"], merged["cited_by_count"]) == ("Toy title", 4)
    assert merged["sources"] == ["crossref", toy]
    # A new value of publications.sources, read from the registry: the contract's list must
    # follow (tests/unit/test_vocab_contract.py compares the two).
    assert publication_sources()[-1] == toy


def test_toy_version_endpoint_gets_a_sensor_that_asks_for_a_refresh_when_it_changes(
    toy: str, tmp_path: Path
) -> None:
    sensors = {sensor.name: sensor for sensor in version_sensors(DataDir(tmp_path / "data"))}
    assert set(sensors) == {"clinicaltrials_version", f"{toy}_version"}
    live = SOURCES[toy].live
    assert live is not None
    with running(
        make_server(_snapshot(tmp_path / "snap"), rate_scale=EMULATOR_RATE_SCALE)
    ) as server:
        urls = {toy: server.base_url + live.emulator_path}
        resources = {"live_sources": LiveSourcesResource(base_urls=urls)}
        first = sensors[f"{toy}_version"].evaluate_tick(
            dg.build_sensor_context(cursor=None, resources=resources)
        )
        again = sensors[f"{toy}_version"].evaluate_tick(
            dg.build_sensor_context(cursor=first.cursor, resources=resources)
        )
        asked = list(server.requests)
    assert [request.run_key for request in first.run_requests or []] == ["2026-03-04"]
    assert not again.run_requests and again.skip_message == "version 2026-03-04 unchanged"
    assert asked == [f"{live.emulator_path}/version"] * 2


def test_a_refresh_records_the_toy_source_registered_after_every_import(
    toy: str, tmp_path: Path
) -> None:
    """Only the toy has topic queries and no compound is listed: the refresh asks the toy alone."""
    reference = tmp_path / "reference"
    shutil.copytree(paths.REFERENCE_DIR, reference)
    _write_csv(reference / "topic_queries.csv", [{"source": toy, "query": "kratom"}])
    _write_csv(reference / "compounds.csv", [], _header(reference / "compounds.csv"))
    with running(
        make_server(_snapshot(tmp_path / "snap"), rate_scale=EMULATOR_RATE_SCALE)
    ) as server:
        result = refresh(
            tmp_path / "data",
            parse_base_urls([f"all={server.base_url}"]),
            Credentials(),
            datetime(2026, 3, 5, 6, 0, tzinfo=UTC),
            settings=HttpSettings(timeout=2.0, pace=0.0, page_size=2),
            reference_dir=reference,
            show_progress=False,
        )
    assert result.complete and result.failed == {}
    outcome = result.outcomes[toy]
    assert (outcome.hits, outcome.pages, outcome.requests) == ({"kratom": 5}, 3, 3)
    pages = snapshot.source_files(result.snapshot_dir, toy)
    assert [p.name for p in pages] == [f"kratom__lines-000{n}.tsv" for n in (1, 2, 3)]
    assert snapshot.read_info(result.snapshot_dir).method == "recorded"
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        ensure_schemas(con)
        stats = stage_source(con, result.snapshot_dir, toy)
    assert (stats.records_read, stats.staged, stats.duplicates, stats.quarantined) == (5, 2, 1, 2)


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle).fieldnames or [])


def _write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> None:
    fields = header or _header(path)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)

"""Staging skips what SNAPSHOT.json `supersedes` lists, and counts it, file by file.

A `--since-last` snapshot carries its base's files byte for byte; the records newer pages
replace are named there by file and key instead of being cut out of the bodies.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines import paths
from pipelines.devtools.emulator import load_snapshot
from pipelines.snapshot import SUPERSEDES, SnapshotError, superseded_records
from pipelines.sources import clinicaltrials, pubmed
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import ensure_schemas

STUDY = "NCT05846451"


def _snapshot(tmp_path: Path, supersedes: object) -> Path:
    """The bundled ClinicalTrials.gov files and SNAPSHOT.json with a `supersedes` entry."""
    folder = tmp_path / "snapshot"
    shutil.copytree(paths.BUNDLED_SNAPSHOT / "clinicaltrials", folder / "clinicaltrials")
    info = json.loads((paths.BUNDLED_SNAPSHOT / "SNAPSHOT.json").read_text())
    (folder / "SNAPSHOT.json").write_text(json.dumps({**info, SUPERSEDES: supersedes}))
    return folder


def _stage(folder: Path) -> tuple[StageStats, set[str]]:
    con = duckdb.connect()
    try:
        ensure_schemas(con)
        stats = stage_source(con, folder, "clinicaltrials")
        rows = con.execute('SELECT study_id FROM staging."clinicaltrials__studies"').fetchall()
        return stats, {study_id for (study_id,) in rows}
    finally:
        con.close()


def test_a_superseded_record_is_counted_and_not_staged(tmp_path: Path) -> None:
    listed = {f"clinicaltrials/{STUDY}.json": [STUDY]}
    stats, staged = _stage(_snapshot(tmp_path, listed))

    assert STUDY not in staged and len(staged) == 10
    assert (stats.records_read, stats.staged, stats.superseded) == (11, 10, 1)
    assert stats.records_read == stats.staged + stats.quarantined + stats.duplicates + 1


def test_supersedes_names_a_file_so_the_same_key_elsewhere_still_counts(tmp_path: Path) -> None:
    folder = _snapshot(tmp_path, {"clinicaltrials/NCT06072170.json": [STUDY]})
    stats, staged = _stage(folder)

    assert STUDY in staged and stats.superseded == 0


def test_supersedes_that_is_not_a_map_of_key_lists_stops_staging(tmp_path: Path) -> None:
    folder = _snapshot(tmp_path, {f"clinicaltrials/{STUDY}.json": STUDY})

    with pytest.raises(SnapshotError, match="'supersedes' must map files to key lists"):
        superseded_records(folder)


def test_a_folder_without_snapshot_json_supersedes_nothing(tmp_path: Path) -> None:
    assert superseded_records(tmp_path) == {}


def test_the_emulator_serves_no_superseded_record(tmp_path: Path) -> None:
    folder = _snapshot(tmp_path, {})
    shutil.copytree(paths.BUNDLED_SNAPSHOT / "pubmed", folder / "pubmed")
    shutil.copytree(paths.BUNDLED_SNAPSHOT / "pubchem", folder / "pubchem")
    everything = load_snapshot(folder)
    pmid = pubmed.record_key(next(pubmed.iter_records(folder / "pubmed" / "efetch-0001.xml")))
    listed = {
        f"clinicaltrials/{STUDY}.json": [STUDY],
        "pubmed/efetch-0001.xml": [pmid],
        "pubchem/synonyms.json": ["CID:4095:synonyms"],
    }
    info = json.loads((folder / "SNAPSHOT.json").read_text())
    (folder / "SNAPSHOT.json").write_text(json.dumps({**info, SUPERSEDES: listed}))
    served = load_snapshot(folder)

    ids = [clinicaltrials.record_key(s) for s in served.of("clinicaltrials")]
    assert STUDY not in ids and len(ids) == len(everything.of("clinicaltrials")) - 1
    assert len(served.of("pubmed").articles) == len(everything.of("pubmed").articles) - 1
    assert len(served.of("pubmed").modified) == len(served.of("pubmed").articles)
    tag = f'<PMID Version="1">{pmid.removeprefix("PMID:")}<'.encode()
    assert tag in b"".join(everything.of("pubmed").articles)
    assert tag not in b"".join(served.of("pubmed").articles)
    assert [i["CID"] for i in served.of("pubchem").synonyms] == [
        i["CID"] for i in everything.of("pubchem").synonyms if i["CID"] != 4095
    ]
    assert served.of("pubchem").properties == everything.of("pubchem").properties

"""Refresh == build on a snapshot where every source pages several times.

The bundled snapshot fits each query in one page and has no OpenAlex hits or ChEMBL folder, so
the identity test on it never turns a page. Here the synthetic snapshot (tests/refresh/synthetic.py)
fills every source, the refresh asks for pages of three records, and the release published from
the recorded snapshot must be byte-identical, table by table (history tables included: the
served build is published under the refresh's version), to `build` on the served one.
Quarantine rows differ only in `source_file`, and inherently so: it names the snapshot file a
record was read from, and the refresh records its own pages of three (named by query) where the
served snapshot keeps one file per source. Each side's `source_file` must hold the row's record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipelines import paths, snapshot
from pipelines.cli import main
from pipelines.devtools.emulator import make_server, running
from pipelines.refresh import live_sources
from pipelines.sources import SOURCES
from tests.conftest import EMULATOR_RATE_SCALE
from tests.refresh import synthetic
from tests.refresh.test_refresh_emulator import _table_hashes

pytestmark = pytest.mark.slow

PAGE = 3
COUNTS = synthetic.Counts(
    clinicaltrials=10, pubmed=8, europepmc=7, openalex=7, crossref=8, chembl=7, cids=7
)


def test_refresh_paging_every_source_publishes_tables_identical_to_build(tmp_path: Path) -> None:
    served = synthetic.write_snapshot(tmp_path / "served", COUNTS)
    # A first refresh carries the bundled registries over: the served snapshot holds them too.
    shutil.copytree(paths.BUNDLED_SNAPSHOT / "registries", served / "registries")
    reference = synthetic.write_reference(tmp_path / "reference", COUNTS)
    server = make_server(served, rate_scale=EMULATOR_RATE_SCALE)
    with running(server):
        result = synthetic.quick_refresh(
            tmp_path / "refreshed", server.base_url, reference, page_size=PAGE
        )
    assert result.complete

    pages = {s: len(snapshot.source_files(result.snapshot_dir, s)) for s in live_sources()}
    assert all(n >= 3 for n in pages.values()), pages
    recorded = str(result.snapshot_dir)
    assert main(["build", "--snapshot", recorded, "--data-dir", str(tmp_path / "refreshed")]) == 0
    version = _manifest(tmp_path / "refreshed")["version"]  # the history tables name it
    built_args = ["--data-dir", str(tmp_path / "built"), "--release-version", version]
    assert main(["build", "--snapshot", str(served), *built_args]) == 0

    refreshed, built = _tables(tmp_path / "refreshed"), _tables(tmp_path / "built")
    assert refreshed == built
    accounting = [_manifest(tmp_path / d)["accounting"]["sources"] for d in ("refreshed", "built")]
    for source in live_sources():
        got, want = ({k: v for k, v in a[source].items() if k != "files"} for a in accounting)
        assert got == want and got["records_read"] > 0, source
    quarantined = _quarantine(tmp_path / "refreshed")
    assert quarantined == _quarantine(tmp_path / "built") and quarantined
    _assert_quarantine_names_its_file(tmp_path / "refreshed", result.snapshot_dir)
    _assert_quarantine_names_its_file(tmp_path / "built", served)
    rows = pq.read_table(_release(tmp_path / "refreshed") / "quarantine.parquet").to_pylist()
    chembl_pages = {row["source_file"] for row in rows if row["source"] == "chembl"}
    assert len(chembl_pages) == pages["chembl"] == 3  # every activity quarantined, page by page


def _release(data_dir: Path) -> Path:
    (folder,) = (data_dir / "releases").iterdir()
    return folder


def _manifest(data_dir: Path) -> dict[str, Any]:
    return json.loads((_release(data_dir) / "manifest.json").read_text())


def _tables(data_dir: Path) -> dict[str, str]:
    """sha256 of every table's Parquet file, quarantine aside (below)."""
    return {name: sha for name, sha in _table_hashes(data_dir).items() if name != "quarantine"}


def _quarantine(data_dir: Path) -> list[tuple[str, ...]]:
    """Quarantine rows, `source_file` left out only where it names a snapshot page.

    A record read from the snapshot names the page it came in, and the refresh records pages of
    three where the served snapshot has one file per source; the curation's own rows (a
    reference file) keep it.
    """
    rows = pq.read_table(_release(data_dir) / "quarantine.parquet").to_pylist()
    return sorted(
        tuple(str(v) for k, v in row.items() if k != "source_file" or row["source"] not in SOURCES)
        for row in rows
    )


def _assert_quarantine_names_its_file(data_dir: Path, snapshot_dir: Path) -> None:
    """Each quarantine row's `source_file` is a file of the built snapshot holding its record."""
    rows = pq.read_table(_release(data_dir) / "quarantine.parquet").to_pylist()
    read = [row for row in rows if row["source"] in SOURCES]  # not the curation's own rows
    assert read
    for row in read:
        parser = SOURCES[row["source"]]
        held = {parser.raw(r) for r in parser.iter_records(snapshot_dir / row["source_file"])}
        assert row["raw"] in held, row["source_file"]

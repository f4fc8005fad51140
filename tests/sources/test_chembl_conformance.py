"""ChEMBL conformance: real web-service pages from shared/samples (drug_indication, molecule)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipelines.sources import chembl

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "chembl"


def _sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip("shared samples not available")
    return path


def test_page_meta_reader_on_a_real_last_page() -> None:
    body = orjson.loads(_sample("drug_indication_list_CHEMBL1094636_page_meta.json").read_bytes())
    items, next_link = chembl.page_items(body)
    assert next_link is None
    assert len(items) == body["page_meta"]["total_count"] == 9
    assert {i["molecule_chembl_id"] for i in items} == {"CHEMBL1094636"}


def test_real_non_activity_page_is_refused_as_a_snapshot_file() -> None:
    with pytest.raises(chembl.SnapshotFormatError, match="activity page"):
        list(chembl.iter_records(_sample("drug_indication_list_CHEMBL1094636_page_meta.json")))


def test_single_molecule_body_has_no_page_meta() -> None:
    body = orjson.loads(_sample("molecule_CHEMBL25_aspirin.json").read_bytes())
    with pytest.raises(ValueError, match="page_meta"):
        chembl.page_items(body)

"""PubChem conformance: a real PUG REST full compound record (aspirin) from shared/samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.sources import pubchem

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "pubchem"


def test_full_compound_record_gives_a_properties_row() -> None:
    path = SAMPLES / "pug_rest_compound_cid2244_record_2d.json"
    if not path.is_file():
        pytest.skip("shared samples not available")
    records = list(pubchem.iter_records(path))
    assert [pubchem.record_key(r) for r in records] == ["CID:2244:record"]
    row = pubchem.parse_record(records[0])["compound_properties"][0]
    assert row == {
        "pubchem_cid": 2244,
        "molecular_formula": "C9H8O4",
        "molecular_weight": 180.159,
        "smiles": "CC(=O)OC1=CC=CC=C1C(=O)O",
        "inchikey": "BSYNRYMUTXBXSQ-UHFFFAOYSA-N",
        "iupac_name": "2-acetyloxybenzoic acid",
    }


def test_substance_record_is_not_a_compound_file() -> None:
    path = SAMPLES / "pug_rest_substance_sid348356775_record_2d.json"
    if not path.is_file():
        pytest.skip("shared samples not available")
    with pytest.raises(pubchem.SnapshotFormatError):
        list(pubchem.iter_records(path))

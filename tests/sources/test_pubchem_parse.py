"""PubChem snapshot files: records, keys, pseudo-rows, throttling header, and the bundled files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.paths import BUNDLED_SNAPSHOT
from pipelines.sources import pubchem
from pipelines.sources.base import RecordError, SnapshotFormatError


def _write(tmp_path: Path, body: object) -> Path:
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    return path


def test_property_table_records_and_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "PropertyTable": {
                "Properties": [
                    {"CID": 1, "MolecularFormula": "C1", "MolecularWeight": "12.5", "SMILES": "C"},
                    {"CID": 2, "IsomericSMILES": "[C@H]", "SMILES": "C", "InChIKey": "K"},
                ]
            }
        },
    )
    records = list(pubchem.iter_records(path))
    assert [pubchem.record_key(r) for r in records] == ["CID:1:properties", "CID:2:properties"]
    first = pubchem.parse_record(records[0])["compound_properties"][0]
    assert first["molecular_weight"] == 12.5 and first["smiles"] == "C"
    second = pubchem.parse_record(records[1])["compound_properties"][0]
    assert second["smiles"] == "[C@H]" and second["molecular_weight"] is None


def test_synonym_rows_keep_pubchem_rank(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"InformationList": {"Information": [{"CID": 7, "Synonym": ["a", " ", "b"]}, {"CID": 8}]}},
    )
    records = list(pubchem.iter_records(path))
    rows = pubchem.parse_record(records[0])["compound_synonyms"]
    assert [(r["synonym"], r["rank"]) for r in rows] == [("a", 1), ("b", 3)]
    assert pubchem.parse_record(records[1]) == {"compound_synonyms": []}
    assert pubchem.record_key(records[1]) == "CID:8:synonyms"


@pytest.mark.parametrize(
    "entry",
    [{"MolecularFormula": "C"}, {"CID": "abc"}, {"CID": 3, "MolecularWeight": "heavy"}],
)
def test_bad_entry_is_a_record_error(tmp_path: Path, entry: dict[str, object]) -> None:
    record = next(
        pubchem.iter_records(_write(tmp_path, {"PropertyTable": {"Properties": [entry]}}))
    )
    with pytest.raises(RecordError):
        pubchem.parse_record(record)


def test_other_json_is_a_snapshot_format_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotFormatError, match="not a PubChem"):
        list(pubchem.iter_records(_write(tmp_path, {"Fault": {"Code": "PUGREST.NotFound"}})))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SnapshotFormatError, match="not JSON"):
        list(pubchem.iter_records(bad))


def test_throttle_header_parsed_and_worst_colour_decides() -> None:
    header = (
        "Request Count status: Yellow (60%), Request Time status: Green (10%), "
        "Service status: Green (20%)"
    )
    assert pubchem.throttle_status(header)["request count"] == ("yellow", 60)
    assert pubchem.throttle_delay(header) == pubchem.THROTTLE_DELAYS["yellow"]
    assert pubchem.throttle_delay(header.replace("Green (10%)", "Red (80%)")) == 5.0
    assert pubchem.throttle_delay(None) == 0.0


def test_batches_and_paths() -> None:
    assert pubchem.batches([3, 1, 3, 2], size=2) == [[1, 2], [3]]
    assert pubchem.property_path([1, 2]).startswith("/rest/pug/compound/cid/1,2/property/")
    assert pubchem.synonyms_path([5]) == "/rest/pug/compound/cid/5/synonyms/JSON"


def test_bundled_snapshot_parses_and_carries_the_reference_values() -> None:
    folder = BUNDLED_SNAPSHOT / "pubchem"
    rows = [
        row
        for path in sorted(folder.glob("*.json"))
        for record in pubchem.iter_records(path)
        for table, table_rows in pubchem.parse_record(record).items()
        if table == "compound_properties"
        for row in table_rows
    ]
    by_cid = {r["pubchem_cid"]: r for r in rows}
    assert by_cid[3034396]["inchikey"] == "LELBFTMXCIIKKX-QVRQZEMUSA-N"
    assert by_cid[5284603]["inchikey"] is None  # oxycodone: the facts give no InChIKey
    assert len(by_cid) == 11

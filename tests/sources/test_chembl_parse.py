"""ChEMBL activity pages: records, compound resolution, numbers, paging links."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.sources import chembl
from pipelines.sources.base import RecordError, SnapshotFormatError


def activity(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "activity_id": 101,
        "molecule_chembl_id": "CHEMBL299031",
        "target_chembl_id": "CHEMBL233",
        "target_pref_name": "Mu opioid receptor",
        "target_organism": "Homo sapiens",
        "standard_type": "Ki",
        "standard_relation": "=",
        "standard_value": "161.0",
        "standard_units": "nM",
        "pchembl_value": "6.79",
        "assay_chembl_id": "CHEMBL100",
        "document_chembl_id": "CHEMBL200",
    }
    base.update(overrides)
    return base


def test_activity_becomes_a_compound_targets_row(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"activities": [activity()], "page_meta": {"next": None}}))
    records = list(chembl.iter_records(path))
    assert chembl.record_key(records[0]) == "activity:101"
    row = chembl.parse_record(records[0])["compound_targets"][0]
    assert row["compound_id"] == "mitragynine"
    assert row["molecule_chembl_id"] == "CHEMBL299031"
    assert (row["source_id"], row["value"], row["pchembl_value"]) == ("101", 161.0, 6.79)
    assert row["assay_organism"] == "Homo sapiens"


def test_null_value_stays_null() -> None:
    row = chembl.parse_record(activity(standard_value=None, pchembl_value=None))
    assert row["compound_targets"][0]["value"] is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"molecule_chembl_id": "CHEMBL25"}, "not in the compound reference"),
        ({"target_chembl_id": None}, "no target_chembl_id"),
        ({"standard_value": "n/a"}, "not a number"),
    ],
)
def test_bad_activity_is_a_record_error(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        chembl.parse_record(activity(**overrides))


def test_non_activity_page_is_a_snapshot_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"molecules": [], "page_meta": {}}))
    with pytest.raises(SnapshotFormatError, match="activity page"):
        list(chembl.iter_records(path))


def test_next_link_is_made_relative_to_the_base_url() -> None:
    path, params = chembl.next_request(
        "/chembl/api/data/activity.json?limit=1000&offset=1000&molecule_chembl_id__in=A,B",
        "https://www.ebi.ac.uk/chembl",
    )
    assert path == "/api/data/activity.json"
    assert params == {"limit": "1000", "offset": "1000", "molecule_chembl_id__in": "A,B"}


def test_activity_params_sorted_and_unique() -> None:
    params = chembl.activity_params(["CHEMBL70", "CHEMBL299031", "CHEMBL70"], limit=50)
    assert params["molecule_chembl_id__in"] == "CHEMBL299031,CHEMBL70"
    assert params["limit"] == "50"

"""Crossref retraction and correction updates, both directions."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipelines.sources import crossref
from pipelines.sources.base import RecordError, SnapshotFormatError


def test_retracted_work_points_at_its_notice() -> None:
    work = {
        "DOI": "10.1/ORIGINAL",
        "title": ["A retracted paper"],
        "issued": {"date-parts": [[2021, 4]]},
        "author": [{"given": "Ann B.", "family": "Lee", "sequence": "first"}],
        "updated-by": [{"DOI": "10.1/notice", "type": "retraction"}],
    }
    pub = crossref.parse_record(work)["publications"][0]
    assert pub["is_retracted"] is True
    assert pub["retracted_by"] == ["DOI:10.1/notice"]
    assert pub["first_author"] == "Lee AB"
    assert pub["publication_date_precision"] == "month"


def test_retraction_notice_points_at_the_original() -> None:
    notice = {"DOI": "10.1/notice", "update-to": [{"DOI": "10.1/ORIGINAL", "type": "retraction"}]}
    pub = crossref.parse_record(notice)["publications"][0]
    assert pub["retracts"] == ["DOI:10.1/original"]
    assert pub["is_retracted"] is False


def test_work_without_doi_is_a_record_error() -> None:
    with pytest.raises(RecordError, match="DOI"):
        crossref.parse_record({"title": ["x"]})


def test_other_message_type_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(orjson.dumps({"status": "ok", "message-type": "member-list", "message": {}}))
    with pytest.raises(SnapshotFormatError, match="work-list"):
        list(crossref.iter_records(path))

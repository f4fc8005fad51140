"""Non-API registries CSV: streaming, header checks and row parsing."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipelines.sources import registries as rg
from pipelines.sources.base import RecordError, SnapshotFormatError


def row(**cells: str) -> dict[str, Any]:
    """A full CSV row: every header column, blank unless given."""
    base = dict.fromkeys(rg.COLUMNS, "")
    base.update(
        registry="onderzoekmetmensen.nl",
        registry_id="52572",
        study_id="omon:52572",
        id_type="nl_omon",
        source_url="https://www.onderzoekmetmensen.nl/en/trial/52572",
    )
    base.update(cells)
    return base


def write_csv(path: Path, rows: list[dict[str, Any]], header: tuple[str, ...] = rg.COLUMNS) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


# --- parse_row -----------------------------------------------------------------------------


def test_row_with_only_required_cells_gives_sparse_study() -> None:
    rows = rg.parse_row(row())
    (study,) = rows["studies"]
    assert study["study_id"] == "omon:52572"
    assert study["evidence_source"] == "registry"
    assert study["registry"] == "onderzoekmetmensen.nl"
    assert study["source_url"] == "https://www.onderzoekmetmensen.nl/en/trial/52572"
    assert study["population"] == "human" and study["design"] == "other"
    assert study["phases"] == [] and study["countries"] == [] and study["flags"] == []
    assert study["enrollment"] is None and study["start_date"] is None
    assert rows["study_identifiers"] == [
        {
            "study_id": "omon:52572",
            "id_type": "nl_omon",
            "id_value": "52572",
            "id_domain": "onderzoekmetmensen.nl",
            "is_alias": False,
        }
    ]
    assert rows["conditions"] == rows["interventions"] == rows["outcomes"] == []


def test_full_row_maps_every_column() -> None:
    rows = rg.parse_row(
        row(
            title="Safety of mitragynine",
            official_title="A trial of mitragynine",
            study_type="INTERVENTIONAL",
            phases="PHASE1;PHASE2",
            overall_status="COMPLETED",
            enrollment="24",
            enrollment_type="ACTUAL",
            start_date="2022-03",
            completion_date="2023",
            lead_sponsor="Maastricht University",
            sponsor_class="OTHER",
            allocation="RANDOMIZED",
            masking="SINGLE",
            countries="Netherlands; Belgium;Netherlands",
            flags="unconfirmed_match:NCT07218549; reconstructed",
        )
    )
    study = rows["studies"][0]
    assert study["title"] == "Safety of mitragynine"
    assert study["official_title"] == "A trial of mitragynine"
    assert study["phases"] == ["PHASE1", "PHASE2"]
    assert study["design"] == "rct"
    assert (study["enrollment"], study["enrollment_type"]) == (24, "ACTUAL")
    assert (study["start_date"], study["start_date_precision"]) == (date(2022, 3, 1), "month")
    assert (study["completion_date"], study["completion_date_precision"]) == (
        date(2023, 1, 1),
        "year",
    )
    assert (study["lead_sponsor"], study["sponsor_class"]) == ("Maastricht University", "OTHER")
    assert (study["allocation"], study["masking"]) == ("RANDOMIZED", "SINGLE")
    assert study["overall_status"] == "COMPLETED"
    assert study["countries"] == ["Belgium", "Netherlands"]
    assert study["flags"] == ["unconfirmed_match:NCT07218549", "reconstructed"]


def test_design_from_phase_when_study_type_blank() -> None:
    assert rg.parse_row(row(phases="PHASE1"))["studies"][0]["design"] == "non_randomised_trial"


def test_conditions_split_and_deduplicated() -> None:
    rows = rg.parse_row(row(conditions="Pain; Kratom use;Pain;"))
    assert [c["condition"] for c in rows["conditions"]] == ["Pain", "Kratom use"]
    assert all(c["condition_category"] is None for c in rows["conditions"])


def test_interventions_type_prefix_to_upper_snake() -> None:
    rows = rg.parse_row(
        row(
            interventions=(
                "Drug: mitragynine;Dietary Supplement: kratom tea 2 g;"
                "Dietary Supplement/Other: kratom powder;placebo;kratom: 2 g daily"
            )
        )
    )
    got = [(i["intervention_type"], i["intervention_name"]) for i in rows["interventions"]]
    assert got == [
        ("DRUG", "mitragynine"),
        ("DIETARY_SUPPLEMENT", "kratom tea 2 g"),
        ("DIETARY_SUPPLEMENT_OTHER", "kratom powder"),
        (None, "placebo"),
        (None, "kratom: 2 g daily"),
    ]
    assert all(
        i["arm_group_labels"] == [] and i["compound_id"] is None for i in rows["interventions"]
    )


def test_duplicate_intervention_names_kept_once() -> None:
    rows = rg.parse_row(row(interventions="Drug: placebo;Other: placebo"))
    assert [(i["intervention_type"], i["intervention_name"]) for i in rows["interventions"]] == [
        ("DRUG", "placebo")
    ]


def test_outcomes_primary_and_secondary_numbered() -> None:
    rows = rg.parse_row(
        row(primary_outcomes="Vital signs; Pain perception", secondary_outcomes="Pharmacokinetics")
    )
    got = [(o["outcome_id"], o["outcome_kind"], o["title"]) for o in rows["outcomes"]]
    assert got == [
        ("omon:52572:P1", "primary", "Vital signs"),
        ("omon:52572:P2", "primary", "Pain perception"),
        ("omon:52572:S1", "secondary", "Pharmacokinetics"),
    ]
    assert {o["source"] for o in rows["outcomes"]} == {"registry_protocol"}


@pytest.mark.parametrize("enrollment", ["twenty", "12.5", "-3", "~40"])
def test_bad_enrollment_raises_record_error(enrollment: str) -> None:
    with pytest.raises(RecordError, match="enrollment is not a whole number"):
        rg.parse_row(row(enrollment=enrollment))


def test_bad_date_raises_record_error_naming_column() -> None:
    with pytest.raises(RecordError, match="omon:52572: completion_date: not a registry date"):
        rg.parse_row(row(completion_date="end of 2024"))


def test_missing_study_id_raises_record_error() -> None:
    with pytest.raises(RecordError, match="no study_id"):
        rg.parse_row(row(study_id="  "))


def test_missing_registry_id_raises_record_error() -> None:
    with pytest.raises(RecordError, match="no registry_id"):
        rg.parse_row(row(registry_id=""))


def test_unknown_id_type_raises_record_error() -> None:
    with pytest.raises(RecordError, match="id_type 'omon'"):
        rg.parse_row(row(id_type="omon"))


def test_record_key_is_study_id() -> None:
    assert rg.record_key(row()) == "omon:52572"
    assert rg.record_key(row(study_id="")) is None


# --- files ---------------------------------------------------------------------------------


def test_iter_records_streams_rows_in_order(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "r.csv",
        [row(), row(study_id="TCTR20200101001", registry_id="TCTR20200101001", id_type="tctr")],
    )
    records = list(rg.iter_records(path))
    assert [rg.record_key(r) for r in records] == ["omon:52572", "TCTR20200101001"]
    assert rg.parse_row(records[1])["study_identifiers"][0]["id_type"] == "tctr"


def test_iter_records_keeps_commas_and_quotes_inside_cells(tmp_path: Path) -> None:
    title = 'Kratom, "ketum" and pain'
    path = write_csv(tmp_path / "r.csv", [row(title=title)])
    (record,) = rg.iter_records(path)
    assert rg.parse_row(record)["studies"][0]["title"] == title


@pytest.mark.parametrize("column", rg.REQUIRED)
def test_missing_required_column_raises_naming_file_and_column(tmp_path: Path, column: str) -> None:
    header = tuple(c for c in rg.COLUMNS if c != column)
    path = write_csv(tmp_path / "r.csv", [row()], header)
    with pytest.raises(SnapshotFormatError, match=f"missing required column '{column}'") as info:
        list(rg.iter_records(path))
    assert str(path) in str(info.value)


def test_empty_file_raises_snapshot_format_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(SnapshotFormatError, match="empty file"):
        list(rg.iter_records(path))


def test_not_utf8_raises_snapshot_format_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(",".join(rg.COLUMNS).encode() + b"\n\xff\xfe\n")
    with pytest.raises(SnapshotFormatError, match="not a readable CSV"):
        list(rg.iter_records(path))


def test_ragged_rows_are_record_errors(tmp_path: Path) -> None:
    good = ",".join(f'"{v}"' for v in row().values())
    path = tmp_path / "r.csv"
    path.write_text(
        ",".join(rg.COLUMNS) + "\n" + good + ',"extra"\n' + "omon,1,omon:1\n", encoding="utf-8"
    )
    long_row, short_row = list(rg.iter_records(path))
    with pytest.raises(RecordError, match="1 more cell"):
        rg.parse_row(long_row)
    with pytest.raises(RecordError, match="fewer cells"):
        rg.parse_row(short_row)
    assert all(isinstance(key, str) for key in long_row)  # JSON-serialisable for quarantine

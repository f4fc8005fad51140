"""Real ClinicalTrials.gov v2 responses (../shared/samples/ctgov) parse into schema-valid rows.

Expected values are read from each file in the test itself, never typed in from memory.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.sources import clinicaltrials as ct
from schemas.registry import TABLES_BY_NAME

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "ctgov"
FILES = sorted(SAMPLES.glob("*.json")) if SAMPLES.is_dir() else []

pytestmark = pytest.mark.skipif(not FILES, reason=f"no ClinicalTrials.gov samples in {SAMPLES}")

ENRICHED = {"conditions": "condition_category", "outcomes": "domain"}
"""Columns a later stage fills from vocabularies; filled with 'other' here to validate the rest."""


def load(path: Path) -> list[dict[str, Any]]:
    body = json.loads(path.read_text(encoding="utf-8"))
    return body.get("studies", [body])


def sample(name_part: str) -> Path:
    (path,) = [p for p in FILES if name_part in p.name]
    return path


def parsed(path: Path) -> dict[str, dict[str, Any]]:
    """nctId -> parse_study rows, for every study iter_records streams from the file."""
    return {ct.record_key(s) or "": ct.parse_study(s) for s in ct.iter_records(path)}


def iso(text: str | None) -> date | None:
    """A registry date as the first day of its period: "2028-08" -> 2028-08-01."""
    if text is None:
        return None
    year, month, day = ([*map(int, text.split("-")), 1, 1])[:3]
    return date(year, month, day)


def struct_date(status: dict[str, Any], key: str) -> date | None:
    """`statusModule[key].date`; a fields-filtered page may leave the struct out."""
    return iso(status.get(key, {}).get("date"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_sample_streams_exactly_its_studies(path: Path) -> None:
    expected = [s["protocolSection"]["identificationModule"]["nctId"] for s in load(path)]
    assert [ct.record_key(s) for s in ct.iter_records(path)] == expected
    assert list(ct.iter_records(path)) == load(path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_sample_maps_protocol_fields(path: Path) -> None:
    rows_by_nct = parsed(path)
    for raw in load(path):
        protocol = raw["protocolSection"]
        ident, status = protocol["identificationModule"], protocol["statusModule"]
        design = protocol.get("designModule", {})
        rows = rows_by_nct[ident["nctId"]]
        study = rows["studies"][0]
        assert study["title"] == ident.get("briefTitle")
        assert study["official_title"] == ident.get("officialTitle")
        assert study["phases"] == design.get("phases", [])
        assert study["study_type"] == design.get("studyType")
        assert study["enrollment"] == design.get("enrollmentInfo", {}).get("count")
        assert study["overall_status"] == status["overallStatus"]
        assert study["start_date"] == struct_date(status, "startDateStruct")
        assert study["completion_date"] == struct_date(status, "completionDateStruct")
        assert study["first_posted"] == struct_date(status, "studyFirstPostDateStruct")
        assert study["has_results"] == raw.get("hasResults")
        locations = protocol.get("contactsLocationsModule", {}).get("locations", [])
        assert study["countries"] == sorted({loc["country"] for loc in locations})
        conditions = protocol.get("conditionsModule", {}).get("conditions", [])
        assert [c["condition"] for c in rows["conditions"]] == list(dict.fromkeys(conditions))
        outcomes = protocol.get("outcomesModule", {})
        protocol_rows = [o for o in rows["outcomes"] if o["source"] == "registry_protocol"]
        assert len(protocol_rows) == sum(
            len(outcomes.get(k, []))
            for k in ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes")
        )
        if outcomes.get("primaryOutcomes"):
            assert protocol_rows[0]["title"] == outcomes["primaryOutcomes"][0]["measure"]
        names = [
            i["name"] for i in protocol.get("armsInterventionsModule", {}).get("interventions", [])
        ]
        assert [i["intervention_name"] for i in rows["interventions"]] == list(dict.fromkeys(names))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_sample_validates_against_the_table_schemas(path: Path) -> None:
    rows: dict[str, list[dict[str, Any]]] = {}
    for study_rows in parsed(path).values():
        for table, table_rows in study_rows.items():
            rows.setdefault(table, []).extend(table_rows)
    for table, table_rows in rows.items():
        if table == ct.STUB_TABLE or not table_rows:
            continue
        spec = TABLES_BY_NAME[table]
        frame = pd.DataFrame(table_rows, columns=spec.columns)
        if table in ENRICHED:
            assert frame[ENRICHED[table]].isna().all()
            frame[ENRICHED[table]] = "other"
        spec.model.validate(frame, lazy=True)


LIST_PAGES = [p for p in FILES if "studies" in json.loads(p.read_bytes())]


@pytest.mark.parametrize("path", LIST_PAGES, ids=lambda p: p.name)
def test_list_page_yields_exactly_its_studies_with_or_without_a_token(path: Path) -> None:
    """A page's studies are the records, whether it ends the query or names a nextPageToken."""
    body = json.loads(path.read_text(encoding="utf-8"))
    keys = [ct.record_key(s) for s in ct.iter_records(path)]
    assert keys == [s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]]


def test_samples_hold_a_last_page_and_a_page_with_a_token() -> None:
    tokens = ["nextPageToken" in json.loads(p.read_bytes()) for p in LIST_PAGES]
    assert True in tokens and False in tokens


def test_unknown_status_keeps_last_known_status() -> None:
    (raw,) = load(sample("unknown_status"))
    status = raw["protocolSection"]["statusModule"]
    assert status["overallStatus"] == "UNKNOWN"
    study = parsed(sample("unknown_status"))[
        raw["protocolSection"]["identificationModule"]["nctId"]
    ]
    row = study["studies"][0]
    assert row["overall_status"] == "UNKNOWN"
    assert row["last_known_status"] == status["lastKnownStatus"]
    completion = status["completionDateStruct"]["date"]
    assert row["completion_date"] == iso(completion)


def test_observational_sample_design() -> None:
    (raw,) = load(sample("observational"))
    info = raw["protocolSection"]["designModule"]["designInfo"]
    row = next(iter(parsed(sample("observational")).values()))["studies"][0]
    assert row["design"] == "observational"
    assert row["observational_model"] == info["observationalModel"]
    assert row["time_perspective"] == info["timePerspective"]
    assert row["acronym"] == raw["protocolSection"]["identificationModule"]["acronym"]


def test_results_sample_outcomes_values_and_adverse_events() -> None:
    path = sample("with_results")
    (raw,) = load(path)
    nct = raw["protocolSection"]["identificationModule"]["nctId"]
    rows = parsed(path)[nct]
    results = raw["resultsSection"]
    measures = results["outcomeMeasuresModule"]["outcomeMeasures"]
    result_outcomes = [o for o in rows["outcomes"] if o["outcome_id"].split(":")[1][0] == "R"]
    assert [o["title"] for o in result_outcomes] == [m["title"] for m in measures]
    assert [o["param_type"] for o in result_outcomes] == [m["paramType"] for m in measures]

    # the first cell of the first measure with a class title, read straight from the file
    n, measure = next((i, m) for i, m in enumerate(measures, 1) if m["classes"][0].get("title"))
    klass = measure["classes"][0]
    cell = klass["categories"][0]["measurements"][0]
    group = next(g["title"] for g in measure["groups"] if g["id"] == cell["groupId"])
    denoms = klass.get("denoms", measure["denoms"])[0]["counts"]
    (value,) = [
        r
        for r in rows["outcome_results"]
        if r["outcome_id"] == f"{nct}:R{n}"
        and r["group_title"] == group
        and r["category"] == klass["title"]
    ]
    assert value["value"] == float(cell["value"]) and value["value_text"] == cell["value"]
    assert value["lower_limit"] == float(cell["lowerLimit"])
    assert value["upper_limit"] == float(cell["upperLimit"])
    assert value["dispersion_type"] == measure["dispersionType"]
    assert value["unit"] == measure["unitOfMeasure"]
    assert value["participants"] == int(
        next(c["value"] for c in denoms if c["groupId"] == cell["groupId"])
    )
    cells = sum(
        len(cat["measurements"]) for m in measures for k in m["classes"] for cat in k["categories"]
    )
    ae = results["adverseEventsModule"]
    events = ae.get("seriousEvents", []) + ae.get("otherEvents", [])
    ae_rows = [r for r in rows["outcome_results"] if r["outcome_id"] == f"{nct}:AE1"]
    assert len(ae_rows) == sum(len(e["stats"]) for e in events)
    assert len(rows["outcome_results"]) == cells + len(ae_rows)
    first = ae["otherEvents"][0]
    stat = first["stats"][0]
    group = next(g["title"] for g in ae["eventGroups"] if g["id"] == stat["groupId"])
    (ae_row,) = [
        r
        for r in ae_rows
        if r["category"] == f"other: {first['term']}" and r["group_title"] == group
    ]
    assert (ae_row["value"], ae_row["participants"]) == (stat["numAffected"], stat["numAtRisk"])


def test_results_sample_references_and_mesh() -> None:
    path = sample("with_results")
    (raw,) = load(path)
    rows = next(iter(parsed(path).values()))
    pmids = [
        r["pmid"] for r in raw["protocolSection"]["referencesModule"]["references"] if "pmid" in r
    ]
    assert [s["pmid"] for s in rows["publication_stubs"]] == pmids
    assert [p["publication_id"] for p in rows["study_publications"]] == [f"PMID:{p}" for p in pmids]
    meshes = {
        m["term"].casefold(): m["id"]
        for m in raw["derivedSection"]["conditionBrowseModule"]["meshes"]
    }
    for condition in rows["conditions"]:
        assert condition["mesh_id"] == meshes.get(condition["condition"].casefold())

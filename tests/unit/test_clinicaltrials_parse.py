"""ClinicalTrials.gov v2 parsing on small hand-written studies, one edge case each."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipelines.sources import clinicaltrials as ct
from pipelines.sources.base import RecordError, SnapshotFormatError

NCT = "NCT09990001"


def minimal(nct: str = NCT, **status: Any) -> dict[str, Any]:
    """A study with nothing but its id and status, as the API can return it."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct},
            "statusModule": {"overallStatus": "RECRUITING", **status},
        }
    }


def with_modules(**modules: Any) -> dict[str, Any]:
    study = minimal()
    study["protocolSection"].update(modules)
    return study


def results_study() -> dict[str, Any]:
    """A results section with one plain table, one with classes/categories, and AEs."""
    study = minimal()
    study["hasResults"] = True
    groups = [{"id": "OG000", "title": "Kratom"}, {"id": "OG001", "title": "Placebo"}]
    study["resultsSection"] = {
        "outcomeMeasuresModule": {
            "outcomeMeasures": [
                {
                    "type": "PRIMARY",
                    "title": "COWS score",
                    "paramType": "MEAN",
                    "dispersionType": "STANDARD_DEVIATION",
                    "unitOfMeasure": "score on a scale",
                    "timeFrame": "Day 7",
                    "groups": groups,
                    "denoms": [
                        {
                            "units": "Participants",
                            "counts": [
                                {"groupId": "OG000", "value": "10"},
                                {"groupId": "OG001", "value": "9"},
                            ],
                        }
                    ],
                    "classes": [
                        {
                            "categories": [
                                {
                                    "measurements": [
                                        {"groupId": "OG000", "value": "4.5", "spread": "1.25"},
                                        {"groupId": "OG001", "value": "NA", "spread": "NA"},
                                    ]
                                }
                            ]
                        }
                    ],
                },
                {
                    "type": "POST_HOC",
                    "title": "Craving",
                    "paramType": "COUNT_OF_PARTICIPANTS",
                    "unitOfMeasure": "Participants",
                    "groups": groups,
                    "denoms": [
                        {"units": "Eyes", "counts": [{"groupId": "OG000", "value": "40"}]},
                        {
                            "units": "Participants",
                            "counts": [
                                {"groupId": "OG000", "value": "10"},
                                {"groupId": "OG001", "value": "9"},
                            ],
                        },
                    ],
                    "classes": [
                        {
                            "title": "Week 1",
                            "denoms": [
                                {
                                    "units": "Participants",
                                    "counts": [
                                        {"groupId": "OG000", "value": "8"},
                                        {"groupId": "OG001", "value": "7"},
                                    ],
                                }
                            ],
                            "categories": [
                                {
                                    "title": "Yes",
                                    "measurements": [
                                        {"groupId": "OG000", "value": "3"},
                                        {"groupId": "OG001", "value": "5"},
                                    ],
                                },
                                {
                                    "title": "No",
                                    "measurements": [
                                        {
                                            "groupId": "OG000",
                                            "value": "5",
                                            "lowerLimit": "1.5",
                                            "upperLimit": "9",
                                        },
                                    ],
                                },
                            ],
                        },
                        {
                            "title": "Week 2",
                            "categories": [
                                {
                                    "measurements": [
                                        {"groupId": "OG001", "value": "2"},
                                    ]
                                }
                            ],
                        },
                    ],
                },
            ]
        },
        "adverseEventsModule": {
            "timeFrame": "28 days",
            "eventGroups": [
                {"id": "EG000", "title": "Kratom"},
                {"id": "EG001", "title": "Placebo"},
            ],
            "seriousEvents": [
                {
                    "term": "Seizure",
                    "organSystem": "Nervous system disorders",
                    "stats": [
                        {"groupId": "EG000", "numAffected": 1, "numAtRisk": 10},
                    ],
                },
            ],
            "otherEvents": [
                {
                    "term": "Nausea",
                    "organSystem": "Gastrointestinal disorders",
                    "stats": [
                        {"groupId": "EG000", "numAffected": 3, "numAtRisk": 10},
                        {"groupId": "EG001", "numAffected": 0, "numAtRisk": 9},
                    ],
                },
                {
                    "term": "Pain",
                    "organSystem": "General disorders",
                    "stats": [
                        {"groupId": "EG000", "numAffected": 2, "numAtRisk": 10},
                    ],
                },
                {
                    "term": "Pain",
                    "organSystem": "Musculoskeletal disorders",
                    "stats": [
                        {"groupId": "EG000", "numAffected": 1, "numAtRisk": 10},
                    ],
                },
            ],
        },
    }
    return study


def by_id(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


# --- one study -----------------------------------------------------------------------------


def test_study_with_only_nct_and_status_gives_one_sparse_study() -> None:
    rows = ct.parse_study(minimal())
    assert set(rows) == set(ct.TABLES)
    (study,) = rows["studies"]
    assert study["study_id"] == NCT
    assert study["registry"] == "clinicaltrials.gov"
    assert study["evidence_source"] == "registry"
    assert study["overall_status"] == "RECRUITING"
    assert study["title"] is None and study["enrollment"] is None
    assert study["start_date"] is None and study["start_date_precision"] is None
    assert study["phases"] == [] and study["countries"] == [] and study["collaborators"] == []
    assert study["who_masked"] == [] and study["flags"] == []
    assert study["design"] == "other" and study["population"] == "human"
    assert study["has_results"] is None and study["source_url"] is None
    assert rows["study_identifiers"] == [
        {"study_id": NCT, "id_type": "nct", "id_value": NCT, "id_domain": None, "is_alias": False}
    ]
    for table in ("conditions", "interventions", "outcomes", "outcome_results"):
        assert rows[table] == []


def test_missing_nct_id_raises_record_error() -> None:
    study = minimal()
    del study["protocolSection"]["identificationModule"]["nctId"]
    with pytest.raises(RecordError, match="nctId"):
        ct.parse_study(study)
    assert ct.record_key(study) is None


def test_missing_protocol_section_raises_record_error() -> None:
    with pytest.raises(RecordError, match="nctId"):
        ct.parse_study({"hasResults": False})


def test_record_key_is_the_nct_id() -> None:
    assert ct.record_key(minimal()) == NCT


def test_partial_dates_keep_their_precision() -> None:
    rows = ct.parse_study(
        minimal(
            startDateStruct={"date": "2023-08", "type": "ACTUAL"},
            primaryCompletionDateStruct={"date": "2024", "type": "ESTIMATED"},
            completionDateStruct={"date": "2024-01-23", "type": "ACTUAL"},
            studyFirstPostDateStruct={"date": "2023-10-10", "type": "ACTUAL"},
            lastUpdatePostDateStruct={"date": "2025-09-29", "type": "ACTUAL"},
        )
    )
    study = rows["studies"][0]
    assert (study["start_date"], study["start_date_precision"]) == (date(2023, 8, 1), "month")
    assert study["primary_completion_date"] == date(2024, 1, 1)
    assert study["primary_completion_date_precision"] == "year"
    assert study["completion_date_precision"] == "day"
    assert study["first_posted"] == date(2023, 10, 10)
    assert study["last_update_posted"] == date(2025, 9, 29)
    assert study["results_first_posted"] is None


def test_malformed_date_raises_record_error_naming_the_field() -> None:
    with pytest.raises(RecordError, match=r"NCT09990001: statusModule\.startDateStruct\.date"):
        ct.parse_study(minimal(startDateStruct={"date": "sometime in 2023"}))


def test_non_string_date_raises_record_error() -> None:
    with pytest.raises(RecordError, match="completionDateStruct"):
        ct.parse_study(minimal(completionDateStruct={"date": 2023}))


def test_several_phases_and_design_fields() -> None:
    study = with_modules(
        designModule={
            "studyType": "INTERVENTIONAL",
            "phases": ["PHASE2", "PHASE3"],
            "designInfo": {
                "allocation": "RANDOMIZED",
                "interventionModel": "CROSSOVER",
                "primaryPurpose": "TREATMENT",
                "maskingInfo": {"masking": "DOUBLE", "whoMasked": ["PARTICIPANT", "INVESTIGATOR"]},
            },
            "enrollmentInfo": {"count": 40, "type": "ACTUAL"},
        }
    )
    row = ct.parse_study(study)["studies"][0]
    assert row["phases"] == ["PHASE2", "PHASE3"]
    assert row["design"] == "rct"
    assert (row["enrollment"], row["enrollment_type"]) == (40, "ACTUAL")
    assert row["masking"] == "DOUBLE"
    assert row["who_masked"] == ["PARTICIPANT", "INVESTIGATOR"]
    assert row["intervention_model"] == "CROSSOVER"


def test_negative_enrollment_raises_record_error() -> None:
    study = with_modules(designModule={"enrollmentInfo": {"count": -3}})
    with pytest.raises(RecordError, match=r"enrollmentInfo\.count"):
        ct.parse_study(study)


def test_observational_design_fields() -> None:
    study = with_modules(
        designModule={
            "studyType": "OBSERVATIONAL",
            "designInfo": {"observationalModel": "COHORT", "timePerspective": "PROSPECTIVE"},
        }
    )
    row = ct.parse_study(study)["studies"][0]
    assert row["design"] == "observational"
    assert (row["observational_model"], row["time_perspective"]) == ("COHORT", "PROSPECTIVE")


def test_unknown_status_keeps_last_known_status() -> None:
    study = minimal(overallStatus="UNKNOWN", lastKnownStatus="ACTIVE_NOT_RECRUITING")
    row = ct.parse_study(study)["studies"][0]
    assert (row["overall_status"], row["last_known_status"]) == ("UNKNOWN", "ACTIVE_NOT_RECRUITING")


def test_countries_sorted_unique_from_locations() -> None:
    study = with_modules(
        contactsLocationsModule={
            "locations": [
                {"facility": "A", "country": "United States"},
                {"facility": "B", "country": "Malaysia"},
                {"facility": "C", "country": "United States"},
                {"facility": "D"},
            ]
        }
    )
    assert ct.parse_study(study)["studies"][0]["countries"] == ["Malaysia", "United States"]


def test_sponsor_eligibility_and_titles() -> None:
    study = with_modules(
        sponsorCollaboratorsModule={
            "leadSponsor": {"name": "Sponsor U", "class": "OTHER"},
            "collaborators": [{"name": "NIDA", "class": "NIH"}, {"name": " "}],
        },
        eligibilityModule={
            "sex": "ALL",
            "minimumAge": "18 Years",
            "maximumAge": "65 Years",
            "healthyVolunteers": True,
        },
    )
    study["protocolSection"]["identificationModule"].update(
        briefTitle="Brief", officialTitle="Official", acronym="ACR"
    )
    study["hasResults"] = False
    row = ct.parse_study(study)["studies"][0]
    assert (row["title"], row["official_title"], row["acronym"]) == ("Brief", "Official", "ACR")
    assert (row["lead_sponsor"], row["sponsor_class"]) == ("Sponsor U", "OTHER")
    assert row["collaborators"] == ["NIDA"]
    assert (row["sex"], row["minimum_age"], row["maximum_age"]) == ("ALL", "18 Years", "65 Years")
    assert row["healthy_volunteers"] is True
    assert row["has_results"] is False


# --- identifiers ---------------------------------------------------------------------------


def test_nct_aliases_org_and_secondary_ids() -> None:
    study = minimal()
    study["protocolSection"]["identificationModule"].update(
        nctIdAliases=["NCT09990002", "NCT09990003"],
        orgStudyIdInfo={"id": "ORG-1"},
        organization={"fullName": "Org University"},
        secondaryIdInfos=[
            {"id": "R01DA000001", "type": "NIH"},
            {"id": "ISRCTN12345678", "type": "REGISTRY", "domain": "ISRCTN"},
            {"id": "2019-001234-56", "type": "EUDRACT_NUMBER"},
            {"id": "EudraCT 2018-004321-11"},
            {"id": "2022-500001-23-00", "type": "CTIS"},
            {"id": "CTIS 2023-500002-24-01"},
            {"id": "NL-OMON52572", "type": "REGISTRY"},
            {"id": "NL12345"},
            {"id": "TCTR20200101001"},
            {"id": "ACTRN12620000001234"},
            {"id": "X-1", "type": "OTHER", "domain": "Site A"},
            {"id": "X-1", "type": "OTHER", "domain": "Site B"},
            {"id": "X-1", "type": "OTHER", "domain": "Site A"},
        ],
    )
    rows = ct.parse_study(study)["study_identifiers"]
    assert {r["id_value"] for r in rows if r["is_alias"]} == {"NCT09990002", "NCT09990003"}
    got = {(r["id_type"], r["id_value"]): r["id_domain"] for r in rows}
    assert got == {
        ("nct", NCT): None,
        ("nct", "NCT09990002"): None,
        ("nct", "NCT09990003"): None,
        ("org_study_id", "ORG-1"): "Org University",
        ("secondary", "R01DA000001"): "NIH",
        ("isrctn", "ISRCTN12345678"): "ISRCTN",
        ("euctr", "2019-001234-56"): "EUDRACT_NUMBER",
        ("euctr", "EudraCT 2018-004321-11"): None,
        ("ctis", "2022-500001-23-00"): "CTIS",
        ("ctis", "CTIS 2023-500002-24-01"): None,
        ("nl_omon", "NL-OMON52572"): "REGISTRY",
        ("nl_omon", "NL12345"): None,
        ("tctr", "TCTR20200101001"): None,
        ("anzctr", "ACTRN12620000001234"): None,
        ("secondary", "X-1"): "Site A; Site B",
    }
    assert len(rows) == len(got)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ISRCTN1234567", "secondary"),
        ("2019-00123-56", "secondary"),
        ("NL-OMONX", "secondary"),
        ("U54AT008909", "secondary"),
        ("EUCTR2019-001234-56-GB", "euctr"),
    ],
)
def test_secondary_id_type_only_matches_whole_registry_ids(value: str, expected: str) -> None:
    assert ct.secondary_id_type(value) == expected


# --- conditions and interventions ----------------------------------------------------------


def test_conditions_mesh_only_from_exact_case_insensitive_match() -> None:
    study = with_modules(conditionsModule={"conditions": ["opioid use disorder", "Kratom", "Pain"]})
    study["derivedSection"] = {
        "conditionBrowseModule": {
            "meshes": [
                {"id": "D009293", "term": "Opioid-Related Disorders"},
                {"id": "D010146", "term": "Pain"},
                {"id": "D000079524", "term": "Opioid Use Disorder"},
            ]
        }
    }
    rows = by_id(ct.parse_study(study)["conditions"], "condition")
    assert rows["opioid use disorder"]["mesh_term"] == "Opioid Use Disorder"
    assert rows["opioid use disorder"]["mesh_id"] == "D000079524"
    assert rows["Pain"]["mesh_id"] == "D010146"
    assert rows["Kratom"]["mesh_term"] is None and rows["Kratom"]["mesh_id"] is None
    assert all(row["condition_category"] is None for row in rows.values())


def test_duplicate_condition_kept_once() -> None:
    study = with_modules(conditionsModule={"conditions": ["Pain", "Pain"]})
    assert len(ct.parse_study(study)["conditions"]) == 1


def test_interventions_with_same_name_merge_arms() -> None:
    study = with_modules(
        armsInterventionsModule={
            "interventions": [
                {
                    "type": "DRUG",
                    "name": "Kratom",
                    "armGroupLabels": ["Low dose"],
                    "otherNames": ["Ketum"],
                },
                {"type": "DRUG", "name": "Placebo", "armGroupLabels": ["Placebo"]},
                {
                    "type": "DRUG",
                    "name": "Kratom",
                    "armGroupLabels": ["High dose", "Low dose"],
                    "otherNames": ["Mitragyna speciosa", "Ketum"],
                },
            ]
        }
    )
    rows = by_id(ct.parse_study(study)["interventions"], "intervention_name")
    assert list(rows) == ["Kratom", "Placebo"]
    assert rows["Kratom"]["arm_group_labels"] == ["Low dose", "High dose"]
    assert rows["Kratom"]["other_names"] == ["Ketum", "Mitragyna speciosa"]
    assert rows["Kratom"]["intervention_type"] == "DRUG"
    assert rows["Placebo"]["other_names"] == []
    assert rows["Kratom"]["compound_id"] is None and rows["Kratom"]["product_form"] is None


def test_intervention_description_is_staged_for_dose_reading() -> None:
    """Staging-only: the dose parser reads it (pipelines/normalize/dosing.py); not published."""
    study = with_modules(
        armsInterventionsModule={
            "interventions": [
                {"type": "DRUG", "name": "Kratom", "description": "2 g leaf powder daily"},
                {"type": "DRUG", "name": "Placebo"},
            ]
        }
    )
    rows = by_id(ct.parse_study(study)["interventions"], "intervention_name")
    assert rows["Kratom"]["description"] == "2 g leaf powder daily"
    assert rows["Placebo"]["description"] is None


# --- outcomes and results ------------------------------------------------------------------


def test_protocol_outcomes_numbered_per_kind_in_registry_order() -> None:
    study = with_modules(
        outcomesModule={
            "primaryOutcomes": [{"measure": "COWS", "timeFrame": "Day 1", "description": "x"}],
            "secondaryOutcomes": [{"measure": "SOWS"}, {"measure": "Craving VAS"}],
            "otherOutcomes": [{"measure": "Sleep"}],
        }
    )
    rows = ct.parse_study(study)["outcomes"]
    assert [(r["outcome_id"], r["outcome_kind"], r["title"]) for r in rows] == [
        (f"{NCT}:P1", "primary", "COWS"),
        (f"{NCT}:S1", "secondary", "SOWS"),
        (f"{NCT}:S2", "secondary", "Craving VAS"),
        (f"{NCT}:O1", "other", "Sleep"),
    ]
    assert rows[0]["time_frame"] == "Day 1"
    assert {r["source"] for r in rows} == {"registry_protocol"}
    assert all(r["domain"] is None and r["instrument"] is None for r in rows)
    assert all("description" not in r for r in rows)


def test_results_outcomes_kinds_and_units() -> None:
    outcomes = by_id(ct.parse_study(results_study())["outcomes"], "outcome_id")
    assert outcomes[f"{NCT}:R1"]["outcome_kind"] == "primary"
    assert outcomes[f"{NCT}:R1"]["param_type"] == "MEAN"
    assert outcomes[f"{NCT}:R1"]["unit"] == "score on a scale"
    assert outcomes[f"{NCT}:R2"]["outcome_kind"] == "other"
    assert outcomes[f"{NCT}:AE1"]["outcome_kind"] == "adverse_events"
    assert outcomes[f"{NCT}:AE1"]["title"] == "Adverse events"
    assert outcomes[f"{NCT}:AE1"]["time_frame"] == "28 days"
    assert {o["source"] for o in outcomes.values()} == {"registry_results"}


def test_results_values_with_spread_and_non_numeric_value() -> None:
    rows = [
        r
        for r in ct.parse_study(results_study())["outcome_results"]
        if r["outcome_id"] == f"{NCT}:R1"
    ]
    kratom, placebo = rows
    assert (kratom["group_title"], kratom["category"]) == ("Kratom", "")
    assert (kratom["value"], kratom["value_text"]) == (4.5, "4.5")
    assert (kratom["dispersion_type"], kratom["dispersion_value"]) == ("STANDARD_DEVIATION", 1.25)
    assert kratom["participants"] == 10
    assert (placebo["value"], placebo["value_text"], placebo["dispersion_value"]) == (
        None,
        "NA",
        None,
    )
    assert placebo["participants"] == 9


def test_results_classes_categories_and_class_denominators() -> None:
    rows = [
        r
        for r in ct.parse_study(results_study())["outcome_results"]
        if r["outcome_id"] == f"{NCT}:R2"
    ]
    cells = {(r["group_title"], r["category"]): r for r in rows}
    assert set(cells) == {
        ("Kratom", "Week 1 / Yes"),
        ("Placebo", "Week 1 / Yes"),
        ("Kratom", "Week 1 / No"),
        ("Placebo", "Week 2"),
    }
    assert cells[("Kratom", "Week 1 / Yes")]["participants"] == 8  # class denominator wins
    assert cells[("Placebo", "Week 2")]["participants"] == 9  # measure's Participants denominator
    no = cells[("Kratom", "Week 1 / No")]
    assert (no["lower_limit"], no["upper_limit"], no["value"]) == (1.5, 9.0, 5.0)
    assert {r["param_type"] for r in rows} == {"COUNT_OF_PARTICIPANTS"}


def test_adverse_events_rows_per_group_and_term() -> None:
    rows = [
        r
        for r in ct.parse_study(results_study())["outcome_results"]
        if r["outcome_id"] == f"{NCT}:AE1"
    ]
    cells = {(r["group_title"], r["category"]): (r["value"], r["participants"]) for r in rows}
    assert cells == {
        ("Kratom", "serious: Seizure"): (1.0, 10),
        ("Kratom", "other: Nausea"): (3.0, 10),
        ("Placebo", "other: Nausea"): (0.0, 9),
        ("Kratom", "other: Pain (General disorders)"): (2.0, 10),
        ("Kratom", "other: Pain (Musculoskeletal disorders)"): (1.0, 10),
    }
    assert {r["param_type"] for r in rows} == {"COUNT_OF_PARTICIPANTS"}


def test_result_keys_are_unique() -> None:
    rows = ct.parse_study(results_study())["outcome_results"]
    keys = [(r["outcome_id"], r["group_title"], r["param_type"], r["category"]) for r in rows]
    assert len(keys) == len(set(keys)) == 11


def test_no_adverse_events_gives_no_ae_outcome() -> None:
    study = results_study()
    study["resultsSection"]["adverseEventsModule"] = {
        "eventGroups": [{"id": "EG000", "title": "Kratom"}]
    }
    ids = [o["outcome_id"] for o in ct.parse_study(study)["outcomes"]]
    assert f"{NCT}:AE1" not in ids


def test_measurement_for_unknown_group_raises_record_error() -> None:
    study = results_study()
    measure = study["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][0]
    measure["classes"][0]["categories"][0]["measurements"][0]["groupId"] = "OG999"
    with pytest.raises(RecordError, match="OG999"):
        ct.parse_study(study)


def test_results_measure_without_title_raises_record_error() -> None:
    study = results_study()
    del study["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][1]["title"]
    with pytest.raises(RecordError, match=f"{NCT}:R2: title is missing"):
        ct.parse_study(study)


# --- references ----------------------------------------------------------------------------


def test_references_with_pmid_become_links_and_stubs() -> None:
    study = with_modules(
        referencesModule={
            "references": [
                {"pmid": "32607084", "type": "RESULT", "citation": "..."},
                {"pmid": "35335999", "type": "BACKGROUND"},
                {"pmid": "36924284", "type": "DERIVED"},
                {"type": "BACKGROUND", "citation": "no pmid"},
                {"pmid": "32607084", "type": "BACKGROUND"},
            ]
        }
    )
    rows = ct.parse_study(study)
    links = {r["publication_id"]: r["link_type"] for r in rows["study_publications"]}
    assert links == {
        "PMID:32607084": "result",
        "PMID:35335999": "background",
        "PMID:36924284": "derived",
    }
    assert {r["link_source"] for r in rows["study_publications"]} == {"registry_reference"}
    assert rows["publication_stubs"] == [
        {"publication_id": "PMID:32607084", "pmid": "32607084"},
        {"publication_id": "PMID:35335999", "pmid": "35335999"},
        {"publication_id": "PMID:36924284", "pmid": "36924284"},
    ]


def test_parse_does_not_mutate_the_study() -> None:
    study = results_study()
    before = copy.deepcopy(study)
    ct.parse_study(study)
    assert study == before


# --- snapshot files ------------------------------------------------------------------------


def write(tmp_path: Path, name: str, body: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    return path


def test_iter_records_streams_every_study_of_a_page(tmp_path: Path) -> None:
    page = {
        "studies": [minimal("NCT09990001"), minimal("NCT09990002"), minimal("NCT09990003")],
        "nextPageToken": "abc",
    }
    path = write(tmp_path, "p.json", json.dumps(page))
    assert [ct.record_key(s) for s in ct.iter_records(path)] == [
        "NCT09990001",
        "NCT09990002",
        "NCT09990003",
    ]


def test_iter_records_page_with_count_first_and_floats(tmp_path: Path) -> None:
    study = minimal()
    study["protocolSection"]["contactsLocationsModule"] = {
        "locations": [{"geoPoint": {"lat": 41.82399, "lon": -71.41283}}]
    }
    path = write(tmp_path, "p.json", json.dumps({"totalCount": 1, "studies": [study]}))
    (got,) = list(ct.iter_records(path))
    assert got == study
    lat = got["protocolSection"]["contactsLocationsModule"]["locations"][0]["geoPoint"]["lat"]
    assert type(lat) is float


def test_iter_records_empty_page_yields_nothing(tmp_path: Path) -> None:
    assert list(ct.iter_records(write(tmp_path, "p.json", '{"studies": []}'))) == []


def test_iter_records_single_study_file(tmp_path: Path) -> None:
    study = results_study()
    path = write(tmp_path, "NCT09990001.json", json.dumps(study))
    assert list(ct.iter_records(path)) == [study]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"studies": [{"protocolSection": ', "malformed JSON"),
        ('{"studies": []} trailing', "malformed JSON"),
        ("", "malformed JSON: parse error: premature EOF"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "empty JSON object"),
        ('{"apiVersion": "2.0.3"}', "unknown top-level key 'apiVersion'"),
        ('{"studies": {"a": 1}}', "'studies' is not a list"),
        ('{"studies": [1]}', "not a study object"),
        ('{"nextPageToken": "x"}', "without a 'studies' list"),
    ],
)
def test_iter_records_bad_file_raises_snapshot_format_error(
    tmp_path: Path, body: str, problem: str
) -> None:
    path = write(tmp_path, "bad.json", body)
    with pytest.raises(SnapshotFormatError, match=problem) as info:
        list(ct.iter_records(path))
    assert info.value.path == path
    assert str(path) in str(info.value)

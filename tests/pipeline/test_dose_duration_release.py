"""Dose and duration columns of a real build: a real ClinicalTrials.gov record with time
frames (../shared/samples/ctgov) beside bundled kratom records whose names carry doses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import paths
from pipelines.cli import main

pytestmark = pytest.mark.slow

SAMPLE = (
    paths.PROJECT_ROOT.parent
    / "shared"
    / "samples"
    / "ctgov"
    / "v2_study_NCT03722472_with_results.json"
)


def _table(data_dir: Path, table: str) -> dict[str, dict[str, object]]:
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    rows = pq.read_table(folder / f"{table}.parquet").to_pylist()
    key = "study_id" if table == "studies" else "intervention_name"
    return {str(r[key]): r for r in rows}


def test_time_frames_and_intervention_names_give_duration_and_dose(tmp_path: Path) -> None:
    if not SAMPLE.is_file():
        pytest.skip("../shared/samples is absent")
    snapshot = tmp_path / "snap"
    (snapshot / "clinicaltrials").mkdir(parents=True)
    shutil.copy(paths.BUNDLED_SNAPSHOT / "SNAPSHOT.json", snapshot)
    shutil.copy(SAMPLE, snapshot / "clinicaltrials")
    for name in ("NCT05846451.json", "NCT05883358.json"):
        shutil.copy(paths.BUNDLED_SNAPSHOT / "clinicaltrials" / name, snapshot / "clinicaltrials")
    data_dir = tmp_path / "out"
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    studies = _table(data_dir, "studies")
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    frames = [
        o["timeFrame"]
        for kind in ("primaryOutcomes", "secondaryOutcomes")
        for o in sample["protocolSection"]["outcomesModule"].get(kind, [])
    ]
    assert "Day 0 - 421" in frames  # the latest time point of the record
    assert (studies["NCT03722472"]["max_followup_days"], studies["NCT03722472"]["long_term"]) == (
        421.0,
        True,
    )
    kratom = studies["NCT05846451"]  # its primary outcome's time frame: "0-24 hours"
    assert (kratom["planned_duration_days"], kratom["max_followup_days"], kratom["long_term"]) == (
        4.0,
        1.0,
        False,
    )
    doses = _table(data_dir, "interventions")
    clonidine = doses["Clonidine 0.1 mg tablet q4h"]
    assert (
        clonidine["dose_amount"],
        clonidine["dose_unit"],
        clonidine["dose_frequency"],
        clonidine["dose_text"],
    ) == (0.1, "mg", "every_4_hours", "0.1 mg tablet q4h")
    vaccine = doses["ID93 + GLA-SE"]  # its own description names no dose; both its arms do
    assert (vaccine["dose_amount"], vaccine["dose_unit"], vaccine["dose_text"]) == (
        2.0,
        "mcg",
        "2 mcg",
    )


def _study(nct: str, description: str, time_frame: str) -> dict[str, object]:
    """A kratom study in ClinicalTrials.gov v2 shape with one described intervention."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": "Kratom study"},
            "designModule": {"studyType": "INTERVENTIONAL", "phases": ["PHASE1"]},
            "armsInterventionsModule": {
                "interventions": [{"type": "DRUG", "name": "Kratom", "description": description}]
            },
            "outcomesModule": {
                "primaryOutcomes": [{"measure": "COWS score", "timeFrame": time_frame}]
            },
        }
    }


def test_descriptions_reach_doses_courses_and_the_long_term_count(tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"
    (snapshot / "clinicaltrials").mkdir(parents=True)
    shutil.copy(paths.BUNDLED_SNAPSHOT / "SNAPSHOT.json", snapshot)
    studies = {
        "NCT09990011": _study("NCT09990011", "2 g kratom tea once daily for 12 weeks", "Week 24"),
        "NCT09990012": _study("NCT09990012", "kratom capsules as needed", "Up to 1 year"),
    }
    for nct, study in studies.items():
        (snapshot / "clinicaltrials" / f"{nct}.json").write_text(json.dumps(study))
    data_dir = tmp_path / "out"
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    rows = {
        (r["study_id"], r["dose_amount"], r["dose_unit"], r["dose_frequency"], r["dose_text"])
        for r in pq.read_table(folder / "interventions.parquet").to_pylist()
    }
    assert rows == {
        ("NCT09990011", 2.0, "g", "daily", "2 g kratom tea once daily"),
        ("NCT09990012", None, None, "as_needed", "as needed"),
    }
    found = {
        r["study_id"]: (r["planned_duration_days"], r["max_followup_days"], r["long_term"])
        for r in pq.read_table(folder / "studies.parquet").to_pylist()
    }
    assert found == {"NCT09990011": (84.0, 168.0, False), "NCT09990012": (None, 365.25, True)}
    cells = pq.read_table(folder / "evidence_map.parquet").to_pylist()
    (cell,) = [c for c in cells if (c["compound_id"], c["domain"]) == ("kratom", "withdrawal")]
    assert (cell["studies"], cell["long_term_studies"]) == (2, 1)


def _armed_study(nct: str, arms: list[tuple[str, list[str], str]]) -> dict[str, object]:
    """A kratom study whose doses are written only in its arms' descriptions."""
    names = sorted({n for _, given, _ in arms for n in given})
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": "Kratom study"},
            "designModule": {"studyType": "INTERVENTIONAL", "phases": ["PHASE1"]},
            "armsInterventionsModule": {
                "armGroups": [
                    {
                        "label": label,
                        "type": "EXPERIMENTAL",
                        "description": text,
                        "interventionNames": [f"Drug: {n}" for n in given],
                    }
                    for label, given, text in arms
                ],
                "interventions": [{"type": "DRUG", "name": n} for n in names],
            },
        }
    }


def test_arm_descriptions_give_doses_of_their_only_intervention_and_courses(
    tmp_path: Path,
) -> None:
    snapshot = tmp_path / "snap"
    (snapshot / "clinicaltrials").mkdir(parents=True)
    shutil.copy(paths.BUNDLED_SNAPSHOT / "SNAPSHOT.json", snapshot)
    studies = {
        "NCT09990021": _armed_study(
            "NCT09990021",
            [
                ("Kratom", ["Kratom"], "2 g kratom tea once daily for 4 days"),
                ("Kratom then oxycodone", ["Kratom", "Oxycodone"], "4 g kratom, oxycodone 5 mg"),
            ],
        ),
        "NCT09990022": _armed_study(
            "NCT09990022",
            [
                ("Low dose", ["Kratom capsules"], "1 g kratom leaf powder"),
                ("High dose", ["Kratom capsules"], "4 g kratom leaf powder over 2 weeks"),
            ],
        ),
    }
    for nct, study in studies.items():
        (snapshot / "clinicaltrials" / f"{nct}.json").write_text(json.dumps(study))
    data_dir = tmp_path / "out"
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    doses = {
        (r["study_id"], r["intervention_name"]): (r["dose_amount"], r["dose_unit"], r["dose_text"])
        for r in pq.read_table(folder / "interventions.parquet").to_pylist()
    }
    assert doses == {
        ("NCT09990021", "Kratom"): (2.0, "g", "2 g kratom tea once daily"),
        # given only together with kratom: the shared arm's first dose is kratom's, not its own
        ("NCT09990021", "Oxycodone"): (None, None, None),
        # a dose-escalation: its two arms state two doses, so it has no single one
        ("NCT09990022", "Kratom capsules"): (None, None, None),
    }
    courses = {
        r["study_id"]: r["planned_duration_days"]
        for r in pq.read_table(folder / "studies.parquet").to_pylist()
    }
    assert courses == {"NCT09990021": 4.0, "NCT09990022": 14.0}

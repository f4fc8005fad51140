"""Scale the bundled ClinicalTrials.gov studies up to N synthetic studies, as v2 list pages.

Each synthetic study starts from one bundled study (its module layout and titles) and gets a
synthetic NCT id `NCT9xxxxxxx` (the registry has not issued ids in that range: none is real),
varied dates, phases, status, conditions, protocol outcomes and, for about a third, a results
section shaped like a posted v2 `resultsSection` (outcome measures with groups, denominators and
measurements; an adverse-events table). All values come from a seeded RNG and short code-side
vocabularies, so the same seed gives the same bytes. Pages hold PAGE_SIZE studies with a
`nextPageToken` on every page but the last, as `GET /api/v2/studies` returns them.

Run `python bench/generate_ctgov.py OUT --studies N [--seed S]`; OUT gets a SNAPSHOT.json
(method "reconstructed") and `clinicaltrials/page-00001.json` ... Never commit the output.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from pipelines.paths import BUNDLED_SNAPSHOT
from pipelines.snapshot import source_files
from pipelines.sources import clinicaltrials

PAGE_SIZE = 1000
"""Studies per page: the API's largest pageSize."""

RESULTS_SHARE = 0.35
"""Share of studies given a results section (posted results are common among completed trials)."""

_PHASES: tuple[list[str], ...] = (
    ["NA"],
    ["EARLY_PHASE1"],
    ["PHASE1"],
    ["PHASE1", "PHASE2"],
    ["PHASE2"],
    ["PHASE2", "PHASE3"],
    ["PHASE3"],
    ["PHASE4"],
)
_STATUSES = (
    "COMPLETED",
    "RECRUITING",
    "NOT_YET_RECRUITING",
    "ACTIVE_NOT_RECRUITING",
    "TERMINATED",
    "WITHDRAWN",
    "UNKNOWN",
)
_CONDITIONS = (
    "Opioid Use Disorder",
    "Opioid Withdrawal",
    "Opioid Dependence",
    "Alcohol Use Disorder",
    "Chronic Pain",
    "Pain",
    "Kratom Use",
    "Healthy Volunteers",
    "Substance Use Disorders",
    "Anxiety",
    "Depression",
    "Insomnia",
)
_MEASURES = (
    ("Clinical Opiate Withdrawal Scale (COWS) score", "score on a scale"),
    ("Subjective Opiate Withdrawal Scale (SOWS) score", "score on a scale"),
    ("Craving visual analogue scale", "mm"),
    ("Pain intensity, numeric rating scale", "score on a scale"),
    ("Maximum plasma concentration (Cmax) of mitragynine", "ng/mL"),
    ("Area under the curve (AUC) of 7-hydroxymitragynine", "ng*h/mL"),
    ("Drug liking visual analogue scale", "mm"),
    ("Number of participants with treatment-emergent adverse events", "participants"),
    ("Urine drug screen negative for opioids", "participants"),
    ("Pittsburgh Sleep Quality Index", "score on a scale"),
    ("Systolic blood pressure", "mmHg"),
    ("Beck Depression Inventory-II score", "score on a scale"),
)
_TIME_FRAMES = ("Baseline", "Day 1", "Day 7", "Week 4", "Week 12", "24 hours post dose")
_AE_TERMS = (
    ("Nausea", "Gastrointestinal disorders"),
    ("Constipation", "Gastrointestinal disorders"),
    ("Headache", "Nervous system disorders"),
    ("Dizziness", "Nervous system disorders"),
    ("Somnolence", "Nervous system disorders"),
    ("Pruritus", "Skin and subcutaneous tissue disorders"),
    ("Tachycardia", "Cardiac disorders"),
)
_GROUPS = ("Kratom low dose", "Kratom high dose", "Mitragynine", "Placebo", "Buprenorphine")


def load_templates(snapshot_dir: Path = BUNDLED_SNAPSHOT) -> list[dict[str, Any]]:
    """The snapshot's studies, as the shapes synthetic studies are cut from."""
    return [
        study
        for path in source_files(snapshot_dir, clinicaltrials.SOURCE)
        for study in clinicaltrials.iter_records(path)
    ]


def synthetic_nct(index: int) -> str:
    """`NCT9` + seven digits: a range ClinicalTrials.gov has not issued, so never a real id."""
    if not 0 <= index < 10_000_000:
        raise ValueError(f"synthetic index {index} outside NCT9000000..NCT99999999")
    return f"NCT9{index:07d}"


def synthetic_study(template: dict[str, Any], index: int, rng: random.Random) -> dict[str, Any]:
    """One synthetic v2 study: the template's layout with every varying field redrawn."""
    study = orjson.loads(orjson.dumps(template))  # deep copy, JSON types only
    nct = synthetic_nct(index)
    protocol = study["protocolSection"]
    ident = protocol["identificationModule"]
    ident["nctId"] = nct
    ident["briefTitle"] = f"{ident.get('briefTitle') or 'Study'} (synthetic {nct})"
    ident["orgStudyIdInfo"] = {"id": f"SYN-{index:07d}"}
    if "secondaryIdInfos" in ident:
        ident["secondaryIdInfos"] = [{"id": f"SYN-{index:07d}-2", "type": "OTHER"}]
    protocol["statusModule"] = _status(rng)
    design = protocol.setdefault("designModule", {})
    design["enrollmentInfo"] = {"count": rng.randint(8, 600), "type": "ACTUAL"}
    if design.get("studyType") == "INTERVENTIONAL":
        design["phases"] = list(rng.choice(_PHASES))
    protocol["conditionsModule"] = {"conditions": rng.sample(_CONDITIONS, rng.randint(1, 3))}
    measures = rng.sample(range(len(_MEASURES)), rng.randint(1, 6))
    primary = rng.randint(1, len(measures))
    protocol["outcomesModule"] = {
        "primaryOutcomes": [_protocol_outcome(m, rng) for m in measures[:primary]],
        "secondaryOutcomes": [_protocol_outcome(m, rng) for m in measures[primary:]],
    }
    has_results = rng.random() < RESULTS_SHARE
    if has_results:
        protocol["statusModule"]["overallStatus"] = "COMPLETED"
    study["hasResults"] = has_results
    study.pop("resultsSection", None)
    if has_results:
        study["resultsSection"] = _results(measures[:primary], rng)
    return study


def _status(rng: random.Random) -> dict[str, Any]:
    start = date(2005, 1, 1) + timedelta(days=rng.randint(0, 7300))
    primary = start + timedelta(days=rng.randint(60, 1500))
    completion = primary + timedelta(days=rng.randint(0, 200))
    posted = start - timedelta(days=rng.randint(0, 90))
    updated = completion + timedelta(days=rng.randint(0, 700))
    start_text = start.isoformat()[:7] if rng.random() < 0.2 else start.isoformat()  # month only
    return {
        "overallStatus": rng.choice(_STATUSES),
        "startDateStruct": {"date": start_text, "type": "ACTUAL"},
        "primaryCompletionDateStruct": {"date": primary.isoformat(), "type": "ACTUAL"},
        "completionDateStruct": {"date": completion.isoformat(), "type": "ESTIMATED"},
        "studyFirstPostDateStruct": {"date": posted.isoformat(), "type": "ACTUAL"},
        "lastUpdatePostDateStruct": {"date": updated.isoformat(), "type": "ACTUAL"},
    }


def _protocol_outcome(measure: int, rng: random.Random) -> dict[str, str]:
    return {"measure": _MEASURES[measure][0], "timeFrame": rng.choice(_TIME_FRAMES)}


def _results(measures: list[int], rng: random.Random) -> dict[str, Any]:
    """A posted-results section: one table per primary measure, then adverse events."""
    titles = rng.sample(_GROUPS, rng.randint(2, 3))
    at_risk = [rng.randint(5, 150) for _ in titles]
    groups = [{"id": f"OG{i:03d}", "title": t} for i, t in enumerate(titles)]
    denoms = [
        {
            "units": "Participants",
            "counts": [
                {"groupId": g["id"], "value": str(n)} for g, n in zip(groups, at_risk, strict=True)
            ],
        }
    ]
    outcome_measures = []
    for measure in measures:
        title, unit = _MEASURES[measure]
        counted = unit == "participants"
        cells = [
            {"groupId": g["id"], "value": str(rng.randint(0, n))}
            if counted
            else {
                "groupId": g["id"],
                "value": f"{rng.uniform(0, 100):.1f}",
                "spread": f"{rng.uniform(0.5, 20):.2f}",
            }
            for g, n in zip(groups, at_risk, strict=True)
        ]
        table: dict[str, Any] = {
            "type": "PRIMARY",
            "title": title,
            "reportingStatus": "POSTED",
            "paramType": "COUNT_OF_PARTICIPANTS" if counted else "MEAN",
            "unitOfMeasure": unit,
            "timeFrame": rng.choice(_TIME_FRAMES),
            "groups": groups,
            "denoms": denoms,
            "classes": [{"categories": [{"measurements": cells}]}],
        }
        if not counted:
            table["dispersionType"] = "STANDARD_DEVIATION"
        outcome_measures.append(table)
    event_groups = [
        {"id": f"EG{i:03d}", "title": t, "seriousNumAtRisk": n, "otherNumAtRisk": n}
        for i, (t, n) in enumerate(zip(titles, at_risk, strict=True))
    ]
    events = [
        {
            "term": term,
            "organSystem": system,
            "sourceVocabulary": "MedDRA",
            "assessmentType": "SYSTEMATIC_ASSESSMENT",
            "stats": [
                {"groupId": g["id"], "numAffected": rng.randint(0, n // 3), "numAtRisk": n}
                for g, n in zip(event_groups, at_risk, strict=True)
            ],
        }
        for term, system in rng.sample(_AE_TERMS, rng.randint(1, 4))
    ]
    return {
        "outcomeMeasuresModule": {"outcomeMeasures": outcome_measures},
        "adverseEventsModule": {
            "frequencyThreshold": "5",
            "timeFrame": "Duration of the study",
            "eventGroups": event_groups,
            "otherEvents": events,
        },
    }


def iter_studies(
    studies: int, seed: int, templates: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """N synthetic studies in id order, cycling through the templates; one at a time."""
    rng = random.Random(seed)
    for index in range(studies):
        yield synthetic_study(templates[index % len(templates)], index, rng)


def write_snapshot(
    out: Path, studies: int, seed: int = 0, snapshot_dir: Path = BUNDLED_SNAPSHOT
) -> list[Path]:
    """Write N synthetic studies as v2 list pages plus SNAPSHOT.json; return the page paths.

    Holds one page in memory at a time.
    """
    templates = load_templates(snapshot_dir)
    folder = out / clinicaltrials.SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("page-*.json"):
        stale.unlink()
    pages = -(-studies // PAGE_SIZE)
    paths = []
    stream = iter_studies(studies, seed, templates)
    for number in range(1, pages + 1):
        count = min(PAGE_SIZE, studies - (number - 1) * PAGE_SIZE)
        page: dict[str, Any] = {"studies": [next(stream) for _ in range(count)]}
        if number < pages:
            page["nextPageToken"] = f"synthetic-{seed}-{number + 1}"
        path = folder / f"page-{number:05d}.json"
        path.write_bytes(orjson.dumps(page))
        paths.append(path)
    info = {
        "captured_at": "2026-11-25",
        "topic": "kratom",
        "method": "reconstructed",
        "notes": (
            f"Synthetic benchmark data: {studies} studies generated by bench/generate_ctgov.py "
            f"(seed {seed}) from the bundled snapshot's shapes. NCT9xxxxxxx ids are not real "
            "registrations; nothing here describes a real study."
        ),
    }
    (out / "SNAPSHOT.json").write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write_snapshot(args.out, args.studies, args.seed)
    print(f"{args.studies} synthetic studies in {len(paths)} pages under {args.out}")


if __name__ == "__main__":
    main()

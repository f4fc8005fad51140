"""Scale the bundled ClinicalTrials.gov studies up to N synthetic studies, as v2 list pages.

Each synthetic study starts from one bundled study (its module layout and titles) and gets a
synthetic NCT id `NCT9xxxxxxx` (the registry has not issued ids in that range: none is real),
varied dates, phases, status, conditions, protocol outcomes and, for about a third, registered
arms and a results section shaped like a posted v2 `resultsSection` with every results module:
participant flow (periods, milestones, drop-out reasons), baseline characteristics (with a Total
group), outcome measures (groups, denominators, measurements, statistical analyses) and adverse
events (group totals, serious and other events). A few counts are printed as "NA", as the
registry sometimes does. All values come from a seeded RNG and short code-side vocabularies, so
the same seed gives the same bytes. Pages hold PAGE_SIZE studies with a
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
_SERIOUS_TERMS = (
    ("Seizure", "Nervous system disorders"),
    ("Respiratory depression", "Respiratory, thoracic and mediastinal disorders"),
    ("Hepatotoxicity", "Hepatobiliary disorders"),
    ("Opioid withdrawal syndrome", "General disorders"),
)
_GROUPS = ("Kratom low dose", "Kratom high dose", "Mitragynine", "Placebo", "Buprenorphine")
_ARM_TYPES = {"Placebo": "PLACEBO_COMPARATOR", "Buprenorphine": "ACTIVE_COMPARATOR"}
_DROP_REASONS = (
    "Lost to Follow-up",
    "Withdrawal by Subject",
    "Adverse Event",
    "Protocol Violation",
)
_ANALYSIS_METHODS = ("ANCOVA", "t-Test, 2 sided", "Mixed Models Analysis", "Fisher Exact")
_NON_INFERIORITY = ("SUPERIORITY", "NON_INFERIORITY", "EQUIVALENCE", "OTHER")
_P_VALUES = ("<0.001", "0.032", "0.41", ">0.99", "0.0004")
MALFORMED_SHARE = 0.03
"""Share of participant-flow counts printed "NA" (text the parser must keep, not drop)."""
TOTALS_ONLY_SHARE = 0.2
"""Share of posted adverse-event modules with group totals but no term (no event reached the
reporting threshold)."""


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
        titles = rng.sample(_GROUPS, rng.randint(2, 3))
        arms = study["protocolSection"].setdefault("armsInterventionsModule", {})
        arms["armGroups"] = _arm_groups(titles, arms.get("interventions") or [], rng)
        study["resultsSection"] = _results(titles, measures[:primary], rng)
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


def _arm_groups(
    titles: list[str], interventions: list[dict[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    """Registered arms for the results groups: labelled as the group, or "<group> group" (so
    results groups tie to arms by equal or by similar titles), each naming an intervention of
    the template as the registry lists it ("Type: Name")."""
    names = [f"{(i.get('type') or 'OTHER').title()}: {i['name']}" for i in interventions]
    return [
        {
            "label": title if rng.random() < 0.5 else f"{title} group",
            "type": _ARM_TYPES.get(title, "EXPERIMENTAL"),
            "interventionNames": rng.sample(names, min(len(names), 1)),
        }
        for title in titles
    ]


def _results(titles: list[str], measures: list[int], rng: random.Random) -> dict[str, Any]:
    """A posted-results section: flow, baseline, one table per primary measure, adverse events."""
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
        if rng.random() < 0.5:
            table["analyses"] = [_analysis(counted, rng) for _ in range(rng.randint(1, 2))]
        outcome_measures.append(table)
    totals_only = rng.random() < TOTALS_ONLY_SHARE
    event_groups = [
        {
            "id": f"EG{i:03d}",
            "title": t,
            "deathsNumAffected": rng.randint(0, 1),
            "deathsNumAtRisk": n,
            "seriousNumAffected": rng.randint(0, n // 10),
            "seriousNumAtRisk": n,
            "otherNumAffected": rng.randint(0, n),
            "otherNumAtRisk": n,
        }
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
        for term, system in rng.sample(_AE_TERMS, 0 if totals_only else rng.randint(1, 4))
    ]
    serious = [
        {
            "term": term,
            "organSystem": system,
            "sourceVocabulary": "MedDRA 26.0",
            "assessmentType": "NON_SYSTEMATIC_ASSESSMENT",
            "stats": [
                {
                    "groupId": g["id"],
                    "numEvents": (k := rng.randint(0, 2)),
                    "numAffected": k,
                    "numAtRisk": n,
                }
                for g, n in zip(event_groups, at_risk, strict=True)
            ],
        }
        for term, system in rng.sample(_SERIOUS_TERMS, 0 if totals_only else rng.randint(0, 2))
    ]
    return {
        "participantFlowModule": _flow(titles, at_risk, rng),
        "baselineCharacteristicsModule": _baseline(titles, at_risk, rng),
        "outcomeMeasuresModule": {"outcomeMeasures": outcome_measures},
        "adverseEventsModule": {
            "frequencyThreshold": "5",
            "timeFrame": "Duration of the study",
            "eventGroups": event_groups,
            "seriousEvents": serious,
            "otherEvents": events,
        },
    }


def _flow(titles: list[str], started: list[int], rng: random.Random) -> dict[str, Any]:
    """Participant flow: one or two periods, each with milestones and drop-out reasons."""
    groups = [{"id": f"FG{i:03d}", "title": t} for i, t in enumerate(titles)]
    periods = []
    for title in ("Overall Study", "Follow-up")[: rng.randint(1, 2)]:
        dropped = [rng.randint(0, n // 4) for n in started]
        reasons = rng.sample(_DROP_REASONS, rng.randint(1, 3))
        periods.append(
            {
                "title": title,
                "milestones": [
                    _milestone(kind, groups, counts, rng)
                    for kind, counts in (
                        ("STARTED", started),
                        ("COMPLETED", [n - d for n, d in zip(started, dropped, strict=True)]),
                        ("NOT COMPLETED", dropped),
                    )
                ],
                "dropWithdraws": [
                    {
                        "type": reason,
                        "reasons": [
                            {
                                "groupId": g["id"],
                                "numSubjects": _printed_count(rng.randint(0, d), rng),
                            }
                            for g, d in zip(groups, dropped, strict=True)
                        ],
                    }
                    for reason in reasons
                ],
            }
        )
    return {"groups": groups, "periods": periods}


def _milestone(
    kind: str, groups: list[dict[str, str]], counts: list[int], rng: random.Random
) -> dict[str, Any]:
    return {
        "type": kind,
        "achievements": [
            {"groupId": g["id"], "numSubjects": _printed_count(n, rng)}
            for g, n in zip(groups, counts, strict=True)
        ],
    }


def _printed_count(count: int, rng: random.Random) -> str:
    """A count as the registry prints it: a numeral, rarely "NA"."""
    return "NA" if rng.random() < MALFORMED_SHARE else str(count)


def _baseline(titles: list[str], sizes: list[int], rng: random.Random) -> dict[str, Any]:
    """Baseline: age (mean, SD), sex (counts by category), region (a class with one category)."""
    groups = [{"id": f"BG{i:03d}", "title": t} for i, t in enumerate([*titles, "Total"])]
    counts = [*sizes, sum(sizes)]
    females = [rng.randint(0, n) for n in sizes]
    females.append(sum(females))

    def cells(values: list[Any], **extra: Any) -> list[dict[str, Any]]:
        return [
            {"groupId": g["id"], "value": str(v), **extra}
            for g, v in zip(groups, values, strict=True)
        ]

    return {
        "groups": groups,
        "denoms": [
            {
                "units": "Participants",
                "counts": [
                    {"groupId": g["id"], "value": str(n)}
                    for g, n in zip(groups, counts, strict=True)
                ],
            }
        ],
        "measures": [
            {
                "title": "Age, Continuous",
                "paramType": "MEAN",
                "dispersionType": "STANDARD_DEVIATION",
                "unitOfMeasure": "years",
                "classes": [
                    {
                        "categories": [
                            {
                                "measurements": cells(
                                    [f"{rng.uniform(20, 60):.1f}" for _ in groups], spread="10.2"
                                )
                            }
                        ]
                    }
                ],
            },
            {
                "title": "Sex: Female, Male",
                "paramType": "COUNT_OF_PARTICIPANTS",
                "unitOfMeasure": "Participants",
                "classes": [
                    {
                        "categories": [
                            {"title": "Female", "measurements": cells(females)},
                            {
                                "title": "Male",
                                "measurements": cells(
                                    [n - f for n, f in zip(counts, females, strict=True)]
                                ),
                            },
                        ]
                    }
                ],
            },
            {
                "title": "Region of Enrollment",
                "paramType": "COUNT_OF_PARTICIPANTS",
                "unitOfMeasure": "Participants",
                "classes": [
                    {"title": "United States", "categories": [{"measurements": cells(counts)}]}
                ],
            },
        ],
    }


def _analysis(counted: bool, rng: random.Random) -> dict[str, Any]:
    """A statistical analysis of OG000 against OG001: estimate, 95% CI and a printed p-value."""
    estimate = rng.uniform(0.2, 3) if counted else rng.uniform(-20, 20)
    half_width = rng.uniform(0.1, 5)
    return {
        "groupIds": ["OG000", "OG001"],
        "nonInferiorityType": rng.choice(_NON_INFERIORITY),
        "pValue": rng.choice(_P_VALUES),
        "statisticalMethod": rng.choice(_ANALYSIS_METHODS),
        "paramType": "Odds Ratio (OR)" if counted else "Mean Difference (Final Values)",
        "paramValue": f"{estimate:.2f}",
        "ciPctValue": "95",
        "ciNumSides": "TWO_SIDED",
        "ciLowerLimit": f"{estimate - half_width:.2f}",
        "ciUpperLimit": f"{estimate + half_width:.2f}",
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

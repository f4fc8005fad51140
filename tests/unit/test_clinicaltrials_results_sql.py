"""The set-wise results staging (SQL) gives exactly the Python parsers' rows and reasons.

For every study: `clinicaltrials_results_sql`'s tables equal the rows of
`clinicaltrials._results` (results outcomes, outcome_results) and `parse_results` (the other
results tables) in values, types and order, and its first problem is the first RecordError
those two raise, word for word. Studies: the real v2 samples in ../shared (when present), the
bundled snapshot, the bad-input corpus, the synthetic generator's studies with every results
module, and hand-made studies with the odd values and broken references the registry can give.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from pipelines.sources import clinicaltrials as ct
from pipelines.sources import clinicaltrials_results as cr
from pipelines.sources import clinicaltrials_results_sql as sql
from pipelines.sources.base import BATCH_DB, RecordError, SnapshotFormatError
from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples" / "ctgov"
Study = dict[str, Any]
Rows = dict[str, list[dict[str, Any]]]


# --- the two sides ------------------------------------------------------------------------------


def sql_side(studies: list[Study]) -> tuple[Rows, dict[int, str]]:
    """Rows per table and the first problem per record, as DuckDB computes them."""
    con = duckdb.connect()
    con.execute(f"ATTACH ':memory:' AS {BATCH_DB}")  # as a staging run has it (setwise)
    con.execute(f"SET search_path = 'memory.main,{BATCH_DB}.main'")
    sql.register(con)
    for statement in sql.setup_sql():
        con.execute(statement)
    con.execute("CREATE TEMP TABLE texts (_rec BIGINT, nct VARCHAR, text VARCHAR)")
    con.executemany(
        "INSERT INTO texts VALUES (?, ?, ?)",
        [(i, _nct(s), orjson.dumps(s).decode()) for i, s in enumerate(studies)],
    )
    con.execute(
        "CREATE TEMP TABLE ct_docs AS SELECT 'page.json' AS _source_file, _rec, nct, "
        "from_json(text, ?) AS doc FROM texts",
        [json.dumps(sql.RESULTS_STRUCTURE)],
    )
    sql.screen(con)
    problems = dict(
        con.execute(
            f"SELECT _rec, arg_min(reason, [_rank] || _pos) FROM ({sql.problems_sql()}) "
            "GROUP BY _rec"
        ).fetchall()
    )
    tables = {}
    for table, query in sql.tables_sql().items():
        cursor = con.execute(f"SELECT * FROM ({query}) ORDER BY _rec, _pos")
        names = [d[0] for d in cursor.description]
        tables[table] = [
            row
            for values in cursor.fetchall()
            if (row := dict(zip(names, values, strict=True)))["_rec"] not in problems
        ]
    return tables, problems


def python_side(studies: list[Study]) -> tuple[Rows, dict[int, str]]:
    """The same from the Python parsers, called in parse_study's order."""
    tables: Rows = {table: [] for table in sql.tables_sql()}
    problems = {}
    for number, study in enumerate(studies):
        nct = _nct(study)
        try:
            outcomes, values = ct._results(nct, study.get("resultsSection") or {})
            rows = cr.parse_results(nct, study)
        except RecordError as exc:
            problems[number] = str(exc)
            continue
        for table, found in [("outcomes", outcomes), ("outcome_results", values), *rows.items()]:
            tables[table] += [{**row, "_rec": number} for row in found]
    return tables, problems


def _nct(study: Study) -> str:
    key = ct.record_key(study)
    assert key is not None
    return key.strip()


def assert_same(studies: list[Study]) -> Rows:
    """Both sides agree on every row (value and Python type) and every problem."""
    got, got_problems = sql_side(studies)
    want, want_problems = python_side(studies)
    assert got_problems == want_problems
    for table, rows in want.items():
        assert len(got[table]) == len(rows), table
        for found, expected in zip(got[table], rows, strict=True):
            extra = set(found) - set(expected) - {"_pos"}
            assert {found[k] for k in extra} <= {None}, (
                table,
                extra,
            )  # model columns parse leaves out
            shown = {k: found[k] for k in expected}
            assert shown == expected, table
            assert [type(v) for v in shown.values()] == [type(v) for v in expected.values()], table
    return got


# --- corpora ------------------------------------------------------------------------------------


def _records(paths: list[Path]) -> list[Study]:
    studies = []
    for path in paths:
        try:
            studies += [s for s in ct.iter_records(path) if ct.record_key(s)]
        except SnapshotFormatError:
            continue
    return studies


def test_real_samples_agree() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("../shared/samples/ctgov is not present")
    studies = _records(sorted(SAMPLES.glob("*.json")))
    rows = assert_same(studies)
    assert len(rows["outcome_results"]) > 100 and rows["adverse_events"]


def test_bundled_snapshot_and_bad_input_agree() -> None:
    paths = sorted((REPO / "data" / "snapshot" / "clinicaltrials").glob("*.json"))
    paths += sorted((REPO / "tests" / "data" / "bad_input" / "clinicaltrials").glob("*.json"))
    studies = _records(paths)
    assert len(studies) > 10
    assert_same(studies)


def test_synthetic_studies_with_every_results_module_agree() -> None:
    generator = load_script(REPO / "bench" / "generate_ctgov.py")
    studies = list(generator.iter_studies(240, 5, generator.load_templates()))
    rows = assert_same(studies)
    assert all(rows[t] for t in sql.tables_sql())


# --- hand-made studies --------------------------------------------------------------------------

NCT = "NCT01234567"


def _groups(prefix: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}000", "title": "Kratom tea 2 g", "description": "tea"},
        {"id": f"{prefix}001", "title": "Placebo"},
    ]


def _cells(prefix: str, values: list[Any]) -> list[dict[str, Any]]:
    return [{"groupId": f"{prefix}00{i % 2}", "value": v} for i, v in enumerate(values)]


def base_study() -> Study:
    """One study with every results module, two groups each, plain values."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": NCT},
            "armsInterventionsModule": {
                "armGroups": [
                    {
                        "label": "Kratom tea 2 g",
                        "type": "EXPERIMENTAL",
                        "interventionNames": ["Drug: Kratom tea"],
                    },
                    {"label": "Placebo", "type": "PLACEBO_COMPARATOR"},
                ],
                "interventions": [
                    {"name": "Kratom tea", "armGroupLabels": ["Kratom tea 2 g"]},
                    {"name": "Diary", "armGroupLabels": ["Placebo", "Kratom tea 2 g"]},
                ],
            },
        },
        "resultsSection": {
            "participantFlowModule": {
                "groups": _groups("FG"),
                "periods": [
                    {
                        "title": "Overall Study",
                        "milestones": [
                            {
                                "type": "STARTED",
                                "achievements": [
                                    {"groupId": "FG000", "numSubjects": "20"},
                                    {"groupId": "FG001", "numSubjects": 21},
                                ],
                            }
                        ],
                        "dropWithdraws": [
                            {"type": "Lost", "reasons": [{"groupId": "FG001", "numSubjects": "1"}]}
                        ],
                    }
                ],
            },
            "baselineCharacteristicsModule": {
                "groups": [*_groups("BG"), {"id": "BG002", "title": "Total"}],
                "denoms": [
                    {
                        "units": "Participants",
                        "counts": [
                            {"groupId": "BG000", "value": "20"},
                            {"groupId": "BG001", "value": "21"},
                        ],
                    }
                ],
                "measures": [
                    {
                        "title": "Age",
                        "paramType": "MEAN",
                        "dispersionType": "STANDARD_DEVIATION",
                        "unitOfMeasure": "years",
                        "classes": [
                            {
                                "categories": [
                                    {
                                        "measurements": [
                                            {"groupId": "BG000", "value": "41.5", "spread": "9.1"},
                                            {"groupId": "BG001", "value": "39", "spread": "10"},
                                            {"groupId": "BG002", "value": "40.2", "spread": "9.6"},
                                        ]
                                    }
                                ]
                            }
                        ],
                    }
                ],
            },
            "outcomeMeasuresModule": {
                "outcomeMeasures": [
                    {
                        "type": "PRIMARY",
                        "title": "COWS score",
                        "paramType": "MEAN",
                        "unitOfMeasure": "score",
                        "dispersionType": "95% Confidence Interval",
                        "timeFrame": "Day 7",
                        "groups": _groups("OG"),
                        "denoms": [
                            {
                                "units": "Participants",
                                "counts": [
                                    {"groupId": "OG000", "value": "20"},
                                    {"groupId": "OG001", "value": "21"},
                                ],
                            }
                        ],
                        "classes": [
                            {
                                "categories": [
                                    {
                                        "measurements": [
                                            {
                                                "groupId": "OG000",
                                                "value": "4.1",
                                                "lowerLimit": "3",
                                                "upperLimit": "5",
                                            },
                                            {
                                                "groupId": "OG001",
                                                "value": "6.0",
                                                "lowerLimit": "5",
                                                "upperLimit": "7",
                                            },
                                        ]
                                    }
                                ]
                            }
                        ],
                        "analyses": [
                            {
                                "groupIds": ["OG000", "OG001"],
                                "pValue": "<0.001",
                                "statisticalMethod": "ANCOVA",
                                "paramType": "Mean Difference",
                                "paramValue": "-1.9",
                                "ciPctValue": "95",
                                "ciNumSides": "TWO_SIDED",
                                "ciLowerLimit": "-2.5",
                                "ciUpperLimit": "-1.2",
                            }
                        ],
                    },
                    {
                        "type": "SECONDARY",
                        "title": "Craving",
                        "paramType": "COUNT_OF_PARTICIPANTS",
                        "unitOfMeasure": "Participants",
                        "groups": _groups("OG"),
                        "classes": [
                            {
                                "title": "Week 1",
                                "categories": [
                                    {"title": "Yes", "measurements": _cells("OG", ["3", "5"])},
                                    {"title": "No", "measurements": _cells("OG", ["17", "16"])},
                                ],
                            },
                        ],
                    },
                ]
            },
            "adverseEventsModule": {
                "frequencyThreshold": "5",
                "timeFrame": "12 weeks",
                "eventGroups": [
                    {
                        **_groups("EG")[0],
                        "deathsNumAffected": 0,
                        "deathsNumAtRisk": 20,
                        "seriousNumAffected": 1,
                        "seriousNumAtRisk": 20,
                    },
                    {**_groups("EG")[1], "otherNumAffected": "3", "otherNumAtRisk": "21"},
                ],
                "seriousEvents": [
                    {
                        "term": "Seizure",
                        "organSystem": "Nervous system disorders",
                        "sourceVocabulary": "MedDRA 21.1",
                        "assessmentType": "SYSTEMATIC_ASSESSMENT",
                        "stats": [
                            {"groupId": "EG000", "numAffected": 1, "numAtRisk": 20, "numEvents": 1},
                            {"groupId": "EG001", "numAffected": 0, "numAtRisk": 21},
                        ],
                    }
                ],
                "otherEvents": [
                    {
                        "term": "Nausea",
                        "organSystem": "Gastrointestinal disorders",
                        "stats": [{"groupId": "EG000", "numAffected": 4, "numAtRisk": 20}],
                    },
                    {
                        "term": "Nausea",
                        "organSystem": "General disorders",
                        "stats": [{"groupId": "EG001", "numAffected": 2, "numAtRisk": 21}],
                    },
                ],
            },
        },
    }


Edit = Callable[[Study], object]


def _results(study: Study) -> dict[str, Any]:
    results: dict[str, Any] = study["resultsSection"]
    return results


def _measure(study: Study, n: int = 0) -> dict[str, Any]:
    measure: dict[str, Any] = _results(study)["outcomeMeasuresModule"]["outcomeMeasures"][n]
    return measure


def _cell(study: Study) -> dict[str, Any]:
    cell: dict[str, Any] = _measure(study)["classes"][0]["categories"][0]["measurements"][0]
    return cell


def _stat(study: Study) -> dict[str, Any]:
    stat: dict[str, Any] = _results(study)["adverseEventsModule"]["seriousEvents"][0]["stats"][0]
    return stat


def _baseline_cell(study: Study) -> dict[str, Any]:
    module = _results(study)["baselineCharacteristicsModule"]
    cell: dict[str, Any] = module["measures"][0]["classes"][0]["categories"][0]["measurements"][0]
    return cell


def _flow_cell(study: Study) -> dict[str, Any]:
    periods = _results(study)["participantFlowModule"]["periods"]
    cell: dict[str, Any] = periods[0]["milestones"][0]["achievements"][0]
    return cell


ODD_VALUES: list[Any] = [
    23.5,
    7,
    0,
    -0.0,
    1e-05,
    1e16,
    12345678901234567,
    "NA",
    "≥5",
    " 1_000 ",
    "1e400",
    "٣",
    "\u00a05\u00a0",
    "-0",
    "1_0e1_0",
    "",
    "  ",
    "0x10",
    "1,5",
    "+3",
    ".5",
    "5.",
    "inf",
    "nan",
    "2.50",
    " 4 ",
    "-1",
    "2.5",
    True,
    False,
    {"a": 1},
    [1, "b"],
    None,
    "tab\there",
    "a\\b",
    'say "x"',
]
"""Values where a number or count is posted: numbers, text the registry prints, odd types."""


def _spread_values(
    study: Study, place: Callable[[Study], list[dict[str, Any]]], fields: list[str]
) -> None:
    cells = place(study)
    template = cells[0]
    cells[:] = []
    for i, value in enumerate(ODD_VALUES):
        cell = copy.deepcopy(template)
        for field in fields:
            cell[field] = value if field != fields[-1] else ODD_VALUES[-1 - i]
        cells.append(cell)


def test_odd_values_read_as_python_reads_them() -> None:
    studies = []
    study = base_study()
    _spread_values(
        study,
        lambda s: _measure(s)["classes"][0]["categories"][0]["measurements"],
        ["value", "spread", "lowerLimit"],
    )
    studies.append(study)
    study = base_study()
    _spread_values(
        study,
        lambda s: _results(s)["adverseEventsModule"]["seriousEvents"][0]["stats"],
        ["numAffected", "numEvents"],
    )
    studies.append(study)
    study = base_study()
    _spread_values(
        study,
        lambda s: _results(s)["baselineCharacteristicsModule"]["measures"][0]["classes"][0][
            "categories"
        ][0]["measurements"],
        ["value", "upperLimit"],
    )
    studies.append(study)
    study = base_study()
    _spread_values(
        study,
        lambda s: _results(s)["participantFlowModule"]["periods"][0]["milestones"][0][
            "achievements"
        ],
        ["numSubjects"],
    )
    studies.append(study)
    study = base_study()
    _spread_values(study, lambda s: _measure(s)["denoms"][0]["counts"], ["value"])
    studies.append(study)
    for value in ODD_VALUES:
        study = base_study()
        analysis = _measure(study)["analyses"][0]
        analysis.update(paramValue=value, ciLowerLimit=value, ciPctValue=value)
        _results(study)["adverseEventsModule"]["frequencyThreshold"] = value
        _results(study)["adverseEventsModule"]["eventGroups"][1]["otherNumAffected"] = value
        studies.append(study)
    for p_value in [
        "<0.001",
        "≤0.05",
        0.03,
        "NS",
        "1.5",
        "< .05",
        "<\u00a00.05",
        "p=0.04",
        "=0.2",
        ">=0.5",
        1e-05,
        "  0.5  ",
        "0",
        "1",
        "1e-4",
        ">\t0.1",
        "٠.٠٥",
        None,
    ]:
        study = base_study()
        _measure(study)["analyses"][0]["pValue"] = p_value
        studies.append(study)
    assert_same(studies)


def _arms_and_titles(study: Study) -> None:
    arms = study["protocolSection"]["armsInterventionsModule"]
    arms["armGroups"] += [
        {
            "label": " Kratom tea 2 g ",
            "type": "OTHER",
            "description": "again",
            "interventionNames": ["Drug:Kratom tea", "Behavioral: Diary", ": Kratom tea", " "],
        },
        {"label": "Placebo tea", "interventionNames": ["Other: X", "Drug: Kratom tea"]},
        {"label": None, "type": "NO_INTERVENTION"},
        {"label": "  "},
    ]
    arms["interventions"] += [
        {"name": "  Diary  ", "armGroupLabels": ["Placebo tea", "Nobody"]},
        {"name": None, "armGroupLabels": ["Placebo"]},
    ]
    groups = _measure(study)["groups"]
    groups += [
        {"id": "OG002", "title": ""},
        {"id": " OG003 ", "title": "Total"},
        {"id": "OG004", "title": "placebo TEA!"},
        {"id": "OG005", "title": "Tea"},
        {"id": "OG000", "title": "Kratom, 2 g of tea"},
        {"title": "no id"},
    ]


def _duplicate_terms(study: Study) -> None:
    events = _results(study)["adverseEventsModule"]["otherEvents"]
    events += [
        {"term": None, "stats": [{"groupId": "EG000", "numAffected": 1}]},
        {"term": "", "organSystem": "  ", "stats": [{"groupId": "EG001"}]},
        {"term": "Nausea", "organSystem": " Other ", "stats": []},
    ]


def _denominators(study: Study) -> None:
    measure = _measure(study, 1)
    measure["denoms"] = [
        {"units": "Eyes", "counts": [{"groupId": "OG000", "value": "40"}]},
        {
            "units": "PARTICIPANTS",
            "counts": [
                {"groupId": "OG000", "value": "x"},
                {"groupId": "OG001", "value": "19"},
                {"groupId": "OG001", "value": 18.0},
            ],
        },
    ]
    measure["classes"][0]["denoms"] = [
        {"units": "Participants", "counts": [{"groupId": "OG000", "value": "NA"}]}
    ]
    measure["classes"].append(
        {
            "denoms": [{"counts": [{"groupId": "OG000", "value": "7"}]}],
            "categories": [{"measurements": _cells("OG", ["1", "2"])}],
        }
    )
    module = _results(study)["baselineCharacteristicsModule"]
    module["measures"][0]["denoms"] = [{"units": "Participants", "counts": []}]
    del module["groups"][2]["title"]


def _no_results_modules(study: Study) -> None:
    study["resultsSection"] = {
        "outcomeMeasuresModule": {
            "outcomeMeasures": [{"title": "Only a title", "type": "POST_HOC"}]
        },
        "adverseEventsModule": {"eventGroups": [{"id": "EG000"}]},
        "participantFlowModule": {"periods": [{"milestones": [{"type": "STARTED"}]}]},
    }
    del study["protocolSection"]["armsInterventionsModule"]


@pytest.mark.parametrize(
    "edit", [_arms_and_titles, _duplicate_terms, _denominators, _no_results_modules]
)
def test_shapes_read_as_python_reads_them(edit: Edit) -> None:
    study = base_study()
    edit(study)
    assert_same([base_study(), study])


PROBLEMS: dict[str, Edit] = {
    "results title missing": lambda s: _measure(s, 1).update(title="  "),
    "measurement of an unknown group": lambda s: _cell(s).update(groupId="OG999"),
    "measurement without a group": lambda s: _cell(s).pop("groupId"),
    "adverse event of an unknown group": lambda s: _stat(s).update(groupId="EG009"),
    "adverse event group id with spaces": lambda s: _stat(s).update(groupId=" EG000"),
    "numAtRisk not a count": lambda s: _stat(s).update(numAtRisk="x"),
    "numAtRisk negative": lambda s: _stat(s).update(numAtRisk=-1),
    "numAtRisk fractional": lambda s: _stat(s).update(numAtRisk=2.5),
    "numAtRisk boolean": lambda s: _stat(s).update(numAtRisk=True),
    "numAtRisk quoted": lambda s: _stat(s).update(numAtRisk="it's 'x'"),
    "analysis of unknown groups": lambda s: _measure(s)["analyses"][0].update(
        groupIds=["OG000", "OG777", " OG778 ", ""]
    ),
    "baseline cell of an unknown group": lambda s: _baseline_cell(s).update(groupId="BG999"),
    "flow cell of an unknown group": lambda s: _flow_cell(s).update(groupId="FG999"),
    "flow cell without a group": lambda s: _flow_cell(s).update(groupId="  "),
    "event group without id, cell without group": lambda s: (
        _results(s)["adverseEventsModule"]["eventGroups"].append({"title": "Nobody"}),
        _stat(s).pop("groupId"),
    ),
    "title missing before a bad baseline cell": lambda s: (
        _baseline_cell(s).update(groupId="BG999"),
        _measure(s, 1).pop("title"),
    ),
    "measurement before adverse event": lambda s: (
        _stat(s).update(groupId="EG009"),
        _measure(s, 1)["classes"][0]["categories"][1]["measurements"][1].update(groupId="X"),
    ),
    "analysis before flow": lambda s: (
        _flow_cell(s).update(groupId="FG999"),
        _measure(s)["analyses"][0].update(groupIds=["OG009"]),
    ),
    "the first of two bad cells": lambda s: (
        _measure(s, 1)["classes"][0]["categories"][1]["measurements"][0].update(groupId="B"),
        _measure(s, 1)["classes"][0]["categories"][0]["measurements"][1].update(groupId="A"),
    ),
}


def test_problem_reasons_are_the_python_reasons() -> None:
    studies = [base_study()]
    for name, edit in PROBLEMS.items():
        study = base_study()
        edit(study)
        assert python_side([study])[1], f"{name}: the edit must break the record"
        studies += [study, base_study()]
    assert_same(studies)


def test_register_and_setup_can_run_twice_on_one_connection() -> None:
    con = duckdb.connect()
    for _ in range(2):
        sql.register(con)
        for statement in sql.setup_sql():
            con.execute(statement)
    assert con.execute("SELECT ctr_num(' 1_000 '), ctr_text(' x ')").fetchone() == (1000.0, "x")


def test_register_keeps_the_function_another_cursor_registered() -> None:
    """DuckDB refuses a name the database's catalog has (a cursor's), and the one kept works
    from every cursor, once a refused cursor and then the registering one are closed."""
    con = duckdb.connect()
    first = con.cursor()
    sql.register(first)
    refused = con.cursor()
    sql.register(refused)
    refused.close()
    second = con.cursor()
    sql.register(second)
    first.close()
    for cursor in (con, second):
        assert cursor.execute("SELECT ctr_py_number('2')").fetchone() == (2.0,)


def test_the_whitespace_trimmed_is_every_character_python_strips() -> None:
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == sql._WHITESPACE

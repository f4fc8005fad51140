"""Posted results travel the whole way: every v2 results module → its tables in a validated release.

The bundled snapshot has no posted results (the facts give no result numbers), so these builds
read snapshots that do: the benchmark's synthetic studies (always; every results module) and the
real ClinicalTrials.gov samples in ../shared (when present). Expected rows are counted here,
cell by cell, straight from the JSON, independently of the parser; values are compared with the
Parquet files read back.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import frictionless
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.release.datapackage import PARQUET_PLUGIN, register_parquet_reader
from pipelines.release.diff import diff_releases
from schemas import TABLES_BY_NAME
from tests.cli_query import query_json
from tests.scripts import load_script

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CTGOV_SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "ctgov"
Study = dict[str, Any]


def _generator() -> ModuleType:
    return load_script(REPO_ROOT / "bench" / "generate_ctgov.py")


def _studies(snapshot: Path) -> list[Study]:
    studies = []
    for path in sorted((snapshot / "clinicaltrials").glob("*.json")):
        body = json.loads(path.read_bytes())
        studies += body.get("studies", [body])
    return studies


def _build_and_validate(snapshot: Path, data_dir: Path) -> Path:
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    (release,) = (p for p in (data_dir / "releases").iterdir() if not p.name.startswith("."))
    assert main(["validate", str(release)]) == 0
    return release


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Study], Path]:
    """60 synthetic studies (a third with every results module) and their release."""
    root = tmp_path_factory.mktemp("synthetic")
    _generator().write_snapshot(root / "snapshot", 60, seed=3)
    return _studies(root / "snapshot"), _build_and_validate(root / "snapshot", root / "data")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Study], Path]:
    """The real ClinicalTrials.gov samples (NCT03722472 posted results) and their release."""
    if not CTGOV_SAMPLES.is_dir():
        pytest.skip("../shared/samples/ctgov is not present")
    root = tmp_path_factory.mktemp("samples")
    shutil.copytree(CTGOV_SAMPLES, root / "snapshot" / "clinicaltrials")
    (root / "snapshot" / "SNAPSHOT.json").write_text(
        json.dumps({"captured_at": "2026-11-20", "topic": "kratom", "method": "recorded"})
    )
    return _studies(root / "snapshot"), _build_and_validate(root / "snapshot", root / "data")


# --- cells counted straight from the JSON -----------------------------------------------------


def _results(study: Study) -> dict[str, Any]:
    return study.get("resultsSection") or {}


def _measures(study: Study) -> list[dict[str, Any]]:
    return (_results(study).get("outcomeMeasuresModule") or {}).get("outcomeMeasures") or []


def _module(study: Study, name: str) -> dict[str, Any]:
    return _results(study).get(name) or {}


def _ae_stats(study: Study) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(event type, event, stat) for every adverse-event cell."""
    module = _module(study, "adverseEventsModule")
    for kind, key in (("serious", "seriousEvents"), ("other", "otherEvents")):
        for event in module.get(key) or []:
            for stat in event.get("stats") or []:
                yield kind, event, stat


def _value_cells(classes: list[dict[str, Any]]) -> int:
    return sum(
        len(category.get("measurements") or [])
        for klass in classes
        for category in klass.get("categories") or []
    )


def _flow_cells(study: Study) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(period, milestone or reason, kind, cell) for every participant-flow count."""
    for period in _module(study, "participantFlowModule").get("periods") or []:
        for item in period.get("milestones") or []:
            for cell in item.get("achievements") or []:
                yield period["title"], item["type"], "milestone", cell
        for item in period.get("dropWithdraws") or []:
            for cell in item.get("reasons") or []:
                yield period["title"], item["type"], "drop_withdraw", cell


def _total_cells(study: Study) -> int:
    return sum(
        any(f"{prefix}{field}" in group for field in ("NumAffected", "NumAtRisk"))
        for group in _module(study, "adverseEventsModule").get("eventGroups") or []
        for prefix in ("deaths", "serious", "other")
    )


CELLS: dict[str, Callable[[Study], int]] = {
    "arms": lambda s: len(
        (s["protocolSection"].get("armsInterventionsModule") or {}).get("armGroups") or []
    ),
    "result_groups": lambda s: (
        sum(
            len(_module(s, m).get(k) or [])
            for m, k in (
                ("participantFlowModule", "groups"),
                ("baselineCharacteristicsModule", "groups"),
                ("adverseEventsModule", "eventGroups"),
            )
        )
        + sum(len(m.get("groups") or []) for m in _measures(s))
    ),
    "adverse_events": lambda s: sum(1 for _ in _ae_stats(s)),
    "adverse_event_totals": _total_cells,
    "baseline_measures": lambda s: sum(
        _value_cells(m.get("classes") or [])
        for m in _module(s, "baselineCharacteristicsModule").get("measures") or []
    ),
    "participant_flow": lambda s: sum(1 for _ in _flow_cells(s)),
    "outcome_analyses": lambda s: sum(len(m.get("analyses") or []) for m in _measures(s)),
    "outcome_results": lambda s: (
        sum(_value_cells(m.get("classes") or []) for m in _measures(s))
        + sum(1 for _ in _ae_stats(s))
    ),
}
"""Per results table: the cells of one study's JSON that each become one row."""


def _published_and_quarantined(release: Path, table: str) -> tuple[int, int]:
    published = pq.read_table(release / f"{table}.parquet").num_rows
    quarantine = pq.read_table(release / "quarantine.parquet", columns=["table_name"])
    return published, quarantine.column("table_name").to_pylist().count(table)


def _rows(release: Path, table: str) -> list[dict[str, Any]]:
    return pq.read_table(release / f"{table}.parquet").to_pylist()


@pytest.mark.parametrize("table", sorted(CELLS))
def test_synthetic_results_are_published_cell_for_cell(
    synthetic: tuple[list[Study], Path], table: str
) -> None:
    studies, release = synthetic
    expected = sum(CELLS[table](study) for study in studies)
    assert expected > 20, f"the generator should post {table} for a third of the studies"
    assert _published_and_quarantined(release, table) == (expected, 0)
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["tables"][table]["rows"] == expected


@pytest.mark.parametrize("table", sorted(CELLS))
def test_real_sample_results_are_published_or_quarantined_cell_for_cell(
    samples: tuple[list[Study], Path], table: str
) -> None:
    studies, release = samples
    expected = sum(CELLS[table](study) for study in studies)
    published, quarantined = _published_and_quarantined(release, table)
    assert published + quarantined == expected
    if table != "outcome_analyses":  # NCT03722472 posts no statistical analysis
        posted = next(s for s in studies if s.get("resultsSection"))
        assert CELLS[table](posted) > 0
        assert published > 0


@pytest.mark.parametrize("table", sorted(CELLS))
def test_every_results_module_of_nct03722472_is_published_whole(
    samples: tuple[list[Study], Path], table: str
) -> None:
    """The issue's bar: the study with posted results has all its cells published, none
    quarantined, row for cell."""
    studies, release = samples
    posted = next(s for s in studies if s.get("resultsSection"))
    nct = posted["protocolSection"]["identificationModule"]["nctId"]
    assert nct == "NCT03722472"
    rows = _rows(release, table)
    ours = [r for r in rows if (r.get("study_id") or r["outcome_id"].split(":")[0]) == nct]
    assert len(ours) == CELLS[table](posted)
    quarantine = pq.read_table(release / "quarantine.parquet").to_pylist()
    assert not [q for q in quarantine if q["table_name"] == table and nct in (q["raw"] or "")]


def _check_adverse_events(studies: list[Study], release: Path) -> None:
    """Every adverse-event cell of the JSON is a published row with its counts and vocabulary."""
    published = {
        (r["study_id"], r["event_group_id"], r["event_type"], r["term"]): r
        for r in _rows(release, "adverse_events")
    }
    for study in studies:
        nct = study["protocolSection"]["identificationModule"]["nctId"]
        for kind, event, stat in _ae_stats(study):
            row = published[(nct, stat["groupId"], kind, event["term"])]
            assert (row["affected"], row["at_risk"], row["events"]) == (
                stat.get("numAffected"),
                stat.get("numAtRisk"),
                stat.get("numEvents"),
            )
            assert row["organ_system"] == event["organSystem"]
            assert row["source_vocabulary"] == event.get("sourceVocabulary")
            assert row["assessment"] == event.get("assessmentType")


def _check_flow(studies: list[Study], release: Path) -> None:
    """Every flow count is published: the number where it is one, else the text beside null."""
    published = {
        (r["study_id"], r["period"], r["milestone_or_reason"], r["kind"], r["group_id"]): r
        for r in _rows(release, "participant_flow")
    }
    for study in studies:
        nct = study["protocolSection"]["identificationModule"]["nctId"]
        for period, name, kind, cell in _flow_cells(study):
            row = published[(nct, period, name, kind, cell["groupId"])]
            printed = cell["numSubjects"]
            if printed.isdigit():
                assert (row["participants"], row["participants_text"]) == (int(printed), None)
            else:
                assert (row["participants"], row["participants_text"]) == (None, printed)


def test_synthetic_cells_carry_their_values(synthetic: tuple[list[Study], Path]) -> None:
    studies, release = synthetic
    _check_adverse_events(studies, release)
    _check_flow(studies, release)
    malformed = [r for r in _rows(release, "participant_flow") if r["participants_text"]]
    assert malformed, "the generator prints some flow counts as NA; they must be kept as text"
    analyses = _rows(release, "outcome_analyses")
    by_id = {r["analysis_id"]: r for r in analyses}
    for study in studies:
        nct = study["protocolSection"]["identificationModule"]["nctId"]
        for number, measure in enumerate(_measures(study), start=1):
            for index, analysis in enumerate(measure.get("analyses") or [], start=1):
                row = by_id[f"{nct}:R{number}:A{index}"]
                assert row["estimate"] == float(analysis["paramValue"])
                assert (row["ci_low"], row["ci_high"]) == (
                    float(analysis["ciLowerLimit"]),
                    float(analysis["ciUpperLimit"]),
                )
                assert row["p_value_text"] == analysis["pValue"]
                assert row["non_inferiority"] == analysis["nonInferiorityType"]
    assert {r["p_value_relation"] for r in analyses} >= {"<", "=", ">"}
    ties = {r["arm_tie"] for r in _rows(release, "result_groups")}
    assert ties == {"title", "similar_title", "total"}


def test_real_sample_cells_carry_their_values(samples: tuple[list[Study], Path]) -> None:
    studies, release = samples
    _check_adverse_events(studies, release)
    _check_flow(studies, release)
    posted = next(s for s in studies if s.get("resultsSection"))
    nct = posted["protocolSection"]["identificationModule"]["nctId"]
    groups = _module(posted, "adverseEventsModule")["eventGroups"]
    totals = {
        (r["event_group_id"], r["total_type"]): (r["affected"], r["at_risk"])
        for r in _rows(release, "adverse_event_totals")
        if r["study_id"] == nct
    }
    for group in groups:
        for total_type, prefix in (
            ("all_cause_mortality", "deaths"),
            ("serious", "serious"),
            ("other", "other"),
        ):
            assert totals[(group["id"], total_type)] == (
                group[f"{prefix}NumAffected"],
                group[f"{prefix}NumAtRisk"],
            )
    baseline = _module(posted, "baselineCharacteristicsModule")
    titles = {g["id"]: g["title"] for g in baseline["groups"]}
    published = {
        (r["title"], r["category"], r["group_title"]): r["value"]
        for r in _rows(release, "baseline_measures")
        if r["study_id"] == nct
    }
    for measure in baseline["measures"]:
        for klass in measure["classes"]:
            for category in klass["categories"]:
                label = " / ".join(t for t in (klass.get("title"), category.get("title")) if t)
                for cell in category["measurements"]:
                    key = (measure["title"], label, titles[cell["groupId"]])
                    assert published[key] == float(cell["value"])
    arms = {a["label"] for a in posted["protocolSection"]["armsInterventionsModule"]["armGroups"]}
    tied = [r for r in _rows(release, "result_groups") if r["study_id"] == nct]
    assert {r["arm_label"] for r in tied} - {None} == arms  # every arm has its results groups
    assert {r["arm_tie"] for r in tied if r["arm_label"] is None} <= {"total"}


README_INTRO = "Queries on the posted results:"


def readme_queries() -> list[str]:
    """The SQL of each command in the README's shell block after README_INTRO."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(README_INTRO, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line)[2] for line in block.splitlines() if line.strip()]


def test_readme_queries_answer_on_the_samples_and_synthetic_releases(
    samples: tuple[list[Study], Path],
    synthetic: tuple[list[Study], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    queries = readme_queries()
    new_tables = set(CELLS) - {"outcome_results"} | {"outcome_changes"}
    tables = {
        t for sql in queries for t in new_tables if f"from {t} " in sql or f"join {t} " in sql
    }
    assert tables == new_tables, "one README query per new table"
    # The real sample posts neither statistical analyses nor drop-out reasons.
    posted_by_sample = {
        "outcome_analyses": CELLS["outcome_analyses"],
        "drop_withdraw": lambda s: sum(kind == "drop_withdraw" for *_, kind, _ in _flow_cells(s)),
    }
    for sql in queries:
        real = query_json(samples[1].parent.parent, sql, capsys)
        assert query_json(synthetic[1].parent.parent, sql, capsys), sql
        expected = [
            sum(cells(s) for s in samples[0])
            for key, cells in posted_by_sample.items()
            if key in sql
        ]
        assert bool(real) == (expected[0] > 0 if expected else True), sql
    by_arm = query_json(samples[1].parent.parent, queries[0], capsys)
    assert {r["arm_label"] for r in by_arm} == {
        a["label"]
        for s in samples[0]
        if s.get("resultsSection")
        for a in s["protocolSection"]["armsInterventionsModule"]["armGroups"]
    }


def test_every_compared_outcome_is_in_outcome_changes_once(
    synthetic: tuple[list[Study], Path], samples: tuple[list[Study], Path]
) -> None:
    """Each registered and each reported outcome of a study with results is on one row."""
    for studies, release in (synthetic, samples):
        changes = _rows(release, "outcome_changes")
        for study in studies:
            if not _measures(study):
                continue
            nct = study["protocolSection"]["identificationModule"]["nctId"]
            rows = [r for r in changes if r["study_id"] == nct]
            module = study["protocolSection"].get("outcomesModule") or {}
            registered = sum(
                len(module.get(k) or [])
                for k in ("primaryOutcomes", "secondaryOutcomes", "otherOutcomes")
            )
            assert sum(r["registered_outcome_id"] is not None for r in rows) == registered
            assert sum(r["reported_outcome_id"] is not None for r in rows) == len(_measures(study))
    statuses = {r["status"] for r in _rows(synthetic[1], "outcome_changes")}
    assert {"matched", "time_frame_changed", "registered_not_reported"} <= statuses


def test_a_study_that_posted_adverse_events_measures_safety_in_the_evidence_map(
    synthetic: tuple[list[Study], Path],
) -> None:
    studies, release = synthetic
    cells = _rows(release, "evidence_map")
    mapped = {s for c in cells for s in c["study_ids"]}
    safety = {s for c in cells if c["domain"] == "safety" for s in c["study_ids"]}
    posted = {
        s["protocolSection"]["identificationModule"]["nctId"]
        for s in studies
        if _total_cells(s) or any(True for _ in _ae_stats(s))
    }
    assert posted & mapped, "synthetic kratom studies with posted adverse events are mapped"
    assert posted & mapped <= safety
    # Group totals alone (no event term, so no adverse-event outcome) are enough.
    totals_only = {
        s["protocolSection"]["identificationModule"]["nctId"]
        for s in studies
        if _total_cells(s) and not any(True for _ in _ae_stats(s))
    }
    assert totals_only & mapped, "the generator posts some studies with totals but no terms"
    assert totals_only & mapped <= safety


def test_report_shows_adverse_events_per_arm_for_each_study_that_posted_them(
    samples: tuple[list[Study], Path],
) -> None:
    studies, release = samples
    page = (release / "report.html").read_text(encoding="utf-8")
    posted = next(s for s in studies if s.get("resultsSection"))
    nct = posted["protocolSection"]["identificationModule"]["nctId"]
    table = page.split(f'<table data-study="{nct}">', 1)[1].split("</table>", 1)[0]
    arms = [a["label"] for a in posted["protocolSection"]["armsInterventionsModule"]["armGroups"]]
    assert re.findall(r"<th>([^<]*)</th>", table)[1:] == [html.escape(a) for a in arms]
    groups = _module(posted, "adverseEventsModule")["eventGroups"]
    deaths = [f"{g['deathsNumAffected']}/{g['deathsNumAtRisk']}" for g in groups]
    row = table.split("<td>any: all cause mortality</td>", 1)[1].split("</tr>", 1)[0]
    assert re.findall(r"<td>([^<]*)</td>", row) == deaths
    assert page.count("<table data-study=") == len(
        {r["study_id"] for r in _rows(release, "adverse_event_totals")}
    )


@pytest.fixture(scope="module")
def edited_samples(
    samples: tuple[list[Study], Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The samples release, and a second one built from the same samples but NCT03722472's
    first other adverse event affecting one participant more and its last one gone."""
    root = tmp_path_factory.mktemp("edited_samples")
    data_dir = Path(shutil.copytree(samples[1].parent.parent, root / "data"))
    snapshot = Path(shutil.copytree(samples[1].parents[2] / "snapshot", root / "snapshot"))
    path = snapshot / "clinicaltrials" / "v2_study_NCT03722472_with_results.json"
    study = json.loads(path.read_bytes())
    events = study["resultsSection"]["adverseEventsModule"]["otherEvents"]
    events[0]["stats"][0]["numAffected"] += 1
    events.pop()
    path.write_text(json.dumps(study))
    second = _build_and_validate_next(snapshot, data_dir)
    return data_dir / "releases" / samples[1].name, second


def _build_and_validate_next(snapshot: Path, data_dir: Path) -> Path:
    before = {p.name for p in (data_dir / "releases").iterdir()}
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    (release,) = (
        p
        for p in (data_dir / "releases").iterdir()
        if p.name not in before and not p.name.startswith(".")
    )
    assert main(["validate", str(release)]) == 0
    return release


def _ae_id(event: dict[str, Any], stat: dict[str, Any], group_title: str) -> str:
    parts = ("NCT03722472", stat["groupId"], "other", event["term"], event["organSystem"])
    return "|".join((*parts, group_title))


HISTORY_DOCS = REPO_ROOT / "docs" / "releases-and-time-travel.md"


def test_diff_and_history_follow_the_results_rows(
    samples: tuple[list[Study], Path],
    edited_samples: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = edited_samples
    posted = next(s for s in samples[0] if s.get("resultsSection"))
    module = _module(posted, "adverseEventsModule")
    titles = {g["id"]: g["title"] for g in module["eventGroups"]}
    bumped, gone = module["otherEvents"][0], module["otherEvents"][-1]
    bumped_id = _ae_id(bumped, bumped["stats"][0], titles[bumped["stats"][0]["groupId"]])
    gone_ids = {_ae_id(gone, s, titles[s["groupId"]]) for s in gone["stats"]}

    diff = {t.table: t for t in diff_releases(first, second).tables}
    events = diff["adverse_events"]
    assert ({"|".join(k) for k in events.removed}, events.added) == (gone_ids, ())
    assert [("|".join(c.key), c.columns) for c in events.changed] == [(bumped_id, ("affected",))]

    versions = pq.read_table(second / "record_versions.parquet").to_pylist()
    first_seen = {
        r["record_id"]
        for r in versions
        if r["record_type"] == "adverse_event" and r["version"] == first.name
    }
    assert len(first_seen) == pq.read_table(first / "adverse_events.parquet").num_rows
    followed = {"arm", "result_group", "outcome_result", "baseline_measure", "participant_flow"}
    added_types = {r["record_type"] for r in versions if r["change"] == "added"}
    assert followed | {"adverse_event", "adverse_event_total", "outcome_change"} <= added_types
    now = {
        (r["record_type"], r["record_id"], r["change"], tuple(r["changed_fields"]))
        for r in versions
        if r["version"] == second.name and r["record_type"] == "adverse_event"
    }
    assert now == {("adverse_event", bumped_id, "changed", ("affected",))} | {
        ("adverse_event", record_id, "removed", ()) for record_id in gone_ids
    }
    (line,) = (
        line
        for line in HISTORY_DOCS.read_text(encoding="utf-8").splitlines()
        if "record_type = 'adverse_event'" in line
    )
    documented = query_json(second.parent.parent, shlex.split(line)[2], capsys)
    assert {(r["change"], r["record_id"]) for r in documented if r["version"] == second.name} == {
        (change, record_id) for _, record_id, change, _ in now
    }
    tombstones = pq.read_table(second / "removed_records.parquet").to_pylist()
    assert {
        (r["record_id"], tuple(r["sources"]))
        for r in tombstones
        if r["record_type"] == "adverse_event"
    } == {(record_id, ("https://clinicaltrials.gov/study/NCT03722472",)) for record_id in gone_ids}


RESULTS_TABLES = (*sorted(CELLS), "outcome_changes")


def test_frictionless_validates_the_results_tables_with_rows(
    samples: tuple[list[Study], Path], synthetic: tuple[list[Study], Path]
) -> None:
    """datapackage.json describes every results table, keys included (outcome_changes' null
    key parts are not required), and frictionless finds no error in their rows."""
    register_parquet_reader()
    try:
        for release in (samples[1], synthetic[1]):
            report = frictionless.validate(
                release / "datapackage.json", skip_errors=["byte-count", "hash-count"]
            )
            assert report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"]) == []
            package = json.loads((release / "datapackage.json").read_text(encoding="utf-8"))
            schemas = {r["name"]: r["schema"] for r in package["resources"]}
            for table in RESULTS_TABLES:
                assert schemas[table]["primaryKey"] == list(TABLES_BY_NAME[table].primary_key)
            fields = {f["name"]: f for f in schemas["outcome_changes"]["fields"]}
            assert not fields["registered_outcome_id"]["constraints"]["required"]
            dictionary = (release / "README.md").read_text(encoding="utf-8")
            assert all(f"### `{table}`" in dictionary for table in RESULTS_TABLES)
    finally:
        frictionless.system.deregister(PARQUET_PLUGIN)

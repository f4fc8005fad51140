"""The bundled snapshot is exactly what scripts/reconstruct_snapshot.py makes from the facts.

Every identifier in it must trace to a facts row, and no prose may be carried.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scripts import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "reconstruct_snapshot.py"
FACTS_DIR = REPO_ROOT.parent / "shared" / "facts"
DATA_DIR = REPO_ROOT / "data"
SNAPSHOT = DATA_DIR / "snapshot"
LINKS = DATA_DIR / "reference" / "study_publication_links.csv"
PROSE_KEYS = {"briefSummary", "detailedDescription", "description"}


rs = load_script(SCRIPT)

needs_facts = pytest.mark.skipif(
    not FACTS_DIR.is_dir(), reason=f"facts folder {FACTS_DIR} is absent"
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def _ctgov_files() -> list[Path]:
    return sorted((SNAPSHOT / "clinicaltrials").glob("*.json"))


@pytest.fixture(scope="module")
def facts() -> Any:
    if not FACTS_DIR.is_dir():
        pytest.skip(f"facts folder {FACTS_DIR} is absent")
    return rs.load_facts(FACTS_DIR)


# --- the committed files are the script's output --------------------------------------------


@needs_facts
def test_rerun_reproduces_committed_files_byte_for_byte(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--facts", str(FACTS_DIR), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rebuilt = _files_under(tmp_path)
    assert rebuilt, "the script wrote nothing"
    changed = [
        name
        for name in sorted(rebuilt)
        if not (DATA_DIR / name).is_file()
        or (DATA_DIR / name).read_bytes() != (tmp_path / name).read_bytes()
    ]
    assert changed == [], f"committed files differ from a re-run: {changed}"
    # Source folders are wholly generated: a committed file the script no longer makes is stale.
    for folder in {Path(name).parent for name in rebuilt if name.startswith("snapshot/")}:
        if folder != Path("snapshot"):
            assert _files_under(DATA_DIR / folder) == _files_under(tmp_path / folder), folder


def test_missing_facts_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--facts", str(tmp_path / "nope"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "facts folder not found" in result.stderr


def test_snapshot_info_says_reconstructed() -> None:
    info = json.loads((SNAPSHOT / "SNAPSHOT.json").read_text(encoding="utf-8"))
    assert info["method"] == "reconstructed"
    assert info["topic"] == "kratom"
    assert info["captured_at"] == "2026-11-25"
    for script in (REPO_ROOT / "scripts").glob("snapshot_*.py"):
        assert f"scripts/{script.name}" in info["notes"]
    assert "scripts/reconstruct_snapshot.py" in info["notes"]


def test_every_nct_id_in_the_facts_has_a_study_file(facts: Any) -> None:
    nct_ids = {row["registry_id"] for row in facts.studies if row["registry"] == rs.CTGOV}
    assert len(nct_ids) == 11
    assert {p.stem for p in _ctgov_files()} == nct_ids
    for path in _ctgov_files():
        body = json.loads(path.read_text(encoding="utf-8"))
        assert body["protocolSection"]["identificationModule"]["nctId"] == path.stem


# --- traceability: no identifier without a facts row ----------------------------------------


def test_study_ids_trace_to_facts_rows(facts: Any) -> None:
    rows = {row["registry_id"]: row for row in facts.studies}
    for path in _ctgov_files():
        ident = json.loads(path.read_text(encoding="utf-8"))["protocolSection"][
            "identificationModule"
        ]
        other_ids = rows[ident["nctId"]]["other_ids"]
        infos = [ident.get("orgStudyIdInfo", {}), *ident.get("secondaryIdInfos", [])]
        for info in filter(None, infos):
            assert info["id"] in other_ids, f"{path.name}: {info['id']} not in facts"


def test_registry_rows_trace_to_facts_rows(facts: Any) -> None:
    facts_ids = {row["registry_id"] for row in facts.studies}
    records = _read_csv(SNAPSHOT / "registries" / "registries.csv")
    assert [r["study_id"] for r in records] == ["omon:52572", "withpower:71101"]
    for record in records:
        assert {record["registry_id"], record["study_id"]} & facts_ids
        for flag in filter(None, record["flags"].split(";")):
            assert flag.split(":", 1)[1] in facts_ids


def test_link_pmids_trace_to_facts(facts: Any) -> None:
    pmids = {p["pmid"] for p in facts.publications} | {
        pmid for row in facts.studies for pmid in rs.split_multi(row["linked_pmids"])
    }
    study_ids = {rs.study_id_of(row) for row in facts.studies}
    links = _read_csv(LINKS)
    assert links
    for link in links:
        assert link["pmid"] in pmids
        assert link["study_id"] in study_ids


def test_no_prose_keys_in_study_files() -> None:
    for path in _ctgov_files():
        body = json.loads(path.read_text(encoding="utf-8"))
        assert PROSE_KEYS.isdisjoint(_keys(body)), path.name
        assert "resultsSection" not in body


# --- what the facts say, as mapped -----------------------------------------------------------


def test_study_with_only_id_type_and_status_is_a_minimal_file() -> None:
    body = json.loads((SNAPSHOT / "clinicaltrials" / "NCT05812001.json").read_text("utf-8"))
    assert body == {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT05812001"},
            "statusModule": {"overallStatus": "UNKNOWN"},
            "designModule": {"studyType": "INTERVENTIONAL"},
        }
    }


def test_facts_linked_pmids_are_curated_inference_even_when_a_paper_names_the_id() -> None:
    """text_mention is for ids the pipeline finds; every curated link is curated_inference."""
    links = {(row["study_id"], row["pmid"]): row for row in _read_csv(LINKS)}
    assert {pair: row["link_source"] for pair, row in links.items()} == {
        ("NCT03414099", "32607084"): "curated_inference",
        ("NCT04392011", "35335999"): "curated_inference",
        ("NCT04392011", "36924284"): "curated_inference",
        ("omon:52572", "39724441"): "curated_inference",
    }
    assert {row["basis"] for row in links.values()} == {"matched_by_design"}


def test_merge_links_keeps_the_study_rows_linked_pmids_over_a_mention() -> None:
    mention = {"study_id": "NCT1", "pmid": "5", "basis": "registry_id_in_publication"}
    inferred = {"study_id": "NCT1", "pmid": "5", "basis": "matched_by_design"}
    other = {"study_id": "NCT0", "pmid": "7", "basis": "registry_id_in_publication"}
    assert rs.merge_links([mention, other], [inferred]) == [other, inferred]


def test_parse_masking_with_who_masked() -> None:
    assert rs.parse_masking("QUADRUPLE (Participant, Care Provider, Outcomes Assessor)") == {
        "masking": "QUADRUPLE",
        "whoMasked": ["PARTICIPANT", "CARE_PROVIDER", "OUTCOMES_ASSESSOR"],
    }


def test_parse_masking_without_who_masked() -> None:
    assert rs.parse_masking("DOUBLE") == {"masking": "DOUBLE"}


def test_parse_intervention_known_label_is_typed() -> None:
    assert rs.parse_intervention("Other: Placebo") == {"type": "OTHER", "name": "Placebo"}


def test_parse_intervention_ambiguous_label_gets_no_type() -> None:
    assert rs.parse_intervention("Dietary Supplement/Other: kratom tea 2 g") == {
        "name": "kratom tea 2 g"
    }


def test_parse_intervention_without_label_keeps_whole_name() -> None:
    assert rs.parse_intervention("kratom tea + oxycodone") == {"name": "kratom tea + oxycodone"}


def test_parse_other_id_type_label_in_parentheses() -> None:
    assert rs.parse_other_id("R00DA055571 (U.S. NIH Grant/Contract)") == [
        {"id": "R00DA055571", "type": "NIH"}
    ]


def test_parse_other_id_parenthesised_alias_is_a_second_id() -> None:
    assert rs.parse_other_id("75F40121C00199 (FDU-P4-117)") == [
        {"id": "75F40121C00199"},
        {"id": "FDU-P4-117", "type": "OTHER"},
    ]


def test_parse_other_id_nih_grant_number_is_typed_nih() -> None:
    assert rs.parse_other_id("U54AT008909") == [{"id": "U54AT008909", "type": "NIH"}]
    assert rs.parse_other_id("IRB00408134") == [{"id": "IRB00408134"}]


def test_partial_date_keeps_month_precision() -> None:
    row = dict.fromkeys(rs.DATE_STRUCTS.values(), "") | {
        "overall_status": "RECRUITING",
        "completion_date": "2028-02",
    }
    assert rs.status_module(row) == {
        "overallStatus": "RECRUITING",
        "completionDateStruct": {"date": "2028-02"},
    }


def test_registry_row_with_an_uncarried_fact_is_refused(facts: Any) -> None:
    row = next(r for r in facts.studies if r["registry_id"] == "52572")
    with pytest.raises(ValueError, match="primary_purpose"):
        rs.registry_record(row | {"primary_purpose": "TREATMENT"})


def test_unconfirmed_match_flag_comes_from_the_facts_notes(facts: Any) -> None:
    by_id = {row["registry_id"]: row for row in facts.studies}
    assert rs.registry_flags(by_id["withpower:71101"]) == ["unconfirmed_match:NCT07218549"]
    assert rs.registry_flags(by_id["52572"]) == []
    edited = {**by_id["withpower:71101"], "notes": "Registry id not visible in excerpt."}
    assert rs.registry_flags(edited) == []


def test_registry_rows_use_contract_id_types() -> None:
    rows = {r["study_id"]: r for r in _read_csv(SNAPSHOT / "registries" / "registries.csv")}
    assert (rows["omon:52572"]["id_type"], rows["omon:52572"]["registry_id"]) == (
        "nl_omon",
        "52572",
    )
    assert rows["withpower:71101"]["id_type"] == "secondary"


def test_time_frames_are_the_facts_own_and_reach_the_study_files(facts: Any) -> None:
    """Each time frame of registry_time_frames.csv belongs to an outcome of its facts row, its
    page is one of that row's pages, and the study file carries it; no other outcome has one."""
    rows = {row["registry_id"]: row for row in facts.studies}
    frames = rs.read_csv_rows(rs.TIME_FRAMES_FILE)
    assert frames and all(f["read_in"] for f in frames)
    for frame in frames:
        row = rows[frame["registry_id"]]
        outcomes = rs.split_multi(row["primary_outcomes"]) + rs.split_multi(
            row["secondary_outcomes"]
        )
        assert frame["measure"] in outcomes
        assert frame["source_url"] in row["source_url"]
    carried = {
        (path.stem, outcome["measure"]): outcome["timeFrame"]
        for path in _ctgov_files()
        for kind in ("primaryOutcomes", "secondaryOutcomes")
        for outcome in json.loads(path.read_text(encoding="utf-8"))["protocolSection"]
        .get("outcomesModule", {})
        .get(kind, [])
        if "timeFrame" in outcome
    }
    assert carried == {(f["registry_id"], f["measure"]): f["time_frame"] for f in frames}

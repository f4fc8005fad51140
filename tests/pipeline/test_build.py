"""End to end: snapshot → assets → release folder + DuckLake snapshot, read back for real."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.definitions import defs
from pipelines.normalize.literature_studies import classify, load_design_rules
from schemas import RELEASED, TABLES
from tests.cli_query import query_json

FACTS = paths.PROJECT_ROOT.parent / "shared" / "facts"


def _release_dir(data_dir: Path) -> Path:
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    return folder


def test_release_folder_has_every_table_and_a_true_manifest(bundled_release: Path) -> None:
    folder = _release_dir(bundled_release)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == "2026.11.25"
    assert manifest["snapshot"]["method"] == "reconstructed"
    for spec in TABLES:
        entry = manifest["tables"][spec.name]
        table = pq.read_table(folder / entry["file"])
        assert table.num_rows == entry["rows"]
        assert table.column_names == spec.columns == entry["columns"]
    assert (folder / "quarantine.parquet").exists()


def test_rows_in_equal_rows_out_plus_quarantined(bundled_release: Path) -> None:
    manifest = json.loads((_release_dir(bundled_release) / "manifest.json").read_text())
    for source, books in manifest["accounting"]["sources"].items():
        assert books["records_read"] == (
            books["records_staged"] + books["records_quarantined"] + books["exact_duplicates"]
        ), source
    for name, books in manifest["accounting"]["tables"].items():
        assert (
            books["rows_in"] == books["rows_out"] + books["rows_quarantined"] + books["rows_merged"]
        ), name
        assert books["rows_out"] == manifest["tables"][name]["rows"]
    assert manifest["accounting"]["sources"]["clinicaltrials"]["records_read"] == 11


def test_every_registered_study_of_the_facts_is_published(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not FACTS.is_dir():
        pytest.skip("../shared/facts is absent")
    with open(FACTS / "registered_studies.csv", newline="", encoding="utf-8") as handle:
        facts = list(csv.DictReader(handle))
    nct_ids = {r["registry_id"] for r in facts if r["registry_id"].startswith("NCT")}
    rows = query_json(bundled_release, "select study_id, flags from studies", capsys)
    published = {r["study_id"]: r["flags"] for r in rows}
    assert nct_ids <= set(published)
    assert "omon:52572" in published
    assert published["withpower:71101"] == ["unconfirmed_match:NCT07218549"]


def _facts(name: str) -> list[dict[str, str]]:
    if not FACTS.is_dir():
        pytest.skip("../shared/facts is absent")
    with open(FACTS / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _split(cell: str) -> set[str]:
    return {part.strip() for part in cell.split(";") if part.strip()}


FACTS_REGISTRY_PREFIXES = {"Onderzoek met Mensen": "omon", "withpower.com listing": "withpower"}
"""Study ids of non-NCT registries, as scripts/reconstruct_snapshot.py makes them."""


def _facts_study_id(row: dict[str, str]) -> str:
    if row["registry"] == "ClinicalTrials.gov":
        return row["registry_id"]
    (prefix,) = [
        p for label, p in FACTS_REGISTRY_PREFIXES.items() if row["registry"].startswith(label)
    ]
    return f"{prefix}:{row['registry_id'].removeprefix(prefix + ':')}"


def test_curated_inference_links_are_kept_apart(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The facts' linked_pmids pairs (and registry ids a curator read in a paper) are curated
    inferences, even where a paper names the id."""
    studies = _facts("registered_studies.csv")
    facts_pairs = {
        (_facts_study_id(row), f"PMID:{pmid}")
        for row in studies
        for pmid in _split(row["linked_pmids"])
    }
    study_ids = {_facts_study_id(row) for row in studies}
    facts_pairs |= {
        (study_id, f"PMID:{row['pmid']}")
        for row in _facts("publications.csv")
        if row["pmid"]
        for study_id in _split(row["registry_ids_mentioned"]) & study_ids
    }
    assert len(facts_pairs) == 4 and ("omon:52572", "PMID:39724441") in facts_pairs
    rows = query_json(
        bundled_release,
        "select study_id, publication_id, link_source from study_publications order by 1, 2",
        capsys,
    )
    inferred = {
        (r["study_id"], r["publication_id"])
        for r in rows
        if r["link_source"] == "curated_inference"
    }
    assert facts_pairs <= inferred
    assert "text_mention" not in {r["link_source"] for r in rows}  # titles name no registry id


def _facts_design(row: dict[str, str]) -> str | None:
    """What the facts say a paper is: its NLM type first, then its survey/preclinical/review tag."""
    types, tags = _split(row["publication_type"]), _split(row["topic_tags"])
    for nlm_type, design in (
        ("Randomized Controlled Trial", "rct"),
        ("Case Reports", "case_report"),
        ("Clinical Trial", "non_randomised_trial"),
    ):
        if nlm_type in types:
            return design
    if types & {"Review", "Systematic Review", "Meta-Analysis"} or "review" in tags:
        return "not_a_study"
    return next((tag for tag in ("survey", "preclinical") if tag in tags), None)


DESIGN_AGREEMENT_THRESHOLD = 0.9
"""Share of facts PMID papers with a stated type or tag whose published design agrees (54/55 on
2026.11.25: a case series published as a systematic review stays a publication; the two papers
tagged survey whose titles name "regular users" and "perceived benefits" are surveys)."""


def test_literature_designs_agree_with_the_facts(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = [row for row in _facts("publications.csv") if row["pmid"]]
    designs = {
        r["study_id"]: r["design"]
        for r in query_json(bundled_release, "select study_id, design from studies", capsys)
    }
    reported = {
        r["publication_id"]: r["study_id"]
        for r in query_json(bundled_release, "select * from study_publications", capsys)
    }
    compared = {}
    for row in facts:
        wanted = _facts_design(row)
        if wanted is not None:
            pid = f"PMID:{row['pmid']}"
            got = designs.get(pid) or designs.get(reported.get(pid, "")) or "not_a_study"
            compared[pid] = (wanted, got)
    assert len(compared) >= 50
    agreeing = sum(wanted == got for wanted, got in compared.values())
    disagreeing = {pid: pair for pid, pair in compared.items() if pair[0] != pair[1]}
    assert agreeing / len(compared) >= DESIGN_AGREEMENT_THRESHOLD, disagreeing
    covered = {wanted for wanted, _ in compared.values()}
    assert covered >= {"survey", "preclinical", "case_report", "not_a_study"}


def test_every_pmid_paper_of_the_facts_is_accounted_for(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study, a report of a registered study, not a study by a stated rule, or listed."""
    manifest = json.loads((_release_dir(bundled_release) / "manifest.json").read_text())
    books = manifest["accounting"]["literature"]
    studies = {
        r["study_id"]
        for r in query_json(
            bundled_release,
            "select study_id from studies where evidence_source = 'literature'",
            capsys,
        )
    }
    reported = {
        r["publication_id"]
        for r in query_json(bundled_release, "select * from study_publications", capsys)
    }
    publications = {
        r["publication_id"]: r
        for r in pq.read_table(_release_dir(bundled_release) / "publications.parquet").to_pylist()
    }
    rules = load_design_rules()
    not_studies = set()
    for row in _facts("publications.csv"):
        pid = f"PMID:{row['pmid']}"
        if not row["pmid"] or pid in studies | reported or pid in books["unclassified"]:
            continue
        found = classify(publications[pid], rules)
        assert found.design is None and found.design_basis is not None, pid
        not_studies.add(pid)
    assert books["studies"] == len(studies) == 66
    assert books["reporting_registered_studies"] == len(reported) == 4
    assert books["not_studies"] == len(not_studies) == 20
    assert books["unclassified"] == []
    assert books["papers"] == 90


def test_reviews_tagged_by_the_facts_stay_publications_only(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(
        bundled_release,
        "select p.publication_id, s.study_id from publications p left join studies s "
        "on s.study_id = p.publication_id "
        "where p.publication_id in ('PMID:18259963', 'PMID:35341571') order by 1",
        capsys,
    )
    assert rows == [
        {"publication_id": "PMID:18259963", "study_id": None},
        {"publication_id": "PMID:35341571", "study_id": None},
    ]


def test_each_pmid_and_doi_of_the_facts_is_one_publication(bundled_release: Path) -> None:
    if not FACTS.is_dir():
        pytest.skip("../shared/facts is absent")
    with open(FACTS / "publications.csv", newline="", encoding="utf-8") as handle:
        facts = list(csv.DictReader(handle))
    table = pq.read_table(_release_dir(bundled_release) / "publications.parquet")
    pmids = [p for p in table.column("pmid").to_pylist() if p]
    dois = [d for d in table.column("doi").to_pylist() if d]
    wanted_pmids = {r["pmid"].strip() for r in facts if r["pmid"].strip()}
    wanted_dois = {r["doi"].strip().lower() for r in facts if r["doi"].strip()}
    assert len(wanted_pmids) == 90 and len(wanted_dois) == 106
    assert {p: pmids.count(p) for p in wanted_pmids} == dict.fromkeys(wanted_pmids, 1)
    assert {d: dois.count(d) for d in wanted_dois} == dict.fromkeys(wanted_dois, 1)


def test_rebuild_with_identical_tables_publishes_nothing(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["build", "--data-dir", str(bundled_release)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert main(["releases", "--data-dir", str(bundled_release)]) == 0
    assert capsys.readouterr().out.count("2026.11.25") == 1


def test_every_published_table_is_in_primary_key_order(bundled_release: Path) -> None:
    folder = _release_dir(bundled_release)
    unsorted = []
    for spec in TABLES:
        rows = pq.read_table(folder / f"{spec.name}.parquet", columns=list(spec.primary_key))
        keys = [tuple(row.values()) for row in rows.to_pylist()]
        if keys != sorted(keys):
            unsorted.append(spec.name)
    assert not unsorted


def test_snapshot_with_only_some_sources_publishes_every_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "snap"
    snapshot.mkdir()
    shutil.copy(paths.BUNDLED_SNAPSHOT / "SNAPSHOT.json", snapshot)
    shutil.copytree(paths.BUNDLED_SNAPSHOT / "registries", snapshot / "registries")
    (snapshot / "clinicaltrials").mkdir()
    study = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT09990001", "nctIdAliases": ["NCT09990002"]},
            "referencesModule": {"references": [{"pmid": "1", "type": "RESULT"}]},
        }
    }
    (snapshot / "clinicaltrials" / "NCT09990001.json").write_text(json.dumps(study))
    data_dir = tmp_path / "out"
    times = tmp_path / "steps.json"
    argv = ["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]
    assert main([*argv, "--step-times", str(times)]) == 0
    # Where the run spent its time, step by step, in this process.
    (run,) = json.loads(times.read_text())["runs"]
    assert run["job"] == "build"
    assert {"raw", "staging", "curated", "release__published"} <= set(run["steps"])
    assert all(s["pid"] == os.getpid() and s["start"] <= s["end"] for s in run["steps"].values())
    folder = _release_dir(data_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["tables"]) == {s.name for s in RELEASED}
    assert manifest["tables"]["studies"]["rows"] == 3
    assert manifest["tables"]["outcome_results"]["rows"] == 0
    # No literature source: the linked papers are stubs, with no source outside the contract.
    stubs = pq.read_table(folder / "publications.parquet").to_pylist()
    assert {(p["publication_id"], p["is_stub"], tuple(p["sources"])) for p in stubs} >= {
        ("PMID:1", True, ()),
        ("PMID:39724441", True, ()),
    }
    links = pq.read_table(folder / "study_publications.parquet").to_pylist()
    assert {(r["study_id"], r["publication_id"], r["link_source"]) for r in links} == {
        ("NCT09990001", "PMID:1", "registry_reference"),
        ("omon:52572", "PMID:39724441", "curated_inference"),
    }
    ids = pq.read_table(folder / "study_identifiers.parquet").to_pylist()
    assert {(r["id_type"], r["id_value"], r["is_alias"]) for r in ids} == {
        ("nct", "NCT09990001", False),
        ("nct", "NCT09990002", True),
        ("nl_omon", "52572", False),
        ("secondary", "71101", False),
    }


def test_bad_record_is_quarantined_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "snap"
    (snapshot / "clinicaltrials").mkdir(parents=True)
    shutil.copy(paths.BUNDLED_SNAPSHOT / "SNAPSHOT.json", snapshot)
    good = json.loads((paths.BUNDLED_SNAPSHOT / "clinicaltrials" / "NCT04392011.json").read_text())
    page = {"studies": [good, {"protocolSection": {"statusModule": {"overallStatus": "X"}}}]}
    (snapshot / "clinicaltrials" / "page.json").write_text(json.dumps(page))
    data_dir = tmp_path / "out"
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    rows = query_json(
        data_dir,
        "select table_name, source, reason, source_file from quarantine "
        "where source = 'clinicaltrials'",
        capsys,
    )
    assert len(rows) == 1
    assert rows[0]["table_name"] == "studies" and "nctId" in rows[0]["reason"]
    assert rows[0]["source_file"] == "clinicaltrials/page.json"
    manifest = json.loads((_release_dir(data_dir) / "manifest.json").read_text())
    assert manifest["accounting"]["sources"]["clinicaltrials"]["records_quarantined"] == 1


def test_file_in_the_wrong_format_stops_the_build_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = tmp_path / "snap"
    (snapshot / "clinicaltrials").mkdir(parents=True)
    shutil.copy(paths.BUNDLED_SNAPSHOT / "SNAPSHOT.json", snapshot)
    (snapshot / "clinicaltrials" / "broken.json").write_text("{not json")
    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(tmp_path / "o")]) == 1
    error = capsys.readouterr().err
    assert "broken.json" in error and "Traceback" not in error


def test_query_of_an_unknown_version_is_one_clear_error(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["query", "select 1", "--release-version", "1999.01.01", "--data-dir", str(bundled_release)]
    )
    assert code == 1
    assert "no release '1999.01.01'" in capsys.readouterr().err


def test_definitions_load_with_descriptions_and_groups() -> None:
    graph = defs.resolve_asset_graph()
    groups = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        groups.add(node.group_name)
    assert groups == {"raw", "reference", "staging", "curated", "release"}
    checks = {k.name for k in graph.asset_check_keys}
    assert {f"{s.name}_matches_schema" for s in TABLES} <= checks

"""The benchmark's synthetic ClinicalTrials.gov generator: exact, deterministic, parseable pages."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from pipelines.snapshot import read_info
from pipelines.sources import clinicaltrials
from tests.scripts import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "bench" / "generate_ctgov.py"
SAMPLE = (
    REPO_ROOT.parent / "shared" / "samples" / "ctgov" / "v2_study_NCT03722472_with_results.json"
)


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_script(SCRIPT)


def _studies(out: Path) -> list[dict]:
    return [
        study
        for path in sorted((out / "clinicaltrials").glob("*.json"))
        for study in clinicaltrials.iter_records(path)
    ]


def test_pages_of_1000_with_next_token_except_last(generator: ModuleType, tmp_path: Path) -> None:
    paths = generator.write_snapshot(tmp_path, 2_345, seed=7)
    pages = [json.loads(p.read_bytes()) for p in paths]
    assert [len(p["studies"]) for p in pages] == [1000, 1000, 345]
    assert [("nextPageToken" in p) for p in pages] == [True, True, False]
    info = read_info(tmp_path)
    assert info.method == "reconstructed"
    assert "synthetic" in info.notes.lower()


def test_exact_count_unique_synthetic_ids_parse_cleanly(
    generator: ModuleType, tmp_path: Path
) -> None:
    generator.write_snapshot(tmp_path, 1_203, seed=1)
    studies = _studies(tmp_path)
    ids = [clinicaltrials.record_key(s) for s in studies]
    assert len(studies) == 1_203
    assert len(set(ids)) == 1_203
    assert all(i is not None and i.startswith("NCT9") and len(i) == 11 for i in ids)
    rows = [clinicaltrials.parse_study(s) for s in studies]  # RecordError would fail the test
    with_results = [r for r in rows if r["outcome_results"]]
    assert 0.2 < len(with_results) / len(rows) < 0.5
    assert len({r["studies"][0]["start_date"] for r in rows}) > 500
    assert len({tuple(r["studies"][0]["phases"]) for r in rows}) >= 5
    assert len({c["condition"] for r in rows for c in r["conditions"]}) >= 10


def test_same_seed_same_bytes_other_seed_differs(generator: ModuleType, tmp_path: Path) -> None:
    first = generator.write_snapshot(tmp_path / "a", 1_500, seed=3)
    again = generator.write_snapshot(tmp_path / "b", 1_500, seed=3)
    other = generator.write_snapshot(tmp_path / "c", 1_500, seed=4)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert first[0].read_bytes() != other[0].read_bytes()


def test_rewrite_with_fewer_studies_leaves_no_stale_page(
    generator: ModuleType, tmp_path: Path
) -> None:
    generator.write_snapshot(tmp_path, 2_500)
    generator.write_snapshot(tmp_path, 900)
    assert len(_studies(tmp_path)) == 900


def test_synthetic_index_beyond_the_nct9_range_is_refused(generator: ModuleType) -> None:
    assert generator.synthetic_nct(42) == "NCT90000042"
    with pytest.raises(ValueError, match="outside"):
        generator.synthetic_nct(10_000_000)


def test_results_section_uses_the_modules_of_a_real_posted_study(
    generator: ModuleType, tmp_path: Path
) -> None:
    if not SAMPLE.is_file():
        pytest.skip("shared samples absent")
    real = json.loads(SAMPLE.read_bytes())["resultsSection"]
    generator.write_snapshot(tmp_path, 50, seed=2)
    synthetic = next(s for s in _studies(tmp_path) if "resultsSection" in s)["resultsSection"]
    # What the real study does not post, the v2 API defines: serious events, drop-out reasons,
    # statistical analyses, a measure's dispersion type.
    for module in set(real) - {"moreInfoModule"}:
        assert set(synthetic[module]) <= set(real[module]) | {"seriousEvents"}
    real_period = real["participantFlowModule"]["periods"][0]
    for period in synthetic["participantFlowModule"]["periods"]:
        assert set(period) <= set(real_period) | {"dropWithdraws"}
    real_measure = real["outcomeMeasuresModule"]["outcomeMeasures"][0]
    for measure in synthetic["outcomeMeasuresModule"]["outcomeMeasures"]:
        assert set(measure) <= set(real_measure) | {"dispersionType", "analyses"}
    real_baseline = real["baselineCharacteristicsModule"]["measures"][0]
    for measure in synthetic["baselineCharacteristicsModule"]["measures"]:
        assert set(measure) <= set(real_baseline) | {"dispersionType"}

"""The benchmark's real-shape generator: byte copies of the real v2 samples under NCT9 ids."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from pipelines.snapshot import read_info, source_records
from pipelines.sources import clinicaltrials
from tests.scripts import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "bench" / "generate_realshape.py"
SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "ctgov"

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples absent")


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_script(SCRIPT)


def _sample_studies() -> dict[str, dict]:
    """Every study of the samples by NCT id, read the plain way (orjson, whole file)."""
    studies = {}
    for path in sorted(SAMPLES.glob("*.json")):
        body = orjson.loads(path.read_bytes())
        for study in body.get("studies", [body]):
            studies[study["protocolSection"]["identificationModule"]["nctId"]] = study
    return studies


def test_each_study_is_a_real_sample_under_a_new_nct9_id(
    generator: ModuleType, tmp_path: Path
) -> None:
    paths = generator.write_snapshot(tmp_path, 2_100)
    assert [p.name for p in paths] == ["page-00001.json", "page-00002.json", "page-00003.json"]
    pages = [orjson.loads(p.read_bytes()) for p in paths]
    assert [len(p["studies"]) for p in pages] == [1000, 1000, 100]
    assert [p.get("nextPageToken") is not None for p in pages] == [True, True, False]
    samples = _sample_studies()
    studies = [s for p in pages for s in p["studies"]]
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    assert ids == [f"NCT9{i:07d}" for i in range(2_100)]
    used = set()
    for study, nct in zip(studies, ids, strict=True):
        text = orjson.dumps(study).decode()
        originals = [
            o for o, s in samples.items() if orjson.dumps(s).decode().replace(o, nct) == text
        ]
        assert len(originals) == 1, nct
        used.add(originals[0])
    assert used == set(samples)  # every sample is copied
    with_results = sum("resultsSection" in s for s in studies)
    assert with_results == 700  # every third study, from index 0
    assert read_info(tmp_path).method == "reconstructed"


def test_every_copy_parses_as_its_sample_does(generator: ModuleType, tmp_path: Path) -> None:
    generator.write_snapshot(tmp_path, 40)
    for path in sorted((tmp_path / "clinicaltrials").glob("*.json")):
        for study in clinicaltrials.iter_records(path):
            rows = clinicaltrials.parse_study(study)
            assert rows["studies"][0]["study_id"].startswith("NCT9")


def test_same_size_same_bytes(generator: ModuleType, tmp_path: Path) -> None:
    first = generator.write_snapshot(tmp_path / "a", 1_500)
    second = generator.write_snapshot(tmp_path / "b", 1_500)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_samples_without_both_kinds_are_refused(generator: ModuleType, tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    for path in SAMPLES.glob("*.json"):
        if "with_results" not in path.name:
            shutil.copy(path, folder / path.name)
    with pytest.raises(ValueError, match="both with and without posted results"):
        generator.load_templates(folder)


def test_the_archive_holds_the_same_studies_one_member_each_as_the_registry_names_them(
    generator: ModuleType, tmp_path: Path
) -> None:
    pages = generator.write_snapshot(tmp_path / "pages", 120)
    path = generator.write_archive(tmp_path / "zip", 120)
    assert path == tmp_path / "zip" / "clinicaltrials" / "ctg-studies.json.zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert names == [f"{i:07d}"[-2:] + f"/NCT9{i:07d}.json" for i in range(120)]
    from_pages = [s for p in pages for s in orjson.loads(p.read_bytes())["studies"]]
    records = list(source_records(tmp_path / "zip", "clinicaltrials"))
    assert [r.problem for r in records] == [None] * 120
    assert [r.value for r in records] == from_pages
    assert records[7].origin == "clinicaltrials/ctg-studies.json.zip/07/NCT90000007.json"
    assert "one bulk ZIP" in read_info(tmp_path / "zip").notes

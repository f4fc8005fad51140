"""`kratom-evidence validate`: an intact release passes; damaged bytes and bad values fail."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.release.describe import render_sums
from pipelines.release.publish import sha256_file, write_parquet
from pipelines.release.validate import parse_sums, validate_release
from schemas import RELEASED
from tests.release.conftest import TwoReleases


def run_validate(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["validate", str(folder)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_passes_on_intact_release(
    release_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_validate(release_copy, capsys)
    files = len(parse_sums((release_copy / "SHA256SUMS").read_text(encoding="utf-8")))
    assert (code, err) == (0, "")
    assert out == f"ok: {len(RELEASED)} tables, {files} files verified\n"
    assert files == len(list(release_copy.iterdir())) - 1


def test_validate_passes_on_second_release(two_releases: TwoReleases) -> None:
    assert validate_release(two_releases.second) == []


def test_corrupt_byte_fails_naming_file_and_sha256(
    release_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = release_copy / "studies.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out, err = run_validate(release_copy, capsys)
    first = err.splitlines()[0]
    assert code == 1 and out == ""
    assert first.startswith("studies.parquet: sha256 ")
    assert "does not match manifest.json" in first
    assert "studies.parquet: sha256 does not match SHA256SUMS" in err.splitlines()


def _reseal(folder: Path, name: str, table: pa.Table) -> None:
    """Rewrite a table and fix manifest and SHA256SUMS, so only the schema can object."""
    path = folder / f"{name}.parquet"
    digest = write_parquet(table, path)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["tables"][name].update(sha256=digest, bytes=path.stat().st_size)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (folder / "SHA256SUMS").write_text(render_sums(folder), encoding="utf-8")


def test_bad_study_id_fails_naming_table_and_column(
    release_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pq.read_table(release_copy / "studies.parquet")
    ids = table["study_id"].to_pylist()
    bad = ["not a study id", *ids[1:]]
    index = table.schema.get_field_index("study_id")
    _reseal(
        release_copy, "studies", table.set_column(index, "study_id", pa.array(bad, pa.string()))
    )
    code, _, err = run_validate(release_copy, capsys)
    first = err.splitlines()[0]
    assert code == 1
    assert first.startswith("studies.parquet: table studies, column study_id fails str_matches")
    assert "'not a study id'" in first


def test_duplicate_primary_key_is_reported(release_copy: Path) -> None:
    table = pq.read_table(release_copy / "compounds.parquet")
    _reseal(release_copy, "compounds", pa.concat_tables([table, table.slice(0, 1)]))
    problems = validate_release(release_copy)
    assert "compounds.parquet: table compounds, primary key compound_id has 1 duplicate rows" in (
        problems
    )


def test_unresolved_foreign_key_is_reported(release_copy: Path) -> None:
    table = pq.read_table(release_copy / "conditions.parquet")
    index = table.schema.get_field_index("study_id")
    ids = pc.utf8_replace_slice(table["study_id"], 0, 3, "ZZZ")
    _reseal(release_copy, "conditions", table.set_column(index, "study_id", ids))
    problems = validate_release(release_copy)
    assert problems and all(
        p.startswith("conditions.parquet: foreign key study_id") for p in problems
    )


def test_missing_column_is_reported(release_copy: Path) -> None:
    table = pq.read_table(release_copy / "outcomes.parquet")
    _reseal(release_copy, "outcomes", table.drop_columns(["unit"]))
    problems = validate_release(release_copy)
    assert problems[0].startswith("outcomes.parquet: table outcomes, columns ")


def test_missing_manifest_is_one_problem(
    release_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (release_copy / "manifest.json").unlink()
    code, _, err = run_validate(release_copy, capsys)
    assert code == 1
    assert err.splitlines() == [f"manifest.json: missing from {release_copy}"]


def test_unparseable_manifest(release_copy: Path) -> None:
    (release_copy / "manifest.json").write_text("{not json", encoding="utf-8")
    assert validate_release(release_copy)[0].startswith("manifest.json: cannot be parsed")


def test_file_missing_and_unlisted_file(release_copy: Path) -> None:
    (release_copy / "evidence_map.parquet").unlink()
    (release_copy / "extra.txt").write_text("x", encoding="utf-8")
    problems = validate_release(release_copy)
    assert problems[0] == "evidence_map.parquet: listed in manifest.json but missing"
    assert "evidence_map.parquet: listed in SHA256SUMS but missing" in problems
    assert "extra.txt: present but not listed in SHA256SUMS" in problems


def test_validate_of_a_missing_folder_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_validate(tmp_path / "nowhere", capsys)
    assert code == 1
    assert err.strip().endswith("nowhere: not a release folder")


def test_sha256sums_match_every_file(two_releases: TwoReleases) -> None:
    folder = two_releases.second
    sums = parse_sums((folder / "SHA256SUMS").read_text(encoding="utf-8"))
    assert list(sums) == sorted(p.name for p in folder.iterdir() if p.name != "SHA256SUMS")
    assert all(sha256_file(folder / name) == digest for name, digest in sums.items())

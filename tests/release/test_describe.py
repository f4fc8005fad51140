"""describe_release: the documentation files are complete, deterministic, and SHA256SUMS last."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipelines.release.describe import describe_release, render_citation
from tests.release.conftest import TwoReleases

DESCRIBED = ("CHANGES.md", "CITATION.cff", "README.md", "SHA256SUMS", "datapackage.json")


def _data_only(release: Path, target: Path) -> dict:
    """Copy a release's Parquet files and manifest: what publish hands to describe."""
    target.mkdir()
    for path in release.iterdir():
        if path.suffix == ".parquet" or path.name == "manifest.json":
            shutil.copy(path, target / path.name)
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


def test_every_release_holds_the_described_files(two_releases: TwoReleases) -> None:
    for folder in (two_releases.first, two_releases.second):
        names = {p.name for p in folder.iterdir()}
        assert set(DESCRIBED) <= names


def test_describe_is_deterministic_given_manifest_and_previous(
    two_releases: TwoReleases, tmp_path: Path
) -> None:
    folder = tmp_path / "again"
    manifest = _data_only(two_releases.second, folder)
    describe_release(folder, manifest, two_releases.first)
    for name in DESCRIBED:
        assert (folder / name).read_bytes() == (two_releases.second / name).read_bytes(), name


def test_citation_cff_from_manifest(two_releases: TwoReleases) -> None:
    text = (two_releases.second / "CITATION.cff").read_text(encoding="utf-8")
    manifest = json.loads((two_releases.second / "manifest.json").read_text(encoding="utf-8"))
    lines = text.splitlines()
    assert lines[0] == "cff-version: 1.2.0"
    assert 'version: "2026.11.25.1"' in lines
    assert f'date-released: "{manifest["created_at"][:10]}"' in lines
    assert '  - name: "Kratom Evidence contributors"' in lines
    assert "license: MIT" in lines
    assert any(line.startswith("message: ") for line in lines)
    assert any(line.startswith("title: ") for line in lines)


def test_citation_date_is_the_manifest_date_not_today() -> None:
    text = render_citation({"version": "2020.01.02", "created_at": "2020-01-03T04:05:06Z"})
    assert 'date-released: "2020-01-03"' in text.splitlines()


def test_sha256sums_is_written_last_and_covers_the_other_described_files(
    two_releases: TwoReleases,
) -> None:
    lines = (two_releases.first / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    assert names == sorted(names)
    assert "SHA256SUMS" not in names
    assert {"README.md", "datapackage.json", "CITATION.cff", "CHANGES.md", "manifest.json"} <= set(
        names
    )
    assert all(len(line.split("  ", 1)[0]) == 64 for line in lines)

"""Snapshot variants and release-folder fingerprints shared by the release tests."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.cli import main

DROPPED_STUDY = "NCT07204171"
"""A registered study removed from the variant: same SNAPSHOT.json, different tables."""


def variant_snapshot(target: Path) -> Path:
    """A copy of the bundled snapshot without one ClinicalTrials.gov study."""
    shutil.copytree(paths.BUNDLED_SNAPSHOT, target)
    (target / "clinicaltrials" / f"{DROPPED_STUDY}.json").unlink()
    return target


def fingerprint(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path (to prove nothing changed)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The CLI's stdout for `args`, which must succeed (stderr shown when it does not)."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def study_counts(
    capsys: pytest.CaptureFixture[str], versions: tuple[str, ...], *where: str
) -> dict[str, dict[str, int]]:
    """Per release version: studies (`n`) and rows of DROPPED_STUDY (`dropped`), by time travel."""
    sql = f"SELECT count(*) AS n, count(*) FILTER (study_id = '{DROPPED_STUDY}') AS dropped "
    sql += "FROM studies"
    return {
        version: json.loads(
            run_cli(capsys, "query", sql, "--release-version", version, "--format", "json", *where)
        )[0]
        for version in versions
    }

"""Snapshot variants and release-folder fingerprints shared by the release tests."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from pipelines import paths

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

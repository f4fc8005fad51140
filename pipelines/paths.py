"""The project's own files, whatever --data-dir says (docs/releases-and-time-travel.md)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = PROJECT_ROOT / "data" / "reference"
BUNDLED_SNAPSHOT = PROJECT_ROOT / "data" / "snapshot"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"

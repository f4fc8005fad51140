"""The bundled release is byte-identical to the hashes recorded in tests/data/ (sha256 per table).

Refactors must not change a published byte. A change that alters a table on purpose re-records
the file (`python -m tests.pipeline.test_recorded_hashes DATA_DIR` after a build into DATA_DIR)
in the same commit, and the commit message says which tables changed and why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines import paths

RECORDED = paths.PROJECT_ROOT / "tests" / "data" / "bundled_release_sha256.json"


def release_hashes(data_dir: Path) -> dict[str, str]:
    """Table name -> sha256 of its Parquet file, as the release manifest lists them."""
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return {name: entry["sha256"] for name, entry in sorted(manifest["tables"].items())}


def test_bundled_release_tables_match_the_recorded_hashes(bundled_release: Path) -> None:
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    built = release_hashes(bundled_release)
    changed = sorted(n for n in set(built) | set(recorded) if built.get(n) != recorded.get(n))
    assert not changed, f"tables differ from {RECORDED.name}: {changed}"


if __name__ == "__main__":
    RECORDED.write_text(json.dumps(release_hashes(Path(sys.argv[1])), indent=2) + "\n")

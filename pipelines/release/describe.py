"""The documentation files of a release, written into its folder before it is published.

Everything is derived from the Pandera models, the manifest and the previous release, so the
same build always writes the same bytes. SHA256SUMS is written last and covers every file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipelines.release.datapackage import LICENSE, build_datapackage
from pipelines.release.dictionary import render_dictionary
from pipelines.release.diff import (
    ReleaseTables,
    diff_releases,
    render_first_release,
    render_markdown,
)
from pipelines.release.publish import sha256_file
from pipelines.release.report import begin_report
from pipelines.release.validate import SUMS

TITLE = "Kratom Evidence: an open dataset on kratom (Mitragyna speciosa) and its alkaloids"
AUTHORS = "Kratom Evidence contributors"


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def render_citation(manifest: dict[str, Any]) -> str:
    """CITATION.cff (format 1.2.0) for the release."""
    version = manifest["version"]
    released = str(manifest["created_at"])[:10]
    lines = [
        "cff-version: 1.2.0",
        f"message: {_quote('If you use this dataset, please cite this release.')}",
        "type: dataset",
        f"title: {_quote(TITLE)}",
        f"version: {_quote(version)}",
        f"date-released: {_quote(released)}",
        "authors:",
        f"  - name: {_quote(AUTHORS)}",
        f"license: {LICENSE['name']}",
        "keywords:",
        *(f"  - {_quote(k)}" for k in ("kratom", "mitragynine", "addiction", "clinical trials")),
    ]
    return "\n".join(lines) + "\n"


def render_changes(
    folder: Path, manifest: dict[str, Any], previous: Path | ReleaseTables | None
) -> str:
    """CHANGES.md: the diff against the previous release, or a note that this is the first.

    The previous release is a folder, or read from the catalog when it was published on
    another machine. The folder's own manifest.json (already written) names the new version.
    """
    if previous is None or (isinstance(previous, Path) and not previous.is_dir()):
        return render_first_release(manifest["version"])
    return render_markdown(diff_releases(previous, folder))


def render_sums(folder: Path) -> str:
    """`sha256sum` lines for every file in the folder but SHA256SUMS, sorted by name."""
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != SUMS)
    return "".join(f"{sha256_file(folder / name)}  {name}\n" for name in files)


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


Documents = Callable[[dict[str, Any], Path | ReleaseTables | None], None]
"""Writes the rest of a release folder's documentation, given its manifest and the previous
release."""


def begin_describe(folder: Path, heading: Mapping[str, Any]) -> Documents:
    """Write what needs only the release's tables and `heading` (the manifest's version,
    created_at and snapshot): report.html but its tables section. The publish step runs this
    beside the record history; the function returned writes the rest once the manifest is
    known."""
    finish_report = begin_report(folder, heading)

    def finish(manifest: dict[str, Any], previous: Path | ReleaseTables | None) -> None:
        """README.md, datapackage.json, CITATION.cff, CHANGES.md, the report's tables section,
        then SHA256SUMS."""
        _write(folder / "README.md", render_dictionary(manifest))
        package = build_datapackage(manifest)
        _write(
            folder / "datapackage.json", json.dumps(package, indent=2, ensure_ascii=False) + "\n"
        )
        _write(folder / "CITATION.cff", render_citation(manifest))
        _write(folder / "CHANGES.md", render_changes(folder, manifest, previous))
        finish_report(manifest)
        _write(folder / SUMS, render_sums(folder))

    return finish


def describe_release(
    folder: Path, manifest: dict[str, Any], previous: Path | ReleaseTables | None
) -> None:
    """Write README.md, datapackage.json, CITATION.cff, CHANGES.md, report.html, then SHA256SUMS."""
    begin_describe(folder, manifest)(manifest, previous)

"""A toy source defined the way a real one is: one module with one `SourceUnit`.

Its snapshot files are tab-separated `doi<TAB>title` lines; each line is one publication.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipelines.sources.base import RecordError, SnapshotFormatError, SourceUnit, TableRows

SOURCE = "toybase"


def iter_records(path: Path) -> Iterator[list[str]]:
    """The tab-separated cells of every non-blank line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotFormatError(path, f"not UTF-8 text: {exc}") from exc
    for line in text.splitlines():
        if line.strip():
            yield line.split("\t")


def record_key(cells: list[str]) -> str | None:
    """`DOI:<doi>` of a line, None without one."""
    doi = cells[0].strip().lower()
    return f"DOI:{doi}" if doi.startswith("10.") else None


def parse_line(cells: list[str]) -> TableRows:
    """One line -> one publication row; a line without a DOI or a title is quarantined."""
    key = record_key(cells)
    if key is None:
        raise RecordError(f"no DOI in {cells[0]!r}")
    if len(cells) < 2 or not cells[1].strip():
        raise RecordError(f"{key} has no title")
    row = {"publication_id": key, "doi": key[4:], "title": cells[1].strip(), "sources": [SOURCE]}
    return {"publications": [row]}


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".tsv",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_line,
    primary_table="publications",
    tables=("publications",),
    raw="\t".join,
)

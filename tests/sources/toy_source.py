"""A toy source defined the way a real one is: one module with one `SourceUnit`.

Its snapshot files are tab-separated `doi<TAB>title` lines; each line is one publication. Its
"API" pages those lines by offset, says at `/version` when its data changed, and the emulator
serves its snapshot files that way. As a literature source it ranks first for bibliographic
fields (after PubMed, which sorts before it by name) and last for citation metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from pipelines.http import InvalidBody
from pipelines.sources import serving
from pipelines.sources.base import (
    LiveRun,
    LiveSource,
    PublicationRank,
    RecordError,
    SnapshotFormatError,
    SourceUnit,
    TableRows,
    VersionFeed,
    query_prefix,
)

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


# --- live and emulated: `GET /lines?q=&offset=&limit=` answers tab-separated lines ------------

LINES_PATH = "/lines"
VERSION_PATH = "/version"
PAGE_SIZE = 100


def check_body(response: httpx.Response) -> None:
    """A page is tab-separated text; an HTML error page with status 200 is retried."""
    if not response.headers.get("content-type", "").startswith("text/tab-separated-values"):
        raise InvalidBody("not a tab-separated page")


def fetch(run: LiveRun) -> dict[str, int]:
    """Offset pages per query until a short page; lines per query."""
    hits: dict[str, int] = {}
    size = run.page_size or PAGE_SIZE
    for query in run.work:
        client = run.client(query_prefix(query))
        offset, number, count = 0, 1, size
        hits[query] = 0
        while count == size:
            params = {"q": query, "offset": offset, "limit": size}
            body = client.get_bytes(LINES_PATH, params, record_as=f"lines-{number:04d}.tsv")
            count = len(body.decode().splitlines())
            hits[query] += count
            offset, number = offset + size, number + 1
        run.advance(1)
    return hits


def version_stamp(body: bytes) -> str:
    """The `/version` answer is the stamp itself, one line of text."""
    stamp = body.decode().strip()
    if not stamp:
        raise ValueError(f"{VERSION_PATH} answered nothing")
    return stamp


def load_served(files: Sequence[tuple[Path, serving.Keep]]) -> list[list[str]]:
    """Every kept line of the snapshot files, in file order."""
    return [cells for path, keep in files for cells in iter_records(path) if keep(cells)]


def answer(lines: list[list[str]], request: serving.Request) -> serving.Reply:
    """`/lines` paged by offset and limit; `/version` the served snapshot's capture date."""
    if request.path == VERSION_PATH:
        return serving.Reply(200, request.captured_at.encode(), "text/plain; charset=utf-8")
    if request.path != LINES_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    limit = serving.int_param(request.params, "limit", 10) or 10
    items, _ = serving.page(lines, serving.int_param(request.params, "offset", 0), limit)
    body = "".join("\t".join(cells) + "\n" for cells in items).encode()
    return serving.Reply(200, body, "text/tab-separated-values; charset=utf-8")


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".tsv",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_line,
    primary_table="publications",
    tables=("publications",),
    raw="\t".join,
    live=LiveSource(
        base_url="https://toy.invalid",
        fetch=fetch,
        emulator_path="/toybase",
        min_interval=lambda creds: 0.0,
        check_body=check_body,
        version=VersionFeed(VERSION_PATH, version_stamp),
    ),
    emulation=serving.Emulation(load_served, answer),
    publication=PublicationRank(bibliographic=0, metrics=9),
)

"""What every source module shares: the source unit, parsed rows and the two kinds of bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

TableRows = dict[str, list[dict[str, Any]]]
"""Rows parsed from one record, by table name. Row keys are the table's model columns
(a missing key means null, or [] for a list column); dates are `datetime.date`."""


class SnapshotFormatError(ValueError):
    """A whole snapshot file is not in its source's format: the build stops, naming the file."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class RecordError(ValueError):
    """One record inside a good file cannot be parsed: it goes to quarantine with this reason."""


def load_json_file(path: Path) -> Any:
    """A whole snapshot file parsed as JSON; malformed JSON is an error naming the file."""
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise SnapshotFormatError(path, f"not JSON: {exc}") from exc


def raw_json(record: Any) -> str:
    """A JSON record as sorted-key JSON text: its fingerprint and its quarantine `raw`."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str).decode()


@dataclass(frozen=True)
class SourceUnit:
    """Everything the pipeline knows about one source, in the source's own module.

    Snapshot reading, staging, refresh, the emulator and the asset factories loop over the
    registered units (`pipelines.sources.SOURCES`) and never name a source themselves.
    """

    name: str
    """The snapshot folder, the `staging.<name>__<table>` prefix and the asset key part."""
    suffix: str
    """The one file suffix of the source's snapshot files (another is an error)."""
    iter_records: Callable[[Path], Iterator[Any]]
    """A snapshot file's records, streamed; a file not in the format raises SnapshotFormatError."""
    record_key: Callable[[Any], str | None]
    """A record's key, for de-duplication, quarantine and `supersedes`; None when absent."""
    parse: Callable[[Any], TableRows]
    """One record -> rows by table; pure. A bad record raises RecordError."""
    primary_table: str
    """The table a quarantined record of this source would have fed."""
    raw: Callable[[Any], str] = raw_json
    """A record as text, for its fingerprint and the quarantine table's `raw` column."""
    replaces: Callable[[Any], Iterable[str]] = lambda record: ()
    """Keys of older records a record stands in for (beyond its own key), e.g. merged ids."""

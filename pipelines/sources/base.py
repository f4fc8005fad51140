"""What every source module shares: the shape of parsed rows and the two kinds of bad input."""

from __future__ import annotations

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

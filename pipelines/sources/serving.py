"""How a source answers for itself in the offline emulator (`serve-snapshot`): replies, offset
paging tokens and change windows, shared by the source units' `Emulation`. Pure: no sockets."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

Keep = Callable[[Any], bool]
"""Whether a record is served: False for one SNAPSHOT.json lists as superseded."""

ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Reply:
    """What the handler sends: status, headers and body."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Request:
    """A GET the emulator routed to one source: the path below the source's mount."""

    path: str
    params: dict[str, str]
    captured_at: str
    """SNAPSHOT.json `captured_at` of the served snapshot (a version endpoint may show it)."""
    mount: str
    """Where the source is served (`LiveSource.emulator_path`), for links from the host root."""


@dataclass(frozen=True)
class Emulation:
    """How `serve-snapshot` serves one source's snapshot files with the source's own paging."""

    load: Callable[[Sequence[tuple[Path, Keep]]], Any]
    """The snapshot files (each with which of its records to serve) -> what `answer` serves."""
    answer: Callable[[Any, Request], Reply]
    """The reply to one request, from what `load` made."""


def json_records(items: Callable[[Any], list[Any]]) -> Callable[[Sequence[tuple[Path, Keep]]], Any]:
    """A loader for a JSON source: the records `items` finds in each file, in file order."""

    def load(files: Sequence[tuple[Path, Keep]]) -> list[Any]:
        records: list[Any] = []
        for path, keep in files:
            records.extend(filter(keep, items(json.loads(path.read_bytes()))))
        return records

    return load


def json_reply(doc: Any) -> Reply:
    """A JSON answer, encoded compactly and fast: an emulator that is slow to answer would
    show up as the client's lost throughput."""
    return Reply(200, orjson.dumps(doc))


def error_reply(status: int, message: str) -> Reply:
    """A JSON error body with `status`."""
    return Reply(status, json.dumps({"error": message}).encode(), "application/json")


def int_param(params: dict[str, str], name: str, default: int) -> int:
    """A non-negative integer parameter; `default` when absent or not a number."""
    try:
        return max(0, int(params.get(name, default)))
    except ValueError:
        return default


def token(offset: int) -> str:
    """The opaque page token / cursor the emulator hands out for `offset`."""
    return f"o{offset}"


def offset(value: str | None) -> int:
    """The offset a token stands for; the first page for none, `*` or a foreign token."""
    if not value or value == "*" or not value.startswith("o") or not value[1:].isdigit():
        return 0
    return int(value[1:])


def page(items: list[Any], start: int, size: int) -> tuple[list[Any], int | None]:
    """Items from `start` and the next offset, None on the last page."""
    end = start + size
    return items[start:end], (end if end < len(items) else None)


def within(value: str, low: str, high: str) -> bool:
    """An ISO date inside [low, high] (either bound may be MIN / MAX); no date is outside."""
    if not value:
        return False
    return (low == "MIN" or value >= low) and (high == "MAX" or value[: len(high)] <= high)


def since_filter(expression: str | None, name: str) -> str | None:
    """The date of a `filter=<name>:<date>` parameter (OpenAlex, Crossref); None without one.

    Any other filter is refused with a ValueError rather than silently ignored.
    """
    if not expression:
        return None
    since = None
    for part in expression.split(","):
        key, _, value = part.partition(":")
        if key.strip() != name or not ISO_DAY.match(value.strip()):
            raise ValueError(f"unsupported filter {part!r}")
        since = value.strip()[:10]
    return since

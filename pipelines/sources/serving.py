"""How a source answers for itself in the offline emulator (`serve-snapshot`): replies, offset
paging tokens and change windows, shared by the source units' `Emulation`. Pure: no sockets."""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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


class Expiry:
    """Server-side state (a cursor, a WebEnv) that lives `ttl` seconds after it was handed out.

    Cursors stay the deterministic strings `token` makes; what expires is the server's memory
    of having issued one for a search. A client that follows a cursor its own run was given
    within `ttl` is answered; one that follows a cursor recorded in an earlier run (or given to
    an earlier server) gets the source's documented error. `ttl` None: nothing ever expires.
    """

    def __init__(self, ttl: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._issued: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def issue(self, *key: str) -> None:
        """Hand out (or hand out again) the state named by `key`; its lifetime starts now."""
        with self._lock:
            self._issued[key] = self._clock()

    def alive(self, *key: str) -> bool:
        """True when the state was handed out less than `ttl` seconds ago."""
        if self.ttl is None:
            return True
        with self._lock:
            issued = self._issued.get(key)
        return issued is not None and self._clock() - issued <= self.ttl


class Allowance:
    """A per-second request limit, per caller, as a rate-limited service keeps it: a caller may
    send `limit` requests at once and `limit` more every second after (a token bucket).

    A client that starts at most `limit` requests in any second passes even when the network
    delays some of them a little; one that sends faster, or bursts more, is refused. Only
    requests that came over the wire count (`arrived` None: always admitted).
    """

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, caller: str, limit: int, arrived: float | None) -> tuple[bool, int]:
        """Whether a request of `caller` arriving at `arrived` is within `limit` a second, and
        how many of its requests (this one included, refused ones too) arrived in the last
        second: what a refusal reports."""
        if arrived is None:
            return True, 0
        spacing = 1.0 / limit
        with self._lock:
            recent = self._recent.setdefault(caller, deque())
            recent.append(arrived)
            while arrived - recent[0] >= 1.0:
                recent.popleft()
            due = max(self._due.get(caller, arrived), arrived)
            if due - arrived > (limit - 1) * spacing + 1e-9:
                return False, len(recent)
            self._due[caller] = due + spacing
            return True, len(recent)


def search_key(params: dict[str, str], cursor: str) -> str:
    """What a cursor belongs to: the request's parameters but the cursor itself, as one string
    (the same token string stands for different pages of different searches)."""
    return json.dumps({k: v for k, v in sorted(params.items()) if k != cursor})


@dataclass(frozen=True)
class Request:
    """A GET the emulator routed to one source: the path below the source's mount."""

    path: str
    params: dict[str, str]
    captured_at: str
    """SNAPSHOT.json `captured_at` of the served snapshot (a version endpoint may show it)."""
    mount: str
    """Where the source is served (`LiveSource.emulator_path`), for links from the host root."""
    state: Expiry = field(default_factory=Expiry)
    """The server's cursors and search histories, with their lifetime."""
    result_cap: int | None = None
    """Records a search may page through (PubMed's 9,999); None: no cap."""
    topics: tuple[str, ...] = ()
    """The source's topic queries (data/reference/topic_queries.csv): what tells a record the
    snapshot keeps too little text to search apart (see `search`)."""
    arrived: float | None = None
    """When the request came over the wire (monotonic seconds), for a source's rate limit;
    None for a request answered without a server (no limit applies)."""
    rate_scale: int = 1
    """The service's requests-a-second limits times this, kept and announced alike (1: the
    service's own). Tests that do not test politeness run the same protocol in less time."""


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


# --- searching like the services do -----------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_TOKEN = re.compile(r'\(|\)|"[^"]*"|[^\s()"\[]*(?:\[[^\]]*\][^\s()"\[]*)*')


def words(text: str) -> list[str]:
    """Case- and accent-folded words of `text` (letters and digits; any other character splits)."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return _WORD.findall(plain)


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (keys left out), depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@dataclass
class Doc:
    """A served record with its searchable text: its words, space-joined and space-framed."""

    record: Any
    text: str
    unsearchable: bool | None = None
    """True when no topic query matches the record's own text (set by the first `search`)."""

    @classmethod
    def of(cls, record: Any, text: str | None = None) -> Doc:
        """`record` searchable by `text` (by default every string value inside it)."""
        source = " ".join(strings(record)) if text is None else text
        return cls(record, f" {' '.join(words(source))} ")

    def has(self, phrase: Sequence[str]) -> bool:
        """True when the words of `phrase` stand next to each other, in order."""
        return bool(phrase) and f" {' '.join(phrase)} " in self.text


Match = Callable[[Doc], bool]
Fielded = Callable[[str], Match | None]
"""A source's reading of one query token it treats specially (a date range, a field); None
when the token is plain text."""


def _plain(token: str) -> Match | None:
    return None


class QuerySyntaxError(ValueError):
    """A search query the emulator cannot read (unbalanced parentheses or quotes)."""


def query_matcher(query: str, fielded: Fielded = _plain) -> Match:
    """A boolean search as a predicate over documents, the way the literature services read one.

    `OR`, `AND`, `NOT` (also `AND NOT`) and parentheses; words side by side are ANDed (the
    default operator of ClinicalTrials.gov's Essie, PubMed and Europe PMC); a quoted phrase,
    and a hyphenated word such as `7-hydroxymitragynine`, must appear as consecutive words.
    Matching is on whole words, case- and accent-folded: no stemming, synonyms or MeSH mapping,
    so the emulator finds a subset of what the real service would. An empty query matches all.
    """
    tokens = [t for t in _TOKEN.findall(query) if t]
    if query.count('"') % 2:
        raise QuerySyntaxError(f"unbalanced quotes in {query!r}")
    if not tokens:
        return lambda doc: True
    parser = _Parser(tokens, fielded)
    match = parser.expression()
    if parser.position != len(tokens):
        raise QuerySyntaxError(f"unexpected {tokens[parser.position]!r} in {query!r}")
    return match


class _Parser:
    """Recursive descent over query tokens: OR binds loosest, then AND, then NOT."""

    def __init__(self, tokens: list[str], fielded: Fielded) -> None:
        self.tokens = tokens
        self.fielded = fielded
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expression(self) -> Match:
        parts = [self._conjunction()]
        while self._peek() == "OR":
            self._take()
            parts.append(self._conjunction())
        return parts[0] if len(parts) == 1 else (lambda doc: any(p(doc) for p in parts))

    def _conjunction(self) -> Match:
        parts = [self._unary()]
        while self._peek() not in (None, ")", "OR"):
            if self._peek() == "AND":
                self._take()
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda doc: all(p(doc) for p in parts))

    def _unary(self) -> Match:
        if self._peek() == "NOT":
            self._take()
            inner = self._unary()
            return lambda doc: not inner(doc)
        return self._atom()

    def _atom(self) -> Match:
        if self._peek() is None:
            raise QuerySyntaxError("query ends where a term was expected")
        token = self._take()
        if token == "(":
            inner = self.expression()
            if self._peek() != ")":
                raise QuerySyntaxError("unbalanced parentheses")
            self._take()
            return inner
        if token == ")":
            raise QuerySyntaxError("unbalanced parentheses")
        special = None if token.startswith('"') else self.fielded(token)
        if special is not None:
            return special
        phrase = words(token)
        return lambda doc: bool(doc.unsearchable) or doc.has(phrase)


def search(
    docs: Sequence[Doc], query: str, topics: Sequence[str], fielded: Fielded = _plain
) -> list[Doc]:
    """The documents `query` finds, in served order.

    A record in a snapshot was recorded because one of the topic queries found it; when its
    stored text matches none of them (the bundled snapshot was reconstructed from titles and
    ids, without the abstracts and descriptions the services search), the emulator cannot tell
    which search found it. Rather than lose it, it is taken to hold every word a search asks
    for (so `NOT word` leaves it out), while dates and other fields still filter it.
    Raises QuerySyntaxError for a query it cannot read.
    """
    match = query_matcher(query, fielded)
    if topics and any(doc.unsearchable is None for doc in docs):
        topical = [query_matcher(topic) for topic in topics]
        for doc in docs:
            if doc.unsearchable is None:
                doc.unsearchable = not any(t(doc) for t in topical)
    return [doc for doc in docs if match(doc)]


def json_docs(items: Callable[[Any], list[Any]]) -> Callable[[Sequence[tuple[Path, Keep]]], Any]:
    """A loader for a searched JSON source: each kept record of each file as a `Doc`."""
    records = json_records(items)

    def load(files: Sequence[tuple[Path, Keep]]) -> list[Doc]:
        return [Doc.of(record) for record in records(files)]

    return load

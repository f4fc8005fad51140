"""An offline stand-in for every live source: serves a snapshot over each source's real protocol.

`kratom-evidence serve-snapshot DIR` answers a search with the records of that source in the
snapshot that the query finds (see `serving.search`), paged the way the real API pages. What
each source serves and how it pages (its `Emulation`) lives in the source's own module; this
module is the server around them: routing by each source's mount (`LiveSource.emulator_path`),
superseded records left out, server-side state that expires (cursors and search histories
live `state_ttl` seconds after they were handed out) and faults.
A change-window filter (what `refresh --since-last` sends) narrows a search to the records whose
own date field lies in the window; a record without one counts as unchanged.
With `faults` it answers a seeded share of requests the way real APIs fail, so a refresh can be
tested against 429s, 5xx, resets, stalls, cut-off bodies and HTML error pages.
A development tool: no build or refresh imports it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipelines import paths, snapshot
from pipelines.sources import SOURCES
from pipelines.sources.serving import Emulation, Expiry, Keep, Reply, Request, error_reply

FAULT_KINDS: tuple[str, ...] = (
    "http500",
    "http502",
    "http503",
    "http429_seconds",
    "http429_date",
    "reset",
    "stall",
    "truncated",
    "html200",
)
"""Ways a real API fails; each faulted request gets one, chosen by the seeded generator."""

_HTML_ERROR = b"<html><head><title>502 Bad Gateway</title></head><body>busy</body></html>"

STATE_TTL = 300.0
"""Seconds a cursor or search history lives by default: Crossref's documented five minutes
(https://www.crossref.org/documentation/retrieve-metadata/rest-api/tips-for-using-the-crossref-rest-api/),
the shortest lifetime among the sources' server-side states."""
RESULT_CAP = 9_999
"""Records PubMed pages through from one search: its own error says `retstart` cannot be larger
than 9998 (https://www.ncbi.nlm.nih.gov/books/NBK25499/ says "the first 10,000")."""


def _served() -> dict[str, tuple[str, Emulation]]:
    """(mount, emulation) of every registered source the emulator serves, by name."""
    return {
        name: (unit.live.emulator_path, unit.emulation)
        for name, unit in SOURCES.items()
        if unit.live is not None and unit.emulation is not None
    }


@dataclass
class SnapshotRecords:
    """What the emulator serves of a snapshot, per source (as the source's `load` made it)."""

    captured_at: str
    records: dict[str, Any] = field(default_factory=dict)

    def of(self, source: str) -> Any:
        """What `source` serves; nothing when the snapshot has no such folder."""
        if source not in self.records:
            self.records[source] = _served()[source][1].load([])
        return self.records[source]


def load_snapshot(snapshot_dir: Path) -> SnapshotRecords:
    """Read every record of every served source of `snapshot_dir` into memory.

    A record SNAPSHOT.json lists as superseded (a `--since-last` snapshot) is not served: the
    newer record that replaces it is.
    """
    info = json.loads((snapshot_dir / snapshot.INFO_FILE).read_text(encoding="utf-8"))
    loaded = SnapshotRecords(captured_at=str(info["captured_at"]))
    superseded = snapshot.superseded_records(snapshot_dir)

    def current(source: str, path: Path) -> Keep:
        gone = superseded.get(f"{source}/{path.name}", frozenset())
        return lambda record: not gone or SOURCES[source].record_key(record) not in gone

    for source, (_, emulation) in _served().items():
        files = [(p, current(source, p)) for p in snapshot.source_files(snapshot_dir, source)]
        loaded.records[source] = emulation.load(files)
    return loaded


def topic_queries(reference_dir: Path) -> dict[str, tuple[str, ...]]:
    """Topic queries per source from `topic_queries.csv` (what `serving.search` needs)."""
    queries: dict[str, list[str]] = {}
    with (reference_dir / "topic_queries.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            queries.setdefault(row["source"].strip(), []).append(row["query"].strip())
    return {source: tuple(found) for source, found in queries.items()}


class SnapshotApi:
    """The request router: each source's answers from its loaded records, no sockets."""

    def __init__(
        self,
        data: SnapshotRecords,
        state: Expiry | None = None,
        result_cap: int | None = RESULT_CAP,
        topics: dict[str, tuple[str, ...]] | None = None,
        rate_scale: int = 1,
    ) -> None:
        self.data = data
        self.state = state or Expiry(STATE_TTL)
        self.result_cap = result_cap
        self.topics = topics or {}
        self.rate_scale = rate_scale
        self.wire = False
        """True behind a server: each request is stamped with its arrival (rate limits)."""
        self.mounts = sorted(
            ((mount, name) for name, (mount, _) in _served().items()), reverse=True
        )

    def answer(self, target: str, arrived: float | None = None) -> Reply:
        """The reply to a GET of `target` (path and query). A request arrives (monotonic
        seconds) when it comes over the wire, now unless given; a source's rate limit and
        budget apply only to one that arrived."""
        if arrived is None and self.wire:
            arrived = time.monotonic()
        parts = urlsplit(target)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        for mount, source in self.mounts:
            if parts.path == mount or parts.path.startswith(mount + "/"):
                request = Request(
                    parts.path[len(mount) :],
                    params,
                    self.data.captured_at,
                    mount,
                    self.state,
                    self.result_cap,
                    self.topics.get(source, ()),
                    arrived,
                    self.rate_scale,
                )
                emulation = SOURCES[source].emulation
                assert emulation is not None  # only served sources are mounted
                return emulation.answer(self.data.of(source), request)
        first = parts.path.lstrip("/").partition("/")[0]
        return error_reply(404, f"no source {first!r} here")


@dataclass
class FaultPlan:
    """Which requests fail and how: seeded by (seed, URL, how often that URL was asked).

    Keyed by URL rather than arrival order, so concurrent clients see the same faults run to run.
    """

    rate: float = 0.0
    seed: int = 0
    stall_seconds: float = 30.0
    retry_after_seconds: int = 1
    kinds: Sequence[str] = FAULT_KINDS
    _seen: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    injected: list[tuple[str, str]] = field(default_factory=list)

    def fault_for(self, target: str) -> str | None:
        """The fault to answer this request with, or None for a clean answer."""
        if self.rate <= 0:
            return None
        with self._lock:
            nth = self._seen.get(target, 0)
            self._seen[target] = nth + 1
        digest = hashlib.sha256(f"{self.seed}\0{target}\0{nth}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        if rng.random() >= self.rate:
            return None
        kind = rng.choice(list(self.kinds))
        with self._lock:
            self.injected.append((kind, target))
        return kind


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """TCP_NODELAY: the body, written after the headers, leaves at once instead of waiting for
    the client's delayed ACK of them (40 ms per answer on a kept-alive connection)."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        fault = self.server.faults.fault_for(self.path)
        # Only a cut-off body comes from the source; every other fault answers in front of it
        # (a gateway, the network), so the source never sees the request: it counts toward no
        # rate limit or budget and hands out no cursor.
        reply = self.server.api.answer(self.path) if fault in (None, "truncated") else None
        if reply is not None and fault is None:
            self._send(reply)
        elif fault is not None:
            self._fail(fault, reply)

    def _send(self, reply: Reply, body: bytes | None = None) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body if body is None else body)

    def _fail(self, kind: str, reply: Reply | None) -> None:
        faults = self.server.faults
        if kind.startswith("http5"):
            self._send(error_reply(int(kind[4:]), "emulated server error"))
        elif kind == "http429_seconds":
            retry = str(faults.retry_after_seconds)
            self._send(Reply(429, b"Too Many Requests", "text/plain", (("Retry-After", retry),)))
        elif kind == "http429_date":
            when = datetime.now(UTC) + timedelta(seconds=faults.retry_after_seconds)
            header = (("Retry-After", format_datetime(when, usegmt=True)),)
            self._send(Reply(429, b"Too Many Requests", "text/plain", header))
        elif kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif kind == "stall":
            time.sleep(faults.stall_seconds)
            self.close_connection = True
        elif kind == "truncated" and reply is not None:
            self._send(reply, reply.body[: len(reply.body) // 2])
            self.close_connection = True
        else:
            self._send(Reply(200, _HTML_ERROR, "text/html"))

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the client keeps the request log."""


class EmulatorServer(ThreadingHTTPServer):
    """A threaded loopback server answering for every source of one snapshot."""

    daemon_threads = True

    def __init__(self, api: SnapshotApi, faults: FaultPlan, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        api.wire = True
        self.api = api
        self.faults = faults
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: give it to `refresh --base-url all=...`."""
        return f"http://127.0.0.1:{self.server_address[1]}"


def make_server(
    snapshot_dir: Path,
    *,
    port: int = 0,
    faults: float = 0.0,
    seed: int = 0,
    stall_seconds: float = 30.0,
    retry_after_seconds: int = 1,
    state_ttl: float | None = STATE_TTL,
    result_cap: int | None = RESULT_CAP,
    reference_dir: Path = paths.REFERENCE_DIR,
    rate_scale: int = 1,
) -> EmulatorServer:
    """A server (not yet serving) for `snapshot_dir`; port 0 picks a free one.

    `state_ttl` is how long a cursor or search history lives (None: for ever); `result_cap`
    how many records a PubMed search pages through; `reference_dir` holds the topic queries
    `serving.search` tells unsearchable records by; `rate_scale` multiplies every
    requests-a-second limit the sources keep and announce (1: the service's own).
    """
    plan = FaultPlan(faults, seed, stall_seconds, retry_after_seconds)
    api = SnapshotApi(
        load_snapshot(snapshot_dir),
        Expiry(state_ttl),
        result_cap,
        topic_queries(reference_dir),
        rate_scale,
    )
    return EmulatorServer(api, plan, port)


@contextmanager
def running(server: EmulatorServer) -> Iterator[EmulatorServer]:
    """Serve in a daemon thread for the length of a `with` block (tests), then shut down."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

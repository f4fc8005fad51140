"""Loopback helpers for live-source tests: the shared client against a faulty local server.

Every pager test drives the real `pipelines.http.SourceHttp` (pacing, retries, Retry-After,
recording) against a pytest-httpserver handler that speaks the source's protocol. `Faulty`
wraps that handler so chosen requests answer 429 or 503 first, and stamps each arrival so a
test can check the rate limit from the server's side.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from pipelines.http import RateLimit, ResponseHook, ResponseRecorder, SourceHttp

Handler = Callable[[Request], Response]
Fault = tuple[int, dict[str, str]]

RETRY_AFTER = 1
"""Seconds the injected 429 asks to wait; the client must honour it."""


def faults(too_many: int, unavailable: int) -> dict[int, Fault]:
    """A 429 with Retry-After at request number `too_many`, a bare 503 at `unavailable`."""
    return {too_many: (429, {"Retry-After": str(RETRY_AFTER)}), unavailable: (503, {})}


class Faulty:
    """A protocol handler behind injected faults; keeps every request and its arrival time."""

    def __init__(self, handler: Handler, injected: Mapping[int, Fault]) -> None:
        self.handler = handler
        self.injected = dict(injected)
        self.arrivals: list[float] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.requests.append((request.path, dict(request.args)))
            number = len(self.arrivals)
        if number in self.injected:
            status, headers = self.injected[number]
            return Response("busy, try later", status=status, headers=headers)
        return self.handler(request)

    def gap_after(self, number: int) -> float:
        """Seconds between arrival `number` (1-based) and the next one."""
        return self.arrivals[number] - self.arrivals[number - 1]


def client(
    source: str,
    base_url: str,
    snapshot: Path,
    *,
    min_interval: float = 0.0,
    rate_limit: RateLimit | None = None,
    default_params: Mapping[str, Any] | None = None,
    on_response: ResponseHook | None = None,
) -> SourceHttp:
    """The shared client as a source gets it, recording into `snapshot`, with short back-offs."""
    return SourceHttp(
        source,
        base_url,
        min_interval=min_interval,
        rate_limit=rate_limit,
        default_params=default_params,
        recorder=ResponseRecorder(snapshot),
        on_response=on_response,
        backoff_base=0.05,
        rng=random.Random(7),
    )


def max_in_one_second(arrivals: list[float]) -> int:
    """Most requests that arrived inside any one-second window [t, t + 1)."""
    return max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)


def assert_arrivals_follow_logged_starts(arrivals: list[float], started: list[float]) -> None:
    """The wire agrees with the client's request log: the k-th request the server saw arrived
    no earlier than the k-th logged start (one monotonic clock in one process). A client that
    logged paced starts but sent at once fails; a server thread scheduled late only makes an
    arrival later, so load cannot fail it, where a window over the arrivals can (one late
    arrival bunched six requests into 1.0 s at load 14 for a pace of five per 1.05 s)."""
    assert len(arrivals) == len(started)
    for k, (arrival, start) in enumerate(zip(sorted(arrivals), sorted(started), strict=True)):
        assert arrival >= start, (k, arrival, start)


def recorded(snapshot: Path, source: str) -> list[Path]:
    """Files the recorder left in the source's folder (no temp files), sorted by name."""
    return sorted((snapshot / source).iterdir())


def assert_secrets_kept(
    snapshot: Path, http: SourceHttp, caplog: pytest.LogCaptureFixture, secrets: Iterable[str]
) -> None:
    """No secret in a recorded file's name or body, the request log or the client's log lines."""
    client_logs = " ".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("kratom_evidence", "httpx"))
    )
    for secret in secrets:
        for path in snapshot.rglob("*"):
            assert secret not in path.name
            assert path.is_dir() or secret.encode() not in path.read_bytes()
        assert all(secret not in entry.url for entry in http.log)
        assert secret not in client_logs


def capture_client_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture the client's and httpx's log lines, where a leaked secret would show."""
    caplog.set_level(logging.DEBUG, logger="kratom_evidence.http")
    caplog.set_level(logging.INFO, logger="httpx")


def closest_starts(http: SourceHttp) -> float:
    """Shortest time between two request starts on the client's clock (its pacing)."""
    starts = [entry.started_at for entry in http.log]
    return min(b - a for a, b in itertools.pairwise(starts))

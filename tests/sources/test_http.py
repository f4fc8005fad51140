"""The shared HTTP client against real servers on 127.0.0.1: retries, pacing, recording, secrets.

Status-code behaviour is scripted with pytest-httpserver; failures below HTTP (a stalled read,
a reset connection, a body cut short) need a raw socket server, `RawServer`, defined here.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import logging
import math
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.http import (
    InvalidBody,
    RateLimit,
    RequestLogEntry,
    ResponseRecorder,
    SourceError,
    SourceHttp,
    backoff_delay,
    parse_retry_after,
    redact_url,
    scrub,
)

SECRET = "k3y-0f-th3-t3st"
EMAIL = "curator@example.org"
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05}
"""Back-off small enough for a fast suite; Retry-After still sets its own, real waits."""


# --- servers -------------------------------------------------------------------------------


@dataclass
class Script:
    """A pytest-httpserver handler serving `responses` in order (the last one repeats)."""

    responses: list[Response]
    arrivals: list[float] = field(default_factory=list)
    wall_arrivals: list[float] = field(default_factory=list)
    args: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        self.arrivals.append(time.monotonic())
        self.wall_arrivals.append(time.time())
        self.args.append(dict(request.args))
        return self.responses[min(len(self.arrivals), len(self.responses)) - 1]


def serve(httpserver: HTTPServer, path: str, *responses: Response) -> Script:
    script = Script(list(responses))
    httpserver.expect_request(path).respond_with_handler(script)
    return script


def ok_json(body: object, **headers: str) -> Response:
    return Response(json.dumps(body), content_type="application/json", headers=headers)


def status(code: int, **headers: str) -> Response:
    return Response(f"status {code}", status=code, headers=headers)


Action = Callable[[socket.socket], None]


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def reply(body: bytes, declared_length: int | None = None) -> Action:
    """Answer 200 with `body`; a larger `declared_length` makes the body arrive cut short."""

    def act(conn: socket.socket) -> None:
        _read_request(conn)
        length = len(body) if declared_length is None else declared_length
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        conn.sendall(head.encode() + body)

    return act


def stall(conn: socket.socket) -> None:
    """Read the request and say nothing until the client gives up and closes (at most 30 s):
    a fixed silence shorter than that could end before a loaded client's timeout fires."""
    _read_request(conn)
    conn.settimeout(30.0)
    conn.recv(1)


def reset(conn: socket.socket) -> None:
    """Read the request and drop the connection with a TCP reset, no answer."""
    _read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 at socket level: connection n gets scripted action n."""

    def __init__(self, actions: list[Action]) -> None:
        self.actions = actions
        self.connections = 0
        self.accepted: list[float] = []
        """Monotonic time of each accepted connection: one per request (the server closes)."""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            action = self.actions[min(self.connections, len(self.actions) - 1)]
            self.connections += 1
            worker = threading.Thread(target=self._handle, args=(conn, action), daemon=True)
            worker.start()
            self.threads.append(worker)

    @staticmethod
    def _handle(conn: socket.socket, action: Action) -> None:
        # OSError: the client hung up first (after its read timeout); nothing to answer.
        with conn, contextlib.suppress(OSError):
            action(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self.acceptor.join(timeout=2)
        for worker in self.threads:
            worker.join(timeout=2)


@pytest.fixture
def raw_server() -> Iterator[Callable[[list[Action]], RawServer]]:
    servers: list[RawServer] = []

    def start(actions: list[Action]) -> RawServer:
        servers.append(RawServer(actions))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


class UpperBound(random.Random):
    """An rng whose jitter always lands on the top of the range, so waits are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


# --- pure parts ----------------------------------------------------------------------------


NOW = datetime(2025, 11, 20, 9, 0, 0, tzinfo=UTC)


def test_retry_after_delta_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 0 ", NOW) == 0.0


def test_retry_after_http_date_counts_from_now() -> None:
    assert parse_retry_after("Thu, 20 Nov 2025 09:00:30 GMT", NOW) == 30.0
    assert parse_retry_after(format_datetime(NOW + timedelta(minutes=2), usegmt=True), NOW) == 120


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    assert parse_retry_after("Thu, 20 Nov 2025 08:59:00 GMT", NOW) == 0.0


def test_retry_after_unusable_values_are_ignored() -> None:
    for value in (None, "", "soon", "-5", "1.5e3"):
        assert parse_retry_after(value, NOW) is None


def test_redact_url_hides_secret_values_but_keeps_tool_and_query() -> None:
    url = httpx.URL(
        "https://eutils.example/efetch.fcgi",
        params={"db": "pubmed", "tool": "kratom-evidence", "email": EMAIL, "API_KEY": SECRET},
    )
    safe = redact_url(url)
    assert safe == (
        "https://eutils.example/efetch.fcgi?db=pubmed&tool=kratom-evidence&email=***&API_KEY=***"
    )
    assert redact_url("https://api.example/works") == "https://api.example/works"


def test_scrub_replaces_raw_and_encoded_secrets_and_ignores_empty_ones() -> None:
    text = f"failed: GET /x?email=curator%40example.org&key={SECRET} for {EMAIL}"
    assert scrub(text, [EMAIL, SECRET, ""]) == "failed: GET /x?email=***&key=*** for ***"


def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling() -> None:
    ceilings = [backoff_delay(a, 1.0, 10.0, UpperBound()) for a in range(1, 7)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    rng = random.Random(7)
    draws = [backoff_delay(3, 1.0, 10.0, rng) for _ in range(200)]
    assert all(0.0 <= d <= 4.0 for d in draws)
    assert min(draws) < 1.0 < 3.0 < max(draws)  # spread over the range, not a fixed step


def test_recorder_refuses_names_that_leave_the_source_folder(tmp_path: Path) -> None:
    recorder = ResponseRecorder(tmp_path)
    for name in ("../escape.json", "sub/page.json", "", ".."):
        with pytest.raises(ValueError, match="plain file name"):
            recorder.record("pubmed", name, b"x")
    assert not any(tmp_path.rglob("*"))


# --- status retries over loopback -------------------------------------------------------------


def test_429_with_retry_after_one_second_waits_then_succeeds(httpserver: HTTPServer) -> None:
    script = serve(
        httpserver, "/works", status(429, **{"Retry-After": "1"}), ok_json({"results": []})
    )
    with SourceHttp("openalex", httpserver.url_for("/"), **FAST) as http:
        assert http.get_json("/works", {"search": "kratom"}) == {"results": []}

    assert len(script.arrivals) == http.requests_sent == 2
    assert http.retries == 1
    assert http.log[1].started_at - http.log[0].started_at >= 1.0
    assert script.arrivals[1] - script.arrivals[0] >= 0.99


def test_retry_after_http_date_is_honoured_over_loopback(httpserver: HTTPServer) -> None:
    not_before = datetime.fromtimestamp(math.ceil(time.time() + 0.3), UTC)
    script = serve(
        httpserver,
        "/studies",
        status(503, **{"Retry-After": format_datetime(not_before, usegmt=True)}),
        ok_json({"studies": []}),
    )
    with SourceHttp("clinicaltrials", httpserver.url_for("/"), **FAST) as http:
        http.get_json("/studies")

    assert len(script.arrivals) == 2
    assert script.wall_arrivals[1] >= not_before.timestamp()


def test_two_503_then_200_makes_three_requests(httpserver: HTTPServer) -> None:
    script = serve(httpserver, "/search", status(503), status(503), ok_json({"hitCount": 0}))
    with SourceHttp("europepmc", httpserver.url_for("/"), **FAST) as http:
        assert http.get_json("/search", {"query": "kratom"}) == {"hitCount": 0}

    assert len(script.arrivals) == http.requests_sent == 3
    assert http.retries == 2
    assert [e.status for e in http.log] == [503, 503, 200]
    assert [e.attempt for e in http.log] == [1, 2, 3]
    assert [e.problem for e in http.log] == ["HTTP 503", "HTTP 503", None]


def test_404_fails_at_once_naming_source_and_url(httpserver: HTTPServer) -> None:
    script = serve(httpserver, "/api/v2/studies/NCT00000000", status(404))
    http = SourceHttp("clinicaltrials", httpserver.url_for("/"), **FAST)

    with pytest.raises(SourceError) as caught:
        http.get_bytes("/api/v2/studies/NCT00000000", {"format": "json"})

    assert len(script.arrivals) == http.requests_sent == 1
    assert http.retries == 0
    message = str(caught.value)
    assert message.startswith("clinicaltrials: HTTP 404 from ")
    assert httpserver.url_for("/api/v2/studies/NCT00000000?format=json") in message
    assert "\n" not in message


def test_always_500_gives_up_after_max_tries_without_leaking_secrets(
    httpserver: HTTPServer,
) -> None:
    script = serve(httpserver, "/esearch.fcgi", status(500))
    params = {"tool": "kratom-evidence", "email": EMAIL, "api_key": SECRET}
    http = SourceHttp("pubmed", httpserver.url_for("/"), max_tries=4, default_params=params, **FAST)

    with pytest.raises(SourceError) as caught:
        http.get_json("/esearch.fcgi", {"term": "kratom"})

    assert len(script.arrivals) == http.requests_sent == 4
    assert http.retries == 3
    assert script.args[0]["api_key"] == SECRET  # sent to the server, shown to nobody else
    message = str(caught.value)
    assert message.startswith("pubmed: giving up on ")
    assert "/esearch.fcgi?tool=kratom-evidence&email=***&api_key=***&term=kratom" in message
    assert "after 4 tries: HTTP 500" in message
    assert SECRET not in message and EMAIL not in message


def test_waits_between_tries_follow_the_backoff_through_the_injected_sleep(
    httpserver: HTTPServer,
) -> None:
    serve(httpserver, "/activity.json", status(502))
    slept: list[float] = []
    http = SourceHttp(
        "chembl",
        httpserver.url_for("/"),
        max_tries=5,
        backoff_base=2.0,
        backoff_cap=10.0,
        sleep=slept.append,
        rng=UpperBound(),
    )
    with pytest.raises(SourceError, match="after 5 tries: HTTP 502"):
        http.get_json("/activity.json")

    assert slept == [2.0, 4.0, 8.0, 10.0]


def test_retry_after_beyond_the_limit_fails_instead_of_hanging(httpserver: HTTPServer) -> None:
    script = serve(httpserver, "/works", status(429, **{"Retry-After": "86400"}))
    http = SourceHttp("crossref", httpserver.url_for("/"), max_retry_after=60, **FAST)

    with pytest.raises(SourceError, match=r"Retry-After 86400 s, more than the 60 s"):
        http.get_json("/works")
    assert len(script.arrivals) == 1


def test_on_response_sees_every_answer_including_the_retried_ones(
    httpserver: HTTPServer,
) -> None:
    serve(
        httpserver,
        "/rest/pug/compound/cid/1/JSON",
        status(503, **{"X-Throttling-Control": "Request Count status: Red (90%)"}),
        ok_json({"PropertyTable": {"Properties": []}}),
    )
    seen: list[tuple[int, str | None]] = []
    http = SourceHttp(
        "pubchem",
        httpserver.url_for("/"),
        on_response=lambda r: seen.append((r.status_code, r.headers.get("X-Throttling-Control"))),
        **FAST,
    )
    http.get_json("/rest/pug/compound/cid/1/JSON")

    assert seen == [(503, "Request Count status: Red (90%)"), (200, None)]


# --- bodies that are not what was asked for ---------------------------------------------------


def test_html_page_with_status_200_is_retried_by_get_json(httpserver: HTTPServer) -> None:
    script = serve(
        httpserver,
        "/works",
        Response("<html><body>Maintenance</body></html>", content_type="text/html"),
        ok_json({"message": {"items": []}}),
    )
    with SourceHttp("crossref", httpserver.url_for("/"), **FAST) as http:
        assert http.get_json("/works") == {"message": {"items": []}}
    assert len(script.arrivals) == 2
    assert http.retries == 1
    # The request log tells the rejected 200 from the accepted one, and why.
    assert [e.status for e in http.log] == [200, 200]
    assert http.log[0].problem is not None and "invalid body" in http.log[0].problem
    assert http.log[1].problem is None


def test_truncated_json_with_matching_length_is_retried_by_get_json(
    httpserver: HTTPServer,
) -> None:
    script = serve(
        httpserver,
        "/works",
        Response('{"results": [{"id": "W1"}, {"id"', content_type="application/json"),
        ok_json({"results": [{"id": "W1"}]}),
    )
    with SourceHttp("openalex", httpserver.url_for("/"), **FAST) as http:
        assert http.get_json("/works") == {"results": [{"id": "W1"}]}
    assert len(script.arrivals) == 2


def test_json_that_never_parses_gives_up_naming_the_problem(httpserver: HTTPServer) -> None:
    serve(httpserver, "/works", Response("<html>busy</html>", content_type="text/html"))
    http = SourceHttp("openalex", httpserver.url_for("/"), max_tries=2, **FAST)
    with pytest.raises(SourceError, match=r"after 2 tries: invalid body: body is not JSON"):
        http.get_json("/works")


def test_get_bytes_returns_any_2xx_body_unless_a_validator_objects(
    httpserver: HTTPServer,
) -> None:
    serve(
        httpserver,
        "/efetch.fcgi",
        Response("<html>error</html>", content_type="text/html"),
        Response("<PubmedArticleSet/>", content_type="text/xml"),
    )
    http = SourceHttp("pubmed", httpserver.url_for("/"), **FAST)
    assert http.get_bytes("/efetch.fcgi") == b"<html>error</html>"

    def must_be_efetch(response: httpx.Response) -> None:
        if not response.content.startswith(b"<PubmedArticleSet"):
            raise InvalidBody("not an efetch document")

    httpserver.clear()
    script = serve(
        httpserver,
        "/efetch.fcgi",
        Response("<html>error</html>", content_type="text/html"),
        Response("<PubmedArticleSet/>", content_type="text/xml"),
    )
    assert http.get_bytes("/efetch.fcgi", validate=must_be_efetch) == b"<PubmedArticleSet/>"
    assert len(script.arrivals) == 2


# --- failures below HTTP ---------------------------------------------------------------------


def test_read_stalled_past_the_timeout_is_retried(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server([stall, reply(b'{"ok": true}')])
    timeout = httpx.Timeout(1.0)  # the reply's budget too: long enough for a loaded machine
    with SourceHttp("chembl", server.url, timeout=timeout, **FAST) as http:
        assert http.get_json("/activity.json") == {"ok": True}

    assert server.connections == 2
    assert http.retries == 1
    assert http.log[0].status is None and http.log[0].elapsed >= 1.0
    assert http.log[1].status == 200


def test_reset_connection_is_retried(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server([reset, reply(b'{"ok": true}')])
    with SourceHttp("europepmc", server.url, **FAST) as http:
        assert http.get_json("/search") == {"ok": True}
    assert server.connections == 2
    assert http.retries == 1
    assert [e.status for e in http.log] == [None, 200]


def test_body_cut_short_of_its_content_length_is_retried(
    raw_server: Callable[..., RawServer],
) -> None:
    whole = b'{"studies": [{"id": 1}, {"id": 2}]}'
    server = raw_server([reply(whole[:12], declared_length=len(whole)), reply(whole)])
    with SourceHttp("clinicaltrials", server.url, **FAST) as http:
        assert http.get_bytes("/api/v2/studies") == whole
    assert server.connections == 2
    assert http.retries == 1


def test_always_stalling_server_gives_up_with_the_timeout_named(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server([stall])
    http = SourceHttp("pubchem", server.url, max_tries=2, timeout=httpx.Timeout(0.2), **FAST)
    with pytest.raises(SourceError, match=r"^pubchem: giving up on .* after 2 tries: ReadTimeout"):
        http.get_json("/rest/pug/compound/cid/1/JSON")
    assert server.connections == 2


# --- pacing --------------------------------------------------------------------------------


def settle_garbage() -> None:
    """Collect the earlier tests' garbage now, not mid-measurement.

    The server sees a request under a millisecond after the client's paced start; a full
    garbage collection landing in between (seen: 7-13 ms) would read as a pacing fault.
    """
    gc.collect()


def gaps(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


def assert_accepts_follow_logged_starts(accepted: list[float], started: list[float]) -> None:
    """The wire agrees with the client's log: the k-th connection the server accepted came no
    earlier than the k-th logged start (a request is accepted only after it started, one
    connection each, one monotonic clock). A client that logged spaced starts but sent at once
    fails; a server thread scheduled late only makes an accept later, so load cannot fail it
    (a span of the accept times could: one late first accept shortened it to 1.03 s for 1.1)."""
    assert len(accepted) == len(started)
    for k, (accept, start) in enumerate(zip(sorted(accepted), sorted(started), strict=True)):
        assert accept >= start, (k, accept, start)


def test_minimum_interval_spaces_request_starts(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server([reply(b"{}")])
    settle_garbage()
    with SourceHttp("pubmed", server.url, min_interval=0.1) as http:
        for _ in range(10):
            http.get_json("/esearch.fcgi")

    assert len(server.accepted) == 10
    assert min(gaps([e.started_at for e in http.log])) >= 0.1
    assert_accepts_follow_logged_starts(server.accepted, [e.started_at for e in http.log])


def test_minimum_interval_holds_across_threads_sharing_a_client(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server([reply(b"{}")])
    settle_garbage()
    http = SourceHttp("openalex", server.url, min_interval=0.1)

    def worker() -> None:
        for _ in range(3):
            http.get_json("/works")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    http.close()

    assert len(server.accepted) == http.requests_sent == 12
    assert min(gaps([e.started_at for e in http.log])) >= 0.1
    assert_accepts_follow_logged_starts(server.accepted, [e.started_at for e in http.log])


class SteppedClock:
    """A clock that moves only when the client sleeps or an answer is slow: exact pacing."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limit_window_caps_every_second_and_catches_up_after_a_stall(
    httpserver: HTTPServer,
) -> None:
    serve(httpserver, "/efetch.fcgi", ok_json({}))
    clock = SteppedClock()
    slow_answers = {1: 0.5}  # by entries logged before it: the 2nd answer takes half a second

    def stall(response: httpx.Response) -> None:
        clock.now += slow_answers.get(len(http.log), 0.0)

    http = SourceHttp(
        "pubmed",
        httpserver.url_for("/"),
        min_interval=0.8 / 3,
        rate_limit=RateLimit(3, 1.0),
        sleep=clock.sleep,
        clock=clock,
        on_response=stall,
    )
    with http:
        for _ in range(8):
            http.get_json("/efetch.fcgi")
    starts = [e.started_at for e in http.log]

    step = 0.8 / 3
    after_stall = [0.5 + step, 0.5 + 2 * step, 0.5 + 3 * step]
    expected = [0.0, step, *after_stall, *(t + 1.0 for t in after_stall)]
    assert starts == pytest.approx(expected)
    assert max(sum(1 for t in starts if s <= t < s + 1.0) for s in starts) == 3
    # A fixed 1/3 s spacing alone would start the 8th request at 0.5 + 6/3 = 2.5 s.
    assert starts[-1] < 2.5 - 0.1


def test_a_sleep_woken_late_is_logged_as_overslept_apart_from_the_hold_the_pace_chose(
    httpserver: HTTPServer,
) -> None:
    serve(httpserver, "/compound", ok_json({}))
    clock = SteppedClock()

    def woken_late(seconds: float) -> None:
        clock.sleep(seconds + 0.03)  # a loaded machine runs the thread 30 ms after it asked

    http = SourceHttp(
        "pubchem", httpserver.url_for("/"), min_interval=0.2, sleep=woken_late, clock=clock
    )
    with http:
        for _ in range(3):
            http.get_json("/compound")

    assert [e.paced for e in http.log] == pytest.approx([0.0, 0.23, 0.23])
    assert [e.overslept for e in http.log] == pytest.approx([0.0, 0.03, 0.03])
    assert [e.started_at for e in http.log] == pytest.approx([0.0, 0.23, 0.46])


def test_slow_down_stretches_the_interval(httpserver: HTTPServer) -> None:
    script = serve(httpserver, "/compound", ok_json({}))
    http = SourceHttp("pubchem", httpserver.url_for("/"), min_interval=0.05)
    http.get_json("/compound")
    http.slow_down(3)
    http.get_json("/compound")
    http.get_json("/compound")

    assert http.min_interval == pytest.approx(0.15)
    starts = [e.started_at for e in http.log]
    assert min(gaps(starts[1:])) >= 0.15
    # The server shares the client's clock (one process): no request arrives before its logged
    # start, and none of the slowed ones before 0.15 s after the start of the one before, so
    # the spacing is real on the wire; a late arrival (a loaded machine) cannot break this
    assert all(arrival >= start for start, arrival in zip(starts, script.arrivals, strict=True))
    assert all(a >= s + 0.15 for s, a in zip(starts[1:], script.arrivals[2:], strict=False))
    with pytest.raises(ValueError):
        http.slow_down(0.5)


# --- parameters, base URL, recording, secrets ------------------------------------------------


def test_params_none_dropped_defaults_merged_under_a_base_path(httpserver: HTTPServer) -> None:
    script = serve(httpserver, "/chembl/api/data/activity.json", ok_json({"activities": []}))
    http = SourceHttp(
        "chembl", httpserver.url_for("/chembl"), default_params={"format": "json", "tool": "x"}
    )
    http.get_json("/api/data/activity.json", {"offset": 0, "pageToken": None, "tool": "kratom"})

    assert script.args == [{"format": "json", "tool": "kratom", "offset": "0"}]


def test_recorded_file_holds_the_exact_final_body(httpserver: HTTPServer, tmp_path: Path) -> None:
    body = b"<?xml version='1.0'?>\n<PubmedArticleSet>\xc3\xa9\x00</PubmedArticleSet>\n"
    serve(
        httpserver,
        "/efetch.fcgi",
        status(503),
        Response(body, content_type="text/xml"),
    )
    http = SourceHttp(
        "pubmed", httpserver.url_for("/"), recorder=ResponseRecorder(tmp_path), **FAST
    )

    assert http.get_bytes("/efetch.fcgi", {"retstart": 0}, record_as="efetch-0001.xml") == body
    assert (tmp_path / "pubmed" / "efetch-0001.xml").read_bytes() == body
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["efetch-0001.xml", "pubmed"]
    assert http.log[-1].sha256 == hashlib.sha256(body).hexdigest()
    assert http.log[-1].bytes == len(body)


def test_nothing_recorded_without_a_name_or_after_a_failure(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    serve(httpserver, "/version", ok_json({"dataTimestamp": "2025-11-20T09:00:05"}))
    serve(httpserver, "/broken", Response("<html/>", content_type="text/html"))
    http = SourceHttp(
        "clinicaltrials",
        httpserver.url_for("/"),
        max_tries=2,
        recorder=ResponseRecorder(tmp_path),
        **FAST,
    )
    http.get_json("/version")
    with pytest.raises(SourceError):
        http.get_json("/broken", record_as="broken.json")

    assert not (tmp_path / "clinicaltrials").exists()


def test_secrets_appear_in_no_log_record_error_or_request_log(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    serve(httpserver, "/works", status(429, **{"Retry-After": "0"}), ok_json({"results": []}))
    serve(httpserver, "/missing", status(404))
    params = {"mailto": EMAIL, "api_key": SECRET}
    http = SourceHttp(
        "openalex",
        httpserver.url_for("/"),
        default_params=params,
        recorder=ResponseRecorder(tmp_path),
        **FAST,
    )
    http.get_json("/works", {"search": "kratom"}, record_as="works-0001.json")
    with pytest.raises(SourceError) as caught:
        http.get_json("/missing")

    # The server side (werkzeug) is the stand-in for the source, which does see the key.
    client_side = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    texts = [r.getMessage() for r in client_side] + [str(caught.value)]
    texts += [entry.url for entry in http.log]
    assert any("search=kratom" in t and "api_key=***" in t for t in caplog.messages)
    assert any(  # the retry notice: INFO, shown on stderr only by `refresh -v`
        r.name == "kratom_evidence.http"
        and r.levelno == logging.INFO
        and "try 1/" in r.getMessage()
        for r in caplog.records
    )
    for text in texts:
        assert SECRET not in text
        assert EMAIL not in text and "curator%40example.org" not in text
    assert all(isinstance(entry, RequestLogEntry) for entry in http.log)
    assert len(http.log) == 3

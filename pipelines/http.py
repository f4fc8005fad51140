"""The one HTTP client every live source uses: pacing, retries, Retry-After, recording.

Retries and limits live here once, so a source module only says what to fetch. httpx's own
`retries=` covers connection set-up only; this loop also retries 429/5xx, stalled or cut-off
reads and bodies that fail a validity check, and gives up with one line naming source and URL.
No secret (API key, e-mail) ever reaches a log line, an error message or the request log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import httpx
import orjson

logger = logging.getLogger("kratom_evidence.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses that say "try again later"; every other 4xx/5xx is final (but see RATE_LIMITED)."""
RATE_LIMITED = re.compile(rb"rate[ _-]?limit", re.IGNORECASE)
"""A 403 whose body says this is a rate limit, not a refusal: OpenAlex documents 403 as "Rate
limit exceeded; slow down" (https://developers.openalex.org/api-reference/errors), so it is
retried like a 429."""
LIMIT_HEADER = "x-rate-limit-limit"
INTERVAL_HEADER = "x-rate-limit-interval"
"""Crossref announces its rate limit on every response in these two headers, e.g. `3` and `1s`
(https://crossref.org/documentation/retrieve-metadata/rest-api/access-and-authentication/)."""
PER_SECOND_HEADER = "x-ratelimit-limit"
"""NCBI's E-utilities state the caller's limit in requests a second (3, or 10 with an API key)
in this header on every answer, without an interval (seen in answers quoted at
https://github.com/mtisza1/Cenote-Taker2/issues/18; the limit itself:
https://support.nlm.nih.gov/kbArticle/?pn=KA-05510)."""
ANNOUNCED_MARGIN = 1.1
"""The window of an announced limit is stretched by this much: request starts on the client's
clock and arrivals on the server's differ by network and scheduling jitter."""
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_SECRET_PARAMS = frozenset({"api_key", "email", "mailto"})
REDACTED = "***"

ResponseHook = Callable[[httpx.Response], None]


class SourceError(RuntimeError):
    """A live source failed for good: a final 4xx, or every try used up. One line, no secret."""


class PagingError(ValueError):
    """A source answered with a page that cannot be followed (not JSON, or a token loop)."""


class InvalidBody(ValueError):
    """A 2xx body that is not what was asked for (HTML error page, cut-off JSON): retry it."""


@dataclass(frozen=True)
class RequestLogEntry:
    """One attempt as sent: what came back and how long it took. `url` has secrets redacted."""

    url: str
    status: int | None
    """HTTP status, or None when the attempt ended in a transport error."""
    bytes: int
    sha256: str | None
    elapsed: float
    """Seconds from start to the whole body read (or to the failure)."""
    attempt: int
    started_at: float
    """The client's clock (monotonic by default) when the request started."""
    problem: str | None = None
    """Why this attempt was not the answer (HTTP 503, a reset, an HTML page with status 200);
    None for the accepted response."""
    paced: float = 0.0
    """Seconds the client held this attempt for its pace (minimum interval, rate limit) before
    `started_at`: what politeness cost, apart from the answer and the client's own work."""
    overslept: float = 0.0
    """Of `paced`, the seconds the pace's sleep returned later than it asked: a loaded machine
    waking the thread late, not a hold the pace chose (an audit of the pace leaves it out)."""


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` request starts inside any `window` seconds: a sliding window.

    A fixed spacing alone never catches up after a slow answer or a stall, so a polite client
    falls well below its limit; the window lets it catch up while never exceeding the limit.
    """

    requests: int
    window: float

    def scaled(self, factor: float) -> RateLimit:
        """The same count in a window stretched by `factor` (0 turns pacing off, in tests)."""
        return RateLimit(self.requests, self.window * factor)


class ResponseRecorder:
    """Writes response bodies, byte for byte, into `<root>/<source>/<name>` of a snapshot."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, source: str, name: str) -> Path:
        """Where `name` of `source` goes; a name must be a plain file name, not a path."""
        if not name or Path(name).name != name or name in {".", ".."}:
            raise ValueError(f"record name must be a plain file name, got {name!r}")
        return self.root / source / name

    def record(self, source: str, name: str, body: bytes) -> Path:
        """Write atomically (temp file + rename): a reader never sees half a body."""
        target = self.path_for(source, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return target


def redact_url(url: httpx.URL | str, secret_params: Iterable[str] = DEFAULT_SECRET_PARAMS) -> str:
    """The URL with the value of every secret query parameter replaced by `***`."""
    url = httpx.URL(url)
    names = {name.lower() for name in secret_params}
    if not url.query:
        return str(url)
    pairs = [(k, REDACTED if k.lower() in names else v) for k, v in url.params.multi_items()]
    return str(url.copy_with(query=urlencode(pairs, safe="*").encode()))


def page_url(base_url: str, path: str, params: Mapping[str, Any] | None = None) -> str:
    """The URL a pager asked for, secrets redacted: for errors that must name it."""
    query = {k: v for k, v in (params or {}).items() if v is not None}
    return redact_url(httpx.URL(base_url.rstrip("/") + path, params=query))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value (raw or URL-encoded) replaced by `***`."""
    for secret in filter(None, secrets):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, REDACTED)
    return text


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks to wait: delta-seconds or an HTTP-date; None if unusable.

    `now` is the wall-clock time (aware, UTC) the HTTP-date is measured from.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def announced_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The limit `x-rate-limit-limit` / `x-rate-limit-interval` announce (interval in seconds,
    `1s` or `1`), its window stretched by ANNOUNCED_MARGIN; else the requests a second
    `x-ratelimit-limit` announces (NCBI), kept in any one second (a source's own stricter
    pace, such as PubMed's 1.05 s window at the real pace, stays); None without either."""
    count, interval = headers.get(LIMIT_HEADER), headers.get(INTERVAL_HEADER)
    per_second = headers.get(PER_SECOND_HEADER, "").strip()
    if count is None and per_second.isdigit() and int(per_second) >= 1:
        return RateLimit(int(per_second), 1.0)
    if count is None or interval is None or not count.strip().isdigit():
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*s?\s*", interval)
    if match is None or int(count) < 1 or float(match.group(1)) <= 0:
        return None
    return RateLimit(int(count), float(match.group(1)) * ANNOUNCED_MARGIN)


def stricter(limit: RateLimit | None, other: RateLimit) -> bool:
    """True when `other` allows fewer requests per second than `limit` (None allows any)."""
    if limit is None or limit.window <= 0:
        return True
    return other.requests / other.window < limit.requests / limit.window


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential back-off: uniform in [0, min(cap, base * 2**(attempt - 1))]."""
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))


def require_json(response: httpx.Response) -> Any:
    """The parsed body, or InvalidBody when it is not JSON (an HTML page, a cut-off body)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"body is not JSON ({exc})") from None


class _QueryOnlyInHttpxLogs(logging.Filter):
    """httpx logs each request URL at INFO; drop its query string, where secrets travel."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


_HTTPX_LOG_FILTER = _QueryOnlyInHttpxLogs()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SourceHttp:
    """The HTTP client of one source: its own pace, retries, recording and request log.

    One instance per source; it is thread-safe, and its minimum interval holds across threads.
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        *,
        min_interval: float = 0.0,
        rate_limit: RateLimit | None = None,
        max_tries: int = 6,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_after: float = 600.0,
        secret_params: frozenset[str] = DEFAULT_SECRET_PARAMS,
        default_params: Mapping[str, Any] | None = None,
        retry_statuses: frozenset[int] = frozenset(),
        recorder: ResponseRecorder | None = None,
        on_response: ResponseHook | None = None,
        on_log: Callable[[RequestLogEntry], None] | None = None,
        user_agent: str = "kratom-evidence/0.1",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.source = source
        self.base_url = base_url
        self.min_interval = min_interval
        self.rate_limit = rate_limit
        self.max_tries = max_tries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.secret_params = frozenset(name.lower() for name in secret_params)
        self.default_params = dict(default_params or {})
        self.retry_statuses = RETRY_STATUSES | retry_statuses
        """RETRY_STATUSES and the statuses this source documents as transient too."""
        self.recorder = recorder
        self.on_response = on_response
        self.on_log = on_log
        self.requests_sent = 0
        self.retries = 0
        self.log: list[RequestLogEntry] = []
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()
        self._pace_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._last_start: float | None = None
        self._recent_starts: deque[float] = deque(maxlen=rate_limit.requests if rate_limit else 1)
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"User-Agent": user_agent},
            follow_redirects=True,
            transport=transport,
        )
        logging.getLogger("httpx").addFilter(_HTTPX_LOG_FILTER)

    def __enter__(self) -> SourceHttp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def slow_down(self, factor: float) -> None:
        """Stretch the minimum interval by `factor` (e.g. when a source says it is overloaded).

        A client without a minimum interval stays unpaced: give it one to slow it down.
        """
        if factor < 1:
            raise ValueError("slow_down factor must be at least 1")
        with self._pace_lock:
            self.min_interval *= factor
            if self.rate_limit is not None:
                self.rate_limit = self.rate_limit.scaled(factor)

    def limit_to(self, limit: RateLimit) -> None:
        """Keep to `limit` from now on when it is stricter than the current one (a server's
        announced limit wins over a looser configured pace, `--pace 0` included)."""
        with self._pace_lock:
            if not stricter(self.rate_limit, limit):
                return
            self.rate_limit = limit
            self._recent_starts = deque(self._recent_starts, maxlen=limit.requests)

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        record_as: str | None = None,
        validate: ResponseHook | None = None,
    ) -> httpx.Response:
        """GET `path` (relative to the base URL) until a final answer; record it as `record_as`.

        Parameters set to None are left out; the default parameters are sent with every request.
        `validate` may raise InvalidBody to have a 2xx answer retried like a 503.
        """
        query = {**self.default_params, **(params or {})}
        query = {key: value for key, value in query.items() if value is not None}
        secrets = [str(v) for k, v in query.items() if k.lower() in self.secret_params]
        request = self._client.build_request("GET", path, params=query)
        safe_url = redact_url(request.url, self.secret_params)
        problem = "no attempt made"
        for attempt in range(1, self.max_tries + 1):
            response, problem, delay = self._attempt(request, safe_url, attempt, validate)
            if response is not None:
                if record_as is not None and self.recorder is not None:
                    self.recorder.record(self.source, record_as, response.content)
                return response
            problem = scrub(problem, secrets)
            if attempt == self.max_tries:
                break
            with self._stats_lock:
                self.retries += 1
            # INFO, not WARNING: a retry is routine, and the request log (`problem`) and the
            # refresh progress bar already report it; `refresh -v` shows these lines too.
            logger.info(
                "%s: try %d/%d of %s failed (%s); retrying in %.2f s",
                self.source,
                attempt,
                self.max_tries,
                safe_url,
                problem,
                delay,
            )
            self._sleep(delay)
        raise SourceError(
            f"{self.source}: giving up on {safe_url} after {self.max_tries} tries: {problem}"
        )

    def get_bytes(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        record_as: str | None = None,
        validate: ResponseHook | None = None,
    ) -> bytes:
        """The body of `get`, exactly as received (and as recorded)."""
        return self.get(path, params, record_as=record_as, validate=validate).content

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        record_as: str | None = None,
        validate: ResponseHook | None = None,
    ) -> Any:
        """The parsed JSON body of `get`; a body that is not JSON is retried, never recorded."""
        parsed: list[Any] = []

        def check(response: httpx.Response) -> None:
            parsed[:] = [require_json(response)]
            if validate is not None:
                validate(response)

        self.get(path, params, record_as=record_as, validate=check)
        return parsed[0]

    def _attempt(
        self, request: httpx.Request, safe_url: str, attempt: int, validate: ResponseHook | None
    ) -> tuple[httpx.Response | None, str, float]:
        """One try: (final response, "", 0) or (None, the problem, seconds to wait before next).

        A final status (4xx but 429 and a rate-limit 403, any other non-2xx), a Retry-After
        longer than `max_retry_after` or an httpx failure that is not transient raise SourceError
        at once.
        """
        asked = self._clock()
        started, overslept = self._pace()
        paced = started - asked
        with self._stats_lock:
            self.requests_sent += 1
        try:
            response = self._client.send(request)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            elapsed = self._clock() - started
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._note(
                RequestLogEntry(
                    safe_url,
                    None,
                    0,
                    None,
                    elapsed,
                    attempt,
                    started,
                    problem,
                    paced=paced,
                    overslept=overslept,
                )
            )
            return None, problem, self._backoff(attempt)
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.source}: {safe_url} failed: {type(exc).__name__}") from None
        body = response.content
        entry = RequestLogEntry(
            safe_url,
            response.status_code,
            len(body),
            hashlib.sha256(body).hexdigest(),
            self._clock() - started,
            attempt,
            started,
            paced=paced,
            overslept=overslept,
        )
        announced = announced_limit(response.headers)
        if announced is not None:
            self.limit_to(announced)
        if self.on_response is not None:
            self.on_response(response)
        try:
            outcome = self._judge(response, safe_url, attempt, validate)
        except SourceError as exc:
            self._note(replace(entry, problem=str(exc)))
            raise
        self._note(replace(entry, problem=outcome[1] or None))
        return outcome

    def _judge(
        self,
        response: httpx.Response,
        safe_url: str,
        attempt: int,
        validate: ResponseHook | None,
    ) -> tuple[httpx.Response | None, str, float]:
        """The answer, a problem to retry after a wait, or SourceError for a final failure."""
        status = response.status_code
        rate_limited = status == 403 and RATE_LIMITED.search(response.content) is not None
        if status in self.retry_statuses or rate_limited:
            wait = parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())
            if wait is None:
                return None, f"HTTP {status}", self._backoff(attempt)
            if wait > self.max_retry_after:
                raise SourceError(
                    f"{self.source}: HTTP {status} from {safe_url} with Retry-After {wait:.0f} s,"
                    f" more than the {self.max_retry_after:.0f} s this client waits"
                )
            return None, f"HTTP {status} (Retry-After: {wait:g} s)", wait
        if not response.is_success:
            raise SourceError(f"{self.source}: HTTP {status} from {safe_url}")
        if validate is not None:
            try:
                validate(response)
            except InvalidBody as exc:
                return None, f"invalid body: {exc}", self._backoff(attempt)
        return response, "", 0.0

    def _pace(self) -> tuple[float, float]:
        """Hold this request until `min_interval` has passed since the previous start and,
        with a rate limit, until the start `requests` back has left the window; the start it
        let go (what the log records, so logged starts keep the interval the pace kept) and
        how much later than asked the sleep returned."""
        with self._pace_lock:
            now = self._clock()
            wait = 0.0
            if self._last_start is not None and self.min_interval > 0:
                wait = self._last_start + self.min_interval - now
            limit = self.rate_limit
            if limit is not None and len(self._recent_starts) == limit.requests:
                wait = max(wait, self._recent_starts[0] + limit.window - now)
            overslept = 0.0
            if wait > 0:
                self._sleep(wait)
                self._last_start = self._clock()
                overslept = max(0.0, self._last_start - (now + wait))
            else:
                self._last_start = self._clock()
            self._recent_starts.append(self._last_start)
            return self._last_start, overslept

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.backoff_base, self.backoff_cap, self._rng)

    def _note(self, entry: RequestLogEntry) -> None:
        with self._stats_lock:
            self.log.append(entry)
        if self.on_log is not None:
            self.on_log(entry)
        logger.debug(
            "%s: GET %s -> %s, %d bytes, %.3f s, try %d",
            self.source,
            entry.url,
            entry.status if entry.status is not None else "no answer",
            entry.bytes,
            entry.elapsed,
            entry.attempt,
        )

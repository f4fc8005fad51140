"""Recording one source: its pages written into the snapshot as they arrive, every body checked,
and a page an interrupted run already recorded read back instead of fetched again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from pipelines.http import SourceHttp
from pipelines.refresh.plan import Delta, Plan
from pipelines.refresh.settings import live_units
from pipelines.sources.base import LiveRun, RestartQuery, check_json
from pipelines.sources.relevance import Screen

Advance = Callable[[int], None]


@dataclass
class SourceOutcome:
    """What one source's fetch did: hits per query, pages recorded, the client's request log."""

    source: str
    hits: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    requests: int = 0
    retries: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    """One line (secrets as ***) when the source failed for good."""
    warnings: list[str] = field(default_factory=list)
    """What the source flagged without failing (e.g. fewer records than it announced)."""
    screen: Screen | None = None
    """The relevance screen of a screened source: kept and dropped per query, works dropped."""


class RecordingClient:
    """The pagers' client view of a SourceHttp: record names get a query prefix, bodies checked.

    Two queries page through the same file names (`search-0001.json`); a prefix keeps both. A
    2xx body that is not the right format (an HTML error page, a cut-off body) is retried.
    With a `Delta`, every request gets its change filter and every page a delta name; `fixed`
    parameters (by request path) go with every request too.
    With `restart` (a source whose cursors expire), a query resumed from recorded pages that
    then needs a live page is not continued from the recorded cursor: the recorded pages of
    the query are deleted and `RestartQuery` tells the pager to start again from page one.
    """

    def __init__(
        self,
        http: SourceHttp,
        prefix: str,
        validate: Callable[[httpx.Response], None],
        delta: Delta | None = None,
        fixed: Mapping[str, Mapping[str, Any]] | None = None,
        restart: bool = False,
    ) -> None:
        self.http = http
        self.restart = restart
        self.replayed: list[Path] = []
        self.replay = True
        self.base_url = http.base_url
        self.prefix = prefix
        self.validate = validate
        self.delta = delta
        self.fixed = fixed or {}
        self.pages = 0

    def _name(self, record_as: str | None) -> str | None:
        if record_as is None:
            return None
        self.pages += 1
        if self.delta is not None:
            return f"{self.delta.name}-{self.pages:04d}{Path(record_as).suffix}"
        return f"{self.prefix}{record_as}"

    def _params(self, path: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
        changed = self.delta.params.get(path, {}) if self.delta is not None else {}
        extra = {**self.fixed.get(path, {}), **changed}
        return {**(params or {}), **extra} if extra else params

    def _recorded(self, name: str | None) -> bytes | None:
        """The body an earlier, interrupted run of this snapshot already recorded, if any."""
        recorder = self.http.recorder
        if name is None or recorder is None or not self.replay:
            return None
        path = recorder.path_for(self.http.source, name)
        if not path.is_file():
            return None
        self.replayed.append(path)
        return path.read_bytes()

    def _going_live(self, name: str | None) -> None:
        """Before a live page request: restart the query when it would follow a recorded
        cursor. From then on, a restarting client asks every page of its query live."""
        if name is None or not self.restart:
            return
        self.replay = False
        if not self.replayed:
            return
        for path in self.replayed:
            path.unlink(missing_ok=True)
        self.replayed = []
        self.pages = 0
        raise RestartQuery(f"{self.http.source}: {self.prefix or 'query'} restarted")

    def get_bytes(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> bytes:
        name = self._name(record_as)
        recorded = self._recorded(name)
        if recorded is not None:
            return recorded
        self._going_live(name)
        params = self._params(path, params)
        return self.http.get_bytes(path, params, record_as=name, validate=self.validate)

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any:
        name = self._name(record_as)
        recorded = self._recorded(name)
        if recorded is not None:
            return orjson.loads(recorded)
        self._going_live(name)
        validate = None if self.validate is check_json else self.validate
        return self.http.get_json(
            path, self._params(path, params), record_as=name, validate=validate
        )


def fetch_source(
    source: str, http: SourceHttp, plan: Plan, pacer: Any, advance: Advance
) -> SourceOutcome:
    """Page through `source`'s share of the plan with recording clients; hits and pages.

    In a --since-last run a source with nothing to ask (no new compound ids) asks nothing.
    """
    live = live_units()[source]
    work, delta = plan.work.get(source, []), plan.delta.get(source)
    if delta is not None and not work:
        return SourceOutcome(source)
    clients: list[RecordingClient] = []

    def client(
        prefix: str = "", fixed: Mapping[str, Mapping[str, Any]] | None = None
    ) -> RecordingClient:
        made = RecordingClient(http, prefix, live.check_body, delta, fixed, live.state_expires)
        clients.append(made)
        return made

    warnings: list[str] = []
    relevance = plan.relevance.get(source)
    screen = Screen(relevance) if relevance is not None else None
    run = LiveRun(client, work, plan.page_size, advance, pacer, warnings.append, screen)
    hits = live.fetch(run)
    pages = sum(c.pages for c in clients)
    return SourceOutcome(source, hits=hits, pages=pages, warnings=warnings, screen=screen)

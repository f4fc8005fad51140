"""What a refresh talks to and how politely: the live sources, their URLs, the client knobs.

Everything per source comes from its unit's `live` part (`pipelines.sources`); this module
names no source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from pipelines.http import RequestLogEntry, ResponseRecorder, SourceHttp
from pipelines.sources import SOURCES
from pipelines.sources.base import Credentials, LiveSource, Pacer


def live_units() -> dict[str, LiveSource]:
    """The registered sources with an API, in registry order (the order they are reported in).

    Read from the registry at every call, so a source registered after import is refreshed too.
    """
    return {name: unit.live for name, unit in SOURCES.items() if unit.live is not None}


def live_sources() -> tuple[str, ...]:
    """Names of the registered live sources, in registry order."""
    return tuple(live_units())


def live_base_urls() -> dict[str, str]:
    """Each live source's real API."""
    return {name: live.base_url for name, live in live_units().items()}


def emulator_paths() -> dict[str, str]:
    """Where each source sits under one `serve-snapshot` base URL (`--base-url all=URL`)."""
    return {name: live.emulator_path for name, live in live_units().items()}


EMAIL_ENV = "KRATOM_EVIDENCE_EMAIL"
"""The contact e-mail every source is asked with (NCBI `email`, the `mailto` of OpenAlex and
Crossref, the User-Agent)."""


def api_key_envs() -> dict[str, str]:
    """Source -> the environment variable holding its API key, for every live source whose unit
    takes one (`LiveSource.api_key_env`)."""
    return {name: live.api_key_env for name, live in live_units().items() if live.api_key_env}


def credentials_from(environ: Mapping[str, str]) -> Credentials:
    """The contact e-mail and each source's API key that `environ` sets (blank means unset)."""
    keys = {source: environ.get(name, "").strip() for source, name in api_key_envs().items()}
    return Credentials(
        email=environ.get(EMAIL_ENV, "").strip() or None,
        api_keys={source: key for source, key in keys.items() if key},
    )


def min_intervals() -> dict[str, float]:
    """Seconds between request starts without credentials."""
    return {name: live.min_interval(Credentials()) for name, live in live_units().items()}


PROJECT_AGENT = "kratom-evidence/0.1 (Kratom Evidence dataset refresh)"
"""User-Agent without a contact; `user_agent` adds the contact e-mail when one is given."""


def user_agent(creds: Credentials) -> str:
    """The project and, when given, the contact e-mail: Crossref counts a `mailto:` in the agent
    as polite (https://crossref.org/documentation/retrieve-metadata/rest-api/access-and-authentication/),
    and every source can reach the operator. Sent as a header only: never logged or recorded."""
    if not creds.email:
        return PROJECT_AGENT
    return PROJECT_AGENT[:-1] + f"; mailto:{creds.email})"


class RefreshError(RuntimeError):
    """The refresh cannot run as asked (bad --base-url, no queries)."""


@dataclass(frozen=True)
class HttpSettings:
    """Client knobs; tests shorten them, a real refresh keeps the polite defaults."""

    timeout: float = 30.0
    max_tries: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    pace: float = 1.0
    """Factor on every source's minimum interval: 1 for real APIs, 0 against a local emulator."""
    page_size: int | None = None
    """Records per page or batch for every source; None keeps each source's own. Tests shrink
    it so every paging protocol turns several pages on a few records."""


POLITE = HttpSettings()
"""The defaults a real refresh runs with."""


def parse_base_urls(values: Sequence[str]) -> dict[str, str]:
    """`SOURCE=URL` and `all=URL` overrides -> base URL per live source (live defaults else).

    `all=URL` points every source at one `serve-snapshot` emulator, each under its own path;
    a `SOURCE=URL` given as well wins for that source and is used as is.
    """
    urls, paths, names = live_base_urls(), emulator_paths(), live_sources()
    explicit: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise RefreshError(f"--base-url wants SOURCE=URL, got {value!r}")
        if name == "all":
            urls.update({s: url.rstrip("/") + paths[s] for s in names})
        elif name in names:
            explicit[name] = url.rstrip("/")
        else:
            raise RefreshError(f"--base-url: unknown source {name!r} (one of all, {names})")
    return {**urls, **explicit}


def source_client(
    source: str,
    base_url: str,
    creds: Credentials,
    settings: HttpSettings,
    recorder: ResponseRecorder,
    on_log: Callable[[RequestLogEntry], None],
    pacer: Pacer | None,
) -> SourceHttp:
    """The client of one live source with its own politeness, stretched by `settings.pace`."""
    live = live_units()[source]
    limit = live.rate_limit(creds)
    return SourceHttp(
        source,
        base_url,
        min_interval=live.min_interval(creds) * settings.pace,
        rate_limit=limit.scaled(settings.pace) if limit is not None else None,
        max_tries=settings.max_tries,
        timeout=httpx.Timeout(settings.timeout),
        backoff_base=settings.backoff_base,
        backoff_cap=settings.backoff_cap,
        default_params=live.default_params(creds),
        retry_statuses=live.retry_statuses,
        user_agent=user_agent(creds),
        recorder=recorder,
        on_response=pacer.on_response if pacer is not None else None,
        on_log=on_log,
    )

"""What one deployment of the Dagster code location sets in its environment; none of it secret.

`pipelines/definitions.py` reads these once, when the code location loads (a schedule's cron and
the data dir its runs publish into are fixed in the definitions); unset, each keeps the default
that suits one machine with the real APIs. Secrets are not here: they reach a run only through
`dg.EnvVar` (`pipelines/resources.py` LiveCredentialsResource).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines import paths
from pipelines.refresh import RefreshError, parse_base_urls

DATA_DIR_ENV = "KRATOM_EVIDENCE_DATA_DIR"
"""Where scheduled and sensor runs record, build and publish; unset: the repository's data/."""
CRON_ENV = "KRATOM_EVIDENCE_REFRESH_CRON"
"""The refresh schedule's cron (UTC); unset: weekly (a demo sets `* * * * *`)."""
BASE_URL_ENV = "KRATOM_EVIDENCE_BASE_URL"
"""`--base-url` values, space-separated: `all=http://127.0.0.1:8765` points every live source at
one `serve-snapshot` emulator; unset: the real APIs."""
PACE_ENV = "KRATOM_EVIDENCE_PACE"
"""Factor on every source's minimum interval between requests: 1 (unset) for the real APIs, 0
for a local emulator."""
MEMORY_LIMIT_ENV = "KRATOM_EVIDENCE_DUCKDB_MEMORY_LIMIT"
"""DuckDB's `memory_limit` for the build's warehouse, e.g. `2GB`; unset: `DEFAULT_MEMORY_LIMIT`."""
DEFAULT_MEMORY_LIMIT = "512MB"
"""What the warehouse's DuckDB may hold in memory (its buffer pool, sorts, joins) before it
spills to `<warehouse>.tmp/`: fixed, so a build's resident memory does not grow with the
data (DuckDB's own default is 80 % of the machine's RAM)."""
WEEKLY_CRON = "0 3 * * 1"
"""Mondays 03:00 UTC: ClinicalTrials.gov and PubMed are quiet, the week's updates are in."""


@dataclass(frozen=True)
class Deployment:
    """The settings a code location runs with."""

    data_dir: Path
    refresh_cron: str
    base_urls: dict[str, str]
    """Base URL per live source."""
    pace: float
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    """DuckDB's `memory_limit` for the warehouse."""


def deployment(environ: Mapping[str, str]) -> Deployment:
    """The settings `environ` gives, defaults for what it leaves unset or blank.

    Raises:
        RefreshError: a base URL or the pace is malformed (the code location does not load,
            naming the variable).
    """
    data_dir = environ.get(DATA_DIR_ENV, "").strip()
    pace_text = environ.get(PACE_ENV, "").strip() or "1"
    try:
        pace = float(pace_text)
    except ValueError:
        pace = -1.0
    if not pace >= 0:
        raise RefreshError(f"{PACE_ENV}={pace_text!r}: want a number >= 0")
    try:
        base_urls = parse_base_urls(environ.get(BASE_URL_ENV, "").split())
    except RefreshError as exc:
        raise RefreshError(f"{BASE_URL_ENV}: {exc}") from exc
    return Deployment(
        data_dir=Path(data_dir).resolve() if data_dir else paths.DEFAULT_DATA_DIR,
        refresh_cron=environ.get(CRON_ENV, "").strip() or WEEKLY_CRON,
        base_urls=base_urls,
        pace=pace,
        memory_limit=memory_limit(environ),
    )


def memory_limit(environ: Mapping[str, str]) -> str:
    """The warehouse's DuckDB `memory_limit` that `environ` sets, else the default."""
    return environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT

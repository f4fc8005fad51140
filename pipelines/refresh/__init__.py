"""Live refresh: query every source, record every body into a new snapshot, then build from it.

The snapshot is `DATA/snapshots/<UTC stamp>/` in the bundled layout. It says `"complete": false`
until the last body is written, so `build` refuses a refresh that stopped half-way. Beside the
source folders sit `requests.jsonl` (every attempt, secrets redacted) and `search_strategy.json`
(each query with its hit count per source). Secrets arrive as arguments, never from the
environment here, and never reach a file or a log line.

`--since-last` asks each source only for what changed since the last complete recorded snapshot
(one OR-combined query per source with the source's own change filter), then carries that
snapshot's files over byte for byte and lists in SNAPSHOT.json `supersedes` every carried record
a changed one replaces: the new folder is again a complete snapshot of bodies as returned.

A source that fails for good never stops the others: it is named in SNAPSHOT.json
`failed_sources`, and its files are carried over byte for byte from the newest complete recorded
snapshot (`carried_from`, named in the release manifest too); with none, the snapshot stays
incomplete for the next run to resume.

One module per concern: `settings` (live sources, URLs, client knobs), `plan` (what to ask),
`record` (recording one source), `resume` (the snapshot folder, resumed after a stop), `carry`
(files taken over), `audit` (request log, search strategy), `progress` (the bar), `run` (the
whole refresh). What each source does comes from its unit in `pipelines.sources`.
"""

from pipelines.refresh.audit import REQUEST_LOG, SEARCH_STRATEGY, busiest_window
from pipelines.refresh.carry import previous_folder
from pipelines.refresh.plan import (
    combined_query,
    delta_request,
    load_compound_ids,
    load_queries,
)
from pipelines.refresh.record import SourceOutcome
from pipelines.refresh.resume import write_info
from pipelines.refresh.run import RefreshResult, refresh
from pipelines.refresh.settings import (
    EMAIL_ENV,
    HttpSettings,
    RefreshError,
    api_key_envs,
    credentials_from,
    emulator_paths,
    live_base_urls,
    live_sources,
    min_intervals,
    parse_base_urls,
)
from pipelines.sources.base import Credentials

__all__ = [
    "EMAIL_ENV",
    "REQUEST_LOG",
    "SEARCH_STRATEGY",
    "Credentials",
    "HttpSettings",
    "RefreshError",
    "RefreshResult",
    "SourceOutcome",
    "api_key_envs",
    "busiest_window",
    "combined_query",
    "credentials_from",
    "delta_request",
    "emulator_paths",
    "live_base_urls",
    "live_sources",
    "load_compound_ids",
    "load_queries",
    "min_intervals",
    "parse_base_urls",
    "previous_folder",
    "refresh",
    "write_info",
]

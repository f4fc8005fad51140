"""What a refresh asks each live source: its topic queries or compound ids, and for
`--since-last` the source's change filter on one combined query."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipelines import snapshot
from pipelines.refresh.settings import RefreshError, live_units
from pipelines.sources import SOURCES
from pipelines.sources.base import Credentials, RecordError, SnapshotFormatError
from pipelines.sources.relevance import Bounds, Relevance, topic_terms

COMPOUND_IDS = "compound_ids"
"""SNAPSHOT.json key: {source: [ids asked]} for the sources asked by compound id."""
NO_CHANGE_FILTER = "since-last: this source has no change filter, so every query was asked in full"
"""search_strategy.json `note` of a searched source without a change filter."""
SEARCH_BOUNDS = "search_bounds.csv"
"""Per screened source: page cap, score share and keyless budget (`relevance.Bounds`)."""


@dataclass(frozen=True)
class Delta:
    """How a --since-last run asks a source: extra parameters per request path, page names.

    Pages are named `<name>-NNNN<suffix>` (the name holds the new snapshot's stamp), so they
    never collide with the files carried over from the base snapshot.
    """

    name: str
    params: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass
class Plan:
    """Per live source, what to ask (queries or ids) and, in a --since-last run, how."""

    work: dict[str, list[Any]]
    delta: dict[str, Delta] = field(default_factory=dict)
    """Per source, the change filter and page names of a --since-last run (empty: full run)."""
    page_size: int | None = None
    """`HttpSettings.page_size`: None keeps each source's own."""
    notes: dict[str, str] = field(default_factory=dict)
    """Per source, how this run asked it when that differs from the usual (search strategy)."""
    relevance: dict[str, Relevance] = field(default_factory=dict)
    """Per screened source (a row in search_bounds.csv), the rule its hits are kept by."""


def load_queries(reference_dir: Path) -> dict[str, list[str]]:
    """Topic queries per source from `topic_queries.csv`, in file order."""
    queries: dict[str, list[str]] = {}
    with (reference_dir / "topic_queries.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            queries.setdefault(row["source"].strip(), []).append(row["query"].strip())
    return queries


def load_bounds(reference_dir: Path) -> dict[str, Bounds]:
    """Paging bounds per screened source from `search_bounds.csv` (empty cells: no bound)."""
    bounds: dict[str, Bounds] = {}
    with (reference_dir / SEARCH_BOUNDS).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            budget = row["keyless_searches"].strip()
            bounds[row["source"].strip()] = Bounds(
                max_pages=int(row["max_pages"] or 0),
                min_score_share=float(row["min_score_share"] or 0),
                keyless_searches=int(budget) if budget else None,
            )
    return bounds


def held_dois(snapshot_dir: Path | None) -> dict[str, frozenset[str]]:
    """Per source, the DOIs of the publications a snapshot holds (none without one): the works
    the project already knows. A record that does not parse is not known."""
    held: dict[str, frozenset[str]] = {}
    for name, unit in SOURCES.items():
        if snapshot_dir is None or unit.primary_table != "publications":
            continue
        dois: set[str] = set()
        for path in snapshot.source_files(snapshot_dir, name):
            try:
                records = list(snapshot.file_values(unit, path))
            except SnapshotFormatError:
                continue
            for record in records:
                try:
                    rows = unit.parse(record).get("publications", [])
                except RecordError:
                    continue
                dois.update(row["doi"] for row in rows if row.get("doi"))
        held[name] = frozenset(dois)
    return held


def relevance_plan(
    reference_dir: Path, known_from: Path | None, look_up: bool, creds: Credentials
) -> dict[str, Relevance]:
    """The screen of every source with search bounds: all sources' topic terms, the DOIs held
    by `known_from` (any source), when `look_up` the ones this source held itself, to be
    asked by DOI if no search returns them (a full refresh never loses a work it held), and
    the keyless budget when `creds` lack the source's API key."""
    terms = topic_terms(q for queries in load_queries(reference_dir).values() for q in queries)
    live = live_units()
    held = held_dois(known_from)
    known = frozenset().union(*held.values())
    return {
        source: Relevance(
            terms,
            known,
            bounds,
            tuple(sorted(held.get(source, ()))) if look_up else (),
            bounds.keyless_searches if live[source].keyless(creds) else None,
        )
        for source, bounds in load_bounds(reference_dir).items()
        if source in live
    }


def load_compound_ids(reference_dir: Path) -> dict[str, list[Any]]:
    """Per source asked by id, the ids of the curated compounds in `compounds.csv`."""
    with (reference_dir / "compounds.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        name: live.compound_ids(rows) for name, live in live_units().items() if live.compound_ids
    }


def full_plan(reference_dir: Path) -> Plan:
    """Every topic query and every compound id, as the reference data lists them."""
    queries, ids = load_queries(reference_dir), load_compound_ids(reference_dir)
    return Plan({name: list(ids.get(name, queries.get(name, []))) for name in live_units()})


def combined_query(source: str, queries: Sequence[str]) -> str:
    """All topic queries of a source as one search, so an unchanged source costs one request."""
    return live_units()[source].combine(queries)


def delta_request(
    source: str, query: str, since: date, until: date
) -> tuple[str, dict[str, dict[str, str]]]:
    """(query, extra parameters by request path) asking `source` only for records changed since.

    Each source's filter and where its API reads it are documented with its `changed_since`.
    """
    changed_since = live_units()[source].changed_since
    if changed_since is None:
        raise RefreshError(f"{source} has no change filter")
    return changed_since(query, since, until)


def last_recorded(snapshots_dir: Path) -> Path | None:
    """The newest complete snapshot a refresh recorded: the base of `--since-last`."""
    if not snapshots_dir.is_dir():
        return None
    for folder in sorted(snapshots_dir.iterdir(), reverse=True):
        try:
            info = snapshot.read_info(folder)
        except snapshot.SnapshotError:
            continue
        if info.method == "recorded":
            return folder
    return None


def _since(base_info: Mapping[str, Any]) -> date:
    """The day the base refresh started: `captured_at_utc` when it has one, else captured_at."""
    stamp = str(base_info.get("captured_at_utc") or base_info["captured_at"])
    return date.fromisoformat(stamp[:10])


def incremental_plan(
    full: Plan, base_info: Mapping[str, Any], until: date, name: str, creds: Credentials
) -> Plan:
    """One change-filtered query per searched source; sources asked by id only for new ids.

    A source asked by compound id has no change feed: its files are carried over, and only ids
    the base snapshot did not ask for (per its SNAPSHOT.json `compound_ids`) are fetched. A
    source whose change filter these credentials cannot send (`unfiltered_note`) gets its
    combined query unfiltered: every hit is recorded again and supersedes its carried copy.
    """
    since = _since(base_info)
    asked = base_info.get(COMPOUND_IDS) or {}
    plan = Plan({})
    for source, live in live_units().items():
        work = full.work.get(source, [])
        if live.compound_ids is not None:
            plan.work[source] = [i for i in work if i not in set(asked.get(source, []))]
            plan.delta[source] = Delta(name)
        elif work and live.changed_since is None:
            plan.work[source] = work
            plan.delta[source] = Delta(name)
            plan.notes[source] = NO_CHANGE_FILTER
        elif work and live.changed_since is not None:
            query, params = live.changed_since(live.combine(work), since, until)
            note = live.unfiltered_note(creds)
            if note is not None:
                params = {}
                plan.notes[source] = note
            plan.work[source] = [query]
            plan.delta[source] = Delta(name, params)
    return plan

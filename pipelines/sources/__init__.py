"""One module per source; this registry lists each once, and every layer loops over it.

A source module defines `UNIT` (a `SourceUnit`: snapshot files, parsing, live paging, change
filter, politeness, emulator behaviour). Adding a source means writing its module and adding
its unit to `_REGISTERED` below; snapshot reading, staging, refresh, the emulator, the asset
factories, the merge of literature records and the version sensors pick it up from `SOURCES`,
reading it when they run (a source registered later is included).
"""

from __future__ import annotations

from pipelines.normalize.dedup import Precedence
from pipelines.sources import (
    chembl,
    clinicaltrials,
    crossref,
    europepmc,
    openalex,
    pubchem,
    pubmed,
    registries,
)
from pipelines.sources.base import PublicationRank, SourceUnit

SOURCES: dict[str, SourceUnit] = {}
"""Registered sources by name, in build order (the order of `_REGISTERED`)."""


def register(unit: SourceUnit) -> SourceUnit:
    """Add a source to the registry; a second source of the same name is refused."""
    if unit.name in SOURCES:
        raise ValueError(f"source {unit.name!r} is registered already")
    SOURCES[unit.name] = unit
    return unit


def unregister(name: str) -> None:
    """Take a source out of the registry again (a test's toy source)."""
    del SOURCES[name]


def publication_sources() -> tuple[str, ...]:
    """The registered literature sources (values of publications.sources), in registry order."""
    return tuple(name for name, unit in SOURCES.items() if unit.publication is not None)


def publication_precedence() -> Precedence:
    """Which literature source a merged work's fields come from first, by the units' ranks."""
    ranks: dict[str, PublicationRank] = {}
    for name, unit in SOURCES.items():
        if unit.publication is not None:
            ranks[name] = unit.publication
    return Precedence(
        bibliographic=tuple(sorted(ranks, key=lambda n: (ranks[n].bibliographic, n))),
        metrics=tuple(sorted(ranks, key=lambda n: (ranks[n].metrics, n))),
    )


_REGISTERED = (
    clinicaltrials.UNIT,
    registries.UNIT,
    pubmed.UNIT,
    europepmc.UNIT,
    openalex.UNIT,
    crossref.UNIT,
    pubchem.UNIT,
    chembl.UNIT,
)
for _unit in _REGISTERED:
    register(_unit)

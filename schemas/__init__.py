"""Pandera models: the single source of truth for every published table."""

from schemas.registry import (
    HISTORY,
    QUARANTINE,
    RELEASED,
    SCHEMA_VERSION,
    TABLES,
    TABLES_BY_NAME,
    TableSpec,
)

__all__ = [
    "HISTORY",
    "QUARANTINE",
    "RELEASED",
    "SCHEMA_VERSION",
    "TABLES",
    "TABLES_BY_NAME",
    "TableSpec",
]

"""Pandera models: the single source of truth for every published table."""

from schemas.registry import QUARANTINE, SCHEMA_VERSION, TABLES, TABLES_BY_NAME, TableSpec

__all__ = ["QUARANTINE", "SCHEMA_VERSION", "TABLES", "TABLES_BY_NAME", "TableSpec"]

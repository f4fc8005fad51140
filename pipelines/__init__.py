"""Kratom Evidence: the Dagster code location and the command line."""

import os

DUCKDB_ALLOCATOR_ENV = "DUCKDB_JE_MALLOC_CONF"
"""DuckDB's bundled jemalloc reads its options from this variable (jemalloc's `MALLOC_CONF`
under DuckDB's `duckdb_je_` prefix: http://jemalloc.net/jemalloc.3.html, "TUNING")."""
DUCKDB_ALLOCATOR_CONF = "dirty_decay_ms:100,muzzy_decay_ms:0"
"""Pages DuckDB freed go back to the system within about 0.1 s instead of jemalloc keeping them
for seconds: a build's steps free and allocate hundreds of MiB in turn, and the kept pages
added to each step's peak (20 000 studies: max RSS 1 244-1 359 -> 1 050-1 072 MiB, same wall;
decay 0 costs half as much CPU again; bench/README.md, session 8). Set here, before any DuckDB
connection of the process (jemalloc reads it once), so every entry point and the step processes
it starts inherit it; a value the user set is kept."""

os.environ.setdefault(DUCKDB_ALLOCATOR_ENV, DUCKDB_ALLOCATOR_CONF)

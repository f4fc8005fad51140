"""DuckDB's allocator options: set by the package before any connection, a user's value kept."""

from __future__ import annotations

import os
import subprocess
import sys

from pipelines import DUCKDB_ALLOCATOR_CONF, DUCKDB_ALLOCATOR_ENV

PROBE = "import pipelines, os; print(os.environ.get(pipelines.DUCKDB_ALLOCATOR_ENV))"


def _probe(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_package_sets_the_decay_for_every_process_it_starts() -> None:
    env = {k: v for k, v in os.environ.items() if k != DUCKDB_ALLOCATOR_ENV}
    assert _probe(env) == DUCKDB_ALLOCATOR_CONF


def test_a_value_the_user_set_is_kept() -> None:
    env = {**os.environ, DUCKDB_ALLOCATOR_ENV: "dirty_decay_ms:5000"}
    assert _probe(env) == "dirty_decay_ms:5000"

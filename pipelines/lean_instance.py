"""The throwaway Dagster instance of a build that no DAGSTER_HOME names: in memory, on one
connection per storage.

Dagster's ephemeral instance keeps runs and events in in-memory SQLite, but opens a fresh
connection, with two PRAGMAs, for every read and write: about 2 000 of them in a bundled build,
some 0.35 CPU s of its 6 (bench/README.md). Here each storage reuses the connection it already
holds for the instance's life, behind a lock; everything else is the ephemeral instance as
Dagster builds it (`dagster._core.instance.factory.create_ephemeral_instance`, dagster 1.13).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster._core.instance import InstanceType
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.storage.event_log import InMemoryEventLogStorage
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from dagster._core.storage.root import TemporaryLocalArtifactStorage
from dagster._core.storage.runs import InMemoryRunStorage
from sqlalchemy.engine import Connection

CAPTURED_LOGS = {"python_logs": {"managed_python_loggers": ["pipelines.setwise"]}}
"""Instance settings that bring the warnings of code kept free of Dagster into the run's
events, as the step's own: staging's statement run again alone after running out of DuckDB
memory (pipelines/setwise.py). A DAGSTER_HOME instance takes the same `python_logs` in its
dagster.yaml (docs/running-past-one-machine.md)."""


@contextmanager
def _held(
    connection: Connection, lock: threading.RLock, owner: int, fresh: Callable[[], Any]
) -> Iterator[Connection]:
    """The held connection in a transaction; a nested call joins the open one.

    Only on the thread that opened it (`owner`): SQLite refuses a connection another thread
    made, so a write from another thread (a warning staging logs from a cursor's thread) takes
    a fresh connection to the same in-memory database, Dagster's own way (`fresh`), under
    the same lock. It was lost, or failed the step, before (bench/README.md, Session 22).
    """
    with lock:
        if threading.get_ident() != owner:
            with fresh() as other:
                yield other
            return
        if connection.in_transaction():
            yield connection
            return
        with connection.begin():
            yield connection


class HeldEventLogStorage(InMemoryEventLogStorage):
    """In-memory event log whose reads and writes share the connection it holds.

    Its schema is made once, when it is created, so what Dagster asks of it for each asset
    event (is there a tags table, has the asset key table this column: a SQLite PRAGMA each,
    0.03 CPU s of a bundled build) is asked once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._held_lock = threading.RLock()
        self._owner = threading.get_ident()
        self._tables: dict[str, bool] = {}
        self._asset_key_cols: dict[str, bool] = {}

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with _held(self._held_conn, self._held_lock, self._owner, super()._connect) as connection:
            yield connection

    def has_table(self, table_name: str) -> bool:
        if table_name not in self._tables:
            with self._connect() as connection:
                found = bool(self._engine.dialect.has_table(connection, table_name))
            self._tables[table_name] = found
        return self._tables[table_name]

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        if column_name not in self._asset_key_cols:
            found = super()._has_asset_key_col_on_connection(conn, column_name)
            self._asset_key_cols[column_name] = found
        return self._asset_key_cols[column_name]


class HeldRunStorage(InMemoryRunStorage):
    """In-memory run storage whose reads and writes share the connection it holds."""

    def __init__(self) -> None:
        super().__init__()
        self._held_lock = threading.RLock()
        self._owner = threading.get_ident()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _held(self._held_conn, self._held_lock, self._owner, super().connect) as connection:
            yield connection


def lean_instance() -> dg.DagsterInstance:
    """An ephemeral instance on the held-connection storages."""
    return dg.DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=HeldRunStorage(),
        event_storage=HeldEventLogStorage(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
        settings=CAPTURED_LOGS,
    )

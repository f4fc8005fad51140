"""Dagster resources: the side effects of a build (snapshot files, warehouse, release outputs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from pipelines import build, paths
from pipelines.deployment import DEFAULT_MEMORY_LIMIT
from pipelines.refresh import (
    Credentials,
    HttpSettings,
    RefreshError,
    live_base_urls,
    live_sources,
)
from pipelines.release.catalog import redact_url, split_password
from pipelines.release.publish import DataDir, PublishError
from pipelines.snapshot import SnapshotInfo, read_info


class SnapshotResource(dg.ConfigurableResource):
    """The snapshot folder a build replays (the bundled one unless told otherwise)."""

    path: str = str(paths.BUNDLED_SNAPSHOT)
    mode: Literal["read", "record"] = "read"
    """`record`: the run first records the live sources into `path`, a new
    `<data dir>/snapshots/<stamp>` folder (the schedule and the sensor ask for that)."""

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def info(self) -> SnapshotInfo:
        return read_info(self.folder)


class WarehouseResource(DuckDBResource):
    """The build's DuckDB warehouse, opened once per run: each step gets a cursor of it.

    Opening and closing the file per step cost a load and a checkpoint each, 54 times a build
    (bench/README.md); a cursor shares the open database. Outside a run (a test calling
    `get_connection` directly) it connects per call like `DuckDBResource`.
    """

    memory_limit: str = DEFAULT_MEMORY_LIMIT
    """DuckDB's `memory_limit`: past it, the warehouse spills to `<database>.tmp/` (DuckDB's
    temporary directory of a database file), so the build's memory stays flat in the data
    (pipelines/deployment.py, `KRATOM_EVIDENCE_DUCKDB_MEMORY_LIMIT`). `connection_config`
    adds to or overrides it."""

    _run_connection: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)
    _opened: ExitStack = PrivateAttr(default_factory=ExitStack)

    def settings(self) -> dict[str, Any]:
        """The DuckDB configuration of every connection to the warehouse.

        DuckDB's allocator hands memory it freed back to the system from a background thread;
        without it the process keeps what a large sort or join let go (the curated step alone
        at 20 000 studies peaked at 924-970 MiB, with it 864-870: bench/README.md, h6m).
        """
        return {
            "memory_limit": self.memory_limit,
            "allocator_background_threads": True,
            **self.connection_config,
        }

    def _configure(self, con: duckdb.DuckDBPyConnection) -> None:
        settings = self.settings()
        con.execute("SET memory_limit = ?", [settings["memory_limit"]])
        con.execute(
            "SET allocator_background_threads = ?", [settings["allocator_background_threads"]]
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._open()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._close()

    def _open(self) -> None:
        """Open the run's connection through `DuckDBResource`'s own, which retries while
        another process still holds the file's lock: a parallel run starts the next warehouse
        step once the last one reported success, before its process has closed the file."""
        self._run_connection = self._opened.enter_context(super().get_connection())
        self._configure(self._run_connection)

    def _close(self) -> None:
        self._opened.close()
        self._run_connection = None

    @contextmanager
    def released(self) -> Iterator[None]:
        """The run's connection closed while another process writes the warehouse (DuckDB
        lets one process open a database file to write), then opened again; no cursor of it
        may be open. Outside a run there is nothing to close."""
        if self._run_connection is None:
            yield
            return
        self._close()
        try:
            yield
        finally:
            self._open()

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the run's connection (its own registrations and transaction)."""
        if self._run_connection is None:
            with super().get_connection() as con:
                self._configure(con)
                yield con
            return
        cursor = self._run_connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


class ReleaseResource(dg.ConfigurableResource):
    """Where releases go, where the reference vocabularies are read, and an optional version."""

    data_dir: str = str(paths.DEFAULT_DATA_DIR)
    reference_dir: str = str(paths.REFERENCE_DIR)
    release_version: str | None = None
    catalog: str | None = None
    """`postgresql://…` to keep the DuckLake catalog in PostgreSQL; None keeps it in `lake/`."""
    catalog_data_path: str | None = None
    """Folder or object-store URL for the lake's Parquet files; None means `lake/files/`."""
    created_at: str | None = None
    """UTC time of the build, ISO 8601; set by the CLI so metadata never reads the clock itself."""

    @property
    def outputs(self) -> DataDir:
        """The data dir; a catalog URL carrying a password is refused, since run config is
        shown to everyone who opens the Dagster UI (libpq reads PGPASSWORD or ~/.pgpass)."""
        if self.catalog is not None and split_password(self.catalog)[1] is not None:
            raise PublishError(
                f"catalog URL {redact_url(self.catalog)} carries a password, which Dagster would "
                "show in the run config: set PGPASSWORD or ~/.pgpass and leave it out of the URL"
            )
        return DataDir(Path(self.data_dir), self.catalog, self.catalog_data_path)

    @property
    def reference(self) -> Path:
        return Path(self.reference_dir)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[ReleaseResource]:
        """Hold the data dir's lock for the whole run (the warehouse is shared as well as the
        releases), so a run launched from the UI is as exclusive as `kratom-evidence build`."""
        with build.held(self.outputs, self.release_version):
            yield self


class LiveSourcesResource(dg.ConfigurableResource):
    """Where the live APIs answer and how politely the refresh asks them; holds no secret.

    Kept apart from the credentials so the version sensor polls with no key set.
    """

    base_urls: dict[str, str] = Field(default_factory=live_base_urls)
    """Base URL per live source; a source left out keeps its live default."""
    timeout: float = HttpSettings.timeout
    max_tries: int = HttpSettings.max_tries
    backoff_base: float = HttpSettings.backoff_base
    backoff_cap: float = HttpSettings.backoff_cap
    pace: float = HttpSettings.pace
    """Factor on every source's minimum interval: 1 for the real APIs, 0 for an emulator."""

    def urls(self) -> dict[str, str]:
        """Base URL of every live source; an unknown source name is a configuration error."""
        known = live_sources()
        unknown = sorted(set(self.base_urls) - set(known))
        if unknown:
            raise RefreshError(f"base_urls: unknown sources {unknown} (known: {known})")
        return {**live_base_urls(), **{k: v.rstrip("/") for k, v in self.base_urls.items()}}

    def settings(self) -> HttpSettings:
        """The refresh client's knobs."""
        return HttpSettings(
            timeout=self.timeout,
            max_tries=self.max_tries,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            pace=self.pace,
        )


class LiveCredentialsResource(dg.ConfigurableResource):
    """Contact e-mail and API keys, wired with `dg.EnvVar` so Dagster shows names, never values.

    `api_keys` maps each source that takes a key to it (`pipelines/definitions.py` wires one
    variable per source unit's `api_key_env`). An empty value means "not set" (`.env.example`
    lists every variable empty); repr hides them.
    """

    email: str = Field(default="", repr=False)
    api_keys: dict[str, str] = Field(default_factory=dict, repr=False)

    def credentials(self) -> Credentials:
        """The refresh's Credentials (whose repr hides them too)."""
        keys = {source: key for source, key in self.api_keys.items() if key}
        return Credentials(email=self.email or None, api_keys=keys)

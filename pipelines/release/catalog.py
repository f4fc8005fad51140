"""The DuckLake catalog: every release one snapshot, tagged with its version (time travel).

The DuckLake extension ships inside the `duckdb-extension-ducklake` wheel; it is loaded from
there because `INSTALL ducklake` would need the internet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit, urlunsplit

import duckdb
import duckdb_extension_ducklake
import duckdb_extension_httpfs
import duckdb_extension_postgres

CATALOG_ALIAS = "lake"
AUTHOR = "kratom-evidence"
RELEASES_TABLE = "releases"
POSTGRES_PREFIX = "ducklake:postgres:"
OBJECT_STORE_PREFIX = "s3://"
ORPHAN_GRACE = "1 DAY"
"""How old an unreferenced data file must be before a shared catalog's cleanup deletes it: far
longer than any publish, so a build on another machine never loses files it is writing."""


class CatalogError(RuntimeError):
    """The catalog cannot answer what was asked (unknown version, missing catalog)."""


class NoCatalogError(CatalogError):
    """Nothing was ever published into this catalog (read-only access cannot create it)."""


def _wheel_extension(module: ModuleType, name: str) -> Path:
    """The `<name>.duckdb_extension` file a duckdb-extension-* wheel carries for this DuckDB."""
    root = Path(str(module.__file__)).parent / "extensions"
    found = sorted(root.glob(f"v{duckdb.__version__}/{name}.duckdb_extension"))
    if not found:
        raise CatalogError(f"no {name} extension for duckdb {duckdb.__version__} under {root}")
    return found[0]


def ducklake_extension_path() -> Path:
    """The DuckLake extension file carried by the installed wheel."""
    return _wheel_extension(duckdb_extension_ducklake, "ducklake")


def httpfs_extension_path() -> Path:
    """The httpfs extension (S3 and HTTP file systems) carried by its wheel."""
    return _wheel_extension(duckdb_extension_httpfs, "httpfs")


def s3_secret_sql(env: Mapping[str, str]) -> str:
    """A DuckDB S3 secret from the standard AWS variables (keys, region, endpoint).

    `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` points at an S3-compatible store (MinIO, R2,
    Ceph...), addressed path-style; without one the secret speaks to AWS itself.
    """
    fields = {
        "KEY_ID": env.get("AWS_ACCESS_KEY_ID"),
        "SECRET": env.get("AWS_SECRET_ACCESS_KEY"),
        "SESSION_TOKEN": env.get("AWS_SESSION_TOKEN"),
        "REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CatalogError(f"AWS endpoint {endpoint!r} is not http(s)://host[:port]")
        fields["ENDPOINT"] = parts.netloc
        fields["URL_STYLE"] = "path"
    options = ["TYPE s3", "PROVIDER config"]
    options += [f"{k} '{_sql_text(v)}'" for k, v in fields.items() if v]
    if endpoint:
        options.append(f"USE_SSL {'true' if urlsplit(endpoint).scheme == 'https' else 'false'}")
    return f"CREATE OR REPLACE SECRET lake_files ({', '.join(options)})"


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def postgres_extension_path(cache: Path | None = None) -> Path:
    """The postgres extension from its wheel, copied under the name DuckDB expects.

    The wheel names the file `postgres.duckdb_extension` but its entry point is
    `postgres_scanner`, and DuckDB derives the entry point from the file name.
    """
    carried = _wheel_extension(duckdb_extension_postgres, "postgres")
    folder = (cache or Path(tempfile.gettempdir()) / "kratom-evidence-extensions") / (
        f"v{duckdb.__version__}"
    )
    target = folder / "postgres_scanner.duckdb_extension"
    if not target.exists() or target.stat().st_size != carried.stat().st_size:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{target.name}.{os.getpid()}.partial"  # processes may race here
        shutil.copyfile(carried, partial)
        partial.replace(target)
    return target


MASK = "***"
_CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s\"']+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^/\s]*)(@)")


def mask_secrets(text: str) -> str:
    """`text` with every PostgreSQL password (conninfo `password=` or URL `user:pw@`) masked.

    Database drivers quote the whole connection string in their errors; this keeps the
    password out of anything printed or logged.
    """
    text = _CONNINFO_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)


def redact_url(url: str) -> str:
    """`url` with the password of its `user:password@` part masked, however malformed."""
    userinfo, at, rest = url.rpartition("@")
    scheme, sep, user = userinfo.rpartition("://")
    if not at or ":" not in user:
        return url
    return f"{scheme}{sep}{user.split(':', 1)[0]}:{MASK}@{rest}"


def split_password(url: str) -> tuple[str, str | None]:
    """`url` without its password, and the password (None when it carries none).

    Lets the CLI hand the password to libpq through `PGPASSWORD` so that the URL it passes
    on (Dagster resource config, messages) never holds it.
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), unquote(parts.password)


def _conninfo_value(value: str) -> str:
    """A libpq keyword value, quoted when it holds a space, a quote or a backslash."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def postgres_catalog(url: str) -> str:
    """`postgresql://user[:password]@host[:port]/dbname` as a DuckLake catalog string.

    Without a password in the URL, libpq takes it from `PGPASSWORD` or `~/.pgpass`.

    Raises:
        CatalogError: not such a URL (the message never repeats the password).
    """
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise CatalogError(f"catalog {shown!r} is not postgresql://user@host:port/dbname")
    try:
        port = parts.port
    except ValueError:
        raise CatalogError(f"catalog {shown!r}: the port is not a number") from None
    fields = {
        "dbname": unquote(parts.path.strip("/")),
        "host": parts.hostname,
        "port": str(port) if port else None,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    return POSTGRES_PREFIX + " ".join(f"{k}={_conninfo_value(v)}" for k, v in fields.items() if v)


@dataclass(frozen=True)
class LakeLocation:
    """Where the catalog metadata and the Parquet data files live."""

    catalog: str
    data_path: str
    follows_folder: bool = False
    """The data files sit beside a local catalog (`lake/files/`): when the data dir is moved or
    copied, the catalog's stored absolute data path is overridden by the folder's new place."""

    @classmethod
    def in_folder(cls, lake_dir: Path) -> LakeLocation:
        return cls(f"ducklake:{lake_dir / 'catalog.ducklake'}", f"{lake_dir / 'files'}/", True)

    @classmethod
    def choose(cls, lake_dir: Path, catalog_url: str | None, data_path: str | None) -> LakeLocation:
        """The local catalog in `lake_dir`, or a PostgreSQL one; data files in a folder or URL."""
        local = cls.in_folder(lake_dir)
        if not catalog_url:
            return cls(local.catalog, data_path.rstrip("/") + "/") if data_path else local
        files = data_path.rstrip("/") + "/" if data_path else local.data_path
        return cls(postgres_catalog(catalog_url), files)

    @property
    def is_postgres(self) -> bool:
        return self.catalog.startswith(POSTGRES_PREFIX)

    @property
    def in_object_store(self) -> bool:
        """Data files behind an `s3://` URL (AWS or any S3-compatible store)."""
        return self.data_path.startswith(OBJECT_STORE_PREFIX)

    def exists(self) -> bool:
        if self.is_postgres:
            return True
        return Path(self.catalog.removeprefix("ducklake:")).exists()


def connect(
    location: LakeLocation, *, read_only: bool = False, snapshot_version: int | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session with the catalog attached as `lake` (and made current)."""
    con = duckdb.connect()
    con.execute(f"LOAD '{ducklake_extension_path()}'")
    if location.is_postgres:
        con.execute(f"LOAD '{postgres_extension_path()}'")
    if location.in_object_store:
        con.execute(f"LOAD '{httpfs_extension_path()}'")
        con.execute(s3_secret_sql(os.environ))
    options = [f"DATA_PATH '{location.data_path}'", "DATA_INLINING_ROW_LIMIT 0"]
    if location.follows_folder:
        options.append("OVERRIDE_DATA_PATH true")
    if read_only:
        options.append("READ_ONLY")
    if snapshot_version is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot_version)}")
    attach = f"ATTACH '{_sql_text(location.catalog)}' AS {CATALOG_ALIAS} ({', '.join(options)})"
    try:
        con.execute(attach)
    except duckdb.Error as exc:
        con.close()
        if "creating a new DuckLake is explicitly disabled" in str(exc):
            raise NoCatalogError(
                "no release has been published into this catalog yet: run `kratom-evidence build`"
            ) from None
        # The driver's message quotes the connection string, password included.
        raise CatalogError(f"cannot open the catalog: {mask_secrets(str(exc))}") from None
    con.execute(f"USE {CATALOG_ALIAS}")
    return con


@dataclass(frozen=True)
class ReleaseRecord:
    """A row of the catalog's `releases` table."""

    version: str
    snapshot_id: int
    created_at: str
    rows: dict[str, int]
    tables_sha256: dict[str, str]


def list_releases(con: duckdb.DuckDBPyConnection) -> list[ReleaseRecord]:
    """Published releases, newest first."""
    # Our constants as literals: DuckDB binding Python parameters imports numpy and pandas
    # (0.4 CPU s), which a command that only lists releases would otherwise pay.
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        f"WHERE table_catalog = '{CATALOG_ALIAS}' AND table_name = '{RELEASES_TABLE}'"
    ).fetchone()
    if not exists or not exists[0]:
        return []
    rows = con.execute(
        f"SELECT version, snapshot_id, created_at, rows_json, tables_sha256_json "
        f"FROM {CATALOG_ALIAS}.{RELEASES_TABLE} ORDER BY snapshot_id DESC"
    ).fetchall()
    return [ReleaseRecord(v, int(s), c, json.loads(r), json.loads(h)) for v, s, c, r, h in rows]


def begin_release(
    con: duckdb.DuckDBPyConnection, files: Mapping[str, Path], data_path: str
) -> tuple[int, dict[str, Path]]:
    """Open the release's transaction on `con` and register in it every table whose release
    Parquet file can be linked under `data_path` (name -> file; see `add_tables`); return the
    snapshot id that `commit_release` will commit and the tables left to copy.

    The caller copies those (`add_tables`) once nothing else runs in the session: a copy
    re-encodes a whole table, and beside the record history the two ran out of the publish
    session's memory at 200 000 studies (bench/README.md, h7r). The files may move once their
    tables are added: the catalog keeps its own links or copies under its data path.

    A failure rolls the transaction back; the caller ends it otherwise (`commit_release`, or
    ROLLBACK).
    """
    current = con.execute(
        f"SELECT coalesce(max(snapshot_id), -1) FROM {CATALOG_ALIAS}.snapshots()"
    ).fetchone()
    snapshot_id = int(current[0]) + 1 if current else 0
    con.execute("BEGIN TRANSACTION")
    try:
        left = {
            name: path
            for name, path in sorted(files.items())
            if not _added_linked(con, name, path, data_path)
        }
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return snapshot_id, left


SCHEMA_FOLDER = "main"
"""DuckLake's folder, under its data path, of the tables of its default schema (each table a
folder of its name): a data file registered from there is stored relative to the data path."""


def _linked(path: Path, table: str, data_path: str) -> Path | None:
    """A hard link of `path` in `table`'s folder under a local `data_path`; None when the data
    path is not a local folder or the link cannot be made (another file system)."""
    if "://" in data_path:
        return None
    folder = Path(data_path) / SCHEMA_FOLDER / table
    link = folder / f"ducklake-{uuid.uuid4()}.parquet"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.link(path, link)
    except OSError:
        return None
    return link


def _has_rows(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Whether a Parquet file holds a row (from its footer): DuckLake registers no empty file,
    so a link to one would be left unreferenced."""
    found = con.execute(
        f"SELECT sum(num_rows) FROM parquet_file_metadata('{_sql_text(str(path))}')"
    ).fetchone()
    return bool(found and found[0])


def _added_linked(con: duckdb.DuckDBPyConnection, name: str, path: Path, data_path: str) -> bool:
    """Register table `name` as its release file, linked under a local `data_path`; False
    (nothing done) when the file is empty or cannot be linked there."""
    link = _linked(path, name, data_path) if _has_rows(con, path) else None
    if link is None:
        return False
    source = f"read_parquet('{_sql_text(str(path))}')"
    con.execute(f"CREATE OR REPLACE TABLE {CATALOG_ALIAS}.{name} AS SELECT * FROM {source} LIMIT 0")
    con.execute(
        f"CALL ducklake_add_data_files('{CATALOG_ALIAS}', '{name}', '{_sql_text(str(link))}')"
    )
    return True


def add_tables(con: duckdb.DuckDBPyConnection, files: Mapping[str, Path], data_path: str) -> None:
    """Add more tables to the transaction `begin_release` opened on `con` (name -> its release
    Parquet file); a failure rolls it back.

    Under a local data path each file holding rows is registered as it is
    (`ducklake_add_data_files` on a hard link in the table's folder) rather than decoded and
    encoded again: the catalog's data file and the release's are then one file under two names,
    never written again (DuckLake writes new files and never changes one; a published release
    is never changed), and deleting either name leaves the other. Elsewhere (an object store,
    another file system) and for an empty table the table is copied into the catalog.
    """
    try:
        for name, path in sorted(files.items()):
            if not _added_linked(con, name, path, data_path):
                con.execute(
                    f"CREATE OR REPLACE TABLE {CATALOG_ALIAS}.{name} AS "
                    f"SELECT * FROM read_parquet('{_sql_text(str(path))}')"
                )
    except BaseException:
        con.execute("ROLLBACK")
        raise


def commit_release(
    con: duckdb.DuckDBPyConnection,
    snapshot_id: int,
    version: str,
    created_at: str,
    rows: Mapping[str, int],
    tables_sha256: dict[str, str],
    before_commit: Callable[[], None] | None = None,
) -> None:
    """Add the releases row to the transaction `begin_release` opened on `con` and commit it:
    every table and the row as ONE DuckLake snapshot, `snapshot_id`.

    Either the whole release is committed or nothing is: a crash before COMMIT leaves the
    previous snapshot as the latest (and data files no snapshot references, which
    `delete_orphaned_files` removes). `before_commit` runs last inside the transaction (the
    crash tests pause there).
    """
    try:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {CATALOG_ALIAS}.{RELEASES_TABLE} (version VARCHAR, "
            "snapshot_id BIGINT, created_at VARCHAR, rows_json VARCHAR, tables_sha256_json VARCHAR)"
        )
        con.execute(
            f"INSERT INTO {CATALOG_ALIAS}.{RELEASES_TABLE} VALUES (?, ?, ?, ?, ?)",
            [
                version,
                snapshot_id,
                created_at,
                json.dumps(dict(rows), sort_keys=True),
                json.dumps(tables_sha256, sort_keys=True),
            ],
        )
        con.execute(
            f"CALL {CATALOG_ALIAS}.set_commit_message(?, ?, extra_info => ?)",
            [AUTHOR, f"release {version}", json.dumps({"version": version})],
        )
        if before_commit is not None:
            before_commit()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    committed = con.execute(f"SELECT max(snapshot_id) FROM {CATALOG_ALIAS}.snapshots()").fetchone()
    if committed is None or int(committed[0]) != snapshot_id:
        raise CatalogError(f"release {version}: expected snapshot {snapshot_id}, got {committed}")


def table_files(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> list[str]:
    """The data and delete files of `tables` in the catalog's current snapshot (paths or URLs),
    listed by one query."""
    listings = [
        f"SELECT data_file, delete_file FROM ducklake_list_files('{CATALOG_ALIAS}', "
        f"'{_sql_text(table)}')"
        for table in tables
    ]
    if not listings:
        return []
    listed = con.execute(" UNION ALL ".join(listings)).fetchall()
    return [name for row in listed for name in row if name]


def delete_orphaned_files(con: duckdb.DuckDBPyConnection, *, every: bool) -> list[str]:
    """Delete data files no snapshot references; return their paths.

    `every` removes them all, which is safe only when no other writer can be mid-transaction
    (a local catalog under the build lock); otherwise only files older than a day go.
    """
    age = "cleanup_all => true" if every else f"older_than => now() - INTERVAL {ORPHAN_GRACE}"
    rows = con.execute(
        f"SELECT * FROM ducklake_delete_orphaned_files('{CATALOG_ALIAS}', {age})"
    ).fetchall()
    return sorted(str(row[0]) for row in rows)


def snapshot_for(con: duckdb.DuckDBPyConnection, version: str | None) -> ReleaseRecord:
    """The release record of `version`, or of the latest release when None."""
    releases = list_releases(con)
    if not releases:
        raise CatalogError("no release has been published yet: run `kratom-evidence build`")
    if version is None:
        return releases[0]
    for record in releases:
        if record.version == version:
            return record
    known = ", ".join(r.version for r in releases)
    raise CatalogError(f"no release {version!r} in the catalog (published: {known})")

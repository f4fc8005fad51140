"""What changed between two releases, table by table, by primary key.

A release is read from its folder, or from the catalog by DuckLake time travel when the folder
is not on this machine (a shared PostgreSQL catalog that another machine published into).
Tables with a key are compared row by row on it; the quarantine has none and is compared as a
multiset of whole rows. Results are sorted, so the same two releases always give the same text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.release.catalog import CATALOG_ALIAS
from schemas import HISTORY, QUARANTINE, RELEASED, TableSpec

DETAIL_LIMIT = 50
"""Keys listed per table and kind in CHANGES.md; the JSON output lists them all."""

Key = tuple[Any, ...]


@dataclass(frozen=True)
class ChangedRow:
    """A row present in both releases whose values differ in `columns`."""

    key: Key
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableDiff:
    """Rows added, removed and changed in one table (keys are whole rows when it has none)."""

    table: str
    key_columns: tuple[str, ...]
    added: tuple[Key, ...] = ()
    removed: tuple[Key, ...] = ()
    changed: tuple[ChangedRow, ...] = ()

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class ReleaseDiff:
    """Every table's differences from the old release to the new one."""

    old_version: str
    new_version: str
    tables: tuple[TableDiff, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready structure with every key and every changed column."""
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "tables": {
                t.table: {
                    "key_columns": list(t.key_columns),
                    "added": len(t.added),
                    "removed": len(t.removed),
                    "changed": len(t.changed),
                    "added_keys": [_key_dict(t, k) for k in t.added],
                    "removed_keys": [_key_dict(t, k) for k in t.removed],
                    "changed_rows": [
                        {"key": _key_dict(t, c.key), "columns": list(c.columns)} for c in t.changed
                    ],
                }
                for t in self.tables
            },
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _key_dict(diff: TableDiff, key: Key) -> dict[str, Any]:
    return {c: _jsonable(v) for c, v in zip(diff.key_columns, key, strict=True)}


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _sort_key(key: Key) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, "" if v is None else str(v)) for v in key)


class ReleaseTables(Protocol):
    """One published release's tables, wherever they are read from."""

    @property
    def version(self) -> str: ...

    def read(self, name: str) -> pa.Table | None:
        """The table `name`, or None when this release does not hold it."""
        ...

    def scan(self, name: str) -> str | None:
        """A SQL FROM item reading the table `name` in place (on the catalog's connection for
        a catalog release), or None when this release does not hold it."""
        ...


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def release_version(folder: Path) -> str:
    """The version a folder's manifest states, else the folder's name."""
    try:
        return str(json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return folder.name


@dataclass(frozen=True)
class FolderRelease:
    """A release folder: one Parquet file per table."""

    folder: Path

    @property
    def version(self) -> str:
        return release_version(self.folder)

    def read(self, name: str) -> pa.Table | None:
        path = self.folder / f"{name}.parquet"
        return pq.read_table(path) if path.is_file() else None

    def scan(self, name: str) -> str | None:
        path = self.folder / f"{name}.parquet"
        return f"read_parquet({sql_text(str(path))})" if path.is_file() else None


@dataclass(frozen=True)
class CatalogRelease:
    """A release read from the catalog as of its own DuckLake snapshot (time travel).

    `con` has the catalog attached as `lake` (see `catalog.connect`); table names come from
    the schema registry, never from input.
    """

    con: duckdb.DuckDBPyConnection
    version: str
    snapshot_id: int

    def read(self, name: str) -> pa.Table | None:
        scan = self.scan(name)
        return None if scan is None else self.con.execute(f"SELECT * FROM {scan}").to_arrow_table()

    def scan(self, name: str) -> str | None:
        scan = f"{CATALOG_ALIAS}.{name} AT (VERSION => {int(self.snapshot_id)})"
        try:
            self.con.execute(f"DESCRIBE SELECT * FROM {scan}")
        except duckdb.CatalogException:
            return None
        return scan


def as_release(source: Path | ReleaseTables) -> ReleaseTables:
    """A folder path as a FolderRelease; anything else as it is."""
    return FolderRelease(source) if isinstance(source, Path) else source


def sql_name(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def differs_sql(column: str, before: str | None, after: str | None) -> str:
    """SQL: whether a column's value in `p` (the older row, its type `before`) and in `c` (the
    newer, type `after`) differ. Null equals null and NaN equals NaN; a column whose type
    changed is compared by value (as numbers, else as text); a column only one side has (type
    None on the other) differs where that side holds a value."""
    old, new = f"p.{sql_name(column)}", f"c.{sql_name(column)}"
    if before is None:
        return f"{new} IS NOT NULL"
    if after is None:
        return f"{old} IS NOT NULL"
    if before != after:
        numeric = all(kind.startswith(_NUMERIC) for kind in (before, after))
        as_type = "DOUBLE" if numeric else "VARCHAR"
        old, new = f"CAST({old} AS {as_type})", f"CAST({new} AS {as_type})"
    return f"{old} IS DISTINCT FROM {new}"


def columns_of(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    """Column name -> DuckDB type of a view or table."""
    return {str(name): str(kind) for name, kind, *_ in con.execute(f"DESCRIBE {view}").fetchall()}


def _fetch_keys(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Key, ...]:
    return tuple(tuple(_hashable(v) for v in row) for row in con.execute(sql).fetchall())


def _key_order(columns: tuple[str, ...], alias: str = "") -> str:
    """ORDER BY of keys as `_sort_key` sorts them: each part as text, nulls last."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"CAST({prefix}{sql_name(c)} AS VARCHAR) NULLS LAST" for c in columns)


def diff_keyed(con: duckdb.DuckDBPyConnection, spec: TableSpec, old: str, new: str) -> TableDiff:
    """Compare two tables (views on `con`) on their primary key; changed rows name the
    columns that differ. Joins in DuckDB: only the keys that moved come back."""
    key = spec.primary_key
    on = " AND ".join(f"p.{sql_name(c)} IS NOT DISTINCT FROM c.{sql_name(c)}" for c in key)
    keys = ", ".join(sql_name(c) for c in key)
    before, after = columns_of(con, old), columns_of(con, new)
    names = sorted(set(before) | set(after))
    flags = ", ".join(
        f"CASE WHEN {differs_sql(c, before.get(c), after.get(c))} THEN '{c}' END" for c in names
    )
    changed_sql = (
        f"SELECT * FROM (SELECT {', '.join(f'c.{sql_name(c)}' for c in key)}, "
        f"list_filter([{flags}]::VARCHAR[], x -> x IS NOT NULL) AS _columns "
        f"FROM {new} c JOIN {old} p ON {on}) WHERE len(_columns) > 0 ORDER BY {_key_order(key)}"
    )
    changed = tuple(
        ChangedRow(tuple(_hashable(v) for v in row[:-1]), tuple(row[-1]))
        for row in con.execute(changed_sql).fetchall()
    )
    return TableDiff(
        spec.name,
        key,
        added=_fetch_keys(
            con,
            f"SELECT {keys} FROM {new} c ANTI JOIN {old} p ON {on} ORDER BY {_key_order(key)}",
        ),
        removed=_fetch_keys(
            con,
            f"SELECT {keys} FROM {old} p ANTI JOIN {new} c ON {on} ORDER BY {_key_order(key)}",
        ),
        changed=changed,
    )


def diff_multiset(
    con: duckdb.DuckDBPyConnection, name: str, columns: list[str], old: str, new: str
) -> TableDiff:
    """Compare two keyless tables (views on `con`) as multisets of whole rows; a column one
    side lacks is null there."""

    def rows(view: str) -> str:
        present = columns_of(con, view)
        picked = ", ".join(
            sql_name(c) if c in present else f"NULL AS {sql_name(c)}" for c in columns
        )
        return f"SELECT {picked} FROM {view}"

    order = _key_order(tuple(columns))
    added = _fetch_keys(con, f"SELECT * FROM ({rows(new)} EXCEPT ALL {rows(old)}) ORDER BY {order}")
    removed = _fetch_keys(
        con, f"SELECT * FROM ({rows(old)} EXCEPT ALL {rows(new)}) ORDER BY {order}"
    )
    return TableDiff(name, tuple(columns), added=added, removed=removed)


def _diff_connection(releases: tuple[ReleaseTables, ...]) -> duckdb.DuckDBPyConnection:
    """The catalog's connection when a release is read from it (its scans need it), else a
    fresh in-memory one."""
    for release in releases:
        if isinstance(release, CatalogRelease):
            return release.con
    return duckdb.connect()


def diff_releases(old: Path | ReleaseTables, new: Path | ReleaseTables) -> ReleaseDiff:
    """Compare every table of two releases (a table missing on one side is empty), read in
    place by DuckDB."""
    old, new = as_release(old), as_release(new)
    con = _diff_connection((old, new))
    diffs = []
    try:
        for spec in RELEASED:
            scans = {"old": old.scan(spec.name), "new": new.scan(spec.name)}
            if scans["old"] is None and scans["new"] is None:
                continue
            present = next(scan for scan in (scans["new"], scans["old"]) if scan is not None)
            for side, scan in scans.items():
                view = f"diff_{side}"
                if scan is None:
                    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS FROM {present} LIMIT 0")
                else:
                    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS FROM {scan}")
            if spec.primary_key:
                diffs.append(diff_keyed(con, spec, "diff_old", "diff_new"))
            else:
                columns = list(columns_of(con, "diff_new" if scans["new"] else "diff_old"))
                diffs.append(diff_multiset(con, spec.name, columns, "diff_old", "diff_new"))
    finally:
        for side in ("old", "new"):
            con.execute(f"DROP VIEW IF EXISTS temp.main.diff_{side}")
        if not any(isinstance(r, CatalogRelease) for r in (old, new)):
            con.close()
    return ReleaseDiff(old.version, new.version, tuple(diffs))


def render_summary(diff: ReleaseDiff) -> str:
    """Plain text, one line per table: what `kratom-evidence diff` prints."""
    width = max([len(t.table) for t in diff.tables] + [5])
    lines = [f"{diff.old_version} -> {diff.new_version}"]
    lines.append(f"{'table':<{width}}  {'added':>7}  {'removed':>7}  {'changed':>7}")
    for t in diff.tables:
        lines.append(
            f"{t.table:<{width}}  {len(t.added):>7}  {len(t.removed):>7}  {len(t.changed):>7}"
        )
    return "\n".join(lines)


def _format_key(key: Key) -> str:
    return ", ".join(str(_jsonable(v)) for v in key)


def _item_lines(label: str, items: list[str]) -> list[str]:
    if not items:
        return []
    lines = [f"{label}:", ""]
    lines += [f"- {item}" for item in items[:DETAIL_LIMIT]]
    if len(items) > DETAIL_LIMIT:
        lines.append(f"- … and {len(items) - DETAIL_LIMIT} more")
    return [*lines, ""]


def _quarantine_item(t: TableDiff, row: Key) -> str:
    values = dict(zip(t.key_columns, row, strict=True))
    return f"`{values.get('table_name')}` `{values.get('record_key')}`: {values.get('reason')}"


def render_markdown(diff: ReleaseDiff) -> str:
    """CHANGES.md: counts per table, then the keys (and changed columns) of what moved."""
    lines = [
        f"# Changes in {diff.new_version}",
        "",
        f"Compared with release {diff.old_version}, by primary key (quarantine: by whole row).",
        "",
        "| table | added | removed | changed |",
        "|---|---:|---:|---:|",
    ]
    for t in diff.tables:
        lines.append(f"| {t.table} | {len(t.added)} | {len(t.removed)} | {len(t.changed)} |")
    lines.append("")
    history = {spec.name for spec in HISTORY}
    moved = [t for t in diff.tables if not t.unchanged and t.table not in history]
    if not moved:
        lines += ["No row was added, removed or changed.", ""]
    else:
        # The history tables restate the moves below record by record: counted, not listed.
        lines += [f"{' and '.join(sorted(history))} record these changes per id.", ""]
    for t in moved:
        lines += [f"## {t.table}", ""]
        if t.table == QUARANTINE.name:
            lines += _item_lines("Added", [_quarantine_item(t, k) for k in t.added])
            lines += _item_lines("Removed", [_quarantine_item(t, k) for k in t.removed])
            continue
        lines += _item_lines("Added", [f"`{_format_key(k)}`" for k in t.added])
        lines += _item_lines("Removed", [f"`{_format_key(k)}`" for k in t.removed])
        lines += _item_lines(
            "Changed",
            [f"`{_format_key(c.key)}`: {', '.join(c.columns)}" for c in t.changed],
        )
    return "\n".join(lines).rstrip() + "\n"


def render_first_release(version: str) -> str:
    """CHANGES.md of a release with no predecessor."""
    return f"# Changes in {version}\n\nFirst release: there is no previous version to compare.\n"

"""What changed between two releases, table by table, by primary key.

A release is read from its folder, or from the catalog by DuckLake time travel when the folder
is not on this machine (a shared PostgreSQL catalog that another machine published into).
Tables with a key are compared row by row on it; the quarantine has none and is compared as a
multiset of whole rows. Results are sorted, so the same two releases always give the same text.
"""

from __future__ import annotations

import json
from collections import Counter
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


def _read_rows(release: ReleaseTables, name: str) -> tuple[list[str], list[dict[str, Any]]] | None:
    table = release.read(name)
    if table is None:
        return None
    rows = [{k: _hashable(v) for k, v in r.items()} for r in table.to_pylist()]
    return table.column_names, rows


def diff_keyed(
    spec: TableSpec, old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]]
) -> TableDiff:
    """Compare two tables on their primary key; changed rows name the columns that differ."""
    key_columns = spec.primary_key
    old = {tuple(r[c] for c in key_columns): r for r in old_rows}
    new = {tuple(r[c] for c in key_columns): r for r in new_rows}
    changed = []
    for key in sorted(old.keys() & new.keys(), key=_sort_key):
        before, after = old[key], new[key]
        columns = sorted(c for c in before.keys() | after.keys() if before.get(c) != after.get(c))
        if columns:
            changed.append(ChangedRow(key, tuple(columns)))
    return TableDiff(
        spec.name,
        key_columns,
        added=tuple(sorted(new.keys() - old.keys(), key=_sort_key)),
        removed=tuple(sorted(old.keys() - new.keys(), key=_sort_key)),
        changed=tuple(changed),
    )


def diff_multiset(
    name: str, columns: list[str], old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]]
) -> TableDiff:
    """Compare two keyless tables as multisets of whole rows."""
    old = Counter(tuple(r.get(c) for c in columns) for r in old_rows)
    new = Counter(tuple(r.get(c) for c in columns) for r in new_rows)
    added = sorted((new - old).elements(), key=_sort_key)
    removed = sorted((old - new).elements(), key=_sort_key)
    return TableDiff(name, tuple(columns), added=tuple(added), removed=tuple(removed))


def diff_releases(old: Path | ReleaseTables, new: Path | ReleaseTables) -> ReleaseDiff:
    """Compare every table of two releases (a table missing on one side is empty)."""
    old, new = as_release(old), as_release(new)
    diffs = []
    for spec in RELEASED:
        before = _read_rows(old, spec.name)
        after = _read_rows(new, spec.name)
        if before is None and after is None:
            continue
        old_rows = before[1] if before else []
        new_rows = after[1] if after else []
        if spec.primary_key:
            diffs.append(diff_keyed(spec, old_rows, new_rows))
        else:
            columns = (after or before)[0]  # type: ignore[index]
            diffs.append(diff_multiset(spec.name, columns, old_rows, new_rows))
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

"""Check a downloaded release folder: checksums, then every table against its Pandera model.

Every problem is collected (not just the first), each naming the file it is about; checksum
problems come first, so the first line says whether the download itself is damaged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.release.publish import sha256_file
from schemas import RELEASED, TableSpec

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
EXAMPLES = 3

_PANDAS_TYPES = {
    pa.string(): pd.StringDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def read_manifest(folder: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest, or the problem that stops it being read."""
    path = folder / MANIFEST
    if not path.is_file():
        return None, [f"{MANIFEST}: missing from {folder}"]
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, [f"{MANIFEST}: cannot be parsed: {exc}"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tables"), dict):
        return None, [f"{MANIFEST}: has no 'tables' object"]
    return manifest, []


def check_manifest_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Every file the manifest lists exists with its stated size and sha256."""
    problems = []
    for name, entry in sorted(manifest["tables"].items()):
        file = str(entry.get("file", f"{name}.parquet"))
        path = folder / file
        if not path.is_file():
            problems.append(f"{file}: listed in {MANIFEST} but missing")
            continue
        size = path.stat().st_size
        if entry.get("bytes") is not None and size != entry["bytes"]:
            problems.append(f"{file}: size {size} bytes, {MANIFEST} says {entry['bytes']}")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            problems.append(
                f"{file}: sha256 {digest} does not match {MANIFEST} ({entry.get('sha256')})"
            )
    return problems


def parse_sums(text: str) -> dict[str, str]:
    """`sha256sum` output → file name → hex digest."""
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            sums[name.lstrip("*")] = digest.strip()
    return sums


def check_sums(folder: Path) -> list[str]:
    """SHA256SUMS lists every other file of the folder, with the right digest."""
    path = folder / SUMS
    if not path.is_file():
        return [f"{SUMS}: missing from {folder}"]
    sums = parse_sums(path.read_text(encoding="utf-8"))
    problems = []
    for name, digest in sorted(sums.items()):
        file = folder / name
        if not file.is_file():
            problems.append(f"{name}: listed in {SUMS} but missing")
        elif sha256_file(file) != digest:
            problems.append(f"{name}: sha256 does not match {SUMS}")
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != SUMS}
    problems += [
        f"{name}: present but not listed in {SUMS}" for name in sorted(present - set(sums))
    ]
    return problems


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow → pandas as the models expect: nullable dtypes, lists as lists, dates as timestamps."""
    frame = table.to_pandas(date_as_object=False, types_mapper=_PANDAS_TYPES.get)
    for f in table.schema:
        if pa.types.is_list(f.type):
            frame[f.name] = [None if v is None else list(v) for v in table[f.name].to_pylist()]
        elif pa.types.is_date(f.type):
            frame[f.name] = pd.to_datetime(frame[f.name])
    return frame


def _examples(values: pd.Series) -> str:
    shown = [repr(v) for v in values.drop_duplicates().head(EXAMPLES).tolist()]
    return ", ".join(shown)


def schema_problems(spec: TableSpec, file: str, frame: pd.DataFrame) -> list[str]:
    """Pandera's lazy validation, one line per failing column and check."""
    try:
        spec.model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        problems = []
        grouped = cases.groupby(["column", "check"], dropna=False, sort=True)
        for (column, check), part in grouped:
            where = f"column {column}" if isinstance(column, str) else "table"
            problems.append(
                f"{file}: table {spec.name}, {where} fails {check} "
                f"({len(part)} values, e.g. {_examples(part['failure_case'])})"
            )
        return problems
    return []


def key_problems(spec: TableSpec, file: str, table: pa.Table) -> list[str]:
    """The primary key is unique and never null."""
    if not spec.primary_key:
        return []
    keys = [tuple(r.values()) for r in table.select(list(spec.primary_key)).to_pylist()]
    problems = []
    if any(v is None for k in keys for v in k):
        problems.append(f"{file}: table {spec.name}, null in primary key {spec.primary_key}")
    if len(set(keys)) != len(keys):
        problems.append(
            f"{file}: table {spec.name}, primary key {', '.join(spec.primary_key)} "
            f"has {len(keys) - len(set(keys))} duplicate rows"
        )
    return problems


def check_table(folder: Path, spec: TableSpec, file: str) -> tuple[pa.Table | None, list[str]]:
    """Read one table with pyarrow and check its columns, schema and key."""
    try:
        table = pq.read_table(folder / file)
    except (OSError, pa.ArrowException) as exc:
        return None, [f"{file}: not a readable Parquet file: {exc}"]
    if table.column_names != spec.columns:
        return table, [
            f"{file}: table {spec.name}, columns {table.column_names} differ from the "
            f"schema {spec.columns}"
        ]
    return table, schema_problems(spec, file, to_frame(table)) + key_problems(spec, file, table)


def foreign_key_problems(tables: dict[str, pa.Table]) -> list[str]:
    """Every non-null foreign key resolves to a row of its parent in the same release."""
    problems = []
    for spec in RELEASED:
        child = tables.get(spec.name)
        if child is None:
            continue
        for fk in spec.foreign_keys:
            parent = tables.get(fk.ref_table)
            if parent is None:
                continue
            known = {tuple(r.values()) for r in parent.select(list(fk.ref_columns)).to_pylist()}
            values = {tuple(r.values()) for r in child.select(list(fk.columns)).to_pylist()}
            missing = sorted(
                str(v[0] if len(v) == 1 else v)
                for v in values - known
                if all(x is not None for x in v)
            )
            if missing:
                problems.append(
                    f"{spec.name}.parquet: foreign key {', '.join(fk.columns)} -> "
                    f"{fk.ref_table}: {len(missing)} values do not resolve, "
                    f"e.g. {', '.join(missing[:EXAMPLES])}"
                )
    return problems


def validate_release(folder: Path) -> list[str]:
    """Every problem with a release folder; empty when it is intact and valid."""
    manifest, problems = read_manifest(folder)
    if manifest is None:
        return problems
    problems += check_manifest_files(folder, manifest)
    problems += check_sums(folder)
    tables: dict[str, pa.Table] = {}
    for spec in RELEASED:
        entry = manifest["tables"].get(spec.name)
        if entry is None:
            problems.append(f"{MANIFEST}: table {spec.name} is not listed")
            continue
        file = str(entry.get("file", f"{spec.name}.parquet"))
        if not (folder / file).is_file():
            continue
        table, found = check_table(folder, spec, file)
        problems += found
        if table is not None:
            tables[spec.name] = table
    return problems + foreign_key_problems(tables)


def verified_counts(folder: Path) -> tuple[int, int]:
    """(tables, files) a passing validation checked: for the one-line summary."""
    manifest, _ = read_manifest(folder)
    tables = len(manifest["tables"]) if manifest else 0
    sums = folder / SUMS
    files = len(parse_sums(sums.read_text(encoding="utf-8"))) if sums.is_file() else 0
    return tables, files

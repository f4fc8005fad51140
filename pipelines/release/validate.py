"""Check a downloaded release folder: checksums, then every table against the rules.

Every problem is collected (not just the first), each naming the file it is about; checksum
problems come first, so the first line says whether the download itself is damaged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import rules
from pipelines.release.publish import sha256_file
from schemas import RELEASED, TableSpec

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"

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


def read_table(folder: Path, spec: TableSpec, file: str) -> tuple[pa.Table | None, list[str]]:
    """Read one table with pyarrow; None and the problem when it is unreadable or its columns
    are not the model's."""
    try:
        table = pq.read_table(folder / file)
    except (OSError, pa.ArrowException) as exc:
        return None, [f"{file}: not a readable Parquet file: {exc}"]
    if table.column_names != spec.columns:
        return None, [
            f"{file}: table {spec.name}, columns {table.column_names} differ from the "
            f"schema {spec.columns}"
        ]
    return table, []


def _lines(spec: TableSpec, file: str, found: list[rules.Breach], *kinds: str) -> list[str]:
    return [f"{file}: {line}" for kind in kinds for line in rules.problem_lines(spec, found, kind)]


def validate_release(folder: Path) -> list[str]:
    """Every problem with a release folder; empty when it is intact and valid.

    The table rules are `pipelines.rules`: the same the curate gate and the asset checks apply.
    """
    manifest, problems = read_manifest(folder)
    if manifest is None:
        return problems
    problems += check_manifest_files(folder, manifest)
    problems += check_sums(folder)
    frames: dict[str, tuple[TableSpec, str, pd.DataFrame]] = {}
    for spec in RELEASED:
        entry = manifest["tables"].get(spec.name)
        if entry is None:
            problems.append(f"{MANIFEST}: table {spec.name} is not listed")
            continue
        file = str(entry.get("file", f"{spec.name}.parquet"))
        if not (folder / file).is_file():
            continue
        table, found = read_table(folder, spec, file)
        problems += found
        if table is not None:
            frames[spec.name] = (spec, file, to_frame(table))
    parents = {
        fk.ref_table: rules.key_set(frames[fk.ref_table][2], fk.ref_columns)
        for spec, _, _ in frames.values()
        for fk in spec.foreign_keys
        if fk.ref_table in frames
    }
    broken = [(s, f, rules.breaches(frame, s, parents)) for s, f, frame in frames.values()]
    problems += [p for s, f, b in broken for p in _lines(s, f, b, rules.SCHEMA, rules.PRIMARY_KEY)]
    return problems + [p for s, f, b in broken for p in _lines(s, f, b, rules.FOREIGN_KEY)]


def verified_counts(folder: Path) -> tuple[int, int]:
    """(tables, files) a passing validation checked: for the one-line summary."""
    manifest, _ = read_manifest(folder)
    tables = len(manifest["tables"]) if manifest else 0
    sums = folder / SUMS
    files = len(parse_sums(sums.read_text(encoding="utf-8"))) if sums.is_file() else 0
    return tables, files

"""The data dictionary: every table and column described from the Pandera models.

One reading of the models (`table_docs`) feeds both the README.md dictionary and the
datapackage.json schemas, so the two never disagree with each other or with the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from schemas import RELEASED, TableSpec
from schemas.arrow import arrow_schema

_CHECK_LABELS = {
    "greater_than_or_equal_to": (">=", "min_value"),
    "greater_than": (">", "min_value"),
    "less_than_or_equal_to": ("<=", "max_value"),
    "less_than": ("<", "max_value"),
}


@dataclass(frozen=True)
class ColumnDoc:
    """What a reader needs to know about one column."""

    name: str
    arrow_type: pa.DataType
    nullable: bool
    unique: bool
    description: str
    allowed: tuple[str, ...] | None
    pattern: str | None
    minimum: float | int | None
    maximum: float | int | None
    rules: tuple[str, ...]


@dataclass(frozen=True)
class TableDoc:
    """A published table: its description, keys and columns."""

    spec: TableSpec
    columns: tuple[ColumnDoc, ...]

    @property
    def name(self) -> str:
        return self.spec.name


def _column_doc(name: str, column: Any, arrow_type: pa.DataType) -> ColumnDoc:
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: float | int | None = None
    maximum: float | int | None = None
    rules: list[str] = []
    for check in column.checks:
        stats = check.statistics or {}
        if check.name == "isin":
            allowed = tuple(str(v) for v in stats["allowed_values"])
        elif check.name == "str_matches":
            pattern = str(stats["pattern"])
        elif check.name == "greater_than_or_equal_to":
            minimum = stats["min_value"]
        elif check.name == "less_than_or_equal_to":
            maximum = stats["max_value"]
        elif check.name == "is_str_list":
            rules.append("list of non-empty strings")
        elif check.name in _CHECK_LABELS:
            symbol, key = _CHECK_LABELS[check.name]
            rules.append(f"{symbol} {stats[key]}")
        else:
            rules.append(str(check.name))
    return ColumnDoc(
        name=name,
        arrow_type=arrow_type,
        nullable=bool(column.nullable),
        unique=bool(column.unique),
        description=(column.description or "").strip(),
        allowed=allowed,
        pattern=pattern,
        minimum=minimum,
        maximum=maximum,
        rules=tuple(rules),
    )


def table_doc(spec: TableSpec) -> TableDoc:
    """Describe one table from its model."""
    schema = spec.model.to_schema()
    types = {f.name: f.type for f in arrow_schema(spec.model)}
    columns = tuple(_column_doc(n, c, types[n]) for n, c in schema.columns.items())
    return TableDoc(spec, columns)


def table_docs() -> tuple[TableDoc, ...]:
    """Every published table: curated ones, then quarantine, then the history tables."""
    return tuple(table_doc(spec) for spec in RELEASED)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _constraints(column: ColumnDoc) -> str:
    parts: list[str] = []
    if column.unique:
        parts.append("unique")
    if column.allowed is not None:
        parts.append("one of " + ", ".join(f"`{v}`" for v in column.allowed))
    if column.pattern is not None:
        parts.append(f"matches `{column.pattern}`")
    if column.minimum is not None:
        parts.append(f">= {column.minimum}")
    if column.maximum is not None:
        parts.append(f"<= {column.maximum}")
    parts.extend(column.rules)
    return _cell("; ".join(parts))


def _table_section(doc: TableDoc, rows: int | None) -> list[str]:
    spec = doc.spec
    lines = [f"### `{doc.name}`", "", spec.description, ""]
    lines.append(f"- File: `{doc.name}.parquet`")
    lines.append(f"- Rows: {rows if rows is not None else 'not in this release'}")
    key = ", ".join(f"`{c}`" for c in spec.primary_key) if spec.primary_key else "none"
    lines.append(f"- Primary key: {key}")
    for fk in spec.foreign_keys:
        cols = ", ".join(f"`{c}`" for c in fk.columns)
        refs = ", ".join(f"`{c}`" for c in fk.ref_columns)
        lines.append(f"- Foreign key: {cols} → `{fk.ref_table}` ({refs}); null allowed")
    lines += [
        "",
        "| column | Arrow type | nullable | description | allowed values / rules |",
        "|---|---|---|---|---|",
    ]
    for c in doc.columns:
        lines.append(
            f"| `{c.name}` | `{c.arrow_type}` | {'yes' if c.nullable else 'no'} "
            f"| {_cell(c.description)} | {_constraints(c)} |"
        )
    return [*lines, ""]


FRICTIONLESS_EXAMPLE = (
    "```python",
    "import frictionless",
    "from pipelines.release.datapackage import register_parquet_reader",
    "",
    "register_parquet_reader()",
    'report = frictionless.validate("datapackage.json", skip_errors=["byte-count", "hash-count"])',
    "print(report.valid)",
    "```",
)
"""How a user validates a release with frictionless (run by the tests from the README)."""


def render_dictionary(manifest: dict[str, Any]) -> str:
    """README.md of a release: what it is, how to check it, and every column explained."""
    version = manifest["version"]
    snapshot = manifest.get("snapshot", {})
    tables = manifest.get("tables", {})
    lines = [
        f"# Kratom Evidence — release {version}",
        "",
        "An open dataset on kratom (Mitragyna speciosa) and its alkaloids for addiction "
        "treatment: registered studies, outcomes, publications, compounds and an evidence map.",
        "",
        f"- Version: `{version}` (schema version {manifest.get('schema_version')})",
        f"- Created: {manifest.get('created_at')}",
        f"- Snapshot: captured {snapshot.get('captured_at')} ({snapshot.get('method')}), "
        f"sha256 `{snapshot.get('sha256')}`",
        f"- Previous version: {manifest.get('previous_version') or 'none (first release)'}",
        "",
        "Files: one Parquet file per table, `quarantine.parquet` (records turned away, with the "
        "reason), `manifest.json`, `datapackage.json` (Frictionless Data Package), `CHANGES.md` "
        "(what changed since the previous version), `CITATION.cff`, `report.html` (evidence map "
        "and quality charts, opens offline) and `SHA256SUMS`. Check a download with "
        "`sha256sum -c SHA256SUMS` or `kratom-evidence validate <folder>`.",
        "",
        "To validate the data against `datapackage.json` with frictionless in Python, register "
        "the project's Parquet reader first: frictionless's own reads Parquet through pandas and "
        "reports list and null cells as type errors. Sizes and hashes are "
        "`kratom-evidence validate`'s job, hence `skip_errors`. Run it in this folder:",
        "",
        *FRICTIONLESS_EXAMPLE,
        "",
        "## Tables",
        "",
        "| table | rows | primary key | description |",
        "|---|---:|---|---|",
    ]
    docs = table_docs()
    for doc in docs:
        rows = tables.get(doc.name, {}).get("rows")
        key = ", ".join(doc.spec.primary_key) or "—"
        lines.append(
            f"| [`{doc.name}`](#{doc.name}) | {rows if rows is not None else '—'} | {key} "
            f"| {_cell(doc.spec.description)} |"
        )
    lines += ["", "## Data dictionary", ""]
    for doc in docs:
        lines += _table_section(doc, tables.get(doc.name, {}).get("rows"))
    return "\n".join(lines).rstrip() + "\n"

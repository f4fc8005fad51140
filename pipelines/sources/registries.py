"""Registries without an open API (Dutch, Thai, ISRCTN, EU ...): one CSV row per record.

Each row was read from a registry page (its `source_url`); lists inside a cell are `;`-separated.
Parsing is pure: a row in, rows for studies, identifiers, conditions, interventions, outcomes out.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.normalize.dates import parse_partial_date
from pipelines.normalize.design import registered_design
from pipelines.sources.base import RecordError, SnapshotFormatError, SourceUnit, TableRows
from schemas.studies import STUDY_ID_PATTERN
from schemas.vocab import ID_TYPES

SOURCE = "registries"
TABLES = ("studies", "study_identifiers", "conditions", "interventions", "outcomes")
"""Every staged table `parse_row` can return rows for."""
COLUMNS = (
    "registry",
    "registry_id",
    "study_id",
    "id_type",
    "title",
    "official_title",
    "study_type",
    "phases",
    "overall_status",
    "enrollment",
    "enrollment_type",
    "start_date",
    "completion_date",
    "lead_sponsor",
    "sponsor_class",
    "conditions",
    "interventions",
    "allocation",
    "masking",
    "primary_outcomes",
    "secondary_outcomes",
    "countries",
    "flags",
    "source_url",
)
"""The bundled file's header, in order."""
REQUIRED = ("registry", "registry_id", "study_id", "source_url")
"""Columns without which a file cannot be read at all."""
EXTRA_CELLS = "_extra_cells"
"""Key holding cells beyond the header (csv.DictReader would key them by None)."""

_INTERVENTION_TYPES = frozenset(
    {
        "drug",
        "device",
        "biological",
        "procedure",
        "radiation",
        "behavioral",
        "genetic",
        "dietary supplement",
        "combination product",
        "diagnostic test",
        "other",
    }
)
"""ClinicalTrials.gov intervention types: a `Type: name` prefix must be one (or several, `/`)."""
_PREFIX = re.compile(r"([^:]+):\s*(.+)", re.S)


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the rows of one registries CSV.

    Raises:
        SnapshotFormatError: the file has no header, lacks a required column, or is not CSV.
    """
    with path.open(newline="", encoding="utf-8") as f:
        try:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            if not header:
                raise SnapshotFormatError(path, "empty file: expected a registries CSV header")
            for column in REQUIRED:
                if column not in header:
                    raise SnapshotFormatError(path, f"missing required column {column!r}")
            for row in reader:
                extra = row.pop(None, None)
                if extra is not None:
                    row[EXTRA_CELLS] = extra
                yield row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SnapshotFormatError(path, f"not a readable CSV: {exc}") from exc


def record_key(row: dict[str, Any]) -> str | None:
    """The row's study id; None when blank."""
    return _text(row.get("study_id"))


def parse_row(row: dict[str, Any]) -> TableRows:
    """One registry row -> rows for studies and the tables hanging off it.

    Raises:
        RecordError: a ragged row, no study id or registry id, a study id the studies table
            would refuse, an unknown id type, or a bad enrollment or date.
    """
    if EXTRA_CELLS in row:
        raise RecordError(f"row has {len(row[EXTRA_CELLS])} more cell(s) than the header")
    if any(value is None for value in row.values()):
        raise RecordError("row has fewer cells than the header")
    study_id = record_key(row)
    if study_id is None:
        raise RecordError("row has no study_id")
    if not re.fullmatch(STUDY_ID_PATTERN, study_id):
        raise RecordError(
            f"study_id {study_id!r} is not a study id (a registry id, or <registry>:<local id>)"
        )
    registry_id = _text(row.get("registry_id"))
    if registry_id is None:
        raise RecordError(f"{study_id}: no registry_id")
    id_type = _text(row.get("id_type"))
    if id_type not in ID_TYPES:
        raise RecordError(f"{study_id}: id_type {id_type!r} is not one of {', '.join(ID_TYPES)}")
    phases = _split(row.get("phases"))
    study: dict[str, Any] = {
        "study_id": study_id,
        "evidence_source": "registry",
        "registry": _text(row.get("registry")),
        "title": _text(row.get("title")),
        "official_title": _text(row.get("official_title")),
        "study_type": _text(row.get("study_type")),
        "phases": phases,
        "overall_status": _text(row.get("overall_status")),
        "enrollment": _enrollment(study_id, row.get("enrollment")),
        "enrollment_type": _text(row.get("enrollment_type")),
        "lead_sponsor": _text(row.get("lead_sponsor")),
        "sponsor_class": _text(row.get("sponsor_class")),
        "allocation": _text(row.get("allocation")),
        "masking": _text(row.get("masking")),
        "countries": sorted(set(_split(row.get("countries")))),
        "population": "human",
        "design": registered_design(row.get("study_type"), row.get("allocation"), phases),
        "flags": _split(row.get("flags")),
        "source_url": _text(row.get("source_url")),
    }
    for column in ("start_date", "completion_date"):
        study[column], study[f"{column}_precision"] = _date(study_id, column, row.get(column))
    return {
        "studies": [study],
        "study_identifiers": [
            {
                "study_id": study_id,
                "id_type": id_type,
                "id_value": registry_id,
                "id_domain": study["registry"],
                "is_alias": False,
            }
        ],
        "conditions": [
            {"study_id": study_id, "condition": c, "condition_category": None, "mesh_term": None}
            for c in _unique(_split(row.get("conditions")))
        ],
        "interventions": _interventions(study_id, _split(row.get("interventions"))),
        "outcomes": _outcomes(study_id, "P", "primary", row.get("primary_outcomes"))
        + _outcomes(study_id, "S", "secondary", row.get("secondary_outcomes")),
    }


def split_intervention(text: str) -> tuple[str | None, str]:
    """`Dietary Supplement: kratom tea` -> (`DIETARY_SUPPLEMENT`, `kratom tea`).

    Only a registry intervention type (or several joined by `/`) counts as a prefix, so a colon
    inside a plain name is left alone.
    """
    match = _PREFIX.fullmatch(text.strip())
    if match:
        kinds = [k.strip().lower() for k in match.group(1).split("/")]
        if all(k in _INTERVENTION_TYPES for k in kinds):
            kind = re.sub(r"[^A-Z0-9]+", "_", match.group(1).strip().upper()).strip("_")
            return kind, match.group(2).strip()
    return None, text.strip()


def _interventions(study_id: str, items: list[str]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        kind, name = split_intervention(item)
        rows.setdefault(
            name,
            {
                "study_id": study_id,
                "intervention_name": name,
                "intervention_type": kind,
                "compound_id": None,
                "product_form": None,
                "arm_group_labels": [],
                "other_names": [],
            },
        )
    return list(rows.values())


def _outcomes(study_id: str, letter: str, kind: str, cell: str | None) -> list[dict[str, Any]]:
    return [
        {
            "outcome_id": f"{study_id}:{letter}{n}",
            "study_id": study_id,
            "outcome_kind": kind,
            "title": title,
            "time_frame": None,
            "domain": None,
            "instrument": None,
            "param_type": None,
            "unit": None,
            "source": "registry_protocol",
        }
        for n, title in enumerate(_split(cell), start=1)
    ]


def _enrollment(study_id: str, cell: str | None) -> int | None:
    text = _text(cell)
    if text is None:
        return None
    if not text.isdigit():
        raise RecordError(f"{study_id}: enrollment is not a whole number: {text!r}")
    return int(text)


def _date(study_id: str, column: str, cell: str | None) -> tuple[date | None, str | None]:
    try:
        return parse_partial_date(cell)
    except ValueError as exc:
        raise RecordError(f"{study_id}: {column}: {exc}") from exc


def _text(cell: Any) -> str | None:
    if not isinstance(cell, str):
        return None
    return cell.strip() or None


def _split(cell: str | None) -> list[str]:
    return [part.strip() for part in (cell or "").split(";") if part.strip()]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".csv",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_row,
    primary_table="studies",
    tables=TABLES,
)
"""Other registries' records, curated by hand as CSV rows: snapshot only, carried over by
every refresh."""

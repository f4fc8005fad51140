"""History tables: when each study, publication, evidence and results row changed, and which left.

They are not curated from a snapshot: every release computes them from the previous release's
history and the new tables (`pipelines.release.history`), so each release carries the whole
cumulative history and one query answers "when did this trial's status change".
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas.fields import one_of, str_list, text

RECORD_TYPES = (
    "study",
    "publication",
    "composition",
    "interaction",
    "safety_signal",
    "arm",
    "result_group",
    "outcome_result",
    "outcome_analysis",
    "adverse_event",
    "adverse_event_total",
    "baseline_measure",
    "participant_flow",
    "outcome_change",
)
"""What a history row follows: a study, a publication, a row of product_composition,
interaction_effects or safety_signals, or a row of a posted-results table (arms, result_groups,
outcome_results, outcome_analyses, adverse_events, adverse_event_totals, baseline_measures,
participant_flow, outcome_changes)."""
CHANGES = ("added", "changed", "removed", "restored")
VERSION_PATTERN = r"^\d{4}\.\d{2}\.\d{2}(\.\d+)?$"


def _version(description: str, *, nullable: bool = False) -> Any:
    """A release version column (YYYY.MM.DD[.N])."""
    return text(description, nullable=nullable, str_matches=VERSION_PATTERN)


class RecordVersion(pa.DataFrameModel):
    """Each release in which a record's content changed (see RECORD_TYPES), and which fields did."""

    record_type: Series[pd.StringDtype] = one_of(RECORD_TYPES, "Kind of record.")
    record_id: Series[pd.StringDtype] = text(
        "study_id, publication_id, composition_id, interaction_id or signal_id of the record; "
        "for a row of a table with a composite primary key, its key values joined by | (a null "
        "part empty), as quarantine.record_key names a row.",
        nullable=False,
    )
    version: Series[pd.StringDtype] = _version("Release in which the change was published.")
    change: Series[pd.StringDtype] = one_of(
        CHANGES,
        "added: first release holding it; changed: some of its columns differ from the previous "
        "release; removed: gone since the previous release (see removed_records); restored: back "
        "after a removal.",
    )
    changed_fields: Series[object] = str_list(
        "Columns whose values differ from the previous release, sorted; empty for added, removed "
        "and restored (every column is new, gone or back)."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["record_type", "record_id", "version"]


class RemovedRecord(pa.DataFrameModel):
    """A record that was in an earlier release and is not in this one (tombstone)."""

    record_type: Series[pd.StringDtype] = one_of(RECORD_TYPES, "Kind of record.")
    record_id: Series[pd.StringDtype] = text(
        "The record's id (as in record_versions).", nullable=False
    )
    sources: Series[object] = str_list(
        "Where it came from: a study's registry (its evidence_source when it has none), a "
        "publication's sources, an evidence row's source_url, a results row's study record page."
    )
    last_version_seen: Series[pd.StringDtype] = _version("Last release that held it.")
    removed_in_version: Series[pd.StringDtype] = _version("First release without it.")
    merged_into: Series[pd.StringDtype] = text(
        "For a removed NCT id: the study of this release that lists it among its nctIdAliases "
        "(study_identifiers id_type nct with is_alias), i.e. the registry merged it; null when "
        "it vanished."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["record_type", "record_id"]

"""Every published table: its model, primary key and foreign keys, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandera.pandas as pa

from schemas.compounds import Compound, CompoundTarget
from schemas.evidence import EvidenceMapCell, QuarantineRow
from schemas.evidence_tables import InteractionEffect, ProductComposition, SafetySignal
from schemas.history import RecordVersion, RemovedRecord
from schemas.literature import Publication, PublicationCompound, StudyPublication
from schemas.outcomes import Outcome, OutcomeResult
from schemas.results import (
    AdverseEvent,
    AdverseEventTotal,
    Arm,
    BaselineMeasure,
    OutcomeAnalysis,
    OutcomeChange,
    ParticipantFlowRow,
    ResultGroup,
)
from schemas.studies import Condition, Intervention, Study, StudyIdentifier

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ForeignKey:
    """`columns` of this table reference `ref_columns` of `ref_table` (nulls are allowed)."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableSpec:
    """A published table."""

    name: str
    model: type[pa.DataFrameModel]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return list(self.model.to_schema().columns)

    @property
    def description(self) -> str:
        return (self.model.__doc__ or "").strip()


def _fk(column: str, table: str, ref: str | None = None) -> ForeignKey:
    return ForeignKey((column,), table, (ref or column,))


TABLES: tuple[TableSpec, ...] = (
    TableSpec("compounds", Compound, ("compound_id",)),
    TableSpec("publications", Publication, ("publication_id",)),
    TableSpec(
        "studies",
        Study,
        ("study_id",),
        (_fk("source_publication_id", "publications", "publication_id"),),
    ),
    TableSpec(
        "study_identifiers",
        StudyIdentifier,
        ("study_id", "id_type", "id_value"),
        (_fk("study_id", "studies"),),
    ),
    TableSpec("conditions", Condition, ("study_id", "condition"), (_fk("study_id", "studies"),)),
    TableSpec(
        "interventions",
        Intervention,
        ("study_id", "intervention_name"),
        (_fk("study_id", "studies"), _fk("compound_id", "compounds")),
    ),
    TableSpec("outcomes", Outcome, ("outcome_id",), (_fk("study_id", "studies"),)),
    TableSpec(
        "outcome_results",
        OutcomeResult,
        ("outcome_id", "group_title", "param_type", "category"),
        (_fk("outcome_id", "outcomes"),),
    ),
    TableSpec("arms", Arm, ("study_id", "arm_label"), (_fk("study_id", "studies"),)),
    TableSpec(
        "result_groups",
        ResultGroup,
        ("study_id", "group_scope", "group_id"),
        (
            _fk("study_id", "studies"),
            ForeignKey(("study_id", "arm_label"), "arms", ("study_id", "arm_label")),
        ),
    ),
    TableSpec(
        "adverse_events",
        AdverseEvent,
        ("study_id", "event_group_id", "event_type", "term", "organ_system", "group_title"),
        (_fk("study_id", "studies"),),
    ),
    TableSpec(
        "adverse_event_totals",
        AdverseEventTotal,
        ("study_id", "event_group_id", "total_type"),
        (_fk("study_id", "studies"),),
    ),
    TableSpec(
        "baseline_measures",
        BaselineMeasure,
        ("study_id", "title", "group_title", "category", "param_type"),
        (_fk("study_id", "studies"),),
    ),
    TableSpec(
        "participant_flow",
        ParticipantFlowRow,
        ("study_id", "period", "milestone_or_reason", "kind", "group_title"),
        (_fk("study_id", "studies"),),
    ),
    TableSpec(
        "outcome_analyses",
        OutcomeAnalysis,
        ("analysis_id",),
        (_fk("outcome_id", "outcomes"),),
    ),
    TableSpec(
        "outcome_changes",
        OutcomeChange,
        ("study_id", "registered_outcome_id", "reported_outcome_id"),
        (
            _fk("study_id", "studies"),
            _fk("registered_outcome_id", "outcomes", "outcome_id"),
            _fk("reported_outcome_id", "outcomes", "outcome_id"),
        ),
    ),
    TableSpec(
        "study_publications",
        StudyPublication,
        ("study_id", "publication_id"),
        (_fk("study_id", "studies"), _fk("publication_id", "publications")),
    ),
    TableSpec(
        "compound_targets",
        CompoundTarget,
        ("compound_id", "target_chembl_id", "activity_type", "source_id"),
        (_fk("compound_id", "compounds"),),
    ),
    TableSpec(
        "publication_compounds",
        PublicationCompound,
        ("publication_id", "compound_id"),
        (_fk("publication_id", "publications"), _fk("compound_id", "compounds")),
    ),
    TableSpec(
        "product_composition",
        ProductComposition,
        ("composition_id",),
        (_fk("compound_id", "compounds"), _fk("publication_id", "publications")),
    ),
    TableSpec(
        "interaction_effects",
        InteractionEffect,
        ("interaction_id",),
        (
            _fk("perpetrator_compound_id", "compounds", "compound_id"),
            _fk("victim_compound_id", "compounds", "compound_id"),
            _fk("study_id", "studies"),
            _fk("publication_id", "publications"),
        ),
    ),
    TableSpec(
        "safety_signals",
        SafetySignal,
        ("signal_id",),
        (_fk("compound_id", "compounds"), _fk("publication_id", "publications")),
    ),
    TableSpec(
        "evidence_map",
        EvidenceMapCell,
        ("compound_id", "domain", "design"),
        (_fk("compound_id", "compounds"),),
    ),
)
"""Published tables, parents before children."""

QUARANTINE = TableSpec("quarantine", QuarantineRow, ())

HISTORY: tuple[TableSpec, ...] = (
    TableSpec("record_versions", RecordVersion, ("record_type", "record_id", "version")),
    TableSpec(
        "removed_records",
        RemovedRecord,
        ("record_type", "record_id"),
        (_fk("merged_into", "studies", "study_id"),),
    ),
)
"""History tables: computed at publish time from the previous release, not curated assets."""

RELEASED: tuple[TableSpec, ...] = (*TABLES, QUARANTINE, *HISTORY)
"""Every table a release folder holds, in the order its documentation lists them."""

TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}

"""Posted results beyond outcome values: arms, results groups, adverse events, baseline,
participant flow and statistical analyses (ClinicalTrials.gov v2 `resultsSection`).

A count or number the registry printed as something else ("NA", "≥5", "-1") is kept as text in
the `*_text` column beside a null number; `*_text` is null whenever the number was read.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import nullable_key_part, one_of, str_list, text


def _count(description: str) -> Any:
    return pa.Field(ge=0, nullable=True, description=description)


def _number(description: str) -> Any:
    return pa.Field(nullable=True, description=description)


def _printed(column: str) -> Any:
    return text(f"{column} as printed, when it is not a number (else null).")


class Arm(pa.DataFrameModel):
    """A registered arm (armGroups) and the interventions it receives."""

    study_id: Series[pd.StringDtype] = text("Study (FK studies).", nullable=False)
    arm_label: Series[pd.StringDtype] = text("Arm label as registered.", nullable=False)
    arm_type: Series[pd.StringDtype] = text(
        "EXPERIMENTAL, ACTIVE_COMPARATOR, PLACEBO_COMPARATOR, NO_INTERVENTION, ..."
    )
    description: Series[pd.StringDtype] = text("Arm description as registered.")
    intervention_names: Series[object] = str_list(
        "Interventions the arm receives: the arm's own list (its 'Type: ' prefix dropped where "
        "the rest is an intervention's name, so it joins interventions.intervention_name) and "
        "every intervention whose arm_group_labels name the arm; sorted."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "arm_label"]


class ResultGroup(pa.DataFrameModel):
    """A results group (FG/BG/OG/EG id) and the registered arm it stands for, where known."""

    study_id: Series[pd.StringDtype] = text("Study (FK studies).", nullable=False)
    group_scope: Series[pd.StringDtype] = text(
        "Where the group is defined: participant_flow, baseline, adverse_events, or the "
        "outcome_id of one results measure (OG ids restart in every measure).",
        nullable=False,
    )
    group_id: Series[pd.StringDtype] = text(
        "Group id as posted (FG000, BG000, ...).", nullable=False
    )
    group_title: Series[pd.StringDtype] = text("Group title as posted.")
    group_description: Series[pd.StringDtype] = text("Group description as posted.")
    arm_label: Series[pd.StringDtype] = text(
        "Registered arm the group is tied to (FK arms with study_id); null when arm_tie is "
        "total or none."
    )
    arm_tie: Series[pd.StringDtype] = one_of(
        vocab.ARM_TIES,
        "How the group was tied to its arm: title (equal ignoring case and punctuation), "
        "similar_title (word overlap at least 0.6 and 0.1 ahead of the next arm), single_arm "
        "(the study's only arm), total (a Total column, no arm), none (the titles do not "
        "decide).",
    )
    tie_similarity: Series[pd.Float64Dtype] = pa.Field(
        ge=0,
        le=1,
        nullable=True,
        description="Word overlap (Dice coefficient of word sets) of group title and the "
        "closest arm label.",
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "group_scope", "group_id"]


class AdverseEvent(pa.DataFrameModel):
    """Participants affected by one adverse event term in one group (adverseEventsModule)."""

    study_id: Series[pd.StringDtype] = text("Study (FK studies).", nullable=False)
    event_group_id: Series[pd.StringDtype] = text(
        "Event group id (EG000, ...); result_groups with group_scope adverse_events ties it "
        "to an arm.",
        nullable=False,
    )
    event_type: Series[pd.StringDtype] = one_of(
        vocab.ADVERSE_EVENT_TYPES, "seriousEvents or otherEvents."
    )
    term: Series[pd.StringDtype] = text("Event term as posted.", nullable=False)
    organ_system: Series[pd.StringDtype] = text("Organ system class as posted.", nullable=False)
    group_title: Series[pd.StringDtype] = text("Event group title.", nullable=False)
    affected: Series[pd.Int64Dtype] = _count("Participants affected (numAffected).")
    affected_text: Series[pd.StringDtype] = _printed("numAffected")
    at_risk: Series[pd.Int64Dtype] = _count("Participants at risk (numAtRisk).")
    at_risk_text: Series[pd.StringDtype] = _printed("numAtRisk")
    events: Series[pd.Int64Dtype] = _count("Number of events, when posted (numEvents).")
    events_text: Series[pd.StringDtype] = _printed("numEvents")
    assessment: Series[pd.StringDtype] = text("SYSTEMATIC_ASSESSMENT or NON_SYSTEMATIC_ASSESSMENT.")
    source_vocabulary: Series[pd.StringDtype] = text(
        "Vocabulary of the term as posted, with its version (e.g. MedDRA 21.1)."
    )

    class Config:
        strict = True
        coerce = True
        unique = [
            "study_id",
            "event_group_id",
            "event_type",
            "term",
            "organ_system",
            "group_title",
        ]


class AdverseEventTotal(pa.DataFrameModel):
    """A group's totals: participants who died of any cause, or had any serious or other event."""

    study_id: Series[pd.StringDtype] = text("Study (FK studies).", nullable=False)
    event_group_id: Series[pd.StringDtype] = text("Event group id (EG000, ...).", nullable=False)
    total_type: Series[pd.StringDtype] = one_of(
        vocab.AE_TOTAL_TYPES,
        "all_cause_mortality (deathsNumAffected/AtRisk), serious or other (any event of the kind).",
    )
    group_title: Series[pd.StringDtype] = text("Event group title.")
    affected: Series[pd.Int64Dtype] = _count("Participants affected.")
    affected_text: Series[pd.StringDtype] = _printed("NumAffected")
    at_risk: Series[pd.Int64Dtype] = _count("Participants at risk.")
    at_risk_text: Series[pd.StringDtype] = _printed("NumAtRisk")
    time_frame: Series[pd.StringDtype] = text("Time frame of the adverse event table.")
    frequency_threshold: Series[pd.Float64Dtype] = pa.Field(
        ge=0,
        le=100,
        nullable=True,
        description="Per cent of a group an other event had to reach to be posted.",
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "event_group_id", "total_type"]


class BaselineMeasure(pa.DataFrameModel):
    """One baseline characteristic cell: measure x class/category x group."""

    study_id: Series[pd.StringDtype] = text("Study (FK studies).", nullable=False)
    title: Series[pd.StringDtype] = text("Baseline measure title.", nullable=False)
    group_title: Series[pd.StringDtype] = text("Baseline group title (or Total).", nullable=False)
    category: Series[pd.StringDtype] = text(
        "Class and category titles joined by ' / ' (empty string when the measure has none).",
        nullable=False,
    )
    param_type: Series[pd.StringDtype] = text(
        "COUNT_OF_PARTICIPANTS, MEAN, MEDIAN, ...", nullable=False
    )
    group_id: Series[pd.StringDtype] = text("Baseline group id (BG000, ...).", nullable=False)
    value: Series[pd.Float64Dtype] = _number("Value.")
    value_text: Series[pd.StringDtype] = _printed("value")
    dispersion_type: Series[pd.StringDtype] = text("STANDARD_DEVIATION, FULL_RANGE, ...")
    dispersion_value: Series[pd.Float64Dtype] = _number("Spread.")
    lower_limit: Series[pd.Float64Dtype] = _number("Lower limit (ranges, intervals).")
    upper_limit: Series[pd.Float64Dtype] = _number("Upper limit (ranges, intervals).")
    unit: Series[pd.StringDtype] = text("Unit of measure.")
    participants: Series[pd.Int64Dtype] = _count(
        "Participants analysed in the group (class, measure or module denominator)."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "title", "group_title", "category", "param_type"]


class ParticipantFlowRow(pa.DataFrameModel):
    """Participants reaching a milestone, or leaving for one reason, in one period and group."""

    study_id: Series[pd.StringDtype] = text("Study (FK studies).", nullable=False)
    period: Series[pd.StringDtype] = text(
        "Period title (empty string when none is posted).", nullable=False
    )
    milestone_or_reason: Series[pd.StringDtype] = text(
        "Milestone (STARTED, COMPLETED, NOT COMPLETED, ...) or drop-out reason as posted.",
        nullable=False,
    )
    kind: Series[pd.StringDtype] = one_of(vocab.FLOW_KINDS, "Milestone or drop/withdraw reason.")
    group_title: Series[pd.StringDtype] = text("Flow group title.", nullable=False)
    group_id: Series[pd.StringDtype] = text("Flow group id (FG000, ...).", nullable=False)
    participants: Series[pd.Int64Dtype] = _count("Participants (numSubjects).")
    participants_text: Series[pd.StringDtype] = _printed("numSubjects")

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "period", "milestone_or_reason", "kind", "group_title"]


class OutcomeAnalysis(pa.DataFrameModel):
    """A statistical analysis posted for one results measure: groups compared and the estimate."""

    analysis_id: Series[pd.StringDtype] = pa.Field(
        unique=True,
        str_matches=r"^.+:R\d+:A\d+$",
        description="<outcome_id>:A<n>, n counting the measure's analyses from 1.",
    )
    outcome_id: Series[pd.StringDtype] = text("Results measure (FK outcomes).", nullable=False)
    group_titles: Series[object] = str_list("Titles of the groups compared; sorted.")
    group_ids: Series[object] = str_list(
        "Ids of the groups compared (OG000, ...; result_groups with group_scope = outcome_id); "
        "sorted."
    )
    method: Series[pd.StringDtype] = text("Statistical method (ANCOVA, Log Rank, ...).")
    param_type: Series[pd.StringDtype] = text("Estimated parameter (Mean Difference, ...).")
    estimate: Series[pd.Float64Dtype] = _number("Estimate (paramValue).")
    estimate_text: Series[pd.StringDtype] = _printed("paramValue")
    dispersion_type: Series[pd.StringDtype] = text("Dispersion of the estimate, if posted.")
    dispersion_value: Series[pd.Float64Dtype] = _number("Dispersion value.")
    ci_low: Series[pd.Float64Dtype] = _number("Lower confidence limit.")
    ci_low_text: Series[pd.StringDtype] = _printed("ciLowerLimit")
    ci_high: Series[pd.Float64Dtype] = _number("Upper confidence limit.")
    ci_high_text: Series[pd.StringDtype] = _printed("ciUpperLimit")
    ci_pct: Series[pd.Float64Dtype] = pa.Field(
        gt=0, lt=100, nullable=True, description="Confidence level in per cent (95, 90, ...)."
    )
    ci_sides: Series[pd.StringDtype] = text("ONE_SIDED or TWO_SIDED.")
    p_value: Series[pd.Float64Dtype] = pa.Field(
        ge=0,
        le=1,
        nullable=True,
        description="p-value as a number; for a bound ('<0.001') the bound, with "
        "p_value_relation saying which side.",
    )
    p_value_relation: Series[pd.StringDtype] = one_of(
        vocab.P_VALUE_RELATIONS,
        "How p_value relates to the true p-value ('<' for '<0.001').",
        nullable=True,
    )
    p_value_text: Series[pd.StringDtype] = text("p-value exactly as printed.")
    non_inferiority: Series[pd.StringDtype] = text(
        "Hypothesis type: SUPERIORITY, NON_INFERIORITY, EQUIVALENCE, OTHER, ..."
    )

    class Config:
        strict = True
        coerce = True


class OutcomeChange(pa.DataFrameModel):
    """A registered outcome and the reported outcome it became, or the one side left over."""

    study_id: Series[pd.StringDtype] = text(
        "Study with posted results (FK studies).", nullable=False
    )
    registered_outcome_id: Series[pd.StringDtype] = nullable_key_part(
        "Protocol outcome (FK outcomes: <study_id>:P|S|O<n>); null for reported_not_registered."
    )
    reported_outcome_id: Series[pd.StringDtype] = nullable_key_part(
        "Results measure (FK outcomes: <study_id>:R<n>); null for registered_not_reported."
    )
    status: Series[pd.StringDtype] = one_of(
        vocab.OUTCOME_CHANGE_STATUSES,
        "matched, or what changed: primary_demoted, secondary_promoted, time_frame_changed; "
        "or registered_not_reported, reported_not_registered.",
    )
    similarity: Series[pd.Float64Dtype] = pa.Field(
        ge=0,
        le=1,
        nullable=True,
        description="Word overlap (Dice coefficient of word sets) of the two titles; null when "
        "one side is missing.",
    )
    registered_kind: Series[pd.StringDtype] = one_of(
        vocab.OUTCOME_KINDS, "Kind the outcome was registered as.", nullable=True
    )
    reported_kind: Series[pd.StringDtype] = one_of(
        vocab.OUTCOME_KINDS, "Kind the outcome was reported as.", nullable=True
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "registered_outcome_id", "reported_outcome_id"]

"""Studies and what hangs off them directly: identifiers, conditions, interventions."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import day, one_of, str_list, text

STUDY_ID_PATTERN = (
    r"^(NCT\d{8}|PMID:\d+|ISRCTN\d{8}|TCTR\d{11}|NL-OMON\d+|EUCTR\d{4}-\d{6}-\d{2}"
    r"|ACTRN\d{14}|[a-z][a-z0-9_.]*:[A-Za-z0-9._-]+)$"
)
"""Registry ids in their native form, `PMID:<n>` for literature-only studies, and
`<registry>:<local id>` where a registry's own prefixed form was not seen (e.g. `omon:52572`)."""


def _precision(column: str) -> Any:
    return one_of(
        vocab.DATE_PRECISIONS,
        f"Precision of {column}: a registry may give only a month (`2023-08` is stored as "
        "2023-08-01 with precision month) or a year.",
        nullable=True,
    )


class Study(pa.DataFrameModel):
    """One row per study: a registration, or a primary study known only from the literature."""

    study_id: Series[pd.StringDtype] = pa.Field(
        unique=True,
        str_matches=STUDY_ID_PATTERN,
        description="Registry id (NCT06072170), or PMID:<n> for a literature-only study.",
    )
    evidence_source: Series[pd.StringDtype] = one_of(
        vocab.EVIDENCE_SOURCES, "Where the study is known from."
    )
    registry: Series[pd.StringDtype] = text(
        "Registry holding the record (clinicaltrials.gov, onderzoekmetmensen.nl, ...); null for "
        "literature-only studies."
    )
    title: Series[pd.StringDtype] = text("Brief title.")
    official_title: Series[pd.StringDtype] = text("Official (scientific) title.")
    acronym: Series[pd.StringDtype] = text("Registered acronym.")
    study_type: Series[pd.StringDtype] = text(
        "INTERVENTIONAL, OBSERVATIONAL or EXPANDED_ACCESS as registered."
    )
    phases: Series[object] = str_list("Registered phases, e.g. [PHASE1, PHASE2] or [NA].")
    overall_status: Series[pd.StringDtype] = text("Recruitment status as registered.")
    last_known_status: Series[pd.StringDtype] = text("Last known status when status is UNKNOWN.")
    enrollment: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=True, description="Participants.")
    enrollment_type: Series[pd.StringDtype] = text("ACTUAL or ESTIMATED.")
    start_date: Series[pd.Timestamp] = day("Study start (first day of the period given).")
    start_date_precision: Series[pd.StringDtype] = _precision("start_date")
    primary_completion_date: Series[pd.Timestamp] = day("Primary completion date.")
    primary_completion_date_precision: Series[pd.StringDtype] = _precision(
        "primary_completion_date"
    )
    completion_date: Series[pd.Timestamp] = day("Study completion date.")
    completion_date_precision: Series[pd.StringDtype] = _precision("completion_date")
    first_posted: Series[pd.Timestamp] = day("First posted on the registry.")
    last_update_posted: Series[pd.Timestamp] = day("Last update posted on the registry.")
    results_first_posted: Series[pd.Timestamp] = day("Results first posted on the registry.")
    lead_sponsor: Series[pd.StringDtype] = text("Lead sponsor name.")
    sponsor_class: Series[pd.StringDtype] = text("Lead sponsor class (INDUSTRY, NIH, OTHER, ...).")
    collaborators: Series[object] = str_list("Collaborator names.")
    allocation: Series[pd.StringDtype] = text("RANDOMIZED, NON_RANDOMIZED or NA.")
    intervention_model: Series[pd.StringDtype] = text("PARALLEL, CROSSOVER, SEQUENTIAL, ...")
    masking: Series[pd.StringDtype] = text("NONE, SINGLE, DOUBLE, TRIPLE or QUADRUPLE.")
    who_masked: Series[object] = str_list("Who was masked (PARTICIPANT, INVESTIGATOR, ...).")
    primary_purpose: Series[pd.StringDtype] = text("TREATMENT, BASIC_SCIENCE, ...")
    observational_model: Series[pd.StringDtype] = text("COHORT, CASE_CONTROL, ... (observational).")
    time_perspective: Series[pd.StringDtype] = text("PROSPECTIVE, RETROSPECTIVE, ...")
    sex: Series[pd.StringDtype] = text("ALL, FEMALE or MALE.")
    minimum_age: Series[pd.StringDtype] = text("Minimum age as registered (e.g. '18 Years').")
    maximum_age: Series[pd.StringDtype] = text("Maximum age as registered.")
    healthy_volunteers: Series[pd.BooleanDtype] = pa.Field(
        nullable=True, description="Accepts healthy volunteers."
    )
    countries: Series[object] = str_list("Countries of the study's sites, sorted.")
    has_results: Series[pd.BooleanDtype] = pa.Field(
        nullable=True, description="Results posted on the registry."
    )
    population: Series[pd.StringDtype] = one_of(vocab.POPULATIONS, "Who or what was studied.")
    design: Series[pd.StringDtype] = one_of(vocab.DESIGNS, "Study design class.")
    flags: Series[object] = str_list(
        "Caveats on the record, e.g. unconfirmed_match:<NCT id> when a listing may be that "
        "registration but no page confirms it (the records stay apart)."
    )
    source_url: Series[pd.StringDtype] = text("Page the record was read from (non-API registries).")
    source_publication_id: Series[pd.StringDtype] = text(
        "The paper a literature-only study (PMID:<n>) is known from (FK publications); null for "
        "registered studies, whose papers are in study_publications."
    )
    planned_duration_days: Series[pd.Float64Dtype] = pa.Field(
        ge=0,
        nullable=True,
        description="Longest treatment course an intervention names ('daily x4 days', 'for 12 "
        "weeks'), in days; null when none is named.",
    )
    max_followup_days: Series[pd.Float64Dtype] = pa.Field(
        ge=0,
        nullable=True,
        description="Latest time point of the study's outcome time frames ('Day 7', 'baseline to "
        "week 24'), in days (a month is 365.25/12 days; baseline only is 0); null when no time "
        "frame names one.",
    )
    long_term: Series[pd.BooleanDtype] = pa.Field(
        nullable=True,
        description="max_followup_days at or above the long-term threshold of "
        "data/reference/dose_duration_terms.csv (6 months, ICH E1A); null when it is unknown.",
    )

    class Config:
        strict = True
        coerce = True


class StudyIdentifier(pa.DataFrameModel):
    """Every identifier a study is known by: its registry id, aliases, sponsor and secondary ids."""

    study_id: Series[pd.StringDtype] = text("Study.", nullable=False)
    id_type: Series[pd.StringDtype] = one_of(vocab.ID_TYPES, "Kind of identifier.")
    id_value: Series[pd.StringDtype] = text("The identifier as registered.", nullable=False)
    id_domain: Series[pd.StringDtype] = text("Issuer or type given by the registry, if any.")
    is_alias: Series[pd.BooleanDtype] = pa.Field(
        nullable=False,
        description="An id_type nct the registry lists among the study's nctIdAliases: an "
        "older NCT id merged into this study (ClinicalTrials.gov no longer shows it).",
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "id_type", "id_value"]


class Condition(pa.DataFrameModel):
    """A condition or focus of a study, with its category."""

    study_id: Series[pd.StringDtype] = text("Study.", nullable=False)
    condition: Series[pd.StringDtype] = text(
        "Condition as registered; for a literature-only study, the addiction its paper names "
        "(the matched term).",
        nullable=False,
    )
    condition_category: Series[pd.StringDtype] = one_of(
        vocab.CONDITION_CATEGORIES,
        "Category from data/reference/condition_categories.csv (literature-only studies: "
        "data/reference/literature_addiction_types.csv).",
    )
    mesh_term: Series[pd.StringDtype] = text(
        "MeSH term the registry derived for this condition, when one matches it; for a "
        "literature-only study, the MeSH heading that matched."
    )
    mesh_id: Series[pd.StringDtype] = text("MeSH descriptor id of mesh_term.")
    matched_in: Series[pd.StringDtype] = one_of(
        vocab.LITERATURE_FIELDS,
        "Literature-only studies: the field of the paper's record the addiction type was read "
        "from (null for registered conditions).",
        nullable=True,
    )
    matched_term: Series[pd.StringDtype] = text(
        "Literature-only studies: the term of data/reference/literature_addiction_types.csv that "
        "matched (null for registered conditions)."
    )

    @pa.dataframe_check(
        name="literature_conditions_say_where_they_were_read",
        statistics={"reads": ["matched_in", "matched_term"]},
    )
    def _literature_rows_say_where(cls, frame: pd.DataFrame) -> pd.Series:
        """A condition read from a paper names its field and its term, or neither."""
        return frame["matched_in"].notna() == frame["matched_term"].notna()

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "condition"]


class Intervention(pa.DataFrameModel):
    """An intervention (or exposure) of a study, mapped to a compound where one is named."""

    study_id: Series[pd.StringDtype] = text("Study.", nullable=False)
    intervention_name: Series[pd.StringDtype] = text("Name as registered.", nullable=False)
    intervention_type: Series[pd.StringDtype] = text("DRUG, DIETARY_SUPPLEMENT, BEHAVIORAL, ...")
    compound_id: Series[pd.StringDtype] = text("Compound the intervention names (FK compounds).")
    product_form: Series[pd.StringDtype] = one_of(
        vocab.PRODUCT_FORMS, "Form of the product given.", nullable=True
    )
    arm_group_labels: Series[object] = str_list("Arms that receive it.")
    other_names: Series[object] = str_list("Other names registered for it.")
    dose_amount: Series[pd.Float64Dtype] = pa.Field(
        ge=0,
        nullable=True,
        description="First dose amount the name states (2 in 'kratom tea 2 g').",
    )
    dose_unit: Series[pd.StringDtype] = text(
        "Unit of dose_amount (mg, g, mcg, mcg/h, mg/kg, mL, capsule, tablet, cup)."
    )
    dose_frequency: Series[pd.StringDtype] = text(
        "How often (once, daily, twice_daily, every_<n>_hours, weekly, as_needed, ...)."
    )
    dose_text: Series[pd.StringDtype] = text(
        "The words the dose was read from ('0.1 mg tablet q4h', 'up to 10 capsules per day')."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "intervention_name"]

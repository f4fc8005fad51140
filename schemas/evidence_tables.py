"""Curated evidence: what products contain, how kratom changes other drugs, what harms are reported.

Each row is one number read from one page of `../shared/facts` (copied to data/reference/ with an
id column), with the page (`source_url`) and the words it was read from (`quote`). Printed values
and units stay beside the typed and normalised ones; `source_kind` and `caveats` say how far the
page can be trusted. Built by `pipelines.normalize.evidence_tables`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import day, one_of, str_list, text

PERCENT_UNIT = "%"
"""The normalised unit (data/reference/evidence_units.csv) whose values must lie in 0-100."""


def _at_most(left: pd.Series, right: pd.Series) -> pd.Series:
    """Row-wise left <= right, passing where either side is null (nothing to compare)."""
    unknown = left.isna() | right.isna()
    return unknown | (left.where(~unknown) <= right.where(~unknown)).fillna(False).astype(bool)


def _number(description: str, **checks: Any) -> Any:
    return pa.Field(nullable=True, description=description, **checks)


def _first_author() -> Any:
    return text("First author as the facts give it; null when not shown.")


def _year() -> Any:
    return pa.Field(
        ge=1900, le=2100, nullable=True, description="Publication year as the facts give it."
    )


def _source_kind() -> Any:
    return one_of(
        vocab.SOURCE_KINDS,
        "How strong the page the value was read on is: peer_reviewed (the paper's own words, on"
        " the publisher's page, PubMed, PMC or a verbatim abstract mirror), regulator (an"
        " agency's own report or notice), secondary_summary (a third party's summary, review"
        " table or database record), news (a news report or press release). A row read only on"
        " a summary is a secondary_summary even when the paper is peer reviewed"
        " (data/reference/evidence_sources.csv).",
    )


def _caveats() -> Any:
    return str_list(
        "Warnings on the row from ../shared/facts/README.md and the curator"
        " (data/reference/evidence_sources.csv); empty when none."
    )


def _source_url() -> Any:
    return text("Page the value was read on.", nullable=False)


def _quote() -> Any:
    return text(
        "Words and numbers as printed on source_url (under 200 characters; [...] marks an"
        " elision): the provenance of the row.",
        nullable=False,
    )


def _publication(when_null: str) -> Any:
    return text(
        "The paper (PMID:<n>, else DOI:<doi>; a stub publication when no literature source"
        f" returned it); null {when_null}."
    )


class ProductComposition(pa.DataFrameModel):
    """Measured alkaloid content of a kratom material or product: one analyte of one sample set."""

    composition_id: Series[pd.StringDtype] = pa.Field(
        unique=True,
        str_matches=r"^pc-\d{3,}$",
        description="Row id of data/reference/product_composition.csv (pc-NNN).",
    )
    compound_id: Series[pd.StringDtype] = text(
        "The analyte, matched to compounds with the registry-text vocabulary (the name before"
        " any parenthesis).",
        nullable=False,
    )
    analyte: Series[pd.StringDtype] = text("The analyte as printed.", nullable=False)
    publication_id: Series[pd.StringDtype] = _publication(
        "when the facts name neither PMID nor DOI"
    )
    material: Series[pd.StringDtype] = text("Material or product as printed.", nullable=False)
    material_class: Series[pd.StringDtype] = one_of(
        vocab.MATERIAL_CLASSES,
        "Material class (data/reference/evidence_vocabulary.csv): 7oh_product is a product sold"
        " for 7-hydroxymitragynine, commercial_product a retail product of unstated or several"
        " forms, mixed several material kinds pooled in one range.",
    )
    product_label: Series[pd.StringDtype] = text("Product label or study code, when given.")
    sample_count: Series[pd.Int64Dtype] = pa.Field(
        ge=1,
        nullable=True,
        description="Samples measured (the leading number of the printed count).",
    )
    sample_count_printed: Series[pd.StringDtype] = text("Sample count as printed.")
    relation: Series[pd.StringDtype] = one_of(
        vocab.RELATIONS,
        "How `value` bounds the content: '<' for a printed '<0.124' (below that), '>' above.",
        nullable=True,
    )
    value: Series[pd.Float64Dtype] = _number("Point value in the printed unit.", ge=0)
    value_low: Series[pd.Float64Dtype] = _number("Low end of a printed range.", ge=0)
    value_high: Series[pd.Float64Dtype] = _number(
        "High end of a printed range (alone: 'up to').", ge=0
    )
    value_printed: Series[pd.StringDtype] = text(
        "The value cell as printed (a number, '<0.124', or a detection-only result)."
    )
    detected: Series[pd.BooleanDtype] = pa.Field(
        nullable=True,
        description="For a detection-only result: true (detected) or false (not detected); null"
        " when a number was measured.",
    )
    unit: Series[pd.StringDtype] = text("Unit as printed (with any ± note).")
    unit_normalised: Series[pd.StringDtype] = text(
        "Unit without its notes (data/reference/evidence_units.csv): %, mg/g, mg/mL, ..."
    )
    value_mg_per_g: Series[pd.Float64Dtype] = _number(
        "value in mg per g of material, where the unit is a mass fraction (%, mg/g, µg/mg).",
        ge=0,
        le=1000,
    )
    value_low_mg_per_g: Series[pd.Float64Dtype] = _number(
        "value_low in mg per g of material, where the unit allows.", ge=0, le=1000
    )
    value_high_mg_per_g: Series[pd.Float64Dtype] = _number(
        "value_high in mg per g of material, where the unit allows.", ge=0, le=1000
    )
    method: Series[pd.StringDtype] = text("Analytical method as printed.")
    market: Series[pd.StringDtype] = text("Country or market of the samples.")
    study_first_author: Series[pd.StringDtype] = _first_author()
    study_year: Series[pd.Int64Dtype] = _year()
    source_kind: Series[pd.StringDtype] = _source_kind()
    caveats: Series[object] = _caveats()
    source_url: Series[pd.StringDtype] = _source_url()
    quote: Series[pd.StringDtype] = _quote()

    @pa.dataframe_check(name="percent_within_0_100")
    def _percent(cls, frame: pd.DataFrame) -> pd.Series:
        """A percentage lies between 0 and 100."""
        hundred = pd.Series(100.0, index=frame.index)
        other_unit = frame["unit_normalised"].ne(PERCENT_UNIT).astype("boolean").fillna(True)
        inside = pd.Series(True, index=frame.index)
        for column in ("value", "value_low", "value_high"):
            inside &= _at_most(frame[column], hundred)
        return other_unit.astype(bool) | inside

    @pa.dataframe_check(name="low_not_above_high")
    def _range(cls, frame: pd.DataFrame) -> pd.Series:
        """A printed range runs from low to high."""
        return _at_most(frame["value_low"], frame["value_high"])

    @pa.dataframe_check(name="a_value_or_a_detection")
    def _something(cls, frame: pd.DataFrame) -> pd.Series:
        """A row carries a number or a detection result."""
        numbers = frame[["value", "value_low", "value_high"]].notna().any(axis=1)
        return numbers | frame["detected"].notna()

    class Config:
        strict = True
        coerce = True


class InteractionEffect(pa.DataFrameModel):
    """A pharmacokinetic interaction: a perpetrator's effect on a victim drug or an enzyme."""

    interaction_id: Series[pd.StringDtype] = pa.Field(
        unique=True,
        str_matches=r"^ie-\d{3,}$",
        description="Row id of data/reference/interaction_effects.csv (ie-NNN).",
    )
    setting: Series[pd.StringDtype] = one_of(
        vocab.INTERACTION_SETTINGS,
        "Where it was measured; a static-model prediction from in-vitro constants is in_vitro"
        " with parameter predicted_auc_ratio.",
    )
    setting_printed: Series[pd.StringDtype] = text("Setting as printed.", nullable=False)
    perpetrator: Series[pd.StringDtype] = text("Perpetrator as printed.", nullable=False)
    perpetrator_compound_id: Series[pd.StringDtype] = text(
        "The perpetrator, matched to compounds (the name before any parenthesis).", nullable=False
    )
    perpetrator_dose: Series[pd.StringDtype] = text("Perpetrator dose as printed.")
    victim: Series[pd.StringDtype] = text("Victim drug, probe reaction or substrate as printed.")
    victim_compound_id: Series[pd.StringDtype] = text(
        "The victim drug or probe substrate, matched to compounds; null for an enzyme probe"
        " that names no compound ('luciferin probe substrates')."
    )
    enzyme: Series[pd.StringDtype] = text("Enzyme or transporter as printed (CYP3A, P-gp, ...).")
    parameter: Series[pd.StringDtype] = one_of(
        vocab.INTERACTION_PARAMETERS,
        "What the value is (data/reference/evidence_vocabulary.csv): a ratio of the victim's"
        " exposure with and without the perpetrator (auc_ratio, cmax_ratio, half_life_ratio,"
        " predicted_auc_ratio) or an inhibition constant (ic50, ki, ki_inactivation = KI of"
        " time-dependent inhibition, kinact).",
    )
    parameter_printed: Series[pd.StringDtype] = text("Parameter as printed.", nullable=False)
    relation: Series[pd.StringDtype] = one_of(
        vocab.RELATIONS, "How `value` bounds the quantity ('>45' gives '>').", nullable=True
    )
    value: Series[pd.Float64Dtype] = pa.Field(
        gt=0, nullable=False, description="Value in the printed unit."
    )
    ci_low: Series[pd.Float64Dtype] = _number("Lower confidence limit, where printed.", gt=0)
    ci_high: Series[pd.Float64Dtype] = _number("Upper confidence limit, where printed.", gt=0)
    ci_level: Series[pd.Float64Dtype] = _number(
        "Confidence level of the interval in percent (90 for a 90% CI), read from the unit.",
        gt=0,
        lt=100,
    )
    unit: Series[pd.StringDtype] = text("Unit as printed (with any ± note or assay system).")
    unit_normalised: Series[pd.StringDtype] = text(
        "Unit without its notes (data/reference/evidence_units.csv): fold, μM, 1/min, ..."
    )
    value_um: Series[pd.Float64Dtype] = _number(
        "value in µM, where the unit is molar (μM, mM).", gt=0
    )
    n_participants: Series[pd.Int64Dtype] = pa.Field(
        ge=1, nullable=True, description="Participants (clinical rows)."
    )
    study_id: Series[pd.StringDtype] = text(
        "The registered trial the facts name (FK studies); a row whose trial is not published"
        " is quarantined."
    )
    publication_id: Series[pd.StringDtype] = _publication(
        "when the facts name neither PMID nor DOI"
    )
    study_first_author: Series[pd.StringDtype] = _first_author()
    study_year: Series[pd.Int64Dtype] = _year()
    source_kind: Series[pd.StringDtype] = _source_kind()
    caveats: Series[object] = _caveats()
    source_url: Series[pd.StringDtype] = _source_url()
    quote: Series[pd.StringDtype] = _quote()

    @pa.dataframe_check(name="ci_low_le_value_le_ci_high")
    def _interval(cls, frame: pd.DataFrame) -> pd.Series:
        """A confidence interval contains its estimate."""
        low = _at_most(frame["ci_low"], frame["value"])
        return low & _at_most(frame["value"], frame["ci_high"])

    class Config:
        strict = True
        coerce = True


class SafetySignal(pa.DataFrameModel):
    """A published count of harms: exposures, deaths, liver injuries, neonatal withdrawal, AEs."""

    signal_id: Series[pd.StringDtype] = pa.Field(
        unique=True,
        str_matches=r"^ss-\d{3,}$",
        description="Row id of data/reference/safety_signals.csv (ss-NNN).",
    )
    data_source: Series[pd.StringDtype] = text(
        "Surveillance system, registry, review or trial the count comes from.", nullable=False
    )
    period_start: Series[pd.Timestamp] = day(
        "First day of the period counted (from the printed period); null when not dated."
    )
    period_end: Series[pd.Timestamp] = day("Last day of the period counted; null when not dated.")
    period: Series[pd.StringDtype] = text("Period as printed.")
    outcome: Series[pd.StringDtype] = text("What was counted, as printed.", nullable=False)
    outcome_class: Series[pd.StringDtype] = one_of(
        vocab.SAFETY_OUTCOMES,
        "Kind of harm counted (data/reference/evidence_vocabulary.csv).",
    )
    count: Series[pd.Int64Dtype] = pa.Field(ge=0, nullable=False, description="The count.")
    denominator: Series[pd.Int64Dtype] = pa.Field(
        ge=1, nullable=True, description="What the count is out of (leading number), where printed."
    )
    denominator_printed: Series[pd.StringDtype] = text("Denominator as printed.")
    population: Series[pd.StringDtype] = text("Population as printed.")
    co_exposures_note: Series[pd.StringDtype] = text(
        "Single- versus poly-substance split, where printed."
    )
    compound_id: Series[pd.StringDtype] = text(
        "The compound the count is about: the first kratom product or alkaloid the outcome or"
        " data source names, else kratom (the facts file holds kratom safety figures).",
        nullable=False,
    )
    publication_id: Series[pd.StringDtype] = _publication(
        "for agency statements, news reports and papers the facts name without an id"
    )
    study_first_author: Series[pd.StringDtype] = _first_author()
    study_year: Series[pd.Int64Dtype] = _year()
    source_kind: Series[pd.StringDtype] = _source_kind()
    caveats: Series[object] = _caveats()
    source_url: Series[pd.StringDtype] = _source_url()
    quote: Series[pd.StringDtype] = _quote()

    @pa.dataframe_check(name="count_not_above_denominator")
    def _share(cls, frame: pd.DataFrame) -> pd.Series:
        """A count is a part of its denominator."""
        return _at_most(frame["count"], frame["denominator"])

    @pa.dataframe_check(name="period_start_not_after_end")
    def _period(cls, frame: pd.DataFrame) -> pd.Series:
        """A period starts before it ends."""
        return _at_most(frame["period_start"], frame["period_end"])

    class Config:
        strict = True
        coerce = True

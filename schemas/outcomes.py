"""Outcome measures (protocol and results) and their reported values."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import one_of, text


class Outcome(pa.DataFrameModel):
    """An outcome measure: registered in the protocol, reported in results, or from literature."""

    outcome_id: Series[pd.StringDtype] = pa.Field(
        unique=True,
        str_matches=r"^.+:(P|S|O|R|AE|L)\d+$",
        description="<study_id>:<P|S|O|R|AE|L><n>: protocol primary/secondary/other, results "
        "measure, adverse-event table, a domain a literature-only study's paper names; n counts "
        "from 1 in registry order (literature: in domain order).",
    )
    study_id: Series[pd.StringDtype] = text("Study.", nullable=False)
    outcome_kind: Series[pd.StringDtype] = one_of(vocab.OUTCOME_KINDS, "Role of the outcome.")
    title: Series[pd.StringDtype] = text("Outcome measure title.", nullable=False)
    time_frame: Series[pd.StringDtype] = text("Time frame as registered.")
    domain: Series[pd.StringDtype] = one_of(vocab.OUTCOME_DOMAINS, "What the outcome measures.")
    instrument: Series[pd.StringDtype] = text("Instrument (COWS, SOWS, ...), null when none named.")
    param_type: Series[pd.StringDtype] = text("Results: MEAN, MEDIAN, GEOMETRIC_MEAN, COUNT...")
    unit: Series[pd.StringDtype] = text("Results: unit of measure.")
    source: Series[pd.StringDtype] = one_of(vocab.OUTCOME_SOURCES, "Where the outcome was read.")
    matched_in: Series[pd.StringDtype] = one_of(
        vocab.LITERATURE_FIELDS,
        "Literature rows: the field of the paper's record the domain was read from (null for "
        "registry rows).",
        nullable=True,
    )
    matched_term: Series[pd.StringDtype] = text(
        "Literature rows: the term of data/reference/literature_domains.csv (or an instrument "
        "of outcome_instruments.csv) that matched (null for registry rows)."
    )

    @pa.dataframe_check(
        name="literature_rows_say_where_they_were_read",
        statistics={"reads": ["source", "matched_in", "matched_term"]},
    )
    def _literature_rows_say_where(cls, frame: pd.DataFrame) -> pd.Series:
        """A literature row names its field and term; a registry row names neither."""
        literature = frame["source"] == "literature"
        return (literature == frame["matched_in"].notna()) & (
            literature == frame["matched_term"].notna()
        )

    class Config:
        strict = True
        coerce = True


class OutcomeResult(pa.DataFrameModel):
    """One reported value: an outcome x group x category cell of a results table."""

    outcome_id: Series[pd.StringDtype] = text("Outcome.", nullable=False)
    group_title: Series[pd.StringDtype] = text("Arm or group the value is for.", nullable=False)
    param_type: Series[pd.StringDtype] = text(
        "MEAN, MEDIAN, COUNT_OF_PARTICIPANTS, ...", nullable=False
    )
    category: Series[pd.StringDtype] = text(
        "Class and category titles joined by ' / ' (empty string when the table has none).",
        nullable=False,
    )
    value: Series[pd.Float64Dtype] = pa.Field(nullable=True, description="Numeric value.")
    value_text: Series[pd.StringDtype] = text("Value as reported (keeps 'NA' and the like).")
    dispersion_type: Series[pd.StringDtype] = text("STANDARD_DEVIATION, 95% CI, ...")
    dispersion_value: Series[pd.Float64Dtype] = pa.Field(nullable=True, description="Spread.")
    lower_limit: Series[pd.Float64Dtype] = pa.Field(nullable=True, description="Lower limit.")
    upper_limit: Series[pd.Float64Dtype] = pa.Field(nullable=True, description="Upper limit.")
    unit: Series[pd.StringDtype] = text("Unit of measure.")
    participants: Series[pd.Int64Dtype] = pa.Field(
        ge=0, nullable=True, description="Participants analysed in the group."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["outcome_id", "group_title", "param_type", "category"]

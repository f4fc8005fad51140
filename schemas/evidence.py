"""The evidence map and the quarantine: derived and bookkeeping tables."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import one_of, str_list, text


class EvidenceMapCell(pa.DataFrameModel):
    """Compound x outcome domain x design: how many studies, how many participants, which ones."""

    compound_id: Series[pd.StringDtype] = text("Compound.", nullable=False)
    domain: Series[pd.StringDtype] = one_of(vocab.OUTCOME_DOMAINS, "Outcome domain.")
    design: Series[pd.StringDtype] = one_of(vocab.DESIGNS, "Study design.")
    studies: Series[pd.Int64Dtype] = pa.Field(ge=1, description="Studies in the cell.")
    participants: Series[pd.Int64Dtype] = pa.Field(
        ge=0, nullable=True, description="Sum of enrollment over the cell's studies."
    )
    study_ids: Series[object] = str_list("The studies, sorted.")

    class Config:
        strict = True
        coerce = True
        unique = ["compound_id", "domain", "design"]


class QuarantineRow(pa.DataFrameModel):
    """A record that did not make it into its table, and why. Nothing is dropped silently."""

    table_name: Series[pd.StringDtype] = text("Table the record was meant for.", nullable=False)
    source: Series[pd.StringDtype] = text("Source (snapshot folder) the record came from.")
    record_key: Series[pd.StringDtype] = text("Primary key of the record, when it has one.")
    reason: Series[pd.StringDtype] = text("Why it was rejected.", nullable=False)
    source_file: Series[pd.StringDtype] = text("Snapshot file it was read from.")
    raw: Series[pd.StringDtype] = text("JSON text of the rejected record.", nullable=False)

    class Config:
        strict = True
        coerce = True

"""The evidence map and the quarantine: derived and bookkeeping tables."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import one_of, str_list, text

STUDY_COMPOUND_LINKS = (
    "intervention",
    "title",
    "official_title",
    "condition",
    "publication",
    "curated",
)
"""How a study names a compound in the evidence map, strongest first."""


class EvidenceMapCell(pa.DataFrameModel):
    """Compound x outcome domain x design: how many studies, how many participants, which ones.

    A study is in a cell when it names the compound (see study_links) and registers an outcome
    of the domain. A study with no outcome row at all is counted under domain "other" and listed
    in unmeasured_study_ids, apart from outcomes the vocabulary could not place.
    """

    compound_id: Series[pd.StringDtype] = text("Compound.", nullable=False)
    domain: Series[pd.StringDtype] = one_of(
        vocab.OUTCOME_DOMAINS,
        "Outcome domain; 'other' also holds the studies of unmeasured_study_ids, which register"
        " no outcome at all.",
    )
    design: Series[pd.StringDtype] = one_of(vocab.DESIGNS, "Study design.")
    studies: Series[pd.Int64Dtype] = pa.Field(ge=1, description="Studies in the cell.")
    participants: Series[pd.Int64Dtype] = pa.Field(
        ge=0, nullable=True, description="Sum of enrollment over the cell's studies."
    )
    long_term_studies: Series[pd.Int64Dtype] = pa.Field(
        ge=0,
        description="Studies of the cell whose follow-up is long term (studies.long_term).",
    )
    study_ids: Series[object] = str_list("The studies, sorted.")
    study_links: Series[object] = str_list(
        "How each study of the cell names the compound, as '<study_id>=<how>', one per study:"
        " intervention (an intervention is matched to it), title / official_title / condition"
        " (its registry text names a kratom product or alkaloid and no intervention does),"
        " publication (a literature-only study's paper names it), curated (no text names it;"
        " data/reference/study_compounds.csv links it, quoting its source)."
    )
    unmeasured_study_ids: Series[object] = str_list(
        "Studies of the cell that register no outcome at all (counted under domain 'other' so"
        " they stay on the map); empty in every other domain."
    )

    @pa.check("study_links", element_wise=True, name="known_link_kinds")
    def _known_link_kinds(cls, value: list[str]) -> bool:
        """Every link is '<study_id>=<how>' with a kind of STUDY_COMPOUND_LINKS."""
        return all(v.rpartition("=")[2] in STUDY_COMPOUND_LINKS for v in value)

    @pa.dataframe_check(name="one_link_per_study")
    def _one_link_per_study(cls, frame: pd.DataFrame) -> pd.Series:
        """study_links names exactly the studies of study_ids, and studies counts them."""
        return pd.Series(
            [
                sorted(v.rpartition("=")[0] for v in links) == list(ids) and len(ids) == n
                for ids, links, n in zip(
                    frame["study_ids"], frame["study_links"], frame["studies"], strict=True
                )
            ],
            index=frame.index,
        )

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

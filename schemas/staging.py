"""What staging tables hold beyond a published table's columns, described for the catalog.

A staging table `staging.<source>__<table>` has the columns of the published table of that name
(its model in schemas/), the staging-only columns a source parses for a builder (models below),
and three lineage columns. Tables no published table shares a name with (PubChem's two) have a
model of their own here. pipelines/assets/staging.py describes each staged column from these.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas.fields import str_list, text
from schemas.registry import QUARANTINE, TABLES_BY_NAME


class StagedPublication(pa.DataFrameModel):
    """Staging-only columns of `publications` rows (PubMed, Europe PMC, Crossref, OpenAlex)."""

    abstract: Series[pd.StringDtype] = text("Abstract, read by matching, never published.")
    retracts: Series[object] = str_list("Ids of the works this record says it retracts.")
    retracted_by: Series[object] = str_list("Ids of the notices that retract this work.")
    corrects: Series[object] = str_list("Ids of the works this erratum corrects.")
    corrected_by: Series[object] = str_list("Ids of the errata that correct this work.")


class StagedIntervention(pa.DataFrameModel):
    """Staging-only columns of `interventions` rows (ClinicalTrials.gov)."""

    description: Series[pd.StringDtype] = text(
        "Registered intervention description: doses and courses are read from it."
    )


class CompoundProperty(pa.DataFrameModel):
    """One PubChem compound's computed properties (fills blanks of data/reference/compounds.csv)."""

    pubchem_cid: Series[pd.Int64Dtype] = pa.Field(nullable=False, description="PubChem CID.")
    molecular_formula: Series[pd.StringDtype] = text("Molecular formula.")
    molecular_weight: Series[pd.Float64Dtype] = pa.Field(
        nullable=True, description="Molecular weight, g/mol."
    )
    smiles: Series[pd.StringDtype] = text("Isomeric SMILES, else absolute SMILES.")
    inchikey: Series[pd.StringDtype] = text("Standard InChIKey.")
    iupac_name: Series[pd.StringDtype] = text("Preferred IUPAC name.")


class CompoundSynonym(pa.DataFrameModel):
    """One synonym PubChem lists for a compound, in PubChem's order."""

    pubchem_cid: Series[pd.Int64Dtype] = pa.Field(nullable=False, description="PubChem CID.")
    synonym: Series[pd.StringDtype] = text("A name PubChem lists.", nullable=False)
    rank: Series[pd.Int64Dtype] = pa.Field(ge=1, description="Its place in PubChem's list.")


STAGING_ONLY: dict[str, type[pa.DataFrameModel]] = {
    "publications": StagedPublication,
    "interventions": StagedIntervention,
    "compound_properties": CompoundProperty,
    "compound_synonyms": CompoundSynonym,
}
"""Staged table -> the model of the columns it has beyond its published table's (if any)."""

LINEAGE: dict[str, str] = {
    "_source": "Source (snapshot folder) the row was parsed from.",
    "_source_file": "Snapshot file the record was read from, relative to the snapshot.",
    "_seq": "Order of the row among the table's rows of this source, from 0.",
}
"""The lineage columns every staging table ends with (pipelines/warehouse.py)."""


def column_descriptions(table: str) -> dict[str, str]:
    """Every column a staging table `<source>__<table>` can have -> its description."""
    spec = QUARANTINE if table == QUARANTINE.name else TABLES_BY_NAME.get(table)
    models = [spec.model] if spec is not None else []
    if table in STAGING_ONLY:
        models.append(STAGING_ONLY[table])
    found: dict[str, str] = {}
    for model in models:
        for name, column in model.to_schema().columns.items():
            found.setdefault(str(name), column.description or "")
    return {**found, **LINEAGE}

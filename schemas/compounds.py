"""Compounds (kratom alkaloids, products, comparators) and their measured target activities."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import one_of, str_list, text

TARGET_ID_SOURCES = ("chembl_activity", "curated_exact", "curated_stand_in")
"""How a compound_targets row got its target_chembl_id (see CompoundTarget.target_id_source)."""


class Compound(pa.DataFrameModel):
    """A compound or product, with the identifiers PubChem and ChEMBL know it by."""

    compound_id: Series[pd.StringDtype] = pa.Field(
        unique=True, str_matches=r"^[a-z0-9][a-z0-9_-]*$", description="Slug, e.g. mitragynine."
    )
    name: Series[pd.StringDtype] = text("Preferred name.", nullable=False)
    role: Series[pd.StringDtype] = one_of(vocab.COMPOUND_ROLES, "Role in this dataset.")
    alkaloid_class: Series[pd.StringDtype] = text("Scaffold class for alkaloids (indole, ...).")
    pubchem_cid: Series[pd.Int64Dtype] = pa.Field(ge=1, nullable=True, description="PubChem CID.")
    inchikey: Series[pd.StringDtype] = text(
        "Standard InChIKey.", str_matches=r"^[A-Z]{14}-[A-Z]{10}-[A-Z]$"
    )
    molecular_formula: Series[pd.StringDtype] = text("Molecular formula.")
    molecular_weight: Series[pd.Float64Dtype] = pa.Field(
        gt=0, nullable=True, description="Molecular weight, g/mol."
    )
    smiles: Series[pd.StringDtype] = text("SMILES (isomeric where known).")
    chembl_id: Series[pd.StringDtype] = text("ChEMBL molecule id.", str_matches=r"^CHEMBL\d+$")
    cas: Series[pd.StringDtype] = text("CAS registry number.", str_matches=r"^\d{2,7}-\d{2}-\d$")
    unii: Series[pd.StringDtype] = text("FDA UNII.")
    synonyms: Series[object] = str_list(
        "Names and spellings a searcher meets: the shared facts', the curated ones and PubChem's."
    )
    curated_synonyms: Series[object] = str_list(
        "The synonyms a curator added (brand names, spellings met in registrations, vernacular"
        " kratom names), not taken from the shared facts or PubChem."
    )
    curated_synonyms_source: Series[pd.StringDtype] = text(
        "Where the curated synonyms come from (a page URL or a 'curated:' note); null when none."
    )

    class Config:
        strict = True
        coerce = True


class CompoundTarget(pa.DataFrameModel):
    """One measured activity of a compound at a target (ChEMBL activity, or a curated value)."""

    compound_id: Series[pd.StringDtype] = text("Compound.", nullable=False)
    target_chembl_id: Series[pd.StringDtype] = text(
        "ChEMBL target id.", nullable=False, str_matches=r"^CHEMBL\d+$"
    )
    activity_type: Series[pd.StringDtype] = text("Ki, IC50, EC50, Emax, ...", nullable=False)
    source_id: Series[pd.StringDtype] = text(
        "ChEMBL activity id, or the source the value was read from.", nullable=False
    )
    target_name: Series[pd.StringDtype] = text("Target preferred name.")
    relation: Series[pd.StringDtype] = text("=, <, >, ~ ...")
    value: Series[pd.Float64Dtype] = pa.Field(nullable=True, description="Standard value.")
    unit: Series[pd.StringDtype] = text("Standard unit.")
    pchembl_value: Series[pd.Float64Dtype] = pa.Field(nullable=True, description="-log10 molar.")
    assay_organism: Series[pd.StringDtype] = text("Organism of the assay.")
    assay_chembl_id: Series[pd.StringDtype] = text("ChEMBL assay id.")
    document_chembl_id: Series[pd.StringDtype] = text("ChEMBL document id.")
    target_id_source: Series[pd.StringDtype] = one_of(
        TARGET_ID_SOURCES,
        "How target_chembl_id was assigned: chembl_activity (ChEMBL's own assay target),"
        " curated_exact (a literature value whose source names receptor and species, mapped in"
        " data/reference/target_ids.csv), curated_stand_in (the source names the receptor but"
        " no species: the human receptor's id is the key, assay_organism stays empty and the"
        " row claims no organism).",
    )
    flag: Series[pd.StringDtype] = text(
        "Caveat on a curated value: as_printed_conflict (the source prints values in an order"
        " other data contradict), approximate; null when none."
    )
    source_url: Series[pd.StringDtype] = text(
        "Page a curated value was read from (data/reference/compound_targets.csv); null for"
        " ChEMBL activities, whose source_id is the activity id."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["compound_id", "target_chembl_id", "activity_type", "source_id"]

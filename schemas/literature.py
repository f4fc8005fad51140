"""Publications and their links to studies and compounds."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas import vocab
from schemas.fields import day, one_of, str_list, text


class Publication(pa.DataFrameModel):
    """One work, merged across PubMed, Europe PMC, OpenAlex and Crossref on shared identifiers."""

    publication_id: Series[pd.StringDtype] = pa.Field(
        unique=True,
        str_matches=r"^(PMID:\d+|DOI:10\.\S+|OPENALEX:W\d+)$",
        description="PMID:<n>, else DOI:<doi>, else OPENALEX:<W...>.",
    )
    pmid: Series[pd.StringDtype] = text("PubMed id.", str_matches=r"^\d+$")
    pmcid: Series[pd.StringDtype] = text("PubMed Central id.", str_matches=r"^PMC\d+$")
    doi: Series[pd.StringDtype] = text(
        "DOI, lower case, without resolver prefix.", str_matches=r"^10\.\S+$"
    )
    openalex_id: Series[pd.StringDtype] = text("OpenAlex work id.", str_matches=r"^W\d+$")
    title: Series[pd.StringDtype] = text("Title.")
    journal: Series[pd.StringDtype] = text("Journal (abbreviation where PubMed gives one).")
    year: Series[pd.Int64Dtype] = pa.Field(
        ge=1800, le=2100, nullable=True, description="Publication year."
    )
    publication_date: Series[pd.Timestamp] = day("Publication date (first day of the period).")
    publication_date_precision: Series[pd.StringDtype] = one_of(
        vocab.DATE_PRECISIONS, "Precision of publication_date.", nullable=True
    )
    first_author: Series[pd.StringDtype] = text("First author, 'Surname Initials'.")
    publication_types: Series[object] = str_list("Publication types (PubMed vocabulary).")
    mesh_terms: Series[object] = str_list("MeSH descriptor names.")
    keywords: Series[object] = str_list("Author keywords.")
    language: Series[pd.StringDtype] = text("Language code.")
    is_open_access: Series[pd.BooleanDtype] = pa.Field(nullable=True, description="Open access.")
    cited_by_count: Series[pd.Int64Dtype] = pa.Field(
        ge=0, nullable=True, description="Citations (OpenAlex)."
    )
    is_retracted: Series[pd.BooleanDtype] = pa.Field(
        nullable=False, description="Retracted (a retraction notice points at it)."
    )
    sources: Series[object] = str_list(
        "Literature sources the work was seen in: pubmed, europepmc, openalex, crossref; empty "
        "for a stub (is_stub)."
    )
    is_stub: Series[pd.BooleanDtype] = pa.Field(
        nullable=False,
        description="True when no literature source returned the work: the row only carries "
        "the PMID a registry reference or curated link names (its link_source says which), so "
        "every link resolves.",
    )

    class Config:
        strict = True
        coerce = True


class StudyPublication(pa.DataFrameModel):
    """A link between a study and a publication, with how it was established."""

    study_id: Series[pd.StringDtype] = text("Study.", nullable=False)
    publication_id: Series[pd.StringDtype] = text("Publication.", nullable=False)
    link_type: Series[pd.StringDtype] = one_of(vocab.LINK_TYPES, "What the paper is to the study.")
    link_source: Series[pd.StringDtype] = one_of(
        vocab.LINK_SOURCES,
        "How the link is known: registry_reference (the registry lists the paper), "
        "pubmed_databank (PubMed lists the registry id), text_mention (the pipeline found the "
        "id in the title or abstract), curated_inference (data/reference/"
        "study_publication_links.csv: stated by the curated facts, e.g. matched by design). A "
        "literature-only study's own paper is studies.source_publication_id, not a link.",
    )

    class Config:
        strict = True
        coerce = True
        unique = ["study_id", "publication_id"]


class PublicationCompound(pa.DataFrameModel):
    """A compound a publication is about, and where its name was found."""

    publication_id: Series[pd.StringDtype] = text("Publication.", nullable=False)
    compound_id: Series[pd.StringDtype] = text("Compound.", nullable=False)
    matched_in: Series[object] = str_list(
        "Fields the name matched in: title, abstract, mesh, keywords."
    )

    class Config:
        strict = True
        coerce = True
        unique = ["publication_id", "compound_id"]

"""Working tables: what one curated builder hands to the next, never published.

They are assets in their own right (the graph shows, for example, that compound matching reads
`publication_text`), so the catalog describes their columns from these models like any table's.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas.fields import str_list, text
from schemas.registry import TableSpec


class PublicationIdMap(pa.DataFrameModel):
    """Every identifier form of a work (PMID:n, DOI:x, OPENALEX:W...) and the work it became."""

    from_id: Series[pd.StringDtype] = text("An identifier form a source used.", nullable=False)
    publication_id: Series[pd.StringDtype] = text(
        "The merged work's publications.publication_id.", nullable=False
    )


class PublicationText(pa.DataFrameModel):
    """The text compound matching and literature-study detection read; abstracts stay here."""

    publication_id: Series[pd.StringDtype] = text("Publication.", nullable=False)
    title: Series[pd.StringDtype] = text("Title.")
    abstract: Series[pd.StringDtype] = text("Abstract (read, never published).")
    mesh_terms: Series[object] = str_list("MeSH descriptor names.")
    keywords: Series[object] = str_list("Author keywords.")


class LiteratureLink(pa.DataFrameModel):
    """A study↔paper link the pipeline found in a paper's text (feeds study_publications)."""

    study_id: Series[pd.StringDtype] = text("Study.", nullable=False)
    publication_id: Series[pd.StringDtype] = text("Publication.", nullable=False)
    link_type: Series[pd.StringDtype] = text("What the paper is to the study.")
    link_source: Series[pd.StringDtype] = text("How the link is known (text_mention).")


class LiteraturePaper(pa.DataFrameModel):
    """What became of each PMID paper in literature-study detection (for the manifest)."""

    publication_id: Series[pd.StringDtype] = text("Publication.", nullable=False)
    outcome: Series[pd.StringDtype] = text(
        "study, reports_registered_study, not_a_study or unclassified.", nullable=False
    )
    basis: Series[pd.StringDtype] = text("The field the deciding design rule matched in.")


WORKING: tuple[TableSpec, ...] = (
    TableSpec("publication_id_map", PublicationIdMap, ("from_id",)),
    TableSpec("publication_text", PublicationText, ("publication_id",)),
    TableSpec("literature_links", LiteratureLink, ("study_id", "publication_id")),
    TableSpec("literature_papers", LiteraturePaper, ("publication_id",)),
)
"""Working tables by name; their keys document them, no gate enforces them."""

WORKING_BY_NAME: dict[str, TableSpec] = {t.name: t for t in WORKING}

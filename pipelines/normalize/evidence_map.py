"""The evidence map: compound x outcome domain x study design -> studies, participants, ids.

A study contributes to a cell when it names the compound and measures the domain (one of its
outcomes). A study names a compound, strongest link first:

- `intervention`: one of its interventions is matched to the compound;
- `title`, `official_title`, `condition`: for registered studies, its registry text names a
  kratom product or alkaloid ("Kratom Use Disorder Management Using Clonidine", condition
  "Kratom"), even when no intervention does (kratom is then the studied exposure, not the arm);
- `publication`: for literature-only studies, its paper names the compound;
- `curated`: `data/reference/study_compounds.csv` names it, with the facts that say so (registry
  hits of a kratom intervention search known only by id and status).

Each cell keeps how each of its studies was linked (`study_links`, "<study_id>=<how>").
A study with compounds but no outcome rows at all is counted under the domain "other", so it
does not vanish from the map; `unmeasured_study_ids` names those studies, so "other" from an
unplaced outcome title and "other" from no registered outcome stay apart. Placebo arms have no
compound and add nothing. Participants are the sum of enrollment over the cell's studies that
report one; null when none does. `long_term_studies` counts the cell's studies whose follow-up
is long term (`studies.long_term`).

The map is one DuckDB query over the curated tables: every study of the registry is a row of
its inputs, so no column of them is read into Python; registry text is matched once per
distinct text (`pipelines/normalize/distinct.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa

from pipelines.normalize.distinct import classify_distinct
from schemas.evidence import STUDY_COMPOUND_LINKS
from schemas.sql import literal

COLUMNS = [
    "compound_id",
    "domain",
    "design",
    "studies",
    "participants",
    "long_term_studies",
    "study_ids",
    "study_links",
    "unmeasured_study_ids",
]
UNCLASSIFIED_DOMAIN = "other"
UNKNOWN_DESIGN = "other"
LINKS = STUDY_COMPOUND_LINKS
"""How a study names a compound, strongest first: a study linked twice keeps the first."""
TEXT_COMPOUNDS = "_map_text_compounds"
"""The temporary table of each distinct registry text and the compounds it names."""
FACTS = "_map_facts"
"""The temporary table of the map's facts: a study, a compound it names, how, a domain."""


def text_compound_links(
    con: duckdb.DuckDBPyConnection, texts: str, match: Callable[[str], list[str]]
) -> str:
    """A query of (study_id, compound_id, linked_by) for compounds `match` finds in registry
    text; `texts` is a query of (study_id, text, linked_by). `match` runs once per distinct
    text, into the temporary table TEXT_COMPOUNDS; blank text links nothing."""
    classify_distinct(
        con,
        TEXT_COMPOUNDS,
        f"SELECT text FROM ({texts})",
        lambda text: (match(text) if text else [],),
        pa.schema([("compounds", pa.list_(pa.string()))]),
    )
    return (
        "SELECT t.study_id, unnest(c.compounds) AS compound_id, t.linked_by "
        f"FROM ({texts}) t JOIN {TEXT_COMPOUNDS} c ON t.text = c.text"
    )


def evidence_map(
    con: duckdb.DuckDBPyConnection,
    studies: str,
    interventions: str,
    outcomes: str,
    links: str | None = None,
) -> str:
    """A query of the evidence_map table's rows (schemas.evidence.EvidenceMapCell) sorted by
    key, lists sorted as published, with lineage (`_source` "derived"); its facts are the
    temporary table FACTS.

    Each argument is a query: `studies` of (study_id, design, enrollment, long_term),
    `interventions` of (study_id, compound_id), `outcomes` of (study_id, domain), `links` of
    (study_id, compound_id, linked_by): the links that are not interventions (registry text,
    see `text_compound_links`, literature-only studies' papers, curated links). Studies absent
    from `studies` are ignored (their design and enrollment are unknown); a study without a
    design is counted under "other". An unknown link kind is an error.
    """
    named = f"SELECT study_id, compound_id, 'intervention' AS linked_by FROM ({interventions})"
    if links is not None:
        unknown = con.execute(
            f"SELECT DISTINCT linked_by FROM ({links}) WHERE linked_by NOT IN ({_kinds()}) "
            "ORDER BY 1"
        ).fetchall()
        if unknown:
            raise ValueError(f"unknown study-compound link kinds: {[k for (k,) in unknown]}")
        named += f" UNION ALL SELECT study_id, compound_id, linked_by FROM ({links})"
    ranks = ", ".join(f"({literal(kind)}, {rank})" for rank, kind in enumerate(LINKS))
    # The facts first, as a table DuckDB may spill: the joins' and the lists' working memory
    # together outgrew a 512MB limit at 280 000 studies that all name compounds.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {FACTS} AS
        WITH ranks (linked_by, rank) AS (VALUES {ranks}),
        pairs AS (
            SELECT study_id, compound_id, arg_min(linked_by, rank) AS linked_by
            FROM ({named}) JOIN ranks USING (linked_by)
            WHERE study_id IS NOT NULL AND compound_id IS NOT NULL
              AND study_id IN (SELECT study_id FROM ({studies}))
            GROUP BY study_id, compound_id
        ),
        measured AS (
            SELECT DISTINCT study_id, domain FROM ({outcomes})
            WHERE study_id IS NOT NULL AND domain IS NOT NULL
        ),
        domains AS (
            SELECT study_id, domain, false AS unmeasured FROM measured
            UNION ALL
            SELECT DISTINCT study_id, {literal(UNCLASSIFIED_DOMAIN)}, true
            FROM pairs ANTI JOIN measured USING (study_id)
        )
        SELECT p.compound_id, d.domain, coalesce(s.design, {literal(UNKNOWN_DESIGN)}) AS design,
            p.study_id, p.linked_by, d.unmeasured, s.enrollment,
            coalesce(s.long_term, false) AS long_term
        FROM pairs p JOIN domains d USING (study_id) JOIN ({studies}) s USING (study_id)
    """)
    # `_seq` numbers the cells from their keys alone: a window over the rows, lists and all,
    # ran out of memory where the GROUP BY and the sort did not.
    return f"""
        SELECT compound_id, domain, design,
            count(*)::BIGINT AS studies,
            sum(enrollment)::BIGINT AS participants,
            count(*) FILTER (WHERE long_term)::BIGINT AS long_term_studies,
            list_sort(list(study_id)) AS study_ids,
            list_sort(list(study_id || '=' || linked_by)) AS study_links,
            coalesce(list_sort(list(study_id) FILTER (WHERE unmeasured)), [])
                AS unmeasured_study_ids,
            'derived' AS _source,
            NULL::VARCHAR AS _source_file,
            any_value(c._seq) AS _seq
        FROM {FACTS} JOIN (
            SELECT *, row_number() OVER (ORDER BY compound_id, domain, design) - 1 AS _seq
            FROM (SELECT DISTINCT compound_id, domain, design FROM {FACTS})
        ) c USING (compound_id, domain, design)
        GROUP BY compound_id, domain, design
        ORDER BY compound_id, domain, design
    """


def _kinds() -> str:
    return ", ".join(literal(kind) for kind in LINKS)

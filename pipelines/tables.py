"""Curated tables from staged rows and reference data: one builder per table.

Builders are the only place where sources meet: they union every source's staged rows for a
table, resolve identifiers across sources and fill the columns the vocabularies classify. They
return unvalidated frames; `pipelines.rules.enforce` is the gate after them.

Each builder is registered with `@builds(...)`, which declares what it reads (staged tables,
curated and working tables, reference files) and the working tables it writes: the asset graph
(`pipelines.assets.curated`) draws its lineage from these declarations, and
tests/pipeline/test_lineage.py checks them against what the builders really read.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from pipelines.normalize.compounds import (
    COMPOUNDS_FILE,
    PRODUCT_FORMS_FILE,
    STUDY_COMPOUNDS_FILE,
    TARGET_IDS_FILE,
    TARGETS_FILE,
    curated_study_compounds,
    load_compound_lexicon,
    reference_compound_rows,
    reference_target_rows,
)
from pipelines.normalize.conditions import CATEGORIES_FILE, load_condition_lexicon
from pipelines.normalize.dedup import merge_publications
from pipelines.normalize.distinct import classify_distinct, matches
from pipelines.normalize.dosing import TERMS_FILE as DOSING_TERMS_FILE
from pipelines.normalize.dosing import Dose, agreed_dose, load_dosing_terms
from pipelines.normalize.evidence_map import evidence_map, text_compound_links
from pipelines.normalize.evidence_tables import (
    COMPOSITION_FILE,
    EVIDENCE_BY_NAME,
    INTERACTIONS_FILE,
    SAFETY_FILE,
    SOURCES_FILE,
    UNITS_FILE,
    VOCABULARY_FILE,
    Reject,
    build_table,
    load_vocabulary,
    publication_references,
    publication_stub,
    read_rows,
)
from pipelines.normalize.literature_conditions import (
    ADDICTION_TYPES_FILE,
    literature_conditions,
    load_addiction_lexicon,
)
from pipelines.normalize.literature_domains import (
    LITERATURE_DOMAINS_FILE,
    literature_outcomes,
    load_literature_domains,
)
from pipelines.normalize.literature_studies import (
    DESIGN_RULES_FILE,
    literature_studies,
    load_design_rules,
    mentioned_ids,
)
from pipelines.normalize.outcome_changes import CHANGE_COLUMNS, create_outcome_changes
from pipelines.normalize.outcomes import INSTRUMENTS_FILE, load_instrument_lexicon
from pipelines.rules import conform
from pipelines.sources import publication_precedence
from pipelines.warehouse import (
    LINEAGE_COLUMNS,
    read_frame,
    staging_tables,
    union_staging,
    write_arrow,
    write_table,
)
from schemas import TABLES_BY_NAME
from schemas.arrow import to_arrow
from schemas.sql import literal

LINEAGE_SCHEMA = pa.schema(
    [("_source", pa.string()), ("_source_file", pa.string()), ("_seq", pa.int64())]
)
"""The lineage columns (pipelines/warehouse.py) as Arrow fields."""

CURATED_LINKS_FILE = "study_publication_links.csv"
"""Study↔paper links that no registry states (inferred by matching designs, or mentions)."""


@dataclass(frozen=True)
class Built:
    """A table's unvalidated rows (with lineage), and rows in by source when rows were merged.

    `rejects`: quarantine rows for records the builder itself could not type (they count in
    `rows_in` and go to quarantine beside the gate's rejects).
    """

    frame: pd.DataFrame | None = None
    rows_in: dict[str, int] | None = None
    rejects: pd.DataFrame | None = None
    queries: list[str] | None = None
    """Instead of a frame: queries over the warehouse whose rows (model columns, any others,
    lineage) the gate reads in place, so a table larger than memory never enters Python."""
    staged_order: bool = False
    """The queries read staged tables as they were staged (`_seq` in record order), so the
    gate may sort their rows in runs (rules.sorted_rows)."""


BuildFn = Callable[[duckdb.DuckDBPyConnection, Path], Built]


@dataclass(frozen=True)
class Builder:
    """A curated table's builder and everything it touches: the lineage the asset graph shows.

    `staged`: staged tables it unions (every source staging one of them feeds it); `curated`:
    curated or working tables it selects from; `reference`: data/reference files it opens;
    `writes`: working tables it leaves for later builders. The gate's foreign-key parents come
    from the table's spec and need not be listed.
    """

    table: str
    build: BuildFn
    staged: tuple[str, ...] = ()
    curated: tuple[str, ...] = ()
    reference: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()


BUILDERS: dict[str, Builder] = {}
"""Every curated table's builder by table name, registered where the builder is defined."""

COMPOUND_LEXICON = (COMPOUNDS_FILE, PRODUCT_FORMS_FILE)
"""The files `load_compound_lexicon` reads."""


def builds(
    table: str,
    *,
    staged: tuple[str, ...] = (),
    curated: tuple[str, ...] = (),
    reference: tuple[str, ...] = (),
    writes: tuple[str, ...] = (),
) -> Callable[[BuildFn], BuildFn]:
    """Register the decorated function as `table`'s builder, with what it reads and writes."""

    def register(build: BuildFn) -> BuildFn:
        BUILDERS[table] = Builder(table, build, staged, curated, reference, writes)
        return build

    return register


def staged_as_is(table: str) -> None:
    """Register `table` as every source's staged rows, unchanged (the gate still applies)."""

    def build(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
        names = staging_tables(con, table)
        return Built(queries=[f"SELECT * FROM {name}" for name in names], staged_order=True)

    BUILDERS[table] = Builder(table, build, staged=(table,))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts keyed by column name (our columns are always strings)."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def staged(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """Every source's staged rows for `table` (an empty frame when no source fed it)."""
    frame = union_staging(con, table)
    return pd.DataFrame() if frame is None else frame


def staged_query(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """Every source's staged rows for `table` as one query (None when no source fed it)."""
    names = staging_tables(con, table)
    if not names:
        return None
    return " UNION ALL BY NAME ".join(f"(SELECT * FROM {name})" for name in names)


def frame_query(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, table: str) -> str:
    """A builder's rows made in Python, registered as `name` in the model's types with lineage,
    so they join staged rows in one query."""
    con.register(name, typed_rows(frame, table))
    return f"SELECT * FROM {name}"


def literature_query(
    con: duckdb.DuckDBPyConnection, name: str, literature: pd.DataFrame, table: str
) -> list[str]:
    """Rows read from the literature (no source file) as a query beside the staged rows;
    none when there are none."""
    if literature.empty:
        return []
    literature["_source"] = "literature"
    literature["_source_file"] = None
    literature["_seq"] = range(len(literature))
    return [frame_query(con, name, literature, table)]


def typed_rows(frame: pd.DataFrame, table: str) -> pa.Table:
    """A builder's rows (with lineage) as Arrow in `table`'s model types, conformed."""
    spec = TABLES_BY_NAME[table]
    conformed = conform(frame, spec)
    arrow = to_arrow(conformed, spec.model)
    lineage = pa.Table.from_pandas(
        conformed[list(LINEAGE_COLUMNS)], schema=LINEAGE_SCHEMA, preserve_index=False
    )
    schema = pa.schema([*arrow.schema, *LINEAGE_SCHEMA])
    return pa.Table.from_arrays([*arrow.columns, *lineage.columns], schema=schema)


def publication_id_map(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Any identifier form of a work (PMID:n, DOI:x, ...) → its publication_id."""
    frame = read_frame(con, "SELECT from_id, publication_id FROM curated.publication_id_map")
    return dict(zip(frame["from_id"], frame["publication_id"], strict=True))


def curated_links(reference_dir: Path) -> pd.DataFrame:
    """The curated study↔publication links, as staged-like rows with lineage."""
    path = reference_dir / CURATED_LINKS_FILE
    if not path.exists():
        return pd.DataFrame()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [
            {
                "study_id": row["study_id"],
                "publication_id": f"PMID:{row['pmid']}",
                "link_type": row["link_type"],
                "link_source": row["link_source"],
                "_source": "reference",
                "_source_file": f"data/reference/{CURATED_LINKS_FILE}",
                "_seq": n,
            }
            for n, row in enumerate(csv.DictReader(handle))
        ]
    return pd.DataFrame(rows)


def publication_stubs(links: pd.DataFrame, known_ids: set[str]) -> pd.DataFrame:
    """Publications known only as a link target (a registry reference, a curated link).

    They keep every link resolvable when the literature sources did not return the work; the
    stub carries the PMID, `is_stub` and no literature source (its link_source says where it
    was seen), nothing more.
    """
    if links.empty:
        return pd.DataFrame()
    stubs = links[~links["publication_id"].isin(known_ids)]
    stubs = stubs.drop_duplicates("publication_id").sort_values("publication_id")
    return pd.DataFrame(
        {
            "publication_id": stubs["publication_id"].to_numpy(),
            "pmid": stubs["publication_id"].str.removeprefix("PMID:").to_numpy(),
            "sources": [[] for _ in range(len(stubs))],
            "is_stub": True,
            "is_retracted": False,
            "_source": stubs["_source"].to_numpy(),
            "_source_file": stubs["_source_file"].to_numpy(),
            "_seq": range(len(stubs)),
        }
    )


def evidence_stubs(reference_dir: Path, id_map: dict[str, str]) -> pd.DataFrame:
    """Stubs for the papers the evidence files name that no literature source returned.

    A paper known under any of its forms (PMID or DOI) maps every form to that work; an unknown
    one becomes a stub under its first form. `id_map` gains every form, so the evidence
    tables resolve their publication_id from `curated.publication_id_map` alone.
    """
    rows = []
    for paper in publication_references(reference_dir):
        known = next((id_map[form] for form in paper.forms if form in id_map), None)
        if known is None:
            known = paper.forms[0]
            rows.append(
                {
                    **publication_stub(paper.forms),
                    "_source": "reference",
                    "_source_file": f"data/reference/{paper.file}",
                }
            )
        for form in paper.forms:
            id_map.setdefault(form, known)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["_seq"] = range(len(frame))
    return frame


def remap(frame: pd.DataFrame, column: str, id_map: dict[str, str]) -> pd.DataFrame:
    """Replace identifier forms in `column` with their final ids (unknown ones stay as they are)."""
    if frame.empty:
        return frame
    frame = frame.copy()
    frame[column] = [id_map.get(v, v) for v in frame[column]]
    return frame


def frame_of(rows: list[dict[str, Any]], source: str, source_file: str) -> pd.DataFrame:
    """Reference rows as a staged-like frame (lineage: the reference file they came from)."""
    frame = pd.DataFrame(rows)
    frame["_source"] = source
    frame["_source_file"] = source_file
    frame["_seq"] = range(len(frame))
    return frame


@builds(
    "compounds", staged=("compound_properties", "compound_synonyms"), reference=(COMPOUNDS_FILE,)
)
def build_compounds(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Reference compounds, completed by PubChem properties and synonyms for their CIDs.

    PubChem fills only what the reference leaves blank, so a curated identifier is never
    overwritten by a look-up.
    """
    frame = frame_of(
        reference_compound_rows(reference_dir), "reference", "data/reference/compounds.csv"
    )
    properties = staged(con, "compound_properties")
    synonyms = staged(con, "compound_synonyms")
    by_cid = {int(r["pubchem_cid"]): r for r in records(properties)} if not properties.empty else {}
    extra: dict[int, list[str]] = {}
    if not synonyms.empty:
        for cid, synonym in zip(synonyms["pubchem_cid"], synonyms["synonym"], strict=True):
            extra.setdefault(int(cid), []).append(synonym)
    merged_synonyms: list[list[str]] = []
    for index, row in frame.iterrows():
        cid = row["pubchem_cid"]
        if pd.isna(cid):
            merged_synonyms.append(list(row["synonyms"]))
            continue
        found = by_cid.get(int(cid), {})
        for column in ("inchikey", "molecular_formula", "molecular_weight", "smiles"):
            if pd.isna(row[column]) and not _missing(found.get(column)):
                frame.at[index, column] = found[column]
        merged_synonyms.append(sorted(set(row["synonyms"]) | set(extra.get(int(cid), []))))
    frame["synonyms"] = merged_synonyms
    return Built(frame)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


@builds(
    "compound_targets",
    staged=("compound_targets",),
    reference=(TARGETS_FILE, TARGET_IDS_FILE),
)
def build_compound_targets(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """ChEMBL activities plus the curated literature values of data/reference.

    A ChEMBL activity carries its own assay target; a curated value gets its id from
    data/reference/target_ids.csv, and `target_id_source` keeps the two apart.
    """
    curated = frame_of(
        reference_target_rows(reference_dir), "reference", "data/reference/compound_targets.csv"
    )
    activities = staged(con, "compound_targets")
    if not activities.empty:
        activities["target_id_source"] = "chembl_activity"
    return Built(pd.concat([activities, curated], ignore_index=True))


@builds(
    "publications",
    staged=("publications", "study_publications"),
    reference=(CURATED_LINKS_FILE, COMPOSITION_FILE, INTERACTIONS_FILE, SAFETY_FILE),
    writes=("publication_id_map", "publication_text"),
)
def build_publications(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Literature records merged into works, plus stubs for link targets no source returned
    and for the papers the evidence files name (data/reference/product_composition.csv, ...).

    Writes `curated.publication_id_map` (every identifier form → publication_id) and
    `curated.publication_text` (title, abstract, MeSH, keywords: what compound matching reads;
    abstracts are never published).
    """
    literature = staged(con, "publications")
    rows_in = _count_by_source(literature)
    merged = (
        merge_publications(records(literature), publication_precedence())
        if not literature.empty
        else None
    )
    publications = pd.DataFrame(merged.publications if merged else [])
    if not publications.empty:
        publications["is_stub"] = False
        publications["_source"] = "literature"
        publications["_source_file"] = None
        publications["_seq"] = range(len(publications))
    id_map = dict(merged.id_map) if merged else {}
    known = set(publications["publication_id"]) if not publications.empty else set()
    stubs = publication_stubs(first_link_targets(con, reference_dir, id_map, known), known)
    for stub_id in stubs.get("publication_id", []):
        id_map.setdefault(stub_id, stub_id)
    stubs = pd.concat([stubs, evidence_stubs(reference_dir, id_map)], ignore_index=True)
    rows_in.update(_count_by_source(stubs))
    frame = pd.concat([publications, stubs], ignore_index=True)
    write_table(
        con,
        "curated.publication_id_map",
        pa.table(
            {"from_id": sorted(id_map), "publication_id": [id_map[k] for k in sorted(id_map)]},
            schema=pa.schema([("from_id", pa.string()), ("publication_id", pa.string())]),
        ),
    )
    text = pd.DataFrame(
        {
            "publication_id": frame.get("publication_id", pd.Series(dtype=str)),
            "title": frame.get("title"),
            "abstract": frame.get("abstract"),
            "mesh_terms": frame.get("mesh_terms"),
            "keywords": frame.get("keywords"),
        }
    )
    write_table(con, "curated.publication_text", _text_table(text))
    return Built(frame, rows_in)


def _text_table(text: pd.DataFrame) -> pa.Table:
    lists = pa.list_(pa.string())
    return pa.table(
        {
            "publication_id": pa.array(text["publication_id"].tolist(), pa.string()),
            "title": pa.array([_str(v) for v in text["title"]], pa.string()),
            "abstract": pa.array([_str(v) for v in text["abstract"]], pa.string()),
            "mesh_terms": pa.array([_strs(v) for v in text["mesh_terms"]], lists),
            "keywords": pa.array([_strs(v) for v in text["keywords"]], lists),
        }
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _count_by_source(frame: pd.DataFrame) -> dict[str, int]:
    if frame.empty:
        return {}
    return {str(k): int(v) for k, v in frame["_source"].value_counts().sort_index().items()}


def staged_links(con: duckdb.DuckDBPyConnection, id_map: str) -> str | None:
    """Study↔publication links stated by sources (registry references, databank), every
    source's, as one query, their publication ids mapped through `id_map` (a relation of
    from_id, publication_id; a form it lacks stays as it is, as `remap` does); None when no
    source staged any. A query, not a frame: they grow with the studies (a third of a link per
    real-shape study), and the builders keep only the few that name one of the papers."""
    staged = staged_query(con, "study_publications")
    if staged is None:
        return None
    return (
        "SELECT l.* REPLACE (coalesce(m.publication_id, l.publication_id) AS publication_id) "
        f"FROM ({staged}) l LEFT JOIN {id_map} m ON m.from_id = l.publication_id"
    )


def curated_and_staged_links(
    con: duckdb.DuckDBPyConnection, reference_dir: Path, papers: list[str]
) -> list[dict[str, Any]]:
    """The study↔publication links stated by sources and curators to any of `papers` (final
    publication ids): what tells a paper that reports a registered study."""
    query = staged_links(con, "curated.publication_id_map")
    staged_rows = (
        []
        if query is None
        else [
            {"study_id": study, "publication_id": paper}
            for study, paper in con.execute(
                f"SELECT study_id, publication_id FROM ({query}) "
                "WHERE list_contains(?::VARCHAR[], publication_id)",
                [papers],
            ).fetchall()
        ]
    )
    curated = remap(curated_links(reference_dir), "publication_id", publication_id_map(con))
    wanted = set(papers)
    return staged_rows + [link for link in records(curated) if link["publication_id"] in wanted]


def first_link_targets(
    con: duckdb.DuckDBPyConnection,
    reference_dir: Path,
    id_map: dict[str, str],
    known: set[str],
) -> pd.DataFrame:
    """Each link target (a publication id mapped through `id_map`) not in `known`, with the
    lineage of the first link to it: the staged links' first in lineage order, else the
    curated links' first. What `publication_stubs` keeps of every link, without reading the
    staged links whole."""
    con.register(
        "_link_id_map",
        pa.table(
            {"from_id": list(id_map), "publication_id": list(id_map.values())},
            schema=pa.schema([("from_id", pa.string()), ("publication_id", pa.string())]),
        ),
    )
    order = "ORDER BY _source, _source_file, _seq"
    try:
        query = staged_links(con, "_link_id_map")
        staged_first = (
            pd.DataFrame(columns=["publication_id", "_source", "_source_file"])
            if query is None
            else read_frame(
                con,
                f"SELECT publication_id, first(_source {order}) AS _source, "
                f"first(_source_file {order}) AS _source_file FROM ({query}) "
                # NULL-safe: a link without a publication id is no known paper, as in pandas.
                "WHERE NOT coalesce(list_contains(?::VARCHAR[], publication_id), false) "
                "GROUP BY publication_id",
                [sorted(known)],
            )
        )
    finally:
        con.unregister("_link_id_map")
    curated = remap(curated_links(reference_dir), "publication_id", id_map)
    return pd.concat([staged_first, curated], ignore_index=True)


@builds(
    "studies",
    staged=("studies", "study_publications", "interventions", "outcomes", "arms"),
    curated=("publications", "publication_id_map", "publication_text"),
    reference=(CURATED_LINKS_FILE, DESIGN_RULES_FILE.name, DOSING_TERMS_FILE),
    writes=("literature_links", "literature_papers"),
)
def build_studies(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Registered studies, plus primary studies known only from the literature.

    Writes `curated.literature_links`: the text-mention links, for the study_publications
    table (a literature study names its own paper in `source_publication_id`), and
    `curated.literature_papers`: what became of each PMID paper, for the manifest.
    """
    registered = staged_query(con, "studies")
    publications = records(
        read_frame(
            con,
            "SELECT p.*, t.abstract FROM curated.publications p "
            "LEFT JOIN curated.publication_text t USING (publication_id) ORDER BY publication_id",
        )
    )
    # Only the registered studies the papers name and the links to the papers matter: both
    # are read for them alone, not for every study (memory flat in the studies, issue 15).
    mentioned = sorted({i for publication in publications for i in mentioned_ids(publication)})
    study_ids = (
        {
            i
            for (i,) in con.execute(
                f"SELECT DISTINCT study_id FROM ({registered}) "
                "WHERE list_contains(?::VARCHAR[], study_id)",
                [mentioned],
            ).fetchall()
        }
        if registered is not None
        else set()
    )
    found = literature_studies(
        publications,
        curated_and_staged_links(con, reference_dir, [p["publication_id"] for p in publications]),
        study_ids,
        load_design_rules(reference_dir / DESIGN_RULES_FILE.name),
    )
    queries = [] if registered is None else [_with_durations(con, registered, reference_dir)]
    literature = pd.DataFrame(found["studies"])
    if not literature.empty:
        literature["_source"] = "literature"
        literature["_source_file"] = None
        literature["_seq"] = range(len(literature))
        queries.append(frame_query(con, "_literature_studies", literature, "studies"))
    extra_links = pd.DataFrame(
        found["study_publications"],
        columns=["study_id", "publication_id", "link_type", "link_source"],
    )
    write_table(
        con, "curated.literature_links", pa.Table.from_pandas(extra_links, preserve_index=False)
    )
    papers = pd.DataFrame(
        found["literature_papers"], columns=["publication_id", "outcome", "basis"], dtype=object
    )
    write_table(
        con, "curated.literature_papers", pa.Table.from_pandas(papers, preserve_index=False)
    )
    return Built(queries=queries)


def _with_durations(con: duckdb.DuckDBPyConnection, registered: str, reference_dir: Path) -> str:
    """Registered studies (`registered`: their query) with the longest course their
    interventions and arms name and the latest time point of their outcomes' time frames
    (`pipelines.normalize.dosing`), each text read once."""
    terms = load_dosing_terms(reference_dir)
    interventions = staged_query(con, "interventions")
    arms = staged_query(con, "arms")
    outcomes = staged_query(con, "outcomes")
    courses = [
        # The name and the description, as one text (a missing one left out).
        f"SELECT study_id, concat_ws(' ; ', intervention_name, description) AS text FROM "
        f"(({interventions}) UNION ALL BY NAME (SELECT NULL::VARCHAR AS description LIMIT 0))"
        if interventions is not None
        else None,
        f"SELECT study_id, description AS text FROM ({arms}) WHERE description IS NOT NULL"
        if arms is not None
        else None,
    ]
    course_texts = " UNION ALL ".join(q for q in courses if q is not None)
    frames = f"SELECT study_id, time_frame AS text FROM ({outcomes})" if outcomes else None
    empty = "SELECT NULL::VARCHAR AS study_id, NULL::VARCHAR AS text LIMIT 0"
    days = pa.schema([("days", pa.float64())])
    _per_study(
        con, "_course", course_texts or empty, lambda t: (terms.course_days(t),), days, ("max",)
    )
    _per_study(
        con,
        "_followup",
        frames or empty,
        lambda t: (d := terms.duration_days(t), terms.is_long_term(d)),
        days.append(pa.field("long_term", pa.bool_())),
        # Long term is "at least so many days", so the longest text decides.
        ("max", "bool_or"),
    )
    return (
        "SELECT s.* REPLACE (c.days AS planned_duration_days, f.days AS max_followup_days, "
        f"f.long_term AS long_term) FROM ({registered}) s "
        "LEFT JOIN _course_by_study c ON c.study_id = s.study_id "
        "LEFT JOIN _followup_by_study f ON f.study_id = s.study_id"
    )


def _per_study(
    con: duckdb.DuckDBPyConnection,
    name: str,
    texts: str,
    fn: Callable[[str | None], tuple[Any, ...]],
    outputs: pa.Schema,
    aggregates: tuple[str, ...],
) -> None:
    """The temporary table `name`_by_study: per study of `texts` (study_id, text), `fn`'s
    outputs for each of its texts (each distinct text read once) folded by `aggregates`
    (one per output, in order)."""
    classify_distinct(con, f"{name}_texts", f"SELECT text FROM ({texts})", fn, outputs)
    folded = ", ".join(
        f"{aggregate}(d.{column}) AS {column}"
        for aggregate, column in zip(aggregates, outputs.names, strict=True)
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name}_by_study AS SELECT t.study_id, {folded} "
        f"FROM ({texts}) t JOIN {name}_texts d ON {matches('t', 'd', ['text'])} "
        "GROUP BY t.study_id"
    )


@builds(
    "study_publications",
    staged=("study_publications",),
    curated=("publication_id_map", "literature_links"),
    reference=(CURATED_LINKS_FILE,),
)
def build_study_publications(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Every link, on final publication ids: the staged ones read in place (they grow with the
    studies), the curated and text-mention ones (a few) from Python."""
    found = read_frame(con, "SELECT * FROM curated.literature_links")
    if not found.empty:
        found["_source"] = "literature"
        found["_source_file"] = None
        found["_seq"] = range(len(found))
    few = remap(
        pd.concat([curated_links(reference_dir), found], ignore_index=True),
        "publication_id",
        publication_id_map(con),
    )
    staged = staged_links(con, "curated.publication_id_map")
    queries = [] if staged is None else [staged]
    if not few.empty:
        queries.append(frame_query(con, "_few_links", few, "study_publications"))
    return Built(queries=queries)


@builds(
    "conditions",
    staged=("conditions",),
    curated=("studies", "publications", "publication_text"),
    reference=(CATEGORIES_FILE, ADDICTION_TYPES_FILE),
)
def build_conditions(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Registered conditions with their category, and the addiction types the papers of
    literature-only studies name (pipelines/normalize/literature_conditions.py)."""
    queries = []
    registered = staged_query(con, "conditions")
    if registered is not None:
        lexicon = load_condition_lexicon(reference_dir)
        classify_distinct(
            con,
            "_condition_categories",
            f"SELECT condition FROM ({registered})",
            lambda c: (lexicon.categorise(c or ""),),
            pa.schema([("condition_category", pa.string())]),
        )
        queries.append(
            "SELECT r.* REPLACE (c.condition_category AS condition_category) "
            f"FROM ({registered}) r LEFT JOIN _condition_categories c "
            f"ON {matches('r', 'c', ['condition'])}"
        )
    literature = pd.DataFrame(
        literature_conditions(
            records(
                read_frame(
                    con,
                    "SELECT study_id, source_publication_id FROM curated.studies "
                    "WHERE evidence_source = 'literature' ORDER BY study_id",
                )
            ),
            _paper_records(con),
            load_addiction_lexicon(reference_dir),
        )
    )
    queries += literature_query(con, "_literature_conditions", literature, "conditions")
    return Built(queries=queries)


@builds(
    "interventions",
    staged=("interventions", "arms"),
    reference=(*COMPOUND_LEXICON, DOSING_TERMS_FILE),
)
def build_interventions(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Interventions with their compound, product form and dose: read in the name, else in the
    intervention's description, else (or when those state no amount) in the descriptions of the
    arms that give only it."""
    registered = staged_query(con, "interventions")
    if registered is None:
        return Built(queries=[])
    # A source that stages no description: the column is there, null.
    registered = f"({registered}) UNION ALL BY NAME (SELECT NULL::VARCHAR AS description LIMIT 0)"
    lexicon = load_compound_lexicon(reference_dir)
    terms = load_dosing_terms(reference_dir)

    def named(name: str | None, kind: str | None) -> tuple[str | None, str]:
        compound_id = lexicon.primary(name or "")
        return compound_id, lexicon.product_form(name or "", kind, compound_id)

    classify_distinct(
        con,
        "_intervention_names",
        f"SELECT intervention_name, intervention_type FROM ({registered})",
        named,
        pa.schema([("compound_id", pa.string()), ("product_form", pa.string())]),
    )
    classify_distinct(
        con,
        "_intervention_doses",
        f"SELECT intervention_name, description FROM ({registered})",
        lambda name, text: _dose_columns(terms.parse_dose(name) or terms.parse_dose(text)),
        DOSE_COLUMNS,
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _solo_arms AS {_solo_arm_descriptions(con)}")
    classify_distinct(
        con,
        "_arm_doses",
        "SELECT texts FROM _solo_arms",
        lambda texts: _dose_columns(agreed_dose(terms, texts)),
        DOSE_COLUMNS,
    )
    doses = ", ".join(
        f"{_own_or_arms(column)} AS {column}" for column in DOSE_COLUMNS.names if column != "found"
    )
    return Built(
        queries=[
            "SELECT i.* REPLACE (n.compound_id AS compound_id, n.product_form AS product_form, "
            f"{doses}) FROM ({registered}) i "
            f"LEFT JOIN _intervention_names n "
            f"ON {matches('i', 'n', ['intervention_name', 'intervention_type'])} "
            f"LEFT JOIN _intervention_doses d "
            f"ON {matches('i', 'd', ['intervention_name', 'description'])} "
            f"LEFT JOIN _solo_arms s ON {matches('i', 's', ['study_id', 'intervention_name'])} "
            "LEFT JOIN _arm_doses a ON s.texts = a.texts"
        ]
    )


DOSE_COLUMNS = pa.schema(
    [
        ("found", pa.bool_()),
        ("dose_amount", pa.float64()),
        ("dose_unit", pa.string()),
        ("dose_frequency", pa.string()),
        ("dose_text", pa.string()),
    ]
)
"""A dose read from a text, as columns: whether one was read, then the interventions' columns."""


def _dose_columns(
    dose: Dose | None,
) -> tuple[bool, float | None, str | None, str | None, str | None]:
    if dose is None:
        return False, None, None, None, None
    return True, dose.amount, dose.unit, dose.frequency, dose.text


def _own_or_arms(column: str) -> str:
    """An intervention's own dose (`d`) when it states an amount, else its solo arms' agreed
    dose (`a`) when that does, else whichever was read (own first)."""
    return (
        f"CASE WHEN d.found AND d.dose_amount IS NOT NULL THEN d.{column} "
        f"WHEN a.found AND a.dose_amount IS NOT NULL THEN a.{column} "
        f"WHEN d.found THEN d.{column} WHEN a.found THEN a.{column} END"
    )


def _solo_arm_descriptions(con: duckdb.DuckDBPyConnection) -> str:
    """(study_id, intervention_name, texts): the descriptions of the arms that give that
    intervention alone (distinct, sorted: the agreed dose depends on neither order nor repeats).

    An arm that gives several interventions is not read for any of them: the first dose of its
    description may be another drug's ("kratom 2 g, then oxycodone 5 mg").
    """
    arms = staged_query(con, "arms")
    if arms is None:
        return (
            "SELECT NULL::VARCHAR AS study_id, NULL::VARCHAR AS intervention_name, "
            "NULL::VARCHAR[] AS texts LIMIT 0"
        )
    return (
        "SELECT study_id, intervention_names[1] AS intervention_name, "
        "list_sort(list_distinct(list(description))) AS texts "
        f"FROM ({arms}) WHERE len(intervention_names) = 1 AND description IS NOT NULL "
        "GROUP BY ALL"
    )


@builds(
    "outcomes",
    staged=("outcomes",),
    curated=("studies", "publications", "publication_text"),
    reference=(INSTRUMENTS_FILE, LITERATURE_DOMAINS_FILE),
)
def build_outcomes(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Registered outcomes classified by title, plus the domains literature-only papers name."""
    queries = []
    registered = staged_query(con, "outcomes")
    if registered is not None:
        lexicon = load_instrument_lexicon(reference_dir)
        classify_distinct(
            con,
            "_outcome_classes",
            f"SELECT title, time_frame FROM ({registered})",
            lambda t, f: lexicon.classify(t or "", f),
            pa.schema([("domain", pa.string()), ("instrument", pa.string())]),
        )
        queries.append(
            "SELECT o.* REPLACE (c.domain AS domain, c.instrument AS instrument) "
            f"FROM ({registered}) o LEFT JOIN _outcome_classes c "
            f"ON {matches('o', 'c', ['title', 'time_frame'])}"
        )
    literature = pd.DataFrame(
        literature_outcomes(
            records(
                read_frame(
                    con,
                    "SELECT study_id, source_publication_id FROM curated.studies "
                    "WHERE evidence_source = 'literature' ORDER BY study_id",
                )
            ),
            _paper_records(con),
            load_literature_domains(reference_dir),
        )
    )
    queries += literature_query(con, "_literature_outcomes", literature, "outcomes")
    return Built(queries=queries)


def _paper_records(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """publication_id -> the fields a literature domain is read from (never the abstract)."""
    papers = read_frame(
        con,
        "SELECT p.publication_id, p.title, p.publication_types, p.mesh_terms, t.keywords "
        "FROM curated.publications p LEFT JOIN curated.publication_text t USING (publication_id) "
        "ORDER BY p.publication_id",
    )
    return {str(r["publication_id"]): r for r in records(papers)}


@builds("outcome_changes", curated=("outcomes",))
def build_outcome_changes(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Registered outcomes matched to reported ones, per study with posted results, in
    DuckDB (pipelines/normalize/outcome_changes.py)."""
    create_outcome_changes(con, "SELECT * FROM curated.outcomes", "_changes")
    return Built(
        queries=[
            f"SELECT {', '.join(CHANGE_COLUMNS)}, 'derived' AS _source, "
            "NULL::VARCHAR AS _source_file, _seq FROM _changes"
        ]
    )


@builds("publication_compounds", curated=("publication_text",), reference=COMPOUND_LEXICON)
def build_publication_compounds(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Compounds named in a publication's title, abstract, MeSH terms or keywords."""
    text = read_frame(con, "SELECT * FROM curated.publication_text ORDER BY publication_id")
    lexicon = load_compound_lexicon(reference_dir)
    rows = []
    for record in text.to_dict("records"):
        places: dict[str, set[str]] = {}
        fields = {
            "title": [record["title"] or ""],
            "abstract": [record["abstract"] or ""],
            "mesh": record["mesh_terms"] or [],
            "keywords": record["keywords"] or [],
        }
        for place, texts in fields.items():
            for value in texts:
                for compound_id in lexicon.match(value):
                    places.setdefault(compound_id, set()).add(place)
        rows += [
            {"publication_id": record["publication_id"], "compound_id": c, "matched_in": sorted(p)}
            for c, p in sorted(places.items())
        ]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["_source"] = "literature"
        frame["_source_file"] = None
        frame["_seq"] = range(len(frame))
    return Built(frame)


@builds(
    "evidence_map",
    curated=(
        "studies",
        "interventions",
        "outcomes",
        "adverse_events",
        "adverse_event_totals",
        "conditions",
        "publication_compounds",
    ),
    reference=(*COMPOUND_LEXICON, STUDY_COMPOUNDS_FILE),
)
def build_evidence_map(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Compound × domain × design cells from the curated tables, in one query
    (pipelines/normalize/evidence_map.py).

    Registered studies also reach the kratom products and alkaloids their title, official title
    or registered conditions name (a quarantined condition links nothing), literature-only
    studies the compounds their paper names, and studies no text links the compounds
    data/reference/study_compounds.csv gives; `study_links` says which. A study that posted
    adverse events (per term or as group totals) measures safety.
    """
    lexicon = load_compound_lexicon(reference_dir)
    text_links = text_compound_links(con, _REGISTRY_TEXTS, lexicon.kratom_compounds)
    curated = curated_study_compounds(reference_dir)
    write_arrow(
        con,
        "CREATE OR REPLACE TEMP TABLE _curated_study_compounds AS",
        pa.table(
            {"study_id": [s for s, _ in curated], "compound_id": [c for _, c in curated]},
            schema=pa.schema([("study_id", pa.string()), ("compound_id", pa.string())]),
        ),
    )
    links = (
        f"{text_links} UNION ALL "
        "SELECT DISTINCT s.study_id, c.compound_id, 'publication' AS linked_by "
        "FROM curated.studies s "
        "JOIN curated.publication_compounds c ON c.publication_id = s.source_publication_id "
        "WHERE s.evidence_source = 'literature' UNION ALL "
        "SELECT study_id, compound_id, 'curated' AS linked_by FROM _curated_study_compounds"
    )
    query = evidence_map(
        con,
        "SELECT study_id, design, enrollment, long_term FROM curated.studies",
        "SELECT study_id, compound_id FROM curated.interventions WHERE compound_id IS NOT NULL",
        # What the map counts: each study's distinct domains, safety when it posted adverse events.
        "SELECT study_id, domain FROM curated.outcomes "
        "UNION ALL SELECT study_id, 'safety' FROM curated.adverse_events "
        "UNION ALL SELECT study_id, 'safety' FROM curated.adverse_event_totals",
        links,
    )
    return Built(queries=[query])


_REGISTRY_TEXTS = " UNION ALL ".join(
    [
        *(
            f"SELECT study_id, {column} AS text, {literal(column)} AS linked_by "
            "FROM curated.studies WHERE evidence_source = 'registry'"
            for column in ("title", "official_title")
        ),
        "SELECT study_id, condition AS text, 'condition' AS linked_by FROM curated.conditions "
        "WHERE matched_in IS NULL",
    ]
)
"""(study_id, text, linked_by): the registry text a study may name a compound in."""


def _reject_rows(table: str, file: str, rejects: list[Reject]) -> pd.DataFrame:
    """Quarantine rows (schemas.evidence.QuarantineRow) for evidence rows that cannot be typed."""
    return pd.DataFrame(
        [
            {
                "table_name": table,
                "source": "reference",
                "record_key": r.record_key or None,
                "reason": r.reason,
                "source_file": f"data/reference/{file}",
                "raw": orjson.dumps(r.raw, option=orjson.OPT_SORT_KEYS).decode(),
            }
            for r in rejects
        ],
        columns=["table_name", "source", "record_key", "reason", "source_file", "raw"],
        dtype=object,
    )


def build_evidence(table: str, con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """product_composition, interaction_effects or safety_signals from its reference file.

    Papers resolve through `curated.publication_id_map` (the publications builder has given
    every paper the files name a row, a stub if need be); a row the vocabularies cannot type is
    a builder reject with its reason, and every row of the file counts as a row in.
    """
    spec = EVIDENCE_BY_NAME[table]
    raws = read_rows(reference_dir, spec)
    built = build_table(spec, raws, load_vocabulary(reference_dir), publication_id_map(con))
    frame = frame_of(built.rows, "reference", f"data/reference/{spec.file}")
    return Built(frame, {"reference": len(raws)}, _reject_rows(table, spec.file, built.rejects))


EVIDENCE_READS = (VOCABULARY_FILE, UNITS_FILE, SOURCES_FILE, *COMPOUND_LEXICON)
"""The reference files every evidence builder reads beside its own."""


@builds(
    "product_composition",
    curated=("publication_id_map",),
    reference=(COMPOSITION_FILE, *EVIDENCE_READS),
)
def build_product_composition(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Measured alkaloid content, from data/reference/product_composition.csv."""
    return build_evidence("product_composition", con, reference_dir)


@builds(
    "interaction_effects",
    curated=("publication_id_map",),
    reference=(INTERACTIONS_FILE, *EVIDENCE_READS),
)
def build_interaction_effects(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Pharmacokinetic interactions, from data/reference/interaction_effects.csv."""
    return build_evidence("interaction_effects", con, reference_dir)


@builds(
    "safety_signals",
    curated=("publication_id_map",),
    reference=(SAFETY_FILE, *EVIDENCE_READS),
)
def build_safety_signals(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Published harm counts, from data/reference/safety_signals.csv."""
    return build_evidence("safety_signals", con, reference_dir)


staged_as_is("study_identifiers")
staged_as_is("outcome_results")
# Posted results: ClinicalTrials.gov is their only source, so its staged rows are the table.
staged_as_is("arms")
staged_as_is("result_groups")
staged_as_is("adverse_events")
staged_as_is("adverse_event_totals")
staged_as_is("baseline_measures")
staged_as_is("participant_flow")
staged_as_is("outcome_analyses")

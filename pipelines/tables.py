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
from pipelines.normalize.distinct import per_distinct
from pipelines.normalize.dosing import TERMS_FILE as DOSING_TERMS_FILE
from pipelines.normalize.dosing import Dose, agreed_dose, load_dosing_terms, study_durations
from pipelines.normalize.evidence_map import build_evidence_map as evidence_map
from pipelines.normalize.evidence_map import text_compound_links
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
)
from pipelines.normalize.outcome_changes import outcome_changes
from pipelines.normalize.outcomes import INSTRUMENTS_FILE, load_instrument_lexicon
from pipelines.sources import publication_precedence
from pipelines.warehouse import read_frame, staging_tables, union_staging, write_table

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
    staged: list[str] | None = None
    """Instead of a frame: the staging tables (every source's) whose rows, as they are, the
    gate reads in place in the warehouse (a posted-results table can outgrow memory)."""


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
        return Built(staged=staging_tables(con, table))

    BUILDERS[table] = Builder(table, build, staged=(table,))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts keyed by column name (our columns are always strings)."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def staged(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    """Every source's staged rows for `table` (an empty frame when no source fed it)."""
    frame = union_staging(con, table)
    return pd.DataFrame() if frame is None else frame


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
    links = remap(all_links(con, reference_dir), "publication_id", id_map)
    known = set(publications["publication_id"]) if not publications.empty else set()
    stubs = publication_stubs(links, known)
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


def all_links(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> pd.DataFrame:
    """Study↔publication links stated by sources (registry references, databank) and curators."""
    return pd.concat(
        [staged(con, "study_publications"), curated_links(reference_dir)], ignore_index=True
    )


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
    registered = staged(con, "studies")
    links = remap(all_links(con, reference_dir), "publication_id", publication_id_map(con))
    publications = read_frame(
        con,
        "SELECT p.*, t.abstract FROM curated.publications p "
        "LEFT JOIN curated.publication_text t USING (publication_id) ORDER BY publication_id",
    )
    study_ids = set(registered["study_id"].dropna()) if not registered.empty else set()
    found = literature_studies(
        records(publications),
        records(links) if not links.empty else [],
        study_ids,
        load_design_rules(reference_dir / DESIGN_RULES_FILE.name),
    )
    literature = pd.DataFrame(found["studies"])
    if not literature.empty:
        literature["_source"] = "literature"
        literature["_source_file"] = None
        literature["_seq"] = range(len(literature))
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
    return Built(
        pd.concat([_with_durations(con, registered, reference_dir), literature], ignore_index=True)
    )


def _with_durations(
    con: duckdb.DuckDBPyConnection, registered: pd.DataFrame, reference_dir: Path
) -> pd.DataFrame:
    """Registered studies with the course their interventions and arms name and their
    follow-up."""
    if registered.empty:
        return registered
    interventions, outcomes = staged(con, "interventions"), staged(con, "outcomes")
    arms = staged(con, "arms")
    courses = []
    if not interventions.empty:
        texts = zip(interventions["intervention_name"], _descriptions(interventions), strict=True)
        courses = [
            (study_id, " ; ".join(t for t in pair if isinstance(t, str)))
            for study_id, pair in zip(interventions["study_id"], texts, strict=True)
        ]
    if not arms.empty:
        courses += [
            (study_id, text)
            for study_id, text in zip(arms["study_id"], arms["description"], strict=True)
            if isinstance(text, str)
        ]
    frames = []
    if not outcomes.empty:
        frames = list(zip(outcomes["study_id"], outcomes["time_frame"], strict=True))
    found = study_durations(courses, frames, load_dosing_terms(reference_dir))
    registered = registered.copy()
    for column in ("planned_duration_days", "max_followup_days", "long_term"):
        registered[column] = [
            getattr(found[s], column) if s in found else None for s in registered["study_id"]
        ]
    return registered


@builds(
    "study_publications",
    staged=("study_publications",),
    curated=("publication_id_map", "literature_links"),
    reference=(CURATED_LINKS_FILE,),
)
def build_study_publications(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Every link, on final publication ids."""
    found = read_frame(con, "SELECT * FROM curated.literature_links")
    if not found.empty:
        found["_source"] = "literature"
        found["_source_file"] = None
        found["_seq"] = range(len(found))
    links = pd.concat([all_links(con, reference_dir), found], ignore_index=True)
    return Built(remap(links, "publication_id", publication_id_map(con)))


@builds(
    "conditions",
    staged=("conditions",),
    curated=("studies", "publications", "publication_text"),
    reference=(CATEGORIES_FILE, ADDICTION_TYPES_FILE),
)
def build_conditions(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Registered conditions with their category, and the addiction types the papers of
    literature-only studies name (pipelines/normalize/literature_conditions.py)."""
    frame = staged(con, "conditions")
    if not frame.empty:
        lexicon = load_condition_lexicon(reference_dir)
        frame["condition_category"] = per_distinct(
            lambda c: lexicon.categorise(c or ""), frame["condition"]
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
    if literature.empty:
        return Built(frame)
    literature["_source"] = "literature"
    literature["_source_file"] = None
    literature["_seq"] = range(len(literature))
    return Built(pd.concat([frame, literature], ignore_index=True))


@builds(
    "interventions",
    staged=("interventions", "arms"),
    reference=(*COMPOUND_LEXICON, DOSING_TERMS_FILE),
)
def build_interventions(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Interventions with their compound, product form and dose: read in the name, else in the
    intervention's description, else (or when those state no amount) in the descriptions of the
    arms that give only it."""
    frame = staged(con, "interventions")
    arms = staged(con, "arms")
    if not frame.empty:
        lexicon = load_compound_lexicon(reference_dir)
        frame["compound_id"] = per_distinct(
            lambda n: lexicon.primary(n or ""), frame["intervention_name"]
        )
        frame["product_form"] = per_distinct(
            lambda n, t, c: lexicon.product_form(n or "", t if isinstance(t, str) else None, c),
            frame["intervention_name"],
            frame["intervention_type"],
            frame["compound_id"],
        )
        terms = load_dosing_terms(reference_dir)
        doses = per_distinct(
            lambda name, text: terms.parse_dose(name) or terms.parse_dose(_str(text)),
            frame["intervention_name"],
            _descriptions(frame),
        )
        solo = _solo_arm_descriptions(arms)
        doses = [
            _with_amount(dose, agreed_dose(terms, solo.get((study_id, name), [])))
            for dose, study_id, name in zip(
                doses, frame["study_id"], frame["intervention_name"], strict=True
            )
        ]
        frame["dose_amount"] = [d.amount if d else None for d in doses]
        frame["dose_unit"] = [d.unit if d else None for d in doses]
        frame["dose_frequency"] = [d.frequency if d else None for d in doses]
        frame["dose_text"] = [d.text if d else None for d in doses]
    return Built(frame)


def _with_amount(own: Dose | None, from_arms: Dose | None) -> Dose | None:
    """The intervention's own dose when it states an amount, else its arms' when they do."""
    if own is not None and own.amount is not None:
        return own
    return from_arms if from_arms is not None and from_arms.amount is not None else own or from_arms


def _solo_arm_descriptions(arms: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """(study_id, intervention_name) -> descriptions of the arms giving that intervention alone.

    An arm that gives several interventions is not read for any of them: the first dose of its
    description may be another drug's ("kratom 2 g, then oxycodone 5 mg").
    """
    found: dict[tuple[str, str], list[str]] = {}
    if arms.empty:
        return found
    for study_id, names, text in zip(
        arms["study_id"], arms["intervention_names"], arms["description"], strict=True
    ):
        given = list(names) if names is not None else []
        if len(given) == 1 and isinstance(text, str):
            found.setdefault((study_id, given[0]), []).append(text)
    return found


def _descriptions(interventions: pd.DataFrame) -> list[Any]:
    """Registered intervention descriptions (staging-only, ClinicalTrials.gov), else None."""
    if "description" in interventions:
        return list(interventions["description"])
    return [None] * len(interventions)


@builds(
    "outcomes",
    staged=("outcomes",),
    curated=("studies", "publications", "publication_text"),
    reference=(INSTRUMENTS_FILE, LITERATURE_DOMAINS_FILE),
)
def build_outcomes(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> Built:
    """Registered outcomes classified by title, plus the domains literature-only papers name."""
    frame = staged(con, "outcomes")
    if not frame.empty:
        lexicon = load_instrument_lexicon(reference_dir)
        found = per_distinct(
            lambda t, f: lexicon.classify(t or "", f if isinstance(f, str) else None),
            frame["title"],
            frame["time_frame"],
        )
        frame["domain"] = [d for d, _ in found]
        frame["instrument"] = [i for _, i in found]
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
    if not literature.empty:
        literature["_source"] = "literature"
        literature["_source_file"] = None
        literature["_seq"] = range(len(literature))
    return Built(pd.concat([frame, literature], ignore_index=True))


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
    """Registered outcomes matched to reported ones, per study with posted results."""
    outcomes = read_frame(
        con,
        "SELECT outcome_id, study_id, outcome_kind, title, time_frame, source "
        "FROM curated.outcomes ORDER BY study_id, source, outcome_id",
    )
    frame = pd.DataFrame(outcome_changes(records(outcomes)))
    if not frame.empty:
        frame["_source"] = "derived"
        frame["_source_file"] = None
        frame["_seq"] = range(len(frame))
    return Built(frame)


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
    """Compound × domain × design cells from the curated tables.

    Registered studies also reach the kratom products and alkaloids their title, official title
    or registered conditions name (a quarantined condition links nothing), literature-only
    studies the compounds their paper names, and studies no text links the compounds
    data/reference/study_compounds.csv gives; `study_links` says which. A study that posted
    adverse events (per term or as group totals) measures safety.
    """
    studies = read_frame(con, "SELECT study_id, design, enrollment, long_term FROM curated.studies")
    interventions = read_frame(con, "SELECT study_id, compound_id FROM curated.interventions")
    outcomes = read_frame(
        con,
        "SELECT study_id, domain FROM curated.outcomes UNION ALL "
        "SELECT DISTINCT study_id, 'safety' FROM curated.adverse_events UNION ALL "
        "SELECT DISTINCT study_id, 'safety' FROM curated.adverse_event_totals",
    )
    registered = read_frame(
        con,
        "SELECT study_id, title, official_title FROM curated.studies "
        "WHERE evidence_source = 'registry' ORDER BY study_id",
    )
    conditions = read_frame(
        con,
        "SELECT study_id, condition FROM curated.conditions WHERE matched_in IS NULL "
        "ORDER BY study_id, condition",
    )
    lexicon = load_compound_lexicon(reference_dir)
    text_links = text_compound_links(registered, conditions, lexicon.kratom_compounds)
    paper_links = read_frame(
        con,
        "SELECT DISTINCT s.study_id, c.compound_id, 'publication' AS linked_by "
        "FROM curated.studies s "
        "JOIN curated.publication_compounds c ON c.publication_id = s.source_publication_id "
        "WHERE s.evidence_source = 'literature' ORDER BY 1, 2",
    )
    curated_links = pd.DataFrame(
        [(s, c, "curated") for s, c in curated_study_compounds(reference_dir)],
        columns=["study_id", "compound_id", "linked_by"],
    )
    study_compounds = pd.concat([text_links, paper_links, curated_links], ignore_index=True)
    frame = evidence_map(studies, interventions, outcomes, study_compounds)
    frame["_source"] = "derived"
    frame["_source_file"] = None
    frame["_seq"] = range(len(frame))
    return Built(frame)


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

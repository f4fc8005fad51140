"""The staged study↔publication links read in place (pipelines/tables.py): the publication
stubs, the links a paper is known by and the study_publications rows come out as they did when
every link was read into pandas first, on a real DuckDB warehouse."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines import tables
from pipelines.warehouse import read_frame, union_staging

LINK_COLUMNS = ["study_id", "publication_id", "link_type", "link_source"]

# Two sources, links to the same papers in several files and forms: the first link to a paper
# (in lineage order: source, file, _seq) must give a stub its lineage.
STAGED = {
    "staging.clinicaltrials__study_publications": [
        ("NCT01", "PMID:2", "result", "registry_reference", "clinicaltrials", "b.json", 0),
        ("NCT02", "DOI:10.1/x", "result", "registry_reference", "clinicaltrials", "a.json", 3),
        ("NCT03", "PMID:2", "background", "registry_reference", "clinicaltrials", "a.json", 1),
        ("NCT04", "PMID:9", "result", "registry_reference", "clinicaltrials", "a.json", 2),
        ("NCT05", None, "result", "registry_reference", "clinicaltrials", "c.json", 0),
    ],
    "staging.pubmed__study_publications": [
        ("NCT01", "PMID:7", "report", "pubmed_databank", "pubmed", "p.xml", 0),
        ("NCT06", "PMID:2", "report", "pubmed_databank", "pubmed", "p.xml", 1),
    ],
}
CURATED = [  # the reference file's rows: one paper no source links, one a source links too
    {"study_id": "NCT08", "pmid": "5", "link_type": "report", "link_source": "curated_inference"},
    {"study_id": "NCT09", "pmid": "7", "link_type": "report", "link_source": "curated_inference"},
]
ID_MAP = {"DOI:10.1/x": "PMID:1", "PMID:1": "PMID:1", "PMID:9": "PMID:9"}


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE SCHEMA curated")
    for name, rows in STAGED.items():
        con.execute(
            f"CREATE TABLE {name} (study_id VARCHAR, publication_id VARCHAR, link_type VARCHAR, "
            "link_source VARCHAR, _source VARCHAR, _source_file VARCHAR, _seq BIGINT)"
        )
        con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE curated.publication_id_map (from_id VARCHAR, publication_id VARCHAR)")
    con.executemany("INSERT INTO curated.publication_id_map VALUES (?, ?)", list(ID_MAP.items()))
    return con


@pytest.fixture
def reference_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "reference"
    folder.mkdir()
    with open(folder / tables.CURATED_LINKS_FILE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CURATED[0]))
        writer.writeheader()
        writer.writerows(CURATED)
    return folder


def every_link(con: duckdb.DuckDBPyConnection, reference_dir: Path) -> pd.DataFrame:
    """What the builders read before: every staged link in lineage order, then the curated."""
    staged = union_staging(con, "study_publications")
    curated = tables.curated_links(reference_dir)
    return pd.concat([staged, curated], ignore_index=True)


def test_stubs_from_the_first_links_are_those_of_every_link_read_whole(
    warehouse: duckdb.DuckDBPyConnection, reference_dir: Path
) -> None:
    known = {"PMID:9"}
    whole = tables.remap(every_link(warehouse, reference_dir), "publication_id", ID_MAP)
    expected = tables.publication_stubs(whole, known)
    got = tables.publication_stubs(
        tables.first_link_targets(warehouse, reference_dir, ID_MAP, known), known
    )
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    by_id = {row["publication_id"]: row for row in got.to_dict("records")}
    # PMID:2's first link is clinicaltrials a.json _seq 1, not b.json nor pubmed's.
    assert by_id["PMID:2"]["_source_file"] == "a.json"
    assert by_id["PMID:1"]["_source_file"] == "a.json"  # its DOI form, mapped
    assert by_id["PMID:5"]["_source"] == "reference"  # only the curators link it
    assert by_id["PMID:7"]["_source"] == "pubmed"  # staged before the curated link
    assert "PMID:9" not in by_id  # a known paper is no stub


def test_links_to_the_papers_are_every_link_of_those_papers(
    warehouse: duckdb.DuckDBPyConnection, reference_dir: Path
) -> None:
    papers = ["PMID:1", "PMID:5", "PMID:7"]
    whole = tables.remap(every_link(warehouse, reference_dir), "publication_id", ID_MAP)
    expected = {
        (row["study_id"], row["publication_id"])
        for row in whole.to_dict("records")
        if row["publication_id"] in papers
    }
    got = tables.curated_and_staged_links(warehouse, reference_dir, papers)
    assert {(link["study_id"], link["publication_id"]) for link in got} == expected
    assert ("NCT09", "PMID:7") in expected and ("NCT02", "PMID:1") in expected


def test_study_publications_rows_are_every_link_on_final_ids(
    warehouse: duckdb.DuckDBPyConnection, reference_dir: Path
) -> None:
    warehouse.execute(
        "CREATE TABLE curated.literature_links AS SELECT 'NCT04' AS study_id, "
        "'PMID:9' AS publication_id, 'report' AS link_type, 'text_mention' AS link_source"
    )
    built = tables.build_study_publications(warehouse, reference_dir)
    assert built.frame is None and built.queries
    union = " UNION ALL BY NAME ".join(f"({q})" for q in built.queries)
    got = read_frame(
        warehouse, f"SELECT {', '.join(LINK_COLUMNS)}, _source FROM ({union}) ORDER BY ALL"
    )
    staged = tables.remap(every_link(warehouse, reference_dir), "publication_id", ID_MAP)
    expected = sorted(
        [
            *((*(row[c] for c in LINK_COLUMNS), row["_source"]) for _, row in staged.iterrows()),
            ("NCT04", "PMID:9", "report", "text_mention", "literature"),
        ],
        key=lambda row: tuple((value is None, value) for value in row),
    )
    assert [tuple(row) for row in got.itertuples(index=False)] == [
        tuple(None if pd.isna(v) else v for v in row) for row in expected
    ]

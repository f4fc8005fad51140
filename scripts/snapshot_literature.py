"""Write the literature part of the bundled snapshot from `shared/facts/publications.csv`.

Each facts row with a PMID becomes a PubMed efetch record; a row with a DOI but no PMID becomes
a Crossref `/works` item (Crossref is the DOI registry); a row with a PMCID also becomes a
Europe PMC core search result. Records carry only the facts the row gives: identifiers, title,
journal (the abbreviation the facts use), year, publication types and the first author. No
abstract, no MeSH, no OpenAlex id, nothing filled in by a guess; a blank cell leaves its element
out. Rows with neither PMID nor DOI are left out and listed on stdout.

Known gaps against real responses: PubMed records lack the MedlineCitation Status/Owner
attributes and, where the facts give no type, the PublicationTypeList (real PubMed always has
one); Crossref items have `type: journal-article` for every row the facts type as a journal
publication (PubMed types such as Review have no Crossref field); the Crossref page has no
`next-cursor` (a final page of a replay).

Usage: python scripts/snapshot_literature.py [--facts DIR] [--snapshot DIR]
The output is deterministic: re-running it rewrites the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FACTS = REPO_ROOT.parent / "shared" / "facts"
DEFAULT_SNAPSHOT = REPO_ROOT / "data" / "snapshot"

EFETCH_BATCH = 50
"""Articles per efetch file, as a refresh with retmax=50 would record them."""

EFETCH_HEAD = (
    '<?xml version="1.0" ?>\n'
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
_INITIALS = re.compile(r"^[A-Z]{1,4}$")


def read_facts(facts_dir: Path) -> list[dict[str, str]]:
    """Rows of publications.csv with cells stripped."""
    with (facts_dir / "publications.csv").open(encoding="utf-8", newline="") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def split_author(name: str) -> tuple[str, str | None]:
    """'Leong Bin Abdullah MFI' -> ('Leong Bin Abdullah', 'MFI'); 'Singh' -> ('Singh', None)."""
    *head, last = name.split()
    if head and _INITIALS.match(last):
        return " ".join(head), last
    return name, None


def publication_types(row: dict[str, str]) -> list[str]:
    return [t.strip() for t in row["publication_type"].split(";") if t.strip()]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def pubmed_article(row: dict[str, str]) -> ET.Element:
    """One `<PubmedArticle>` holding only the row's facts."""
    article_set = ET.Element("PubmedArticle")
    citation = _sub(article_set, "MedlineCitation")
    _sub(citation, "PMID", row["pmid"], Version="1")
    article = _sub(citation, "Article")
    journal = _sub(article, "Journal")
    pub_date = _sub(_sub(journal, "JournalIssue"), "PubDate")
    if row["year"]:
        _sub(pub_date, "Year", row["year"])
    if row["journal"]:
        _sub(journal, "ISOAbbreviation", row["journal"])
    if row["title"]:
        _sub(article, "ArticleTitle", row["title"])
    if row["first_author"]:
        last, initials = split_author(row["first_author"])
        author = _sub(_sub(article, "AuthorList"), "Author", ValidYN="Y")
        _sub(author, "LastName", last)
        if initials:
            _sub(author, "Initials", initials)
    types = publication_types(row)
    if types:
        type_list = _sub(article, "PublicationTypeList")
        for name in types:
            _sub(type_list, "PublicationType", name)
    ids = _sub(_sub(article_set, "PubmedData"), "ArticleIdList")
    _sub(ids, "ArticleId", row["pmid"], IdType="pubmed")
    if row["doi"]:
        _sub(ids, "ArticleId", row["doi"], IdType="doi")
    if row["pmcid"]:
        _sub(ids, "ArticleId", row["pmcid"], IdType="pmc")
    return article_set


def efetch_file(rows: Iterable[dict[str, str]]) -> bytes:
    """A `<PubmedArticleSet>` file with the DOCTYPE line real efetch output starts with."""
    root = ET.Element("PubmedArticleSet")
    root.extend(pubmed_article(row) for row in rows)
    ET.indent(root)
    return (EFETCH_HEAD + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")


def crossref_item(row: dict[str, str]) -> dict[str, Any]:
    """One Crossref work holding only the row's facts."""
    item: dict[str, Any] = {"DOI": row["doi"]}
    if publication_types(row):
        item["type"] = "journal-article"
    if row["title"]:
        item["title"] = [row["title"]]
    if row["journal"]:
        item["short-container-title"] = [row["journal"]]
    if row["year"]:
        item["issued"] = {"date-parts": [[int(row["year"])]]}
    if row["first_author"]:
        last, initials = split_author(row["first_author"])
        author: dict[str, Any] = {"family": last, "sequence": "first", "affiliation": []}
        if initials:
            author["given"] = " ".join(f"{letter}." for letter in initials)
        item["author"] = [author]
    return item


def crossref_page(rows: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "status": "ok",
        "message-type": "work-list",
        "message-version": "1.0.0",
        "message": {
            "facets": {},
            "total-results": len(rows),
            "items": [crossref_item(row) for row in rows],
            "items-per-page": 1000,
        },
    }


def europepmc_result(row: dict[str, str]) -> dict[str, Any]:
    """One Europe PMC core result holding only the row's facts."""
    result: dict[str, Any] = {
        "id": row["pmid"] or row["pmcid"],
        "source": "MED" if row["pmid"] else "PMC",
    }
    if row["pmid"]:
        result["pmid"] = row["pmid"]
    result["pmcid"] = row["pmcid"]
    if row["doi"]:
        result["doi"] = row["doi"]
    if row["title"]:
        result["title"] = row["title"]
    if row["first_author"]:
        last, initials = split_author(row["first_author"])
        author = {"fullName": row["first_author"], "lastName": last}
        if initials:
            author["initials"] = initials
        result["authorString"] = row["first_author"]
        result["authorList"] = {"author": [author]}
    journal_info: dict[str, Any] = {}
    if row["journal"]:
        journal_info["journal"] = {"isoabbreviation": row["journal"]}
    if row["year"]:
        journal_info["yearOfPublication"] = int(row["year"])
        result["pubYear"] = row["year"]
    if journal_info:
        result["journalInfo"] = journal_info
    if publication_types(row):
        result["pubTypeList"] = {"pubType": publication_types(row)}
    result["fullTextIdList"] = {"fullTextId": [row["pmcid"]]}
    return result


def europepmc_page(rows: list[dict[str, str]]) -> dict[str, Any]:
    """A core search page; nextCursorMark repeats the first cursor, so paging stops here."""
    return {
        "hitCount": len(rows),
        "nextCursorMark": "*",
        "request": {"resultType": "core", "cursorMark": "*", "pageSize": 1000},
        "resultList": {"result": [europepmc_result(row) for row in rows]},
    }


def _json(body: dict[str, Any]) -> bytes:
    return (json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def build(facts: list[dict[str, str]]) -> dict[str, bytes]:
    """Relative path -> file content, for every literature file of the snapshot."""
    with_pmid = sorted((r for r in facts if r["pmid"]), key=lambda r: int(r["pmid"]))
    doi_only = sorted((r for r in facts if r["doi"] and not r["pmid"]), key=lambda r: r["doi"])
    with_pmcid = sorted((r for r in facts if r["pmcid"]), key=lambda r: r["pmcid"])
    files: dict[str, bytes] = {}
    for start in range(0, len(with_pmid), EFETCH_BATCH):
        name = f"pubmed/efetch-{start // EFETCH_BATCH + 1:04d}.xml"
        files[name] = efetch_file(with_pmid[start : start + EFETCH_BATCH])
    if doi_only:
        files["crossref/works-0001.json"] = _json(crossref_page(doi_only))
    if with_pmcid:
        files["europepmc/search-0001.json"] = _json(europepmc_page(with_pmcid))
    return files


def left_out(facts: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows with neither PMID nor DOI: nothing to build a publication id from."""
    return [r for r in facts if not r["pmid"] and not r["doi"]]


def write(snapshot_dir: Path, files: dict[str, bytes]) -> None:
    """Replace this script's folders with exactly `files` (stale pages removed)."""
    for folder in ("pubmed", "crossref", "europepmc"):
        target = snapshot_dir / folder
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            if f"{folder}/{old.name}" not in files:
                old.unlink()
    for name, content in files.items():
        (snapshot_dir / name).write_bytes(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=Path, default=DEFAULT_FACTS)
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT)
    args = parser.parse_args(argv)
    facts = read_facts(args.facts)
    files = build(facts)
    write(args.snapshot, files)
    for name in sorted(files):
        print(f"wrote {name}")
    for row in left_out(facts):
        print(
            f"left out (no PMID, no DOI): {row['first_author'] or '?'} {row['year'] or '?'} "
            f"{row['title'][:70]!r}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

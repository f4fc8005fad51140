"""A synthetic snapshot big enough that every live source pages several times at its real size.

Test data only, written into a pytest tmp folder, never into data/: every id is obviously
synthetic and in a valid format (NCT9xxxxxxx as bench/generate_ctgov.py makes them, PMIDs from
99000001, OpenAlex W99…, Crossref DOIs under 10.5555, Crossref's own test prefix, PubChem CIDs
from 990000001, ChEMBL ids CHEMBL99…). Records carry ids and "Synthetic kratom …" titles, nothing
else: the emulator's searches find them and the relevance screen keeps them.
Studies are small on purpose: bench/generate_ctgov.py's make 2 MB pages that the emulator takes
0.4 s to encode, and an instant emulator is what throughput is measured against.
`minimum_requests` says how few requests the sources' protocols allow for given record counts;
the politeness test holds the client's request log against it.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pipelines import paths
from pipelines.refresh import (
    Credentials,
    HttpSettings,
    RefreshResult,
    live_sources,
    parse_base_urls,
    refresh,
)
from pipelines.sources import chembl, clinicaltrials, crossref, europepmc, openalex, pubchem, pubmed

CAPTURED_AT = "2026-11-25"
PMID_BASE = 99_000_000
CID_BASE = 990_000_000
CHEMBL_BASE = 99_000_000
NCT_BASE = 90_000_000
"""NCT9xxxxxxx: a range ClinicalTrials.gov has not issued."""
CROSSREF_TEST_PREFIX = "10.5555"
"""Crossref's prefix for test DOIs: no real work lives under it."""


@dataclass(frozen=True)
class Counts:
    """Records per source in the synthetic snapshot; `cids` and `molecules` go to the reference."""

    clinicaltrials: int
    pubmed: int
    europepmc: int
    openalex: int
    crossref: int
    chembl: int
    cids: int
    molecules: int = 2


def _ceil(records: int, size: int) -> int:
    return -(-records // size)


def _pages(records: int, size: int) -> int:
    """Pages of a cursor/token pager: a query with no hits still costs one request."""
    return max(1, _ceil(records, size))


def minimum_requests(counts: Counts, queries: int = 1) -> dict[str, int]:
    """Fewest requests each source's protocol allows at the page sizes the pagers use.

    Per query: ClinicalTrials.gov and Europe PMC (its last page repeats the cursor) one request
    per page; PubMed one esearch, then one efetch per batch; OpenAlex ("until next_cursor is
    null and results is empty") and Crossref ("until a page has no items") one empty page
    past the last. PubChem
    asks properties and synonyms per CID batch; ChEMBL pages all molecules in one chain.
    """
    return {
        "clinicaltrials": queries * _pages(counts.clinicaltrials, clinicaltrials.PAGE_SIZE),
        "pubmed": queries * (1 + _ceil(counts.pubmed, pubmed.EFETCH_BATCH)),
        "europepmc": queries * _pages(counts.europepmc, europepmc.PAGE_SIZE),
        "openalex": queries * (_ceil(counts.openalex, openalex.PER_PAGE) + 1),
        "crossref": queries * (_ceil(counts.crossref, crossref.ROWS) + 1),
        "pubchem": 2 * _ceil(counts.cids, pubchem.BATCH_SIZE),
        "chembl": _pages(counts.chembl, chembl.PAGE_LIMIT),
    }


def nct_id(index: int) -> str:
    """Synthetic NCT id number `index`."""
    return f"NCT{NCT_BASE + 1 + index}"


def pmid(index: int) -> int:
    """Synthetic PMID number `index` (PubMed has issued none near 99 million)."""
    return PMID_BASE + 1 + index


def cid(index: int) -> int:
    """Synthetic PubChem CID number `index`."""
    return CID_BASE + 1 + index


def chembl_id(index: int) -> str:
    """Synthetic ChEMBL molecule id number `index`."""
    return f"CHEMBL{CHEMBL_BASE + 1 + index}"


def _study(index: int) -> dict[str, Any]:
    """A small v2 study: ids, title, status. Small on purpose, so the emulator is instant."""
    nct = nct_id(index)
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": f"Synthetic kratom study {nct}"},
            "statusModule": {"overallStatus": "COMPLETED"},
        },
        "hasResults": False,
    }


def _pubmed_article(number: int) -> str:
    return (
        f'<PubmedArticle><MedlineCitation><PMID Version="1">{number}</PMID><Article>'
        f"<ArticleTitle>Synthetic kratom article {number}</ArticleTitle></Article>"
        "</MedlineCitation></PubmedArticle>\n"
    )


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc))


def write_snapshot(out: Path, counts: Counts) -> Path:
    """A complete synthetic snapshot in `out` with `counts` records per source; returns `out`."""
    studies = [_study(i) for i in range(counts.clinicaltrials)]
    _write_json(out / "clinicaltrials" / "studies-0001.json", {"studies": studies})
    articles = "".join(_pubmed_article(pmid(i)) for i in range(counts.pubmed))
    (out / "pubmed").mkdir(parents=True, exist_ok=True)
    (out / "pubmed" / "efetch-0001.xml").write_text(
        f'<?xml version="1.0" ?>\n<PubmedArticleSet>\n{articles}</PubmedArticleSet>\n',
        encoding="utf-8",
    )
    epmc = [
        {
            "id": str(pmid(i)),
            "source": "MED",
            "pmid": str(pmid(i)),
            "title": f"Synthetic kratom {i}",
        }
        for i in range(counts.europepmc)
    ]
    _write_json(
        out / "europepmc" / "search-0001.json",
        {"hitCount": len(epmc), "resultList": {"result": epmc}},
    )
    works = [
        {
            "id": f"https://openalex.org/W{PMID_BASE * 1000 + i + 1}",
            "title": f"Synthetic kratom {i}",
        }
        for i in range(counts.openalex)
    ]
    _write_json(out / "openalex" / "works-0001.json", {"meta": {}, "results": works})
    items = [
        {"DOI": f"{CROSSREF_TEST_PREFIX}/synthetic.{i + 1}", "title": [f"Synthetic kratom {i}"]}
        for i in range(counts.crossref)
    ]
    _write_json(
        out / "crossref" / "works-0001.json",
        {"status": "ok", "message-type": "work-list", "message": {"items": items}},
    )
    cids = [cid(i) for i in range(counts.cids)]
    properties = [{"CID": n, "MolecularFormula": "C1"} for n in cids]
    _write_json(out / "pubchem" / "properties.json", {"PropertyTable": {"Properties": properties}})
    synonyms = [{"CID": n, "Synonym": [f"synthetic compound {n}"]} for n in cids]
    _write_json(out / "pubchem" / "synonyms.json", {"InformationList": {"Information": synonyms}})
    activities = [
        {
            "activity_id": CHEMBL_BASE + 1 + i,
            "molecule_chembl_id": chembl_id(i % counts.molecules),
            "standard_type": "Ki",
        }
        for i in range(counts.chembl)
    ]
    meta = {"limit": 1000, "offset": 0, "next": None, "previous": None}
    _write_json(
        out / "chembl" / "activity_00001.json",
        {"activities": activities, "page_meta": {**meta, "total_count": len(activities)}},
    )
    info = {
        "captured_at": CAPTURED_AT,
        "topic": "kratom",
        "method": "reconstructed",
        "notes": "Synthetic test data (tests/refresh/synthetic.py): no id here is a real record.",
    }
    _write_json(out / "SNAPSHOT.json", info)
    return out


def write_reference(out: Path, counts: Counts) -> Path:
    """data/reference copied to `out`, one topic query per source, synthetic compounds only,
    and no page cap in search_bounds.csv, so that every protocol pages to its end at any size
    (the bounds are tested in tests/sources/test_crossref_relevance.py).

    Returns `out`; give it to `refresh(..., reference_dir=out)`.
    """
    shutil.copytree(paths.REFERENCE_DIR, out)
    with (out / "search_bounds.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        bounds = [{**row, "max_pages": ""} for row in reader]
        header = list(reader.fieldnames or [])
    _write_csv(out / "search_bounds.csv", header, bounds)
    with (paths.REFERENCE_DIR / "topic_queries.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        first: dict[str, dict[str, str]] = {}
        for row in reader:
            first.setdefault(row["source"], row)
    _write_csv(out / "topic_queries.csv", header, [first[s] for s in live_sources() if s in first])
    with (paths.REFERENCE_DIR / "compounds.csv").open(encoding="utf-8", newline="") as handle:
        header = list(csv.DictReader(handle).fieldnames or [])
    compounds = [
        {
            "compound_id": f"synthetic-{i + 1}",
            "name": f"synthetic compound {i + 1}",
            "role": "other",
            "pubchem_cid": str(cid(i)),
            "chembl_id": chembl_id(i) if i < counts.molecules else "",
            "source": "synthetic test data",
        }
        for i in range(max(counts.cids, counts.molecules))
    ]
    _write_csv(out / "compounds.csv", header, compounds)
    return out


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)


def quick_refresh(
    data_dir: Path,
    base_url: str,
    reference: Path,
    *,
    page_size: int,
    credentials: Credentials | None = None,
    now: datetime | None = None,
    since_last: bool = False,
    backoff_base: float = 0.02,
) -> RefreshResult:
    """A refresh of every source from one emulator, at test speed: no pacing, a short timeout
    and back-off, pages of `page_size` so that small snapshots still page."""
    return refresh(
        data_dir,
        parse_base_urls([f"all={base_url}"]),
        credentials or Credentials(),
        now or datetime.now(UTC),
        settings=HttpSettings(
            timeout=2.0, backoff_base=backoff_base, pace=0.0, page_size=page_size
        ),
        reference_dir=reference,
        show_progress=False,
        since_last=since_last,
        known=None,
    )

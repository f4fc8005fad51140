"""PubMed parser against real efetch files in ../shared/samples/pubmed (skipped when absent).

Expected values are read from each file with a plain ElementTree walk, not typed in here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipelines.sources import pubmed

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "pubmed"
EFETCH = sorted(SAMPLES.glob("efetch_*.xml")) if SAMPLES.is_dir() else []

pytestmark = pytest.mark.skipif(not EFETCH, reason="shared samples not available")


def expected_articles(path: Path) -> list[ET.Element]:
    """The file's articles by a whole-document parse (samples are small and trusted)."""
    return ET.parse(path).getroot().findall("PubmedArticle")


@pytest.mark.parametrize("path", EFETCH, ids=lambda p: p.name)
def test_every_article_parses_with_ids_from_the_file(path: Path) -> None:
    expected = expected_articles(path)
    parsed = [pubmed.parse_record(r) for r in pubmed.iter_records(path)]
    assert len(parsed) == len(expected) > 0
    for rows, article in zip(parsed, expected, strict=True):
        pub = rows["publications"][0]
        assert pub["pmid"] == article.findtext("MedlineCitation/PMID")
        ids = {a.get("IdType"): a.text for a in article.iterfind("PubmedData/ArticleIdList/*")}
        assert pub["doi"] == (ids["doi"].lower() if "doi" in ids else None)
        assert pub["pmcid"] == ids.get("pmc")
        types = [t.text for t in article.iterfind(".//PublicationTypeList/PublicationType")]
        assert pub["publication_types"] == types
        mesh = [d.text for d in article.iterfind(".//MeshHeadingList/MeshHeading/DescriptorName")]
        assert pub["mesh_terms"] == mesh
        author = article.find(".//AuthorList/Author")
        assert pub["first_author"] == f"{author.findtext('LastName')} {author.findtext('Initials')}"
        assert pub["year"] == int(article.findtext(".//JournalIssue/PubDate/Year"))
        assert pub["journal"] == article.findtext(".//Journal/ISOAbbreviation")


def test_season_date_and_absent_abstract() -> None:
    path = SAMPLES / "efetch_pubmed_medline_season_kie.xml"
    article = next(a for a in expected_articles(path) if a.find(".//PubDate/Season") is not None)
    records = {pubmed.record_key(r): r for r in pubmed.iter_records(path)}
    pub = pubmed.parse_record(records[f"PMID:{article.findtext('MedlineCitation/PMID')}"])
    assert pub["publications"][0]["publication_date_precision"] == "year"
    assert pub["publications"][0]["abstract"] is None
    keywords = [k.text for k in article.iterfind(".//KeywordList/Keyword")]
    assert pub["publications"][0]["keywords"] == keywords


def test_structured_abstract_labels_and_in_data_review_status() -> None:
    path = SAMPLES / "efetch_pubmed_in_data_review_structured_nlmcategory_pmc_mid.xml"
    (article,) = expected_articles(path)
    assert article.find("MedlineCitation").get("Status") == "In-Data-Review"
    (record,) = list(pubmed.iter_records(path))
    pub = pubmed.parse_record(record)["publications"][0]
    labels = [s.get("Label") for s in article.iterfind(".//Abstract/AbstractText")]
    assert [line.split(":")[0] for line in pub["abstract"].split("\n")] == labels
    assert pub["publication_date_precision"] == "month"


def test_databank_accession_becomes_study_link() -> None:
    path = SAMPLES / "efetch_pubmed_databank_nct_structured.xml"
    (article,) = expected_articles(path)
    accessions = [
        a.text
        for bank in article.iterfind(".//DataBankList/DataBank")
        if bank.findtext("DataBankName") == "ClinicalTrials.gov"
        for a in bank.iterfind("AccessionNumberList/AccessionNumber")
    ]
    (record,) = list(pubmed.iter_records(path))
    links = pubmed.parse_record(record)["study_publications"]
    assert [link["study_id"] for link in links] == accessions
    assert {link["link_source"] for link in links} == {"pubmed_databank"}
    assert pubmed.parse_record(record)["publications"][0]["is_retracted"] is False

"""PubMed efetch XML: every record form the parser must handle, on hand-written records."""

from __future__ import annotations

import time
import weakref
from datetime import date
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from pipelines.sources import pubmed
from pipelines.sources.base import RecordError, SnapshotFormatError

DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)


def efetch(tmp_path: Path, *records: str, doctype: str = DOCTYPE) -> Path:
    """Write an efetch-shaped file holding the given record XML."""
    path = tmp_path / "efetch.xml"
    body = "".join(records)
    path.write_text(
        f'<?xml version="1.0" ?>\n{doctype}\n<PubmedArticleSet>{body}</PubmedArticleSet>',
        encoding="utf-8",
    )
    return path


def article(
    pmid: str = "100",
    *,
    status: str = "MEDLINE",
    owner: str = "NLM",
    pub_date: str = "<Year>2020</Year><Month>Mar</Month><Day>5</Day>",
    extra_article: str = "",
    extra_citation: str = "",
    ids: str = "",
) -> str:
    return (
        f'<PubmedArticle><MedlineCitation Status="{status}" Owner="{owner}">'
        f'<PMID Version="1">{pmid}</PMID><Article PubModel="Print"><Journal>'
        f"<JournalIssue><PubDate>{pub_date}</PubDate></JournalIssue>"
        "<Title>Journal of Tests</Title><ISOAbbreviation>J Tests</ISOAbbreviation></Journal>"
        "<ArticleTitle>Kratom use among <i>adults</i>.</ArticleTitle>"
        '<AuthorList><Author ValidYN="Y"><LastName>Smith</LastName><ForeName>Kirsten E</ForeName>'
        f"<Initials>KE</Initials></Author></AuthorList><Language>eng</Language>{extra_article}"
        f"</Article>{extra_citation}</MedlineCitation>"
        f'<PubmedData><ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>{ids}'
        "</ArticleIdList></PubmedData></PubmedArticle>"
    )


def parse_one(path: Path) -> dict:
    (record,) = list(pubmed.iter_records(path))
    return pubmed.parse_record(record)


def test_basic_fields_and_inline_markup(tmp_path: Path) -> None:
    rows = parse_one(efetch(tmp_path, article()))
    pub = rows["publications"][0]
    assert pub["publication_id"] == "PMID:100"
    assert pub["title"] == "Kratom use among adults."
    assert pub["journal"] == "J Tests"
    assert pub["first_author"] == "Smith KE"
    assert (pub["publication_date"], pub["publication_date_precision"]) == (
        date(2020, 3, 5),
        "day",
    )
    assert pub["sources"] == ["pubmed"]
    assert pub["abstract"] is None
    assert rows["study_publications"] == []


@pytest.mark.parametrize(
    ("pub_date", "expected"),
    [
        ("<MedlineDate>2019 Mar-Apr</MedlineDate>", (date(2019, 3, 1), "month")),
        ("<MedlineDate>1998 Dec-1999 Jan</MedlineDate>", (date(1998, 12, 1), "month")),
        ("<MedlineDate>2000 Spring</MedlineDate>", (date(2000, 1, 1), "year")),
        ("<MedlineDate>1999-2000</MedlineDate>", (date(1999, 1, 1), "year")),
        ("<MedlineDate>2019 Mar 15-21</MedlineDate>", (date(2019, 3, 15), "day")),
        ("<Year>2012</Year>", (date(2012, 1, 1), "year")),
        ("<Year>1990</Year><Season>Spring</Season>", (date(1990, 1, 1), "year")),
        ("<Year>2018</Year><Month>02</Month>", (date(2018, 2, 1), "month")),
        ("<Year>2018</Year><Month>Feb</Month><Day>30</Day>", (date(2018, 2, 1), "month")),
    ],
)
def test_pub_date_forms(tmp_path: Path, pub_date: str, expected: tuple) -> None:
    pub = parse_one(efetch(tmp_path, article(pub_date=pub_date)))["publications"][0]
    assert (pub["publication_date"], pub["publication_date_precision"]) == expected
    assert pub["year"] == expected[0].year


def test_structured_abstract_keeps_labels(tmp_path: Path) -> None:
    abstract = (
        '<Abstract><AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Kratom is used.'
        '</AbstractText><AbstractText Label="RESULTS">Registered as NCT01234567.</AbstractText>'
        "</Abstract>"
    )
    pub = parse_one(efetch(tmp_path, article(extra_article=abstract)))["publications"][0]
    assert pub["abstract"] == "BACKGROUND: Kratom is used.\nRESULTS: Registered as NCT01234567."


def test_unstructured_abstract(tmp_path: Path) -> None:
    abstract = "<Abstract><AbstractText>One paragraph.</AbstractText></Abstract>"
    pub = parse_one(efetch(tmp_path, article(extra_article=abstract)))["publications"][0]
    assert pub["abstract"] == "One paragraph."


def test_article_ids_doi_lower_and_pmc(tmp_path: Path) -> None:
    ids = '<ArticleId IdType="doi">10.1097/ADM.0000000000000986</ArticleId>'
    ids += '<ArticleId IdType="pmc">PMC9402806</ArticleId>'
    pub = parse_one(efetch(tmp_path, article(ids=ids)))["publications"][0]
    assert pub["doi"] == "10.1097/adm.0000000000000986"
    assert pub["pmcid"] == "PMC9402806"


def test_doi_from_elocation_when_article_ids_lack_it(tmp_path: Path) -> None:
    eloc = '<ELocationID EIdType="doi" ValidYN="Y">10.7759/Cureus.41146</ELocationID>'
    pub = parse_one(efetch(tmp_path, article(extra_article=eloc)))["publications"][0]
    assert pub["doi"] == "10.7759/cureus.41146"


def test_types_mesh_keywords(tmp_path: Path) -> None:
    types = (
        "<PublicationTypeList><PublicationType>Case Reports</PublicationType>"
        "<PublicationType>Journal Article</PublicationType></PublicationTypeList>"
    )
    mesh = (
        "<MeshHeadingList><MeshHeading><DescriptorName>Humans</DescriptorName></MeshHeading>"
        "<MeshHeading><DescriptorName>Mitragyna</DescriptorName><QualifierName>adverse effects"
        "</QualifierName></MeshHeading></MeshHeadingList>"
        '<KeywordList Owner="NOTNLM"><Keyword>kratom</Keyword><Keyword>withdrawal</Keyword>'
        "</KeywordList>"
    )
    pub = parse_one(efetch(tmp_path, article(extra_article=types, extra_citation=mesh)))[
        "publications"
    ][0]
    assert pub["publication_types"] == ["Case Reports", "Journal Article"]
    assert pub["mesh_terms"] == ["Humans", "Mitragyna"]
    assert pub["keywords"] == ["kratom", "withdrawal"]


def test_databank_nct_becomes_study_link(tmp_path: Path) -> None:
    banks = (
        "<DataBankList><DataBank><DataBankName>ClinicalTrials.gov</DataBankName>"
        "<AccessionNumberList><AccessionNumber>NCT04392011</AccessionNumber>"
        "<AccessionNumber>NCT04392011</AccessionNumber></AccessionNumberList></DataBank>"
        "<DataBank><DataBankName>GENBANK</DataBankName><AccessionNumberList>"
        "<AccessionNumber>AB123456</AccessionNumber></AccessionNumberList></DataBank>"
        "</DataBankList>"
    )
    rows = parse_one(efetch(tmp_path, article(extra_article=banks)))
    assert rows["study_publications"] == [
        {
            "study_id": "NCT04392011",
            "publication_id": "PMID:100",
            "link_type": "report",
            "link_source": "pubmed_databank",
        }
    ]


def test_retraction_and_erratum_links(tmp_path: Path) -> None:
    comments = (
        "<CommentsCorrectionsList>"
        '<CommentsCorrections RefType="RetractionIn"><RefSource>J Tests. 2021</RefSource>'
        "<PMID>200</PMID></CommentsCorrections>"
        '<CommentsCorrections RefType="ErratumIn"><RefSource>J Tests. 2020</RefSource>'
        "<PMID>300</PMID></CommentsCorrections>"
        '<CommentsCorrections RefType="CommentIn"><PMID>400</PMID></CommentsCorrections>'
        "</CommentsCorrectionsList>"
    )
    pub = parse_one(efetch(tmp_path, article(extra_citation=comments)))["publications"][0]
    assert pub["is_retracted"] is True
    assert pub["retracted_by"] == ["PMID:200"]
    assert pub["corrected_by"] == ["PMID:300"]
    assert pub["retracts"] == []


def test_retraction_notice_points_at_original(tmp_path: Path) -> None:
    comments = (
        '<CommentsCorrectionsList><CommentsCorrections RefType="RetractionOf">'
        "<RefSource>J Tests. 2019</RefSource><PMID>100</PMID></CommentsCorrections>"
        "</CommentsCorrectionsList>"
    )
    pub = parse_one(efetch(tmp_path, article("200", extra_citation=comments)))["publications"][0]
    assert pub["retracts"] == ["PMID:100"]
    assert pub["is_retracted"] is False


def test_retraction_in_without_pmid_still_retracted(tmp_path: Path) -> None:
    comments = (
        '<CommentsCorrectionsList><CommentsCorrections RefType="RetractionIn">'
        "<RefSource>J Tests. 2021</RefSource></CommentsCorrections></CommentsCorrectionsList>"
    )
    pub = parse_one(efetch(tmp_path, article(extra_citation=comments)))["publications"][0]
    assert pub["is_retracted"] is True
    assert pub["retracted_by"] == []


def test_non_medline_record_without_mesh(tmp_path: Path) -> None:
    record = article(status="PubMed-not-MEDLINE", owner="NLM", pub_date="<Year>2023</Year>")
    pub = parse_one(efetch(tmp_path, record))["publications"][0]
    assert pub["pmid"] == "100"
    assert pub["mesh_terms"] == []
    assert pub["publication_types"] == []


def test_book_article_is_parsed(tmp_path: Path) -> None:
    book = (
        "<PubmedBookArticle><BookDocument><PMID>500</PMID><ArticleIdList>"
        '<ArticleId IdType="bookaccession">NBK1</ArticleId></ArticleIdList>'
        "<Book><Publisher><PublisherName>NCBI</PublisherName></Publisher>"
        "<BookTitle>LiverTox</BookTitle><PubDate><Year>2012</Year></PubDate></Book>"
        "<ArticleTitle>Kratom</ArticleTitle><Language>eng</Language>"
        '<AuthorList Type="authors"><Author><CollectiveName>NIDDK</CollectiveName></Author>'
        "</AuthorList><PublicationType>Review</PublicationType></BookDocument>"
        '<PubmedBookData><ArticleIdList><ArticleId IdType="pubmed">500</ArticleId>'
        "</ArticleIdList></PubmedBookData></PubmedBookArticle>"
    )
    pub = parse_one(efetch(tmp_path, book))["publications"][0]
    assert (pub["publication_id"], pub["title"], pub["first_author"]) == (
        "PMID:500",
        "Kratom",
        "NIDDK",
    )
    assert pub["publication_types"] == ["Review"]
    assert pub["journal"] is None


def test_unknown_child_is_a_record_error(tmp_path: Path) -> None:
    path = efetch(tmp_path, "<DeleteCitation><PMID>1</PMID></DeleteCitation>", article())
    records = list(pubmed.iter_records(path))
    assert [r.tag for r in records] == ["DeleteCitation", "PubmedArticle"]
    with pytest.raises(RecordError, match="DeleteCitation"):
        pubmed.parse_record(records[0])


def test_article_without_pmid_is_a_record_error(tmp_path: Path) -> None:
    path = efetch(tmp_path, article(pmid=""))
    (record,) = list(pubmed.iter_records(path))
    assert pubmed.record_key(record) is None
    with pytest.raises(RecordError, match="PMID"):
        pubmed.parse_record(record)
    assert "<PubmedArticle>" in pubmed.record_raw(record)


def test_records_are_detached_while_streaming(tmp_path: Path) -> None:
    """Once the caller lets go of a record, the parse tree must not keep it alive (flat memory)."""
    path = efetch(tmp_path, *(article(str(n)) for n in range(1, 6)))
    earlier: list[weakref.ref[Element]] = []
    keys = []
    for record in pubmed.iter_records(path):
        assert [ref() for ref in earlier] == [None] * len(earlier)
        keys.append(pubmed.record_key(record))
        earlier.append(weakref.ref(record))
        del record
    assert keys == [f"PMID:{n}" for n in range(1, 6)]
    assert len(earlier) == 5


def test_wrong_root_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "esearch.xml"
    path.write_text("<eSearchResult><Count>1</Count></eSearchResult>", encoding="utf-8")
    with pytest.raises(SnapshotFormatError, match="eSearchResult"):
        list(pubmed.iter_records(path))


def test_truncated_file_is_a_format_error(tmp_path: Path) -> None:
    path = efetch(tmp_path, article())
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(SnapshotFormatError, match="not well-formed"):
        list(pubmed.iter_records(path))


def test_external_entity_is_refused_without_reading_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    doctype = f'<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    record = article().replace("Kratom use among", "&xxe;")
    path = efetch(tmp_path, record, doctype=doctype)
    with pytest.raises(SnapshotFormatError, match="unsafe XML") as caught:
        list(pubmed.iter_records(path))
    assert "TOP-SECRET" not in str(caught.value)
    doctype = '<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    path = efetch(tmp_path, record, doctype=doctype)
    with pytest.raises(SnapshotFormatError, match="EntitiesForbidden"):
        list(pubmed.iter_records(path))


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    ]
    doctype = f"<!DOCTYPE PubmedArticleSet [{''.join(entities)}]>"
    record = article().replace("Kratom use among", "&lol9;")
    path = efetch(tmp_path, record, doctype=doctype)
    started = time.perf_counter()
    with pytest.raises(SnapshotFormatError, match="unsafe XML"):
        list(pubmed.iter_records(path))
    assert time.perf_counter() - started < 1.0


def test_real_doctype_with_public_dtd_parses(tmp_path: Path) -> None:
    path = efetch(tmp_path, article(), doctype=DOCTYPE)
    assert [pubmed.record_key(r) for r in pubmed.iter_records(path)] == ["PMID:100"]

"""Merging publications across sources: identifiers, chains, fuzzy titles, order independence."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest

from pipelines.normalize import dedup
from pipelines.normalize.dedup import (
    FUZZY_TITLE_THRESHOLD,
    Precedence,
    candidate_pairs,
    merge_publications,
    normalize_doi,
    normalize_openalex_id,
    normalize_pmcid,
    normalize_pmid,
    normalize_title,
)
from pipelines.sources import publication_precedence

PRECEDENCE = publication_precedence()
"""The registered literature sources' ranks: what the publications builder merges with."""


def row(source: str, **fields: Any) -> dict[str, Any]:
    """A source row with the given fields; publication_id built as the sources build it."""
    base: dict[str, Any] = {
        "pmid": None,
        "pmcid": None,
        "doi": None,
        "openalex_id": None,
        "title": None,
        "year": None,
        "publication_types": [],
        "mesh_terms": [],
        "keywords": [],
        "is_retracted": False,
        "sources": [source],
        "retracts": [],
        "retracted_by": [],
    }
    base.update(fields)
    if "publication_id" not in fields:
        if base["pmid"]:
            base["publication_id"] = f"PMID:{base['pmid']}"
        elif base["doi"]:
            base["publication_id"] = f"DOI:{base['doi'].lower()}"
        else:
            base["publication_id"] = f"OPENALEX:{base['openalex_id']}"
    return base


def test_identifier_normalisation() -> None:
    assert normalize_doi("https://doi.org/10.1097/ADM.0000000000000986") == (
        "10.1097/adm.0000000000000986"
    )
    assert normalize_doi("doi: 10.1/X") == "10.1/x"
    for resolver in ("https://www.doi.org/", "http://dx.doi.org/", "HTTPS://WWW.DOI.ORG/"):
        assert normalize_doi(f"{resolver}10.1002/HUP.2582") == "10.1002/hup.2582"
    assert normalize_doi("not a doi") is None
    assert normalize_pmcid("https://www.ncbi.nlm.nih.gov/pmc/articles/123/") == "PMC123"
    assert normalize_pmid("https://pubmed.ncbi.nlm.nih.gov/0032607084") == "32607084"
    assert normalize_openalex_id("https://openalex.org/w123") == "W123"


def test_chain_doi_then_pmid_is_one_work() -> None:
    a = row("crossref", doi="10.1/ABC", title="Crossref title", year=2020)
    b = row(
        "openalex",
        openalex_id="W9",
        doi="https://doi.org/10.1/abc",
        pmid="55",
        cited_by_count=7,
        is_open_access=True,
    )
    c = row(
        "pubmed",
        pmid="55",
        title="PubMed title.",
        year=2020,
        publication_types=["Journal Article"],
        publication_date=date(2020, 5, 1),
        publication_date_precision="month",
    )
    result = merge_publications([a, b, c], PRECEDENCE)
    (merged,) = result.publications
    assert merged["publication_id"] == "PMID:55"
    assert (merged["doi"], merged["openalex_id"]) == ("10.1/abc", "W9")
    assert merged["title"] == "PubMed title."
    assert merged["cited_by_count"] == 7 and merged["is_open_access"] is True
    assert merged["sources"] == ["crossref", "openalex", "pubmed"]
    assert merged["publication_date_precision"] == "month"
    assert result.id_map["DOI:10.1/abc"] == "PMID:55"
    assert result.id_map["OPENALEX:W9"] == "PMID:55"
    assert result.stats.records_in == 3 and result.stats.clusters == 1
    assert result.stats.merged == 2


def test_www_doi_resolver_url_merges_with_the_bare_doi() -> None:
    a = row("crossref", doi="10.1002/hup.2582", title="Crossref title", year=2017)
    b = row("openalex", openalex_id="W7", doi="https://www.doi.org/10.1002/HUP.2582")
    result = merge_publications([a, b], PRECEDENCE)
    (merged,) = result.publications
    assert merged["publication_id"] == "DOI:10.1002/hup.2582"
    assert merged["openalex_id"] == "W7" and merged["sources"] == ["crossref", "openalex"]
    assert result.id_map["OPENALEX:W7"] == "DOI:10.1002/hup.2582"


def test_records_sharing_only_a_pmcid_are_one_work() -> None:
    """Europe PMC gives a PMCID and DOI, OpenAlex only the PMCID (as a URL): one work."""
    a = row("europepmc", pmcid="PMC7309661", doi="10.1/x", title="EPMC title", year=2020)
    b = row(
        "openalex",
        openalex_id="W3",
        pmcid="https://www.ncbi.nlm.nih.gov/pmc/articles/PMC7309661",
        title="A quite different title from another source",
        year=2021,
    )
    result = merge_publications([a, b], PRECEDENCE)
    (merged,) = result.publications
    assert merged["publication_id"] == "DOI:10.1/x"
    assert (merged["pmcid"], merged["openalex_id"]) == ("PMC7309661", "W3")
    assert merged["sources"] == ["europepmc", "openalex"]
    assert result.stats.fuzzy_merges == 0 and result.stats.merged == 1
    assert result.id_map["PMCID:PMC7309661"] == "DOI:10.1/x"


def test_same_result_in_any_input_order() -> None:
    rows = [
        row("crossref", doi="10.1/a", title="Kratom use in the United States", year=2021),
        row("openalex", openalex_id="W1", doi="10.1/A", pmid="1", cited_by_count=3),
        row("pubmed", pmid="1", pmcid="PMC5", title="Kratom use in the US.", year=2021),
        row("europepmc", pmid="1", pmcid="PMC5", title="EPMC title", year=2021),
        row("crossref", doi="10.2/b", title="Mitragynine pharmacokinetics in humans", year=2019),
        row(
            "openalex", openalex_id="W2", title="Mitragynine pharmacokinetics in humans.", year=2019
        ),
        row("pubmed", pmid="2", title="A case of kratom withdrawal", year=2018),
    ]
    first = merge_publications(rows, PRECEDENCE)
    orders = [*itertools.islice(itertools.permutations(rows), 0, None, 37), rows[::-1]]
    for permutation in orders:
        again = merge_publications(list(permutation), PRECEDENCE)
        assert again.publications == first.publications
        assert again.id_map == first.id_map
    assert [p["publication_id"] for p in first.publications] == ["DOI:10.2/b", "PMID:1", "PMID:2"]


def test_fuzzy_title_match_only_without_shared_or_conflicting_ids() -> None:
    assert 0.8 < FUZZY_TITLE_THRESHOLD < 1
    same = [
        row(
            "crossref", doi="10.9/x", title="Kratom (Mitragyna speciosa) use in Malaysia", year=2017
        ),
        row(
            "openalex",
            openalex_id="W7",
            title="Kratom (Mitragyna speciosa) Use in Malaysia.",
            year=2017,
        ),
    ]
    assert len(merge_publications(same, PRECEDENCE).publications) == 1
    other_year = [same[0], {**same[1], "year": 2018}]
    assert len(merge_publications(other_year, PRECEDENCE).publications) == 2
    two_dois = [same[0], row("crossref", doi="10.9/y", title=same[0]["title"], year=2017)]
    assert len(merge_publications(two_dois, PRECEDENCE).publications) == 2


def test_different_titles_stay_apart() -> None:
    rows = [
        row("pubmed", pmid="1", title="Mitragynine binding at mu opioid receptors", year=2020),
        row(
            "crossref",
            doi="10.1/q",
            title="7-hydroxymitragynine binding at kappa receptors",
            year=2020,
        ),
    ]
    assert len(merge_publications(rows, PRECEDENCE).publications) == 2


def test_retraction_notice_marks_its_target() -> None:
    original = row("crossref", doi="10.1/orig", title="Original", year=2019)
    notice = row(
        "pubmed", pmid="9", title="Retraction notice", year=2020, retracts=["DOI:10.1/ORIG"]
    )
    pubmed_copy = row("pubmed", pmid="8", doi="10.1/orig")
    result = merge_publications([original, notice, pubmed_copy], PRECEDENCE)
    by_id = {p["publication_id"]: p for p in result.publications}
    assert by_id["PMID:8"]["is_retracted"] is True
    assert by_id["PMID:9"]["is_retracted"] is False
    assert by_id["PMID:9"]["retracts"] == ["PMID:8"]


def test_retraction_links_are_rewritten_to_final_ids() -> None:
    original = row("pubmed", pmid="8", doi="10.1/orig")
    notice = row("crossref", doi="10.1/notice", retracts=["DOI:10.1/orig"])
    by_id = {
        p["publication_id"]: p
        for p in merge_publications([original, notice], PRECEDENCE).publications
    }
    assert by_id["DOI:10.1/notice"]["retracts"] == ["PMID:8"]
    assert by_id["PMID:8"]["is_retracted"] is True


def test_any_source_saying_retracted_wins() -> None:
    rows = [row("pubmed", pmid="3"), row("openalex", openalex_id="W3", pmid="3", is_retracted=True)]
    (merged,) = merge_publications(rows, PRECEDENCE).publications
    assert merged["is_retracted"] is True


def test_lists_are_never_none_and_records_without_ids_are_set_aside() -> None:
    rows = [row("crossref", doi="10.1/z", publication_types=None), {"title": "no id"}]
    result = merge_publications(rows, PRECEDENCE)
    (merged,) = result.publications
    assert merged["publication_types"] == [] and merged["mesh_terms"] == []
    assert [r["title"] for r in result.unidentified] == ["no id"]


def test_registered_sources_rank_pubmed_first_for_fields_and_openalex_first_for_metrics() -> None:
    """The units' ranks give the order the bundled release was built with."""
    assert PRECEDENCE.bibliographic == ("pubmed", "europepmc", "crossref", "openalex")
    assert PRECEDENCE.metrics == ("openalex", "europepmc", "crossref", "pubmed")


def test_a_field_comes_from_the_first_source_of_the_precedence_given() -> None:
    a = row("crossref", doi="10.1/z", title="Crossref title", cited_by_count=1)
    b = row("openalex", openalex_id="W4", doi="10.1/z", title="OpenAlex title", cited_by_count=9)
    flipped = Precedence(bibliographic=("openalex", "crossref"), metrics=("crossref", "openalex"))
    (merged,) = merge_publications([a, b], flipped).publications
    assert (merged["title"], merged["cited_by_count"]) == ("OpenAlex title", 1)
    (merged,) = merge_publications([a, b], PRECEDENCE).publications
    assert (merged["title"], merged["cited_by_count"]) == ("Crossref title", 9)


# --- blocking the fuzzy title step --------------------------------------------------------------

VARIANTS = [
    # Made-up titles, each with a form another source could give the same work.
    (
        "Mitragynine binding at mu opioid receptors in rat brain membranes",
        "Mitragynine binding at <i>mu</i> opioid receptors in rat brain membranes.",
    ),
    (
        "Behavioural effects of kratom leaf extract in randomised adult mice",
        "Behavioral effects of kratom leaf extract in randomized adult mice",
    ),
    (
        "The alkaloid profile of commercial kratom products sold online",
        "Alkaloid profile of commercial kratom products sold onlines",
    ),
    (
        "Kratom use and withdrawal symptoms among adults in a national survey",
        "Kratom use and withdrawal symptoms among adults in national survey",
    ),
    (
        "Pharmacokinetics of oral mitragynine in healthy volunteers after single doses",
        "Pharmacokinetics of oral mitragynine in healthy volunteers after a single dose",
    ),
]


def _synthetic_titles(count: int, seed: int) -> list[str]:
    """Distinct made-up titles of 6-12 words, many sharing their first and last words."""
    rng = random.Random(seed)
    words = [f"{rng.choice('bdklmprst')}{rng.choice('aeiou')}{n:x}" for n in range(400)]
    starts = ["effects of", "kratom use in", "a review of"]
    titles: set[str] = set()
    while len(titles) < count:
        middle = " ".join(rng.choice(words) for _ in range(rng.randint(4, 10)))
        titles.add(f"{rng.choice(starts)} {middle} in adults")
    return sorted(titles)


def _all_pairs(titles: Sequence[str]) -> list[tuple[int, int]]:
    """The fuzzy step before blocking: every pair of a year's titles, in its loop order."""
    return list(itertools.combinations(range(len(titles)), 2))


def test_title_variants_of_one_work_are_candidates_among_many_titles() -> None:
    for original, variant in VARIANTS:
        pair = [normalize_title(original), normalize_title(variant)]
        titles = sorted(set(_synthetic_titles(400, seed=len(original)) + pair))
        candidates = candidate_pairs(titles)
        assert (titles.index(min(pair)), titles.index(max(pair))) in candidates, pair
        assert candidates == sorted(set(candidates))
        assert len(candidates) < 15 * len(titles)  # all pairs: 200 per title


def test_blocked_merge_equals_the_all_pairs_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pair the all-pairs loop merged is merged with blocking too, conflicts included."""
    rows = [
        row("crossref", doi=f"10.7/{n}", title=title, year=2020)
        for n, title in enumerate(_synthetic_titles(300, seed=7))
    ]
    for n, (original, variant) in enumerate(VARIANTS):
        rows.append(row("pubmed", pmid=str(900 + n), title=original, year=2021))
        rows.append(row("openalex", openalex_id=f"W9{n}", title=variant, year=2021))
        rows.append(row("crossref", doi=f"10.8/{n}", title=variant, year=2021))  # conflicts
    blocked = merge_publications(rows, PRECEDENCE)
    monkeypatch.setattr(dedup, "candidate_pairs", _all_pairs)
    every_pair = merge_publications(rows, PRECEDENCE)
    assert blocked.stats.fuzzy_merges == every_pair.stats.fuzzy_merges >= len(VARIANTS)
    assert blocked.publications == every_pair.publications
    assert blocked.id_map == every_pair.id_map

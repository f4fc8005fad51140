"""The shared matching engine: normalisation, spelling variants, word boundaries, overlaps."""

from __future__ import annotations

import pytest

from pipelines.normalize.lexicon import Lexicon, hyphen_words, normalize, split_terms


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.build(
        [
            ("7-oh", "7-hydroxymitragynine"),
            ("7-oh", "7-OH"),
            ("mg", "mitragynine"),
            ("mg", "MG001"),
            ("mgp", "mitragynine pseudoindoxyl"),
            ("uds", "urine drug screen"),
            ("auc", "AUC"),
        ]
    )


def test_normalize_spells_greek_and_collapses_separators() -> None:
    assert normalize("7α-Hydroxy–Mitragynine (µ-opioid)") == "7 alpha hydroxy mitragynine mu opioid"


def test_normalize_splits_letter_then_digit() -> None:
    assert normalize("AUC0-inf") == "auc 0 inf"
    assert normalize("MG001") == "mg 001"


@pytest.mark.parametrize(
    "text",
    [
        "7-hydroxymitragynine",
        "7-Hydroxy Mitragynine",
        "7 hydroxy-mitragynine",
        "7α-hydroxymitragynine",
        "7alpha-hydroxymitragynine",
        "7-OH",
        "7OH",
        "7 oh",
    ],
)
def test_hyphen_space_and_greek_variants_match(lexicon: Lexicon, text: str) -> None:
    assert lexicon.keys(text) == ["7-oh"]


def test_word_boundaries_refuse_partial_words(lexicon: Lexicon) -> None:
    assert lexicon.keys("27-OH cholesterol") == []
    assert lexicon.keys("7-OHx") == []
    assert lexicon.keys("premitragynines-like") == []


def test_case_insensitive(lexicon: Lexicon) -> None:
    assert lexicon.keys("MITRAGYNINE") == ["mg"]


def test_longest_overlapping_match_wins(lexicon: Lexicon) -> None:
    assert lexicon.keys("mitragynine pseudoindoxyl") == ["mgp"]
    assert lexicon.keys("mitragynine and mitragynine pseudoindoxyl") == ["mg", "mgp"]


def test_keys_in_order_of_first_appearance(lexicon: Lexicon) -> None:
    assert lexicon.keys("MG001 then 7-OH then mitragynine") == ["mg", "7-oh"]


def test_plural_of_a_term_matches(lexicon: Lexicon) -> None:
    assert lexicon.keys("opioid-negative urine drug screens") == ["uds"]


def test_term_followed_by_subscript_matches(lexicon: Lexicon) -> None:
    assert lexicon.keys("AUC0-24h of oxycodone") == ["auc"]


def test_term_claimed_by_two_keys_is_an_error() -> None:
    with pytest.raises(ValueError, match="claimed by both"):
        Lexicon.build([("a", "ketum"), ("b", "Ketum")])


def test_split_terms_drops_blanks() -> None:
    assert split_terms(" a; ;b ;") == ["a", "b"]
    assert split_terms(None) == []


def test_hyphen_words_remember_which_normalised_words_were_one() -> None:
    assert hyphen_words("7-OH-DPAT (agonist)") == ("7 oh dpat agonist", ((0, 9), (10, 17)))
    assert hyphen_words("AUC0-inf / Cmax")[0] == normalize("AUC0-inf / Cmax")


def test_short_term_matches_only_a_whole_hyphen_joined_word() -> None:
    guarded = Lexicon.build([("7-oh", "7-OH"), ("7-oh", "7-OH-MG")], whole_word_max=4)
    assert guarded.keys("7-OH-DPAT") == []
    assert guarded.keys("7OH-coumarin") == []
    assert guarded.keys("pre-7-OH") == []
    assert guarded.keys("products sold as 7-OH, 10 mg") == ["7-oh"]
    assert guarded.keys("7-OH-MG") == ["7-oh"]
    unguarded = Lexicon.build([("7-oh", "7-OH")])
    assert unguarded.keys("7-OH-DPAT") == ["7-oh"]


def test_context_bound_term_needs_its_context_in_the_text() -> None:
    lexicon = Lexicon.build(
        [("kratom", "kratom"), ("kratom", "thang")], contexts={"thang": ["kratom", "leaf"]}
    )
    assert lexicon.keys("Thang Long University") == []
    assert lexicon.keys("thang leaf") == ["kratom"]
    assert [m.term for m in lexicon.find("thang (kratom)")] == ["thang", "kratom"]


def test_context_for_an_unknown_term_or_without_terms_is_an_error() -> None:
    with pytest.raises(ValueError, match="context for"):
        Lexicon.build([("kratom", "kratom")], contexts={"thang": ["kratom"]})
    with pytest.raises(ValueError, match="context for"):
        Lexicon.build([("kratom", "thang")], contexts={"thang": [" "]})

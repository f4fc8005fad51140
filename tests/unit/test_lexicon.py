"""The shared matching engine: normalisation, spelling variants, word boundaries, overlaps."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pipelines.normalize.compounds import load_compound_lexicon, load_product_form_rules
from pipelines.normalize.conditions import load_condition_lexicon
from pipelines.normalize.dosing import load_dosing_terms
from pipelines.normalize.lexicon import (
    CHEMICAL_PREFIXES,
    Lexicon,
    hyphen_words,
    normalize,
    required_literal,
    split_terms,
)
from pipelines.normalize.literature_conditions import load_addiction_lexicon
from pipelines.normalize.literature_domains import load_literature_domains
from pipelines.normalize.outcomes import load_instrument_lexicon
from pipelines.paths import REFERENCE_DIR


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


def _spelling_variants(term: str) -> set[str]:
    """Spellings of `term` its pattern is meant to accept: as normalised, with no spaces, with a
    space after each chemical prefix, a stereo descriptor after each number, a plural."""
    norm = normalize(term)
    spaced = re.sub(rf"({'|'.join(CHEMICAL_PREFIXES)})(?=[a-z]{{4}})", r"\1 ", norm)
    stereo = re.sub(r"(\d+)", r"\1alpha ", norm)
    bases = {norm, norm.replace(" ", ""), spaced, spaced.replace(" ", ""), stereo}
    return {f"x {base}{ending} x" for base in bases for ending in ("", "s", "es")}


def test_every_reference_term_holds_its_literal_in_each_spelling_it_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A term's pattern is tried only on texts holding its `literal` (`Lexicon.find`): across
    every lexicon the bundled reference data build, no spelling the pattern matches lacks it."""
    built: list[Lexicon] = []
    build = Lexicon.build.__func__  # type: ignore[attr-defined]

    def recording(cls: type[Lexicon], *args: Any, **kwargs: Any) -> Lexicon:
        lexicon = build(cls, *args, **kwargs)
        built.append(lexicon)
        return lexicon

    monkeypatch.setattr(Lexicon, "build", classmethod(recording))
    load_compound_lexicon(REFERENCE_DIR)
    load_product_form_rules(REFERENCE_DIR)
    load_instrument_lexicon(REFERENCE_DIR)
    load_condition_lexicon(REFERENCE_DIR)
    load_addiction_lexicon(REFERENCE_DIR)
    load_literature_domains(REFERENCE_DIR)
    load_dosing_terms(REFERENCE_DIR)
    terms = {term for lexicon in built for _, term in lexicon.entries}
    assert len(terms) > 500
    matched = 0
    for term in terms:
        assert term.pattern.search(f"x {normalize(term.text)} x"), term  # itself, as written
        for variant in _spelling_variants(term.text):
            if term.pattern.search(variant):
                matched += 1
                assert term.literal in variant, (term, variant)
    assert matched > 3 * len(terms)


def test_a_terms_literal_is_its_longest_part_a_match_holds_whole() -> None:
    assert required_literal("7-hydroxymitragynine") == "mitragynine"  # "hydroxy" may be apart
    assert required_literal("Mitragyna speciosa") == "mitragyna"
    assert required_literal("MG001") == "001"  # "mg 001": the letters end a word of their own
    assert required_literal("isorhynchophylline") == "rhynchophylline"

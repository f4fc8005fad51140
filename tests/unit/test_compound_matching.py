"""Compound vocabulary: matching free text to compound ids, product forms, reference rows."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from pipelines.normalize.compounds import (
    CompoundLexicon,
    curated_study_compounds,
    load_compound_lexicon,
    product_form,
    reference_compound_rows,
    reference_target_rows,
)
from pipelines.paths import PROJECT_ROOT, REFERENCE_DIR
from schemas.compounds import Compound, CompoundTarget

FACTS = PROJECT_ROOT.parent / "shared" / "facts" / "compounds.csv"


@pytest.fixture(scope="module")
def lexicon() -> CompoundLexicon:
    return load_compound_lexicon(REFERENCE_DIR)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7-OH-mitragynine", ["7-hydroxymitragynine"]),
        ("7-hydroxy mitragynine", ["7-hydroxymitragynine"]),
        ("7α-hydroxymitragynine", ["7-hydroxymitragynine"]),
        ("7-OH-MG", ["7-hydroxymitragynine"]),
        ("Mitragyna speciosa (ketum) leaves", ["kratom"]),
        ("kakuam, biak and thang", ["kratom"]),
        ("9-demethoxy mitragynine", ["corynantheidine"]),
        ("mitragynine pseudoindoxyl", ["mitragynine-pseudoindoxyl"]),
        ("Buprenorphine/naloxone (Suboxone)", ["buprenorphine", "naloxone"]),
        ("Drug: mitragynine (MG001)", ["mitragynine"]),
    ],
)
def test_match_variants(lexicon: CompoundLexicon, text: str, expected: list[str]) -> None:
    assert lexicon.match(text) == expected


def test_ambiguous_mg_alone_is_refused(lexicon: CompoundLexicon) -> None:
    assert lexicon.match("MG 20 mg capsules") == []
    assert lexicon.match("MG001 20 mg") == ["mitragynine"]


@pytest.mark.parametrize(
    "text", ["7-OH-DPAT", "7-OH-CBD", "7-OH-coumarin", "7-OH-chlorpromazine", "7-HMG-CoA"]
)
def test_short_synonym_as_prefix_of_another_chemical_name_is_refused(
    lexicon: CompoundLexicon, text: str
) -> None:
    assert lexicon.match(text) == []


def test_short_synonym_alone_in_a_kratom_sentence_matches(lexicon: CompoundLexicon) -> None:
    assert lexicon.match("kratom products sold as 7-OH tablets") == [
        "kratom",
        "7-hydroxymitragynine",
    ]
    assert lexicon.primary("Drug: 7-OH") == "7-hydroxymitragynine"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thang Long University", []),
        ("Biak island, Papua", []),
        ("thang leaves (kratom)", ["kratom"]),
        ("biak-biak, the Mitragyna speciosa of southern Thailand", ["kratom"]),
    ],
)
def test_vernacular_name_that_is_a_common_word_needs_kratom_context(
    lexicon: CompoundLexicon, text: str, expected: list[str]
) -> None:
    assert lexicon.match(text) == expected


def test_context_bound_terms_are_names_of_their_row() -> None:
    with (REFERENCE_DIR / "compounds.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            names = {t.strip().lower() for t in row["curated_synonyms"].split(";")}
            names |= {t.strip().lower() for t in row["synonyms"].split(";")}
            for term in filter(None, row["needs_context"].split(";")):
                assert term.strip().lower() in names, (row["compound_id"], term)
                assert row["context_terms"] and row["context_source"], row["compound_id"]


def test_generic_kratom_alkaloid_is_not_mitragynine(lexicon: CompoundLexicon) -> None:
    assert lexicon.match("total kratom alkaloid content") == ["kratom"]


def test_primary_prefers_first_kratom_compound(lexicon: CompoundLexicon) -> None:
    assert lexicon.primary("oxycodone 10 mg after kratom tea") == "kratom"
    assert lexicon.primary("kratom tea + oxycodone") == "kratom"
    assert lexicon.primary("Mitragynine isolated from kratom") == "mitragynine"


def test_primary_without_kratom_is_first_named(lexicon: CompoundLexicon) -> None:
    assert lexicon.primary("Clonidine + Buprenorphine") == "clonidine"
    assert lexicon.primary("Cognitive behavioral therapy") is None


def test_placebo_that_names_a_drug_gives_no_compound(lexicon: CompoundLexicon) -> None:
    assert lexicon.primary("oral placebo naltrexone") is None
    assert lexicon.primary("Placebo kratom tea") is None
    assert lexicon.product_form("oral placebo naltrexone", "DRUG", None) == "placebo"


@pytest.mark.parametrize(
    ("name", "compound", "form"),
    [
        ("Placebo tea", None, "placebo"),
        ("kratom tea 2 g", "kratom", "tea"),
        ("Kratom leaf powder capsules", "kratom", "powder"),
        ("Dried kratom leaves", "kratom", "leaf"),
        ("Standardized kratom extract", "kratom", "extract"),
        ("Ketum (Kratom)", "kratom", "other"),
        ("Mitragynine capsule 20 mg", "mitragynine", "purified_alkaloid"),
        ("midazolam HCl 2.5 mg", "midazolam", "comparator"),
        ("Contingency management", None, "other"),
    ],
)
def test_product_form(name: str, compound: str | None, form: str) -> None:
    assert product_form(name, None, compound) == form


def test_by_chembl_id_and_cid(lexicon: CompoundLexicon) -> None:
    assert lexicon.by_chembl_id("CHEMBL299031") == "mitragynine"
    assert lexicon.by_pubchem_cid(44301524) == "7-hydroxymitragynine"
    assert lexicon.by_chembl_id("CHEMBL25") is None


def test_reference_rows_validate_against_schema() -> None:
    frame = pd.DataFrame(reference_compound_rows(REFERENCE_DIR))
    Compound.validate(frame, lazy=True)
    assert {"kratom", "mitragynine", "placebo"} & set(frame["compound_id"]) == {
        "kratom",
        "mitragynine",
    }


def test_reference_target_rows_validate_and_keep_the_as_printed_flag() -> None:
    rows = reference_target_rows(REFERENCE_DIR)
    CompoundTarget.validate(pd.DataFrame(rows), lazy=True)
    as_printed = {(r["compound_id"], r["value"]) for r in rows if "as printed" in r["source_id"]}
    assert as_printed == {("mitragynine", 77.9), ("7-hydroxymitragynine", 709.0)}
    flagged = {(r["compound_id"], r["value"]) for r in rows if r["flag"] == "as_printed_conflict"}
    assert flagged == as_printed
    assert all(r["source_url"] and r["source_url"].startswith("https://") for r in rows)


def test_curated_targets_claim_no_organism_their_source_does_not_state() -> None:
    rows = reference_target_rows(REFERENCE_DIR)
    for row in rows:
        says_human = "human" in row["source_id"]
        assert row["assay_organism"] == ("Homo sapiens" if says_human else None), row
        expected = "curated_exact" if says_human else "curated_stand_in"
        assert row["target_id_source"] == expected, row
    assert {r["target_id_source"] for r in rows} == {"curated_exact", "curated_stand_in"}


def test_curated_target_without_an_id_mapping_is_an_error(tmp_path: Path) -> None:
    for name in ("compound_targets.csv", "target_ids.csv"):
        (tmp_path / name).write_text((REFERENCE_DIR / name).read_text(encoding="utf-8"))
    with (tmp_path / "compound_targets.csv").open("a", encoding="utf-8") as handle:
        handle.write("mitragynine,Ki,test,Kappa opioid receptor,=,1,nM,,Rattus norvegicus,,,,\n")
    with pytest.raises(ValueError, match="Kappa opioid receptor"):
        reference_target_rows(tmp_path)


def test_every_facts_compound_carries_exactly_the_facts_identifiers() -> None:
    if not FACTS.is_file():
        pytest.skip("shared facts not available")
    with FACTS.open(newline="", encoding="utf-8") as handle:
        facts = list(csv.DictReader(handle))
    rows = {r["name"]: r for r in reference_compound_rows(REFERENCE_DIR)}
    pairs = {
        "pubchem_cid": "pubchem_cid",
        "inchikey": "inchikey",
        "molecular_formula": "molecular_formula",
        "molecular_weight": "molecular_weight",
        "smiles": "canonical_smiles",
        "chembl_id": "chembl_id",
        "cas": "cas",
        "unii": "unii",
    }
    for fact in facts:
        row = rows[fact["name"]]
        for ours, theirs in pairs.items():
            value = fact[theirs].strip()
            got = row[ours]
            if ours == "pubchem_cid":
                assert got == (int(value) if value else None), (fact["name"], ours)
            elif ours == "molecular_weight":
                assert got == (float(value) if value else None), (fact["name"], ours)
            else:
                assert got == (value or None), (fact["name"], ours)


def test_compounds_not_in_facts_carry_no_identifiers() -> None:
    if not FACTS.is_file():
        pytest.skip("shared facts not available")
    with FACTS.open(newline="", encoding="utf-8") as handle:
        names = {r["name"] for r in csv.DictReader(handle)}
    for row in reference_compound_rows(REFERENCE_DIR):
        if row["name"] not in names:
            assert row["pubchem_cid"] is None and row["inchikey"] is None, row["compound_id"]
            assert row["chembl_id"] is None and row["cas"] is None, row["compound_id"]


def _reference_csv() -> list[dict[str, str]]:
    with (REFERENCE_DIR / "compounds.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _clean(synonym: str) -> str:
    """The facts' synonym without a trailing remark ("corynoxine B (isomer)" -> "corynoxine B")."""
    synonym = synonym.strip()
    return synonym.rsplit(" (", 1)[0] if synonym.endswith(")") else synonym


def test_synonyms_column_holds_only_the_facts_synonyms() -> None:
    if not FACTS.is_file():
        pytest.skip("shared facts not available")
    with FACTS.open(newline="", encoding="utf-8") as handle:
        facts = {r["name"]: r["synonyms"] for r in csv.DictReader(handle)}
    for row in _reference_csv():
        ours = [s.strip() for s in row["synonyms"].split(";") if s.strip()]
        theirs = {_clean(s).lower() for s in facts.get(row["name"], "").split(";")}
        assert all(s.lower() in theirs for s in ours), row["compound_id"]


def test_curated_synonyms_carry_their_own_source() -> None:
    for row in _reference_csv():
        if not row["curated_synonyms"].strip():
            continue
        source = row["curated_synonyms_source"]
        assert source.startswith("curated"), row["compound_id"]
        assert "shared/facts" in source or row["compound_id"] not in FACT_NAMES, row
    rows = {r["compound_id"]: r for r in reference_compound_rows(REFERENCE_DIR)}
    buprenorphine = rows["buprenorphine"]
    assert "Suboxone" in buprenorphine["curated_synonyms"]
    assert set(buprenorphine["curated_synonyms"]) <= set(buprenorphine["synonyms"])
    assert buprenorphine["curated_synonyms_source"].startswith("curated brand names")
    assert rows["mitragynine"]["curated_synonyms"] == ["MG001", "mitragynin"]
    assert rows["speciogynine"]["curated_synonyms_source"] is None


FACT_NAMES = {
    "mitragynine",
    "7-hydroxymitragynine",
    "morphine",
    "buprenorphine",
    "methadone",
    "naloxone",
    "oxycodone",
}
"""Facts compounds that have curated synonyms: their note must say they are not from the facts."""


def test_curated_study_compounds_name_known_compounds_and_facts_studies() -> None:
    links = curated_study_compounds(REFERENCE_DIR)
    assert ("NCT05812001", "kratom") in links and ("NCT07218549", "kratom") in links
    with (REFERENCE_DIR / "compounds.csv").open(newline="", encoding="utf-8") as handle:
        compounds = {row["compound_id"] for row in csv.DictReader(handle)}
    assert {c for _, c in links} <= compounds
    facts = PROJECT_ROOT.parent / "shared" / "facts" / "registered_studies.csv"
    if not facts.is_file():
        pytest.skip("../shared/facts is absent")
    with facts.open(newline="", encoding="utf-8") as handle:
        registered = {row["registry_id"]: row for row in csv.DictReader(handle)}
    for study_id, _ in links:
        assert "intervention search 'kratom'" in registered[study_id]["source_url"], study_id


def test_curated_study_compound_without_a_source_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "study_compounds.csv").write_text(
        "study_id,compound_id,source\nNCT05812001,kratom,\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="without a source"):
        curated_study_compounds(tmp_path)

"""Typing the curated evidence rows: compounds, vocabularies, units, pages, and refusals."""

from __future__ import annotations

import csv
import re
from datetime import date

import pandas as pd
import pandera.errors
import pytest

from pipelines.normalize.evidence_tables import (
    EVIDENCE_BY_NAME,
    EVIDENCE_TABLES,
    EvidenceVocabulary,
    build_table,
    composition_row,
    interaction_row,
    load_vocabulary,
    name_head,
    period_bounds,
    publication_references,
    publication_stub,
    read_rows,
    resolve_publication,
    safety_row,
    unit_head,
)
from pipelines.paths import PROJECT_ROOT, REFERENCE_DIR
from schemas import vocab
from schemas.evidence_tables import InteractionEffect, ProductComposition, SafetySignal

FACTS = PROJECT_ROOT.parent / "shared" / "facts"
MODELS = {
    "product_composition": ProductComposition,
    "interaction_effects": InteractionEffect,
    "safety_signals": SafetySignal,
}


@pytest.fixture(scope="module")
def vocabulary() -> EvidenceVocabulary:
    return load_vocabulary(REFERENCE_DIR)


def _row(table: str, key: str) -> dict[str, str]:
    spec = EVIDENCE_BY_NAME[table]
    (found,) = [r for r in read_rows(REFERENCE_DIR, spec) if r[spec.key] == key]
    return dict(found)


def test_unit_head_drops_dispersion_notes_and_assay_context() -> None:
    assert unit_head("μM (± 5.95), rat liver microsomes") == "μM"
    assert unit_head("mg per g dried leaf powder (mean ± SD)") == "mg per g dried leaf powder"
    assert unit_head("mg/g (mean ± SD range 13.9 ± 1.1 to 270 ± 24)") == "mg/g"
    assert unit_head("µM (± 4.48), human liver microsomes") == "μM"  # micro sign folded to mu
    meaning = "% (of product alkaloid content, as stated)"
    assert unit_head(meaning) == meaning


def test_name_head_is_the_name_before_a_parenthesis() -> None:
    assert name_head("kratom tea (leaf powder K51)") == "kratom tea"
    assert name_head("midazolam 2.5 mg oral") == "midazolam 2.5 mg oral"


def test_period_bounds_by_precision() -> None:
    assert period_bounds("2016-07 to 2017-12") == (date(2016, 7, 1), date(2017, 12, 31))
    assert period_bounds("2015 (vs 26 in 2010)") == (date(2015, 1, 1), date(2015, 12, 31))
    assert period_bounds("2016-01 to 2020-06") == (date(2016, 1, 1), date(2020, 6, 30))


def test_period_counted_to_date_has_no_end_and_words_have_no_dates() -> None:
    assert period_bounds("2025 (year to date at report)") == (date(2025, 1, 1), None)
    assert period_bounds("five-year period") == (None, None)
    assert period_bounds("") == (None, None)


def test_registry_text_names_map_to_compounds(vocabulary: EvidenceVocabulary) -> None:
    row = interaction_row(_row("interaction_effects", "ie-001"), vocabulary, {})
    assert row["perpetrator"] == "kratom tea (leaf powder K51)"
    assert row["perpetrator_compound_id"] == "kratom"
    assert row["victim"] == "midazolam 2.5 mg oral"
    assert row["victim_compound_id"] == "midazolam"
    assert (row["parameter"], row["value"], row["ci_low"], row["ci_high"]) == (
        "auc_ratio",
        1.39,
        1.23,
        1.57,
    )
    assert row["ci_level"] == 90.0
    assert row["study_id"] == "NCT04392011"


def test_an_enzyme_probe_names_no_victim(vocabulary: EvidenceVocabulary) -> None:
    row = interaction_row(_row("interaction_effects", "ie-025"), vocabulary, {})
    assert row["victim_compound_id"] is None
    assert row["unit_normalised"] == "mM"
    assert row["value_um"] == 450.0
    assert any("mM" in c for c in row["caveats"])


def test_percent_is_normalised_to_mg_per_g_and_printed_values_stay(
    vocabulary: EvidenceVocabulary,
) -> None:
    row = composition_row(_row("product_composition", "pc-001"), vocabulary, {})
    assert (row["value_low"], row["value_high"], row["unit"]) == (1.0, 6.0, "%")
    assert (row["value_low_mg_per_g"], row["value_high_mg_per_g"]) == (10.0, 60.0)
    below = composition_row(_row("product_composition", "pc-022"), vocabulary, {})
    assert (below["relation"], below["value"], below["value_printed"]) == ("<", 0.124, "<0.124")


def test_a_share_of_alkaloids_or_a_label_claim_is_not_a_mass_fraction(
    vocabulary: EvidenceVocabulary,
) -> None:
    share = composition_row(_row("product_composition", "pc-033"), vocabulary, {})
    assert share["unit_normalised"] == "% of alkaloids"
    assert share["value_high_mg_per_g"] is None
    label = composition_row(_row("product_composition", "pc-032"), vocabulary, {})
    assert label["value_high_mg_per_g"] is None
    assert "a label claim, not a measurement" in label["caveats"]


def test_detection_only_results(vocabulary: EvidenceVocabulary) -> None:
    found = composition_row(_row("product_composition", "pc-031"), vocabulary, {})
    missing = composition_row(_row("product_composition", "pc-007"), vocabulary, {})
    assert (found["detected"], found["value"]) == (True, None)
    assert missing["detected"] is False


def test_a_group_of_alkaloids_is_refused_with_a_reason(vocabulary: EvidenceVocabulary) -> None:
    spec = EVIDENCE_BY_NAME["product_composition"]
    built = build_table(spec, [_row("product_composition", "pc-027")], vocabulary, {})
    assert built.rows == []
    (reject,) = built.rejects
    assert reject.record_key == "pc-027"
    assert "names no single compound" in reject.reason


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("unit", "furlongs", "unit 'furlongs' is not mapped"),
        ("parameter", "AUC ratio of something new", "parameter 'AUC ratio of something new'"),
        ("source_url", "https://example.org/unknown", "has no source_kind"),
        ("value", "about 1.4", "is not a number"),
    ],
)
def test_wording_outside_the_vocabularies_is_refused(
    vocabulary: EvidenceVocabulary, column: str, value: str, reason: str
) -> None:
    raw = {**_row("interaction_effects", "ie-001"), column: value}
    built = build_table(EVIDENCE_BY_NAME["interaction_effects"], [raw], vocabulary, {})
    assert built.rows == []
    assert reason in built.rejects[0].reason


def test_the_most_specific_page_rule_gives_the_kind(vocabulary: EvidenceVocabulary) -> None:
    cited = interaction_row(_row("interaction_effects", "ie-016"), vocabulary, {})
    own = interaction_row(_row("interaction_effects", "ie-023"), vocabulary, {})
    assert cited["source_kind"] == "secondary_summary"
    assert own["source_kind"] == "peer_reviewed"
    assert own["caveats"] == []


def test_publication_resolves_to_the_merged_work_else_to_its_first_form() -> None:
    raw = {"study_pmid": "36924284", "study_doi": "10.1002/CPT.2891"}
    assert resolve_publication(raw, {}) == "PMID:36924284"
    assert resolve_publication(raw, {"DOI:10.1002/cpt.2891": "OPENALEX:W1"}) == "OPENALEX:W1"
    assert resolve_publication({"study_pmid": "", "study_doi": ""}, {}) is None


def test_a_stub_carries_only_its_identifiers() -> None:
    stub = publication_stub(("PMID:36924284", "DOI:10.1002/cpt.2891"))
    assert stub == {
        "publication_id": "PMID:36924284",
        "pmid": "36924284",
        "doi": "10.1002/cpt.2891",
        "sources": [],
        "is_stub": True,
        "is_retracted": False,
    }
    papers = {p.forms: p.file for p in publication_references(REFERENCE_DIR)}
    assert papers[("PMID:36924284", "DOI:10.1002/cpt.2891")] == "interaction_effects.csv"


def test_safety_compound_is_the_kratom_compound_named_else_kratom(
    vocabulary: EvidenceVocabulary,
) -> None:
    named = safety_row(_row("safety_signals", "ss-029"), vocabulary, {})
    unnamed = safety_row(_row("safety_signals", "ss-005"), vocabulary, {})
    assert named["compound_id"] == "mitragynine"
    assert unnamed["compound_id"] == "kratom"


@pytest.mark.parametrize("name", [t.name for t in EVIDENCE_TABLES])
def test_every_reference_row_is_typed_and_valid_or_refused(
    vocabulary: EvidenceVocabulary, name: str
) -> None:
    table = EVIDENCE_BY_NAME[name]
    raws = read_rows(REFERENCE_DIR, table)
    built = build_table(table, raws, vocabulary, {})
    assert len(built.rows) + len(built.rejects) == len(raws)
    assert all(r.reason for r in built.rejects)
    MODELS[table.name].validate(pd.DataFrame(built.rows), lazy=True)


def test_ranges_are_blocking_checks(vocabulary: EvidenceVocabulary) -> None:
    spec = EVIDENCE_BY_NAME["product_composition"]
    frame = pd.DataFrame(build_table(spec, read_rows(REFERENCE_DIR, spec), vocabulary, {}).rows)
    frame.loc[0, "value_high"] = 150.0  # a percentage above 100
    with pytest.raises(pandera.errors.SchemaErrors, match="percent_within_0_100"):
        ProductComposition.validate(frame, lazy=True)
    spec = EVIDENCE_BY_NAME["interaction_effects"]
    frame = pd.DataFrame(build_table(spec, read_rows(REFERENCE_DIR, spec), vocabulary, {}).rows)
    frame.loc[0, "ci_high"] = 1.2  # below the estimate 1.39
    with pytest.raises(pandera.errors.SchemaErrors, match="ci_low_le_value_le_ci_high"):
        InteractionEffect.validate(frame, lazy=True)


@pytest.mark.parametrize("name", [t.name for t in EVIDENCE_TABLES])
def test_reference_copy_keeps_every_facts_cell(name: str) -> None:
    table = EVIDENCE_BY_NAME[name]
    if not (FACTS / table.file).is_file():
        pytest.skip("../shared/facts is absent")
    with open(FACTS / table.file, newline="", encoding="utf-8") as handle:
        facts = list(csv.DictReader(handle))
    with open(REFERENCE_DIR / table.file, newline="", encoding="utf-8") as handle:
        copy = list(csv.DictReader(handle))
    assert [{k: v for k, v in r.items() if k != table.key} for r in copy] == facts
    assert all(r["source_url"] and r["quote"] for r in copy)


CONTRACT = PROJECT_ROOT.parent / "shared" / "CONTRACT.md"


def contract_columns(table: str) -> set[str]:
    """The columns CONTRACT §5 lists for `table` (parentheses, bold and 'and' removed)."""
    section = CONTRACT.read_text(encoding="utf-8").split("## 5.", 1)[1].split("\n## ", 1)[0]
    (line,) = [row for row in section.splitlines() if row.startswith(f"| {table} |")]
    cell = line.strip().strip("|").split("|")[1]
    while "(" in cell:
        cell = re.sub(r"\([^()]*\)", "", cell)
    names = re.split(r",| and ", cell.replace("*", ""))
    return {name.strip() for name in names if name.strip()}


@pytest.mark.parametrize("name", [t.name for t in EVIDENCE_TABLES])
def test_models_hold_every_column_the_contract_lists(name: str) -> None:
    if not CONTRACT.is_file():
        pytest.skip("../shared/CONTRACT.md is absent")
    listed = contract_columns(name)
    assert len(listed) >= 13
    assert listed <= set(MODELS[name].to_schema().columns)


def test_parameters_include_the_contract_examples() -> None:
    assert {"auc_ratio", "cmax_ratio", "half_life_ratio", "ic50", "ki", "kinact"} <= set(
        vocab.INTERACTION_PARAMETERS
    )

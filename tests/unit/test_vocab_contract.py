"""Every categorical value list of schemas/vocab.py, and publications.sources (the names of the
registered literature source units), equals the list CONTRACT §5 publishes.

Outside scripts check published values against the contract, so a value the contract does not
list (a fifth link_source, a sixth publication source) is a broken promise, not a detail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.sources import publication_sources
from schemas import vocab

CONTRACT = Path(__file__).resolve().parents[2].parent / "shared" / "CONTRACT.md"

EXPECTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("studies", "evidence_source"): vocab.EVIDENCE_SOURCES,
    ("studies", "population"): vocab.POPULATIONS,
    ("studies", "design"): vocab.DESIGNS,
    ("study_identifiers", "id_value"): vocab.ID_TYPES,  # the list follows the key columns
    ("conditions", "condition_category"): vocab.CONDITION_CATEGORIES,
    ("interventions", "product_form"): vocab.PRODUCT_FORMS,
    ("outcomes", "outcome_kind"): vocab.OUTCOME_KINDS,
    ("outcomes", "domain"): vocab.OUTCOME_DOMAINS,
    ("outcomes", "source"): vocab.OUTCOME_SOURCES,
    ("publications", "sources"): publication_sources(),  # the registered literature units
    ("study_publications", "link_type"): vocab.LINK_TYPES,
    ("study_publications", "link_source"): vocab.LINK_SOURCES,
    ("compounds", "role"): vocab.COMPOUND_ROLES,
    ("publication_compounds", "matched_in"): vocab.MATCHED_IN,
    ("interaction_effects", "setting"): vocab.INTERACTION_SETTINGS,
    ("adverse_events", "event_type"): vocab.ADVERSE_EVENT_TYPES,
    ("participant_flow", "kind"): vocab.FLOW_KINDS,
    ("outcome_changes", "status"): vocab.OUTCOME_CHANGE_STATUSES,
}

_VALUE_LIST = re.compile(r"(\w+)\*{0,2} \((?:list: )?([^()]*)\)")
_VALUE = re.compile(r"^[a-z][a-z0-9_]*$")


def contract_value_lists(text: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, column) -> values, from the §5 table: `col (a / b / c)` or `key** (a, b, c)`."""
    section = text.split("## 5.", 1)[1].split("\n## ", 1)[0]
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0] or set(cells[0]) <= {"-"}:
            continue
        table = cells[0].strip("*")
        for column, inner in _VALUE_LIST.findall(cells[1]):
            values = tuple(v.strip() for v in re.split(r" / |, ", inner))
            if len(values) > 1 and all(_VALUE.match(v) for v in values):
                found[(table, column)] = values
    return found


def test_vocab_lists_equal_the_contract_lists() -> None:
    if not CONTRACT.is_file():
        pytest.skip("../shared/CONTRACT.md is absent")
    published = contract_value_lists(CONTRACT.read_text(encoding="utf-8"))
    assert set(published) == set(EXPECTED)
    assert {key: set(values) for key, values in published.items()} == {
        key: set(values) for key, values in EXPECTED.items()
    }


def test_parser_reads_both_list_forms() -> None:
    text = (
        "## 5. Tables\n| table | columns |\n|---|---|\n"
        "| t | **a, b** (x, y_z), kind (p / q), free (COWS, …, nullable), ids (list) |\n"
        "## 6. Next\n| u | kind (r / s) |\n"
    )
    assert contract_value_lists(text) == {("t", "b"): ("x", "y_z"), ("t", "kind"): ("p", "q")}

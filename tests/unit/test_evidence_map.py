"""The evidence map: cells, participant sums, link kinds, unmeasured studies, determinism.

Its query runs in DuckDB over the frames below, registered as relations."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pandas as pd
import pytest

from pipelines.normalize.compounds import load_compound_lexicon
from pipelines.normalize.evidence_map import evidence_map, text_compound_links
from pipelines.paths import REFERENCE_DIR
from pipelines.rules import conform, enforce
from pipelines.warehouse import read_frame
from schemas import TABLES
from schemas.evidence import EvidenceMapCell

LINK_COLUMNS = ["study_id", "compound_id", "linked_by"]


def _relation(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> str:
    con.register(name, frame.reset_index(drop=True))
    return f"SELECT * FROM {name}"


def build_evidence_map(
    studies: pd.DataFrame,
    interventions: pd.DataFrame,
    outcomes: pd.DataFrame,
    links: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The map's query on these frames, read back as the model's columns in its types."""
    con = duckdb.connect()
    try:
        query = evidence_map(
            con,
            _relation(con, "s", studies),
            _relation(con, "i", interventions[["study_id", "compound_id"]]),
            _relation(con, "o", outcomes),
            None if links is None else _relation(con, "l", links[LINK_COLUMNS]),
        )
        frame = read_frame(con, query)
    finally:
        con.close()
    return EvidenceMapCell.validate(frame.drop(columns=["_source", "_source_file", "_seq"]))


def text_links(
    studies: pd.DataFrame, conditions: pd.DataFrame, match: Callable[[str], list[str]]
) -> pd.DataFrame:
    """The text links of these registered studies' titles and conditions, read back."""
    con = duckdb.connect()
    try:
        texts = _relation(
            con,
            "t",
            pd.concat(
                [
                    *(
                        studies[["study_id", c]].rename(columns={c: "text"}).assign(linked_by=c)
                        for c in ("title", "official_title")
                    ),
                    conditions.rename(columns={"condition": "text"}).assign(linked_by="condition"),
                ],
                ignore_index=True,
            ),
        )
        return read_frame(con, text_compound_links(con, texts, match))
    finally:
        con.close()


def _studies() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study_id": ["NCT1", "NCT2", "NCT3", "PMID:9"],
            "design": ["rct", "rct", "observational", "case_report"],
            "enrollment": pd.array([40, 20, None, 1], dtype="Int64"),
            "long_term": pd.array([None, None, None, None], dtype="boolean"),
        }
    )


def _interventions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study_id": ["NCT1", "NCT1", "NCT2", "NCT2", "NCT3", "NCT_UNKNOWN"],
            "intervention_name": ["Kratom", "Placebo", "kratom tea", "oxycodone", "k", "k"],
            "compound_id": ["kratom", None, "kratom", "oxycodone", "kratom", "kratom"],
        }
    )


def _outcomes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study_id": ["NCT1", "NCT1", "NCT2", "NCT2"],
            "domain": ["pharmacokinetics", "pharmacokinetics", "pharmacokinetics", "physiology"],
        }
    )


def _cell(frame: pd.DataFrame, compound: str, domain: str, design: str) -> pd.Series:
    hit = frame[
        (frame.compound_id == compound) & (frame.domain == domain) & (frame.design == design)
    ]
    assert len(hit) == 1, (compound, domain, design)
    return hit.iloc[0]


def test_cells_count_studies_and_sum_enrollment() -> None:
    result = build_evidence_map(_studies(), _interventions(), _outcomes())
    EvidenceMapCell.validate(result, lazy=True)
    cell = _cell(result, "kratom", "pharmacokinetics", "rct")
    assert cell.studies == 2
    assert cell.participants == 60
    assert cell.study_ids == ["NCT1", "NCT2"]
    assert _cell(result, "oxycodone", "physiology", "rct").study_ids == ["NCT2"]


def test_study_without_outcomes_counts_under_other_and_is_named_unmeasured() -> None:
    result = build_evidence_map(_studies(), _interventions(), _outcomes())
    cell = _cell(result, "kratom", "other", "observational")
    assert cell.study_ids == ["NCT3"]
    assert cell.unmeasured_study_ids == ["NCT3"]
    assert pd.isna(cell.participants)
    measured = _cell(result, "kratom", "pharmacokinetics", "rct")
    assert measured.unmeasured_study_ids == []


def test_outcome_classified_other_is_not_unmeasured() -> None:
    outcomes = pd.concat([_outcomes(), pd.DataFrame({"study_id": ["NCT3"], "domain": ["other"]})])
    cell = _cell(
        build_evidence_map(_studies(), _interventions(), outcomes),
        "kratom",
        "other",
        "observational",
    )
    assert (cell.study_ids, cell.unmeasured_study_ids) == (["NCT3"], [])


def test_placebo_and_unknown_studies_add_nothing() -> None:
    result = build_evidence_map(_studies(), _interventions(), _outcomes())
    ids = {i for ids in result.study_ids for i in ids}
    assert "NCT_UNKNOWN" not in ids
    assert set(result.compound_id) == {"kratom", "oxycodone"}


def test_literature_only_studies_contribute_through_study_compounds() -> None:
    links = pd.DataFrame(
        {
            "study_id": ["PMID:9"],
            "compound_id": ["7-hydroxymitragynine"],
            "linked_by": ["publication"],
        }
    )
    outcomes = pd.concat(
        [_outcomes(), pd.DataFrame({"study_id": ["PMID:9"], "domain": ["safety"]})]
    )
    result = build_evidence_map(_studies(), _interventions(), outcomes, links)
    cell = _cell(result, "7-hydroxymitragynine", "safety", "case_report")
    assert (cell.studies, cell.participants, cell.study_ids) == (1, 1, ["PMID:9"])
    assert cell.study_links == ["PMID:9=publication"]


def test_output_is_sorted_and_deterministic_under_input_order() -> None:
    one = build_evidence_map(_studies(), _interventions(), _outcomes())
    two = build_evidence_map(
        _studies().iloc[::-1], _interventions().iloc[::-1], _outcomes().iloc[::-1]
    )
    pd.testing.assert_frame_equal(one, two)
    keys = list(zip(one.compound_id, one.domain, one.design, strict=True))
    assert keys == sorted(keys)


def test_no_compounds_gives_an_empty_valid_table() -> None:
    empty = _interventions().iloc[:0]
    result = build_evidence_map(_studies(), empty, _outcomes())
    assert result.empty
    EvidenceMapCell.validate(result)


def _registered_text() -> tuple[pd.DataFrame, pd.DataFrame]:
    studies = pd.DataFrame(
        {
            "study_id": ["NCT2", "NCT3", "NCT4"],
            "title": ["Kratom-oxycodone interaction", None, "Kratom Use Disorder Management"],
            "official_title": [None, "Commercial Kratom Extract Products", "Using Clonidine"],
        }
    )
    conditions = pd.DataFrame(
        {"study_id": ["NCT3", "NCT5"], "condition": ["Kratom Pharmacodynamics", "Chronic Pain"]}
    )
    return studies, conditions


def test_text_links_find_kratom_in_title_official_title_and_conditions_only() -> None:
    lexicon = load_compound_lexicon(REFERENCE_DIR)
    studies, conditions = _registered_text()
    links = text_links(studies, conditions, lexicon.kratom_compounds)
    found = set(links.itertuples(index=False, name=None))
    assert found == {
        ("NCT2", "kratom", "title"),
        ("NCT3", "kratom", "official_title"),
        ("NCT3", "kratom", "condition"),
        ("NCT4", "kratom", "title"),
    }
    assert "oxycodone" not in set(links.compound_id)  # comparators come from interventions


def test_text_linked_study_joins_the_map_and_intervention_link_wins() -> None:
    lexicon = load_compound_lexicon(REFERENCE_DIR)
    studies, conditions = _registered_text()
    design = pd.DataFrame(
        {
            "study_id": ["NCT2", "NCT3", "NCT4"],
            "design": ["rct", "observational", "observational"],
            "enrollment": pd.array([20, 16, 50], dtype="Int64"),
            "long_term": pd.array([None, None, None], dtype="boolean"),
        }
    )
    interventions = pd.DataFrame(
        {"study_id": ["NCT2", "NCT4"], "compound_id": ["kratom", "clonidine"]}
    )
    outcomes = pd.DataFrame(
        {"study_id": ["NCT2", "NCT4"], "domain": ["pharmacokinetics", "withdrawal"]}
    )
    links = text_links(studies, conditions, lexicon.kratom_compounds)
    result = build_evidence_map(design, interventions, outcomes, links)
    EvidenceMapCell.validate(result, lazy=True)
    assert _cell(result, "kratom", "withdrawal", "observational").study_links == ["NCT4=title"]
    assert _cell(result, "kratom", "pharmacokinetics", "rct").study_links == ["NCT2=intervention"]
    unmeasured = _cell(result, "kratom", "other", "observational")
    assert unmeasured.study_links == ["NCT3=official_title"]
    assert unmeasured.unmeasured_study_ids == ["NCT3"]
    assert _cell(result, "clonidine", "withdrawal", "observational").studies == 1


def test_unknown_link_kind_is_an_error() -> None:
    links = pd.DataFrame({"study_id": ["NCT1"], "compound_id": ["kratom"], "linked_by": ["guess"]})
    with pytest.raises(ValueError, match="guess"):
        build_evidence_map(_studies(), _interventions(), _outcomes(), links)


def test_gate_rejects_a_cell_whose_links_do_not_name_its_studies() -> None:
    result = build_evidence_map(_studies(), _interventions(), _outcomes())
    spec = next(s for s in TABLES if s.name == "evidence_map")
    result.at[0, "study_links"] = ["NCT_OTHER=intervention"]
    gated = enforce(conform(result, spec), spec, {"compounds": {("kratom",), ("oxycodone",)}})
    assert len(gated.rejects) == 1
    assert "one_link_per_study" in gated.rejects.reason.iloc[0]
    assert len(gated.frame) == len(result) - 1


def test_cells_count_their_long_term_studies() -> None:
    studies = _studies().assign(long_term=pd.array([True, None, True, False], dtype="boolean"))
    result = build_evidence_map(studies, _interventions(), _outcomes())
    EvidenceMapCell.validate(result, lazy=True)
    assert _cell(result, "kratom", "pharmacokinetics", "rct").long_term_studies == 1
    assert _cell(result, "kratom", "other", "observational").long_term_studies == 1
    unknown = build_evidence_map(_studies(), _interventions(), _outcomes())
    assert set(unknown["long_term_studies"]) == {0}

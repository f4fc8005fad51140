"""The published evidence map, compounds and targets, read back from the bundled release.

Questions a reader asks of a release, asked the way a reader would: SQL through
`kratom-evidence query`, and the Parquet files of the release folder.
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipelines import paths
from tests.cli_query import query_json

pytestmark = pytest.mark.slow

FACTS = paths.PROJECT_ROOT.parent / "shared" / "facts"

NO_RCT_SQL = """
SELECT compound_id, domain,
       sum(studies) AS studies,
       list_sort(list_distinct(flatten(list(study_ids)))) AS study_ids,
       list_sort(list(design)) AS designs
FROM evidence_map
WHERE domain <> 'other'
GROUP BY compound_id, domain
HAVING bool_and(design <> 'rct')
ORDER BY compound_id, domain
"""
"""Where are there no RCTs? Compound x measured domain cells that only other designs fill."""

EXPECTED_NO_RCT = {
    ("7-hydroxymitragynine", "pain"): ["PMID:14969718", "PMID:16169018"],
    ("7-hydroxymitragynine", "safety"): ["PMID:41065466"],
    ("7-hydroxymitragynine", "substance_use"): ["PMID:41189061", "PMID:41875249"],
    ("7-hydroxymitragynine", "withdrawal"): [
        "PMID:16169018",
        "PMID:40758956",
        "PMID:41487756",
        "PMID:41690384",
    ],
    ("buprenorphine", "substance_use"): [
        "PMID:35112990",
        "PMID:37499179",
        "PMID:37519540",
        "PMID:41875249",
    ],
    ("buprenorphine", "withdrawal"): ["NCT05883358"],
    ("clonidine", "withdrawal"): ["NCT05883358"],
    ("corynantheidine", "pain"): ["PMID:27556704"],
    ("dextromethorphan", "pharmacokinetics"): ["NCT04392011"],
    ("kratom", "cognition"): ["PMID:30556488"],
    ("kratom", "craving"): ["PMID:24698080"],
    ("kratom", "physiology"): ["NCT05846451", "PMID:29626673"],
    ("kratom", "safety"): [
        "PMID:20411370",
        "PMID:23082895",
        "PMID:24325774",
        "PMID:24592666",
        "PMID:25516573",
        "PMID:30404789",
        "PMID:30601742",
        "PMID:30786220",
        "PMID:30920318",
        "PMID:31099038",
        "PMID:32525924",
        "PMID:32870119",
        "PMID:33200023",
        "PMID:40823326",
        "PMID:41065466",
        "PMID:42013627",
    ],
    ("kratom", "sleep"): ["PMID:29558272"],
    ("kratom", "substance_use"): [
        "PMID:17882605",
        "PMID:20798544",
        "PMID:21817918",
        "PMID:24592666",
        "PMID:24698080",
        "PMID:31284119",
        "PMID:31705528",
        "PMID:33868054",
        "PMID:34836801",
        "PMID:35112990",
        "PMID:35220331",
        "PMID:37499179",
        "PMID:37519540",
        "PMID:38788532",
        "PMID:40823326",
    ],
    ("kratom", "withdrawal"): [
        "NCT05883358",
        "PMID:16169018",
        "PMID:17882605",
        "PMID:20798544",
        "PMID:24698080",
        "PMID:29558272",
        "PMID:30404789",
        "PMID:35220331",
    ],
    ("midazolam", "pharmacokinetics"): ["NCT04392011"],
    ("mitragynine", "abuse_liability"): [
        "PMID:18550129",
        "PMID:30039246",
        "PMID:33227244",
        "omon:52572",
    ],
    ("mitragynine", "cognition"): ["omon:52572"],
    ("mitragynine", "craving"): ["PMID:33227244"],
    ("mitragynine", "pain"): [
        "PMID:18550129",
        "PMID:23109863",
        "PMID:27556704",
        "PMID:31098655",
        "PMID:8831802",
        "PMID:8982722",
        "PMID:9585164",
        "omon:52572",
    ],
    ("mitragynine", "safety"): ["PMID:25516573", "omon:52572"],
    ("morphine", "abuse_liability"): ["PMID:33227244"],
    ("morphine", "craving"): ["PMID:33227244"],
    ("morphine", "pain"): ["PMID:31098655"],
    ("naloxone", "substance_use"): ["PMID:37499179", "PMID:37519540"],
    ("oxycodone", "pharmacokinetics"): ["NCT05846451"],
    ("oxycodone", "physiology"): ["NCT05846451"],
}
"""Fixed by the snapshot: registry outcomes and the domains literature-only papers name (kratom
and mitragynine x pharmacokinetics are gone: PMID:38474495 is a randomised PK study)."""

OUTCOME_DOMAIN_EXCEPTIONS: dict[str, str] = {}
"""Registered outcome titles allowed to stay in domain 'other', with the reason (none today)."""

FACT_IDENTIFIERS = {
    "pubchem_cid": "pubchem_cid",
    "inchikey": "inchikey",
    "molecular_formula": "molecular_formula",
    "molecular_weight": "molecular_weight",
    "smiles": "canonical_smiles",
    "chembl_id": "chembl_id",
}
"""Published compounds column -> ../shared/facts/compounds.csv column."""


def _release_table(data_dir: Path, table: str) -> list[dict[str, Any]]:
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    return list(pq.read_table(folder / f"{table}.parquet").to_pylist())


def _facts(name: str) -> list[dict[str, str]]:
    if not FACTS.is_dir():
        pytest.skip("../shared/facts is absent")
    with (FACTS / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_where_are_there_no_rcts_is_onequery_json(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(bundled_release, NO_RCT_SQL, capsys)
    found = {(r["compound_id"], r["domain"]): r["study_ids"] for r in rows}
    assert found == EXPECTED_NO_RCT
    withdrawal = next(
        r for r in rows if (r["compound_id"], r["domain"]) == ("kratom", "withdrawal")
    )
    assert withdrawal["designs"] == ["case_report", "observational", "preclinical", "survey"]
    assert ("kratom", "pain") not in found  # NCT03414099 is a randomised trial


def test_registered_kratom_studies_named_only_in_registry_text_are_on_the_map(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(
        bundled_release,
        "SELECT s.study_id, m.domain, link, list_contains(m.unmeasured_study_ids, s.study_id) "
        "AS unmeasured FROM evidence_map m, unnest(m.study_links) AS u(link), "
        "(SELECT unnest(['NCT05457803', 'NCT06640569', 'NCT05883358']) AS study_id) s "
        "WHERE m.compound_id = 'kratom' AND link LIKE s.study_id || '=%' ORDER BY 1, 2",
        capsys,
    )
    found = {(r["study_id"], r["domain"], r["link"], r["unmeasured"]) for r in rows}
    assert found == {
        ("NCT05457803", "other", "NCT05457803=title", True),
        ("NCT06640569", "other", "NCT06640569=title", True),
        ("NCT05883358", "withdrawal", "NCT05883358=title", False),
    }


def test_kratom_intervention_search_hits_without_text_are_on_the_map_as_curated(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(
        bundled_release,
        "SELECT m.compound_id, m.domain, m.design, link, "
        "list_contains(m.unmeasured_study_ids, split_part(link, '=', 1)) AS unmeasured "
        "FROM evidence_map m, unnest(m.study_links) AS u(link) "
        "WHERE link LIKE '%=curated' ORDER BY link",
        capsys,
    )
    assert [(r["compound_id"], r["domain"], r["link"], r["unmeasured"]) for r in rows] == [
        ("kratom", "other", "NCT05812001=curated", True),
        ("kratom", "other", "NCT07218549=curated", True),
    ]
    studies = {r["study_id"]: r for r in _release_table(bundled_release, "studies")}
    assert {r["design"] for r in rows} == {
        studies["NCT05812001"]["design"],
        studies["NCT07218549"]["design"],
    }


def test_every_study_on_the_map_is_a_published_study(bundled_release: Path) -> None:
    studies = {r["study_id"] for r in _release_table(bundled_release, "studies")}
    cells = _release_table(bundled_release, "evidence_map")
    assert cells
    for cell in cells:
        assert set(cell["study_ids"]) <= studies, cell
        assert sorted(link.rsplit("=", 1)[0] for link in cell["study_links"]) == cell["study_ids"]
        assert set(cell["unmeasured_study_ids"]) <= set(cell["study_ids"])
        assert cell["domain"] == "other" or not cell["unmeasured_study_ids"], cell


def test_every_facts_compound_is_published_with_exactly_the_facts_identifiers(
    bundled_release: Path,
) -> None:
    facts = _facts("compounds.csv")
    published = {r["name"]: r for r in _release_table(bundled_release, "compounds")}
    assert len(facts) == 19
    for fact in facts:
        row = published[fact["name"]]
        for ours, theirs in FACT_IDENTIFIERS.items():
            value = fact[theirs].strip()
            if ours == "pubchem_cid":
                expected: object = int(value) if value else None
            elif ours == "molecular_weight":
                expected = float(value) if value else None
            else:
                expected = value or None
            assert row[ours] == expected, (fact["name"], ours)


def test_every_registered_non_placebo_intervention_has_a_compound(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(
        bundled_release,
        "SELECT i.study_id, i.intervention_name, i.compound_id, i.product_form "
        "FROM interventions i JOIN studies s USING (study_id) "
        "WHERE s.evidence_source = 'registry' ORDER BY 1, 2",
        capsys,
    )
    assert len(rows) >= 20
    for row in rows:
        if row["product_form"] == "placebo":
            assert row["compound_id"] is None, row
        else:
            assert row["compound_id"], row


def test_every_registered_outcome_has_a_domain(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(
        bundled_release,
        "SELECT o.study_id, o.title, o.domain FROM outcomes o JOIN studies s USING (study_id) "
        "WHERE s.evidence_source = 'registry' ORDER BY 1, 2",
        capsys,
    )
    assert len(rows) >= 15
    unplaced = {r["title"] for r in rows if r["domain"] == "other"}
    assert unplaced <= set(OUTCOME_DOMAIN_EXCEPTIONS), unplaced


def test_curated_targets_say_where_their_id_came_from(bundled_release: Path) -> None:
    rows = _release_table(bundled_release, "compound_targets")
    curated = [r for r in rows if r["target_id_source"] != "chembl_activity"]
    assert curated
    for row in curated:
        assert row["source_url"].startswith("https://"), row
        if row["assay_organism"] is None:
            assert row["target_id_source"] == "curated_stand_in", row
        else:
            assert row["target_id_source"] == "curated_exact", row
    flagged = {(r["compound_id"], r["value"]) for r in rows if r["flag"] == "as_printed_conflict"}
    assert flagged == {("mitragynine", 77.9), ("7-hydroxymitragynine", 709.0)}


VOCABULARIES_PAGE = paths.PROJECT_ROOT / "docs" / "vocabularies-and-accuracy.md"
NO_RCT_INTRO = "## Where are there no randomised trials?"
UNMEASURED_INTRO = "no outcome are asked for apart"
EXPECTED_UNMEASURED = {
    ("kratom", "non_randomised_trial"): ["NCT05812001", "NCT07218549", "withpower:71101"],
    ("kratom", "observational"): ["NCT05457803", "NCT06089980", "NCT06640569"],
    ("kratom", "rct"): ["NCT06072170"],
    ("mitragynine", "rct"): ["NCT07204171"],
    ("oxycodone", "non_randomised_trial"): ["withpower:71101"],
}
"""Registered records the facts give no outcome: the vocabularies page lists them and why."""


def _docs_query(intro: str) -> str:
    """The SQL of the first `kratom-evidence query` shell block after `intro` on the page."""
    page = VOCABULARIES_PAGE.read_text(encoding="utf-8")
    block = page.split(intro, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    words = shlex.split(block)
    assert words[:2] == [".venv/bin/kratom-evidence", "query"], words
    return words[2]


def test_docs_query_for_domains_without_rcts_answers_as_the_page_says(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(bundled_release, _docs_query(NO_RCT_INTRO), capsys)
    assert {(r["compound_id"], r["domain"]): r["study_ids"] for r in rows} == EXPECTED_NO_RCT
    answer = VOCABULARIES_PAGE.read_text(encoding="utf-8").split(NO_RCT_INTRO, 1)[1]
    answer = answer.split("```", 2)[2].split(UNMEASURED_INTRO, 1)[0]
    for compound in {compound for compound, _ in EXPECTED_NO_RCT}:
        assert compound in answer, compound


def test_docs_query_for_registered_records_without_outcomes_answers_as_it_says(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = query_json(bundled_release, _docs_query(UNMEASURED_INTRO), capsys)
    found = {(r["compound_id"], r["design"]): r["study_ids"] for r in rows}
    assert found == EXPECTED_UNMEASURED
    page = VOCABULARIES_PAGE.read_text(encoding="utf-8")
    for study_id in {s for ids in EXPECTED_UNMEASURED.values() for s in ids}:
        assert study_id in page.split(UNMEASURED_INTRO, 1)[0], study_id

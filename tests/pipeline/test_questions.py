"""The questions of docs/questions.md, run as written against the bundled release.

Each `##` section of the page is one question: one SQL statement, then the answer it gives on
the bundled release (the row count and the first rows). The statement is read from the page
itself and run through `kratom-evidence query`, so an edited statement is tested as edited: the
rows the page shows must be the rows it returns, and the answer must still be the one the facts
give (checked per question below, from the values the facts files print). The README's section
"Questions the data answers" links to every question.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines import paths
from tests.cli_query import query_json

pytestmark = pytest.mark.slow

PAGE = paths.PROJECT_ROOT / "docs" / "questions.md"
README_HEADING = "## Questions the data answers"
_COUNT = re.compile(r"^Answer on the bundled release: (\d+) rows?(?:, the first (\d+))?:$", re.M)

Row = dict[str, Any]


@dataclass(frozen=True)
class Question:
    """One `##` section of the page: its heading, statement and the answer it shows."""

    heading: str
    sql: str
    rows: int
    header: list[str]
    shown: list[list[str]]

    @property
    def anchor(self) -> str:
        """The heading's link target, as GitHub makes it."""
        text = re.sub(r"[^\w\- ]", "", self.heading.lower())
        return text.replace(" ", "-")


def _table(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of a Markdown table (its separator line dropped)."""
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


def parse_page(text: str) -> list[Question]:
    """Every question of the page, in order."""
    questions = []
    for section in text.split("\n## ")[1:]:
        heading, body = section.split("\n", 1)
        (sql,) = re.findall(r"```sql\n(.*?)\n```", body, re.S)
        count = _COUNT.search(body)
        assert count is not None, heading
        after = body[count.end() :]
        header, shown = _table([ln for ln in after.splitlines() if ln.startswith("|")])
        rows = int(count[1])
        assert len(shown) == int(count[2] or rows), heading
        questions.append(Question(heading.strip(), sql, rows, header, shown))
    return questions


def cell(value: Any) -> str:
    """How the page prints a value of a JSON answer row."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def test_parse_page_reads_heading_statement_count_and_rows() -> None:
    page = (
        "# Q\n\n## What is it?\n\nWhy.\n\n```sql\nselect 1 as a,\n  2 as b\n```\n\n"
        "Answer on the bundled release: 3 rows, the first 2:\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |  |\n"
    )
    (question,) = parse_page(page)
    assert question == Question(
        "What is it?", "select 1 as a,\n  2 as b", 3, ["a", "b"], [["1", "2"], ["3", ""]]
    )
    assert question.anchor == "what-is-it"
    assert [cell(v) for v in (None, True, 387.0, 0.124, 27338, "x")] == [
        "",
        "true",
        "387",
        "0.124",
        "27338",
        "x",
    ]


def check_composition(rows: list[Row]) -> None:
    """Content in mg/g per analyte and material: lowest, highest, upper bounds (facts rows)."""
    got = {
        (r["analyte"], r["material"]): (r["low_mg_per_g"], r["high_mg_per_g"], r["upper_bounds"])
        for r in rows
    }
    assert got == {
        ("mitragynine", "leaf"): (3.1, 49.4, 0),  # 0.31-4.94 % w/w, Thai leaf
        ("mitragynine", "powder"): (19.48, 19.48, 0),  # K51 study product
        ("mitragynine", "extract"): (65.3, 71.9, 0),  # 6.53-7.19 %
        ("mitragynine", "7oh_product"): (2.0, 6.0, 0),
        ("mitragynine", "commercial_product"): (3.9, 270.0, 0),
        ("mitragynine", "mixed"): (7.0, 387.0, 0),  # 0.7-38.7 %, summary page
        ("7-hydroxymitragynine", "7oh_product"): (22.0, 75.0, 0),
        ("7-hydroxymitragynine", "commercial_product"): (0.1, 0.4, 0),  # 0.01-0.04 %
        ("7-hydroxymitragynine", "leaf"): (None, 0.1, 1),  # < 0.01 %
        ("7-hydroxymitragynine", "powder"): (None, 0.5, 2),  # < 0.124 mg/g; up to 0.05 %
    }


def check_interactions(rows: list[Row]) -> None:
    """Only kratom on midazolam (CYP3A) reaches an AUC ratio of 1.25; its 90 % CI dips below."""
    assert rows == [
        {
            "perpetrator": "kratom",
            "victim": "midazolam",
            "enzyme": "CYP3A",
            "auc_ratio": 1.39,
            "ci_low": 1.23,
            "ci_high": 1.57,
            "ci_level": 90.0,
            "whole_ci_at_or_above": False,
            "n_participants": 12,
            "study_id": "NCT04392011",
        }
    ]


def check_safety(rows: list[Row]) -> None:
    """Every exposure, death and liver-injury figure, each with its source and period."""
    by_outcome: dict[str, int] = {}
    for row in rows:
        by_outcome[row["outcome"]] = by_outcome.get(row["outcome"], 0) + 1
    assert by_outcome == {"death": 12, "exposure": 11, "liver_injury": 4}
    figures = {(r["data_source"][:32], r["period"], r["reported"], r["out_of"]) for r in rows}
    assert {
        ("US National Poison Data System (", "2011 to 2017", 11, 1807),
        ("US National Poison Data System (", "2011 to 2017", 1807, None),
        ("CDC State Unintentional Drug Ove", "2016-07 to 2017-12", 152, 27338),
        ("US Drug-Induced Liver Injury Net", "2004 to 2018", 8, 404),
        ("FDA warning of 6 Feb 2018 (as ci", "not stated", 44, None),
    } <= figures


def check_affinities(rows: list[Row]) -> None:
    """Mu-opioid Ki per compound, with the spread and how many values carry a flag."""
    got = [
        (r["compound_id"], r["values"], r["lowest"], r["median"], r["highest"], r["flagged"])
        for r in rows
    ]
    assert got == [
        ("7-hydroxymitragynine", 4, 13.5, 26.5, 709.0, 1),
        ("speciociliatine", 1, 54.5, 54.5, 54.5, 0),
        ("corynantheidine", 1, 57.0, 57.0, 57.0, 1),
        ("mitragynine", 2, 77.9, 119.45, 161.0, 1),
    ]
    assert {(r["target_name"], r["activity_type"], r["unit"]) for r in rows} == {
        ("Mu opioid receptor", "Ki", "nM")
    }


def check_addiction_types(rows: list[Row]) -> None:
    """Registered conditions and the addiction types read from literature papers both count."""
    typed = {(r["addiction_type"], r["domain"], r["design"]): r["studies"] for r in rows}
    # a registration: NCT05883358 (opioid withdrawal)
    assert typed[("opioid_withdrawal", "withdrawal", "observational")] == 1
    # PMID 31705528: kratom alkaloids as treatments for alcohol use disorder, in rats
    assert typed[("alcohol_use_disorder", "substance_use", "preclinical")] == 1
    # case reports of kratom and 7-OH use disorder (PMID 33868054, 37519540, ...)
    assert typed[("kratom_use", "substance_use", "case_report")] == 7
    # buprenorphine for kratom use disorder is opioid use disorder treatment
    assert typed[("opioid_use_disorder", "substance_use", "case_report")] == 4
    recorded = {r["addiction_type"] for r in rows} - {"not recorded"}
    assert recorded == {
        "alcohol_use_disorder",
        "kratom_use",
        "opioid_use_disorder",
        "opioid_withdrawal",
        "other_substance_use",
    }
    assert typed[("not recorded", "pain", "rct")] == 1


def check_gaps(rows: list[Row]) -> None:
    """Kratom-compound cells with no randomised and no long-term study; follow-up unknown."""
    assert rows and all(r["randomised"] == 0 == r["long_term"] for r in rows)
    # the facts give two registrations' time frames, both short (NCT04392011, NCT05846451)
    known = {(r["compound_id"], r["domain"]): r["follow_up_known"] for r in rows}
    assert {cell: n for cell, n in known.items() if n} == {("kratom", "physiology"): 1}
    cells = {(r["compound_id"], r["domain"]): r["studies"] for r in rows}
    assert cells[("kratom", "safety")] == 16
    assert cells[("kratom", "substance_use")] == 15
    assert cells[("kratom", "withdrawal")] == 8
    assert ("kratom", "pain") not in cells  # NCT03414099 is randomised
    assert ("mitragynine", "pharmacokinetics") not in cells  # PMID:38474495 is randomised
    assert len(rows) == 19


CHECKS: dict[str, Callable[[list[Row]], None]] = {
    "Mitragynine and 7-OH content by material": check_composition,
    "Clinically meaningful interactions": check_interactions,
    "Exposures, deaths and liver injuries by source and period": check_safety,
    "Receptor affinities per compound": check_affinities,
    "Studies per addiction type, outcome domain and design": check_addiction_types,
    "Where there is no randomised or long-term evidence": check_gaps,
}


def test_each_question_gives_the_answer_the_page_shows(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = parse_page(PAGE.read_text(encoding="utf-8"))
    assert [q.heading for q in questions] == list(CHECKS)
    for question in questions:
        rows = query_json(bundled_release, question.sql, capsys)
        assert len(rows) == question.rows, question.heading
        assert question.header == list(rows[0]), question.heading
        printed = [[cell(v) for v in row.values()] for row in rows[: len(question.shown)]]
        assert printed == question.shown, question.heading
        CHECKS[question.heading](rows)


def test_the_readme_links_every_question() -> None:
    readme = (paths.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{README_HEADING}\n", 1)[1].split("\n## ", 1)[0]
    linked = re.findall(r"\(docs/questions\.md#([\w-]+)\)", section)
    assert linked == [q.anchor for q in parse_page(PAGE.read_text(encoding="utf-8"))]

"""Literature outcome domains of the bundled release, scored against the facts' topic tags.

`../shared/facts/publications.csv` tags each paper with topics (withdrawal, dependence, toxicity,
survey, ...); `data/reference/topic_tag_domains.csv` maps a tag to an outcome domain, or to none
(review, preclinical, receptor_pharmacology name no outcome), with its reason. The gold domains
of a paper are its mapped tags; the predicted ones are the published `literature` outcome rows of
its study.

Scores, as the docs state them: per paper, precision is the share of its predicted domains that
are gold (over papers with at least one prediction) and recall the share of its gold domains that
were predicted (over papers with at least one gold domain); the thresholds hold their means
(macro over papers). Pooled (micro) figures and per-domain figures are reported beside them.
Papers of the facts that are not literature-only studies (reviews, reports of registered trials,
papers without a PMID) were never looked at while the vocabulary was written: they are scored
through the same vocabulary from their facts title and publication type, and reported apart.
"""

from __future__ import annotations

import csv
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import paths
from pipelines.normalize.lexicon import read_reference_csv, split_terms
from pipelines.normalize.literature_domains import load_literature_domains
from schemas.vocab import OUTCOME_DOMAINS
from tests.cli_query import query_json

pytestmark = pytest.mark.slow

FACTS = paths.PROJECT_ROOT.parent / "shared" / "facts"
TAG_DOMAINS = paths.REFERENCE_DIR / "topic_tag_domains.csv"
DOCS = paths.PROJECT_ROOT / "docs" / "vocabularies-and-accuracy.md"
MIN_PRECISION = 0.85
MIN_RECALL = 0.70
MIN_PAPERS = 60
MAX_SHARE_OTHER = 0.30

SHARE_INTRO = "**Share of studies in `other`.**"
"""The docs paragraph whose shell block is the share query: studies the evidence map can only
count under domain `other` (no outcome row of a placed domain), as a share of all studies."""

Domains = dict[str, set[str]]


def _facts() -> list[dict[str, str]]:
    if not FACTS.is_dir():
        pytest.skip("../shared/facts is absent")
    with (FACTS / "publications.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def gold_domains(tags: Iterable[str], design: str | None) -> set[str]:
    """Domains of a paper's topic tags; a row for the paper's design beats the default row."""
    rows = read_reference_csv(TAG_DOMAINS)
    found = set()
    for tag in tags:
        own = [r for r in rows if r["tag"] == tag and r["design"] == design]
        default = [r for r in rows if r["tag"] == tag and not r["design"]]
        if not own and not default:
            raise AssertionError(f"topic tag {tag!r} has no row in {TAG_DOMAINS.name}")
        found |= {r["domain"] for r in own or default if r["domain"]}
    return found


@dataclass(frozen=True)
class Scores:
    """Per-paper means (macro) and pooled counts (micro) of one set of papers."""

    papers: int
    macro_precision: float
    macro_recall: float
    micro_precision: float
    micro_recall: float


def score(predicted: Domains, gold: Domains) -> Scores:
    """Scores over the papers of `gold` (a paper missing from `predicted` predicted nothing)."""
    precisions, recalls = [], []
    hits = found = labelled = 0
    for paper, wanted in gold.items():
        got = predicted.get(paper, set())
        hits += len(got & wanted)
        found += len(got)
        labelled += len(wanted)
        if got:
            precisions.append(len(got & wanted) / len(got))
        if wanted:
            recalls.append(len(got & wanted) / len(wanted))
    return Scores(
        len(gold),
        sum(precisions) / len(precisions),
        sum(recalls) / len(recalls),
        hits / found,
        hits / labelled,
    )


def test_scores_average_per_paper_and_pool_apart() -> None:
    gold = {"a": {"pain"}, "b": {"pain", "safety"}, "c": set(), "d": {"mood"}}
    predicted = {"a": {"pain", "sleep"}, "b": {"pain", "safety"}, "c": {"mood"}}
    result = score(predicted, gold)
    assert (result.macro_precision, result.macro_recall) == ((0.5 + 1 + 0) / 3, (1 + 1 + 0) / 3)
    assert (result.micro_precision, result.micro_recall) == (3 / 5, 3 / 4)


def per_domain(predicted: Domains, gold: Domains) -> list[tuple[str, int, int, int]]:
    """(domain, papers labelled, papers found, papers both) for every domain either names."""
    rows = []
    for domain in OUTCOME_DOMAINS:
        labelled = {p for p, d in gold.items() if domain in d}
        found = {p for p in gold if domain in predicted.get(p, set())}
        if labelled or found:
            rows.append((domain, len(labelled), len(found), len(labelled & found)))
    return rows


def _release_table(data_dir: Path, table: str) -> list[dict[str, object]]:
    (folder,) = [p for p in (data_dir / "releases").iterdir() if not p.name.startswith(".")]
    return list(pq.read_table(folder / f"{table}.parquet").to_pylist())


@dataclass(frozen=True)
class Evaluation:
    """Predicted and gold domains of the bundled literature-only studies, and of the rest."""

    predicted: Domains
    gold: Domains
    heldout_predicted: Domains
    heldout_gold: Domains


def evaluate(data_dir: Path) -> Evaluation:
    """Score the published literature rows, and the vocabulary on the facts' other papers."""
    facts = {row["pmid"]: row for row in _facts() if row["pmid"]}
    studies = {
        str(s["study_id"]): s
        for s in _release_table(data_dir, "studies")
        if s["evidence_source"] == "literature"
    }
    predicted: Domains = {}
    for row in _release_table(data_dir, "outcomes"):
        if row["source"] == "literature":
            predicted.setdefault(str(row["study_id"]), set()).add(str(row["domain"]))
    gold = {
        study_id: gold_domains(
            split_terms(facts[study_id.removeprefix("PMID:")]["topic_tags"]),
            str(study["design"]),
        )
        for study_id, study in studies.items()
        if study_id.removeprefix("PMID:") in facts
    }
    lexicon = load_literature_domains(paths.REFERENCE_DIR)
    heldout = [row for row in _facts() if f"PMID:{row['pmid']}" not in studies]
    heldout_gold = {
        f"{i}": gold_domains(tags, "preclinical" if "preclinical" in tags else None)
        for i, tags in enumerate(split_terms(row["topic_tags"]) for row in heldout)
    }
    heldout_predicted = {
        f"{i}": {
            e.domain
            for e in lexicon.evidence(
                {"title": row["title"], "publication_types": split_terms(row["publication_type"])}
            )
        }
        for i, row in enumerate(heldout)
    }
    return Evaluation(predicted, gold, heldout_predicted, heldout_gold)


@pytest.fixture(scope="module")
def evaluation(bundled_release: Path) -> Evaluation:
    return evaluate(bundled_release)


def test_literature_domains_agree_with_the_facts_tags(evaluation: Evaluation) -> None:
    assert len(evaluation.gold) >= MIN_PAPERS
    result = score(evaluation.predicted, evaluation.gold)
    misses = {
        p: (sorted(evaluation.predicted.get(p, set())), sorted(g))
        for p, g in evaluation.gold.items()
        if evaluation.predicted.get(p, set()) != g
    }
    assert result.macro_precision >= MIN_PRECISION, misses
    assert result.macro_recall >= MIN_RECALL, misses


def test_every_topic_tag_of_the_facts_has_a_mapping_with_a_reason() -> None:
    rows = read_reference_csv(TAG_DOMAINS)
    assert all(r["reason"] for r in rows)
    assert {r["domain"] for r in rows} - {""} <= set(OUTCOME_DOMAINS) - {"other"}
    tags = {t for row in _facts() for t in split_terms(row["topic_tags"])}
    assert tags <= {r["tag"] for r in rows if not r["design"]}


def docs_share_sql() -> str:
    """The SQL of the docs' share query, as a reader copies it."""
    block = DOCS.read_text(encoding="utf-8").split(SHARE_INTRO, 1)[1]
    command = block.split("```sh\n", 1)[1].split("```", 1)[0]
    program, verb, sql = shlex.split(command)
    assert (program, verb) == (".venv/bin/kratom-evidence", "query")
    return sql


def test_few_studies_are_left_only_in_domain_other(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (row,) = query_json(bundled_release, docs_share_sql(), capsys)
    assert row["studies"] == 79
    assert row["share_other"] < MAX_SHARE_OTHER, row
    stated = f"now {row['only_other']} of {row['studies']} ({row['share_other']:.3f})"
    assert stated in DOCS.read_text(encoding="utf-8"), stated


def test_kratom_withdrawal_craving_safety_and_substance_use_show_literature_designs(
    bundled_release: Path,
) -> None:
    """The surveys, case reports and cohorts of the literature reach the kratom rows."""
    literature: dict[str, set[str]] = {}
    for cell in _release_table(bundled_release, "evidence_map"):
        papers = [s for s in cell["study_ids"] if str(s).startswith("PMID:")]
        if cell["compound_id"] == "kratom" and papers:
            literature.setdefault(str(cell["domain"]), set()).add(str(cell["design"]))
    for domain in ("withdrawal", "safety", "substance_use"):
        assert {"case_report", "survey", "observational"} <= literature[domain], domain
    assert "survey" in literature["craving"]


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def docs_table(result: Evaluation) -> str:
    """The accuracy table of docs/vocabularies-and-accuracy.md, as the release scores today."""
    lines = [
        "| domain | papers tagged | papers found | precision | recall |",
        "|---|---|---|---|---|",
    ]
    for domain, labelled, found, both in per_domain(result.predicted, result.gold):
        precision = _fmt(both / found) if found else "–"
        recall = _fmt(both / labelled) if labelled else "–"
        lines.append(f"| {domain} | {labelled} | {found} | {precision} | {recall} |")
    ours = score(result.predicted, result.gold)
    held = score(result.heldout_predicted, result.heldout_gold)
    for name, s in (
        (f"per paper, {ours.papers} literature-only studies (mean over papers)", ours),
        ("pooled over those papers' domains", ours),
        (f"held out: {held.papers} other facts papers (mean over papers)", held),
    ):
        pooled = name.startswith("pooled")
        precision = s.micro_precision if pooled else s.macro_precision
        recall = s.micro_recall if pooled else s.macro_recall
        lines.append(f"| **{name}** | | | {_fmt(precision)} | {_fmt(recall)} |")
    return "\n".join(lines)


def test_docs_table_is_what_the_release_scores_today(evaluation: Evaluation) -> None:
    table = docs_table(evaluation)
    text = DOCS.read_text(encoding="utf-8")
    assert table in text, f"docs/{DOCS.name} should hold:\n{table}"

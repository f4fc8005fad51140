"""The bad-input corpus: every broken file stops staging naming itself, every bad record is
quarantined with its reason, and the records of each source still add up.

Cases live in `tests/data/bad_input/<source>/<what is wrong>.<ext>`, laid out like a snapshot;
`EXPECTED.csv` says per case: error, quarantine or ok, and the words the message must hold (for
an ok case, why the odd file is nevertheless valid input).
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
import xml.sax
import xml.sax.handler
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bad_input_corpus import CASES, CORPUS, OUTCOMES, Case

from pipelines.snapshot import SnapshotError
from pipelines.sources import SOURCES, pubmed
from pipelines.sources.base import SnapshotFormatError
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import ensure_schemas


def _cases(outcome: str) -> list[Any]:
    return [pytest.param(c, id=c.path) for c in CASES if c.outcome == outcome]


def corpus_snapshot(root: Path, case: Case) -> Path:
    """A snapshot folder holding the case file and the files it needs beside it."""
    for name in (*case.together_with, case.path):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / name, target)
    return root


def stage(snapshot: Path, source: str) -> tuple[StageStats, list[dict[str, Any]]]:
    """Stage one source into an in-memory warehouse; its stats and quarantine rows."""
    con = duckdb.connect()
    try:
        ensure_schemas(con)
        stats = stage_source(con, snapshot, source)
        tables = {
            name
            for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'"
            ).fetchall()
        }
        rows: list[dict[str, Any]] = []
        if f"{source}__quarantine" in tables:
            cursor = con.execute(
                f'SELECT table_name, record_key, reason, source_file, raw FROM staging."{source}'
                '__quarantine" ORDER BY source_file'
            )
            columns = [d[0] for d in cursor.description]
            rows = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
        return stats, rows
    finally:
        con.close()


def assert_adds_up(stats: StageStats, quarantine: list[dict[str, Any]]) -> None:
    assert stats.records_read == stats.staged + stats.quarantined + stats.duplicates
    assert stats.quarantined == len(quarantine)


def test_expected_csv_lists_every_corpus_file_once() -> None:
    on_disk = {p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("*/*") if p.is_file()}
    listed = [c.path for c in CASES]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk
    assert {c.outcome for c in CASES} <= set(OUTCOMES)
    assert all(c.reason for c in CASES), "every case says why (an ok case: why it is valid)"
    assert all(set(c.together_with) <= on_disk for c in CASES)


def test_every_parsed_source_has_an_error_case_and_a_quarantine_case() -> None:
    for source in SOURCES:
        outcomes = {c.outcome for c in CASES if c.source == source}
        assert {"error", "quarantine"} <= outcomes, source


@pytest.mark.parametrize("case", _cases("error"))
def test_broken_file_stops_staging_naming_the_file(case: Case, tmp_path: Path) -> None:
    snapshot = corpus_snapshot(tmp_path, case)
    # CPU time, not wall time: the bound says staging stops at the broken file instead of
    # working on, which a loaded machine's wall clock cannot tell (2.03 s wall at load 28).
    started = time.process_time()
    with pytest.raises((SnapshotFormatError, SnapshotError)) as raised:
        stage(snapshot, case.source)
    message = str(raised.value)
    assert str(snapshot / case.path) in message
    assert case.reason in message
    assert len(message.splitlines()) == 1
    assert time.process_time() - started < 2.0


@pytest.mark.parametrize("case", _cases("quarantine"))
def test_bad_record_is_quarantined_with_its_reason(case: Case, tmp_path: Path) -> None:
    stats, quarantine = stage(corpus_snapshot(tmp_path, case), case.source)
    mine = [row for row in quarantine if row["source_file"] == case.path]
    assert len(mine) == 1, quarantine
    assert case.reason in mine[0]["reason"]
    assert mine[0]["table_name"] == SOURCES[case.source].primary_table
    assert mine[0]["raw"]
    assert_adds_up(stats, quarantine)


@pytest.mark.parametrize("case", _cases("ok"))
def test_odd_but_valid_file_stages_without_quarantine(case: Case, tmp_path: Path) -> None:
    stats, quarantine = stage(corpus_snapshot(tmp_path, case), case.source)
    assert quarantine == []
    assert stats.files == 1 + len(case.together_with)
    assert_adds_up(stats, quarantine)


def test_same_record_twice_with_the_same_content_counts_as_duplicate(tmp_path: Path) -> None:
    first = CORPUS / "clinicaltrials" / "same_nct_different_content-p0001.json"
    (tmp_path / "clinicaltrials").mkdir()
    for copy in ("a.json", "b.json"):
        shutil.copy(first, tmp_path / "clinicaltrials" / copy)
    stats, quarantine = stage(tmp_path, "clinicaltrials")
    assert (stats.records_read, stats.staged, stats.duplicates, quarantine) == (2, 1, 1, [])


def test_bad_first_record_does_not_shadow_a_good_later_one(tmp_path: Path) -> None:
    """A quarantined record is not "kept": the good version after it is staged."""
    folder = tmp_path / "clinicaltrials"
    folder.mkdir()
    shutil.copy(CORPUS / "clinicaltrials/enrollment_not_a_number.json", folder / "a.json")
    good = Path(__file__).resolve().parents[2] / "data/snapshot/clinicaltrials/NCT06072170.json"
    shutil.copy(good, folder / "b.json")
    stats, quarantine = stage(tmp_path, "clinicaltrials")
    assert (stats.staged, stats.quarantined) == (1, 1)
    assert [row["source_file"] for row in quarantine] == ["clinicaltrials/a.json"]
    assert "not a count" in quarantine[0]["reason"]


def test_corpus_file_suffixes_match_their_source_except_the_wrong_suffix_case() -> None:
    wrong = [c.path for c in CASES if not c.path.endswith(SOURCES[c.source].suffix)]
    assert wrong == ["pubmed/wrong_suffix.json"]


# --- XML: external entities and entity expansion --------------------------------------------

_ARTICLE = (
    "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>3072396</PMID><Article>"
    "<ArticleTitle>{title}</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
    "</PubmedArticleSet>"
)


def _external_documents(target: Path) -> dict[str, str]:
    """Every way a document can point the parser at a local file."""
    url = target.as_uri()
    return {
        "general_entity": f'<!DOCTYPE PubmedArticleSet [<!ENTITY t SYSTEM "{url}">]>'
        + _ARTICLE.format(title="&t;"),
        "parameter_entity": f'<!DOCTYPE PubmedArticleSet [<!ENTITY % p SYSTEM "{url}"> %p;]>'
        + _ARTICLE.format(title="x"),
        "external_dtd": f'<!DOCTYPE PubmedArticleSet SYSTEM "{url}">' + _ARTICLE.format(title="x"),
        "external_dtd_entity": f'<!DOCTYPE PubmedArticleSet SYSTEM "{url}">'
        + _ARTICLE.format(title="&t;"),
    }


_opened: list[str] | None = None
"""Paths Python opened while a test listens (audit hooks cannot be removed, only muted)."""


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _opened is not None and event == "open" and args and isinstance(args[0], str | Path):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened_paths() -> Iterator[list[str]]:
    """Every file path opened from Python during the test."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def _parse(path: Path) -> tuple[list[str], str | None]:
    """Records as XML text, and the error message if the parse stopped."""
    records: list[str] = []
    try:
        for record in pubmed.iter_records(path):
            records.append(pubmed.record_raw(record))
    except SnapshotFormatError as exc:
        return records, str(exc)
    return records, None


@pytest.mark.parametrize("kind", sorted(_external_documents(Path("/x"))))
def test_external_entities_never_read_the_file(
    kind: str, tmp_path: Path, opened_paths: list[str]
) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    secret = tmp_path / "secret.txt"
    secret.write_text(f'{marker} <!ENTITY t "{marker}">\n', encoding="utf-8")
    document = tmp_path / "pubmed" / f"{kind}.xml"
    document.parent.mkdir()
    document.write_text(_external_documents(secret)[kind], encoding="utf-8")

    opened_paths.clear()  # setup wrote both files: listen to the parse only
    records, error = _parse(document)

    assert str(secret) not in opened_paths
    assert str(document) in opened_paths
    assert marker not in "".join(records) + (error or "")
    if "entity" in kind:
        assert error is not None and str(document) in error
    else:
        assert len(records) == 1


def test_corpus_entity_bomb_fails_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(SnapshotFormatError, match="unsafe XML refused"):
        list(pubmed.iter_records(CORPUS / "pubmed" / "entity_bomb.xml"))
    assert time.perf_counter() - started < 2.0


def test_quadratic_blowup_fails_fast(tmp_path: Path) -> None:
    """One 100 kB entity referenced 20,000 times would expand to 2 GB."""
    big = "x" * 100_000
    document = tmp_path / "quadratic.xml"
    document.write_text(
        f'<!DOCTYPE PubmedArticleSet [<!ENTITY a "{big}">]>'
        + _ARTICLE.format(title="&a;" * 20_000),
        encoding="utf-8",
    )
    started = time.perf_counter()
    with pytest.raises(SnapshotFormatError, match="unsafe XML refused"):
        list(pubmed.iter_records(document))
    assert time.perf_counter() - started < 2.0


def test_the_open_listener_does_see_a_parser_that_reads_external_entities(
    tmp_path: Path, opened_paths: list[str]
) -> None:
    """Control: the check above would fail for a parser that resolves external entities."""
    marker = f"MARKER-{uuid.uuid4().hex}"
    secret = tmp_path / "secret.txt"
    secret.write_text(marker, encoding="utf-8")
    document = tmp_path / "general_entity.xml"
    document.write_text(_external_documents(secret)["general_entity"], encoding="utf-8")
    text: list[str] = []
    handler = xml.sax.handler.ContentHandler()
    handler.characters = text.append  # type: ignore[method-assign]
    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_external_ges, True)
    parser.setContentHandler(handler)
    opened_paths.clear()
    parser.parse(str(document))
    assert str(secret) in opened_paths
    assert marker in "".join(text)

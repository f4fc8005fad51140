"""Set-wise staging of ClinicalTrials.gov (DuckDB, `pipelines.setwise`) against the record-by-record
path (`parse_study` through the staging sink): the same staged tables (columns, types, values,
`_seq` order), the same quarantine rows and counts, the same file errors.

Inputs: every sample study in ../shared/samples/ctgov (skipped when absent), the bundled
snapshot (as pages and as a bulk ZIP), the bad-input corpus, and studies edited into the odd
values each rule has to read the way Python reads them.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bad_input_corpus import CASES, CORPUS

from pipelines import paths, setwise
from pipelines.setwise import merge_structures
from pipelines.sources import SOURCES
from pipelines.sources.base import BATCH_DB, SnapshotFormatError, raw_json
from pipelines.staging import StageStats, stage_source
from pipelines.warehouse import ensure_schemas, size_bytes

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "ctgov"
SOURCE = "clinicaltrials"
Staged = tuple[StageStats, dict[str, tuple[list[Any], list[Any]]]]


@contextmanager
def record_by_record() -> Iterator[None]:
    """Stage ClinicalTrials.gov through `parse_study` and the sink, as before set-wise staging."""
    unit = SOURCES[SOURCE]
    SOURCES[SOURCE] = dataclasses.replace(unit, setwise=None)
    try:
        yield
    finally:
        SOURCES[SOURCE] = unit


def stage(snapshot_dir: Path) -> Staged:
    """Stats and every staging table (described columns, rows in `_seq` order)."""
    con = duckdb.connect()
    try:
        ensure_schemas(con)
        stats = stage_source(con, snapshot_dir, SOURCE)
        names = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' "
            "ORDER BY table_name"
        ).fetchall()
        tables = {
            name: (
                con.execute(f'DESCRIBE staging."{name}"').fetchall(),
                con.execute(f'SELECT * FROM staging."{name}" ORDER BY _seq').fetchall(),
            )
            for (name,) in names
        }
        return stats, tables
    finally:
        con.close()


def stage_both(snapshot_dir: Path) -> tuple[Staged, Staged]:
    with record_by_record():
        before = stage(snapshot_dir)
    return before, stage(snapshot_dir)


def assert_same(snapshot_dir: Path) -> Staged:
    """Both ways give equal stats and tables; the set-wise result."""
    (stats, tables), (set_stats, set_tables) = stage_both(snapshot_dir)
    assert set_stats == stats
    assert set_tables.keys() == tables.keys()
    for name, (columns, rows) in tables.items():
        assert set_tables[name][0] == columns, name
        assert set_tables[name][1] == rows, name
    return set_stats, set_tables


def write_studies(root: Path, pages: dict[str, list[dict[str, Any]]], info: Any = None) -> Path:
    """A snapshot folder of v2 pages (file name -> studies), with SNAPSHOT.json `info`."""
    folder = root / SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    for name, studies in pages.items():
        (folder / name).write_text(json.dumps({"studies": studies}), encoding="utf-8")
    if info is not None:
        (root / "SNAPSHOT.json").write_text(json.dumps(info), encoding="utf-8")
    return root


def quarantine(tables: dict[str, tuple[list[Any], list[Any]]]) -> list[tuple[Any, ...]]:
    return tables.get(f"{SOURCE}__quarantine", ([], []))[1]


# --- real studies --------------------------------------------------------------------------------


def test_bundled_snapshot_stages_the_same_tables(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    shutil.copytree(paths.BUNDLED_SNAPSHOT / SOURCE, snap / SOURCE)
    stats, _ = assert_same(snap)
    assert stats.staged == stats.records_read > 0


def test_a_batch_s_tables_are_written_by_two_cursors_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch's table statements go to both statement cursors, which read the batch's
    tables in `BATCH_DB` (a TEMP table would be one cursor's alone); the tables are one
    pass's, and the connection is left as it was (no `BATCH_DB`, its search path), with the
    Python functions the cursors registered still callable once they closed."""
    snap = tmp_path / "snap"
    (snap / SOURCE).mkdir(parents=True)
    for page in sorted((paths.BUNDLED_SNAPSHOT / SOURCE).glob("*.json"))[:3]:
        shutil.copy(page, snap / SOURCE / page.name)
    monkeypatch.setattr(setwise, "GROUP_BYTES", 1)  # a batch per page: three
    cursors: list[set[int]] = []
    write_batch, write_table = setwise._Writer.write, setwise._Writer._write

    def batch(writer: Any) -> None:
        cursors.append(set())
        write_batch(writer)

    def table(writer: Any, con: duckdb.DuckDBPyConnection, name: str) -> None:
        cursors[-1].add(id(con))
        time.sleep(0.01)  # both cursors get work even when a statement is quick
        write_table(writer, con, name)

    monkeypatch.setattr(setwise._Writer, "write", batch)
    monkeypatch.setattr(setwise._Writer, "_write", table)
    assert_same(snap)
    assert len(cursors) > 1
    assert all(len(used) == setwise.STATEMENT_CURSORS == 2 for used in cursors)
    con = duckdb.connect()
    ensure_schemas(con)
    stage_source(con, snap, SOURCE)
    assert con.execute("SELECT current_setting('search_path')").fetchone() == ("",)
    # A Python function the closed cursors registered is still there to call (not freed).
    assert con.execute("SELECT ctr_py_number('1.5')").fetchone() == (1.5,)
    assert BATCH_DB not in {
        name for (name,) in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    }


def test_bundled_snapshot_as_a_bulk_archive_stages_the_same_tables(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    (snap / SOURCE).mkdir(parents=True)
    with zipfile.ZipFile(snap / SOURCE / "ctg-studies.json.zip", "w") as archive:
        for path in sorted((paths.BUNDLED_SNAPSHOT / SOURCE).glob("*.json")):
            archive.writestr(f"{path.stem[-2:]}/{path.name}", path.read_bytes())
        archive.writestr("00/NCT00000000.json", b"<html>Service Unavailable</html>")
        archive.writestr("01/NCT00000001.json", b'{"protocolSection": {"statusModule": {}}}')
        archive.writestr("02/NCT00000002.json", b'{"studies": []}')
        archive.writestr("02/NCT00000003.json", b"[1, 2]")
        archive.writestr(
            "03/NCT00000003.json",
            b'{"protocolSection": {"identificationModule": {"nctId": "NCT00000004"}}}',
        )
        archive.writestr("04/NCT00000005.json", b'{"hasResults": false}')
        archive.writestr("05/NCT00000006.json", b"\xff\xfe not utf-8")
        archive.writestr("README.txt", b"not a study")
    stats, tables = assert_same(snap)
    assert stats.quarantined == 8 == len(quarantine(tables))


def _limits_while_writing(snapshot_dir: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """DuckDB's memory_limit each time a batch's rows are written, staging `snapshot_dir` with
    the limit at 512MB; asserts that the limit is put back afterwards."""
    seen: set[str] = set()
    write = setwise._Writer.write

    def writing(writer: Any) -> None:
        seen.add(writer.con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        write(writer)

    monkeypatch.setattr(setwise._Writer, "write", writing)
    con = duckdb.connect(config={"memory_limit": "512MB"})
    ensure_schemas(con)
    before = con.execute("SELECT current_setting('memory_limit')").fetchone()
    stage_source(con, snapshot_dir, SOURCE)
    assert con.execute("SELECT current_setting('memory_limit')").fetchone() == before
    return seen


def test_an_archive_stages_with_duckdb_s_limit_less_what_its_texts_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive's texts are held as Arrow outside DuckDB's memory_limit, pages are read by
    DuckDB within it: an archive's run lowers the limit by `ARCHIVE_HELD_BYTES`."""
    pages = tmp_path / "pages"
    shutil.copytree(paths.BUNDLED_SNAPSHOT / SOURCE, pages / SOURCE)
    archive = tmp_path / "archive"
    (archive / SOURCE).mkdir(parents=True)
    with zipfile.ZipFile(archive / SOURCE / "ctg-studies.json.zip", "w") as bulk:
        for path in sorted((paths.BUNDLED_SNAPSHOT / SOURCE).glob("*.json")):
            bulk.writestr(f"{path.stem[-2:]}/{path.name}", path.read_bytes())
    assert _limits_while_writing(pages, monkeypatch) == {"488.2 MiB"}
    (lowered,) = _limits_while_writing(archive, monkeypatch)
    assert abs(size_bytes(lowered) - (512 * 10**6 - setwise.ARCHIVE_HELD_BYTES)) < 2**20


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples/ctgov is not here")
def test_every_sample_study_stages_the_same_tables(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    (snap / SOURCE).mkdir(parents=True)
    for path in sorted(SAMPLES.glob("*.json")):
        shutil.copy(path, snap / SOURCE / path.name)
    stats, tables = assert_same(snap)
    assert stats.records_read >= 17
    assert f"{SOURCE}__outcome_results" in tables


# --- the bad-input corpus ------------------------------------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(c, id=c.path) for c in CASES if c.source == SOURCE])
def test_bad_input_corpus_case_stages_or_fails_the_same(tmp_path: Path, case: Any) -> None:
    for name in (*case.together_with, case.path):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / name, target)
    if case.outcome == "error":
        with record_by_record(), pytest.raises(SnapshotFormatError) as before:
            stage(tmp_path)
        with pytest.raises(SnapshotFormatError) as after:
            stage(tmp_path)
        assert str(after.value) == str(before.value)
        return
    _, tables = assert_same(tmp_path)
    if case.outcome == "quarantine":
        assert any(case.reason in row[3] for row in quarantine(tables))


@pytest.mark.parametrize(
    "body",
    [
        '{"studies": [{"hasResults": false}, null, {"hasResults": true}]}',
        '{"studies": [{"hasResults": false}, "s"]}',
        '{"totalCount": 0, "studies": null}',
        '{"totalCount": 0}',
        '{"studies": {"a": 1}}',
        '{"studies": [7]}',
        '{"studies": []} trailing',
        "[1, 2]",
        "{}",
        '{"apiVersion": "2.0.3"}',
        "",
    ],
)
def test_a_file_that_is_not_a_page_fails_with_the_same_message(tmp_path: Path, body: str) -> None:
    (tmp_path / SOURCE).mkdir()
    (tmp_path / SOURCE / "page.json").write_text(body)
    with record_by_record(), pytest.raises(SnapshotFormatError) as before:
        stage(tmp_path)
    with pytest.raises(SnapshotFormatError) as after:
        stage(tmp_path)
    assert str(after.value) == str(before.value)


# --- odd values, one rule at a time --------------------------------------------------------------


def base_study(nct: str = "NCT09000001") -> dict[str, Any]:
    study = json.loads((paths.BUNDLED_SNAPSHOT / SOURCE / "NCT03414099.json").read_text())
    study["protocolSection"]["identificationModule"]["nctId"] = nct
    return study


def edited(edit: Callable[[dict[str, Any]], None], nct: str = "NCT09000001") -> dict[str, Any]:
    study = base_study(nct)
    edit(study)
    return study


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting `a.b.c` (missing levels created) to `value`."""

    def edit(study: dict[str, Any]) -> None:
        node = study
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = copy.deepcopy(value)

    return edit


def _both(*edits: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """An edit making each of `edits` in turn."""

    def edit(study: dict[str, Any]) -> None:
        for one in edits:
            one(study)

    return edit


P = "protocolSection"
ODD_EDITS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("nct with spaces", _set(f"{P}.identificationModule.nctId", "  NCT09000002\u3000")),
    ("nct lower case", _set(f"{P}.identificationModule.nctId", "nct09000003")),
    ("nct a number", _set(f"{P}.identificationModule.nctId", 9000004)),
    ("nct blank", _set(f"{P}.identificationModule.nctId", " \t")),
    ("no protocol", lambda s: s.pop(P)),
    ("titles to strip", _set(f"{P}.identificationModule.briefTitle", "\u00a0 A title \n")),
    ("blank acronym", _set(f"{P}.identificationModule.acronym", "  ")),
    ("enrollment text", _set(f"{P}.designModule.enrollmentInfo", {"count": "23", "type": "X"})),
    ("enrollment float", _set(f"{P}.designModule.enrollmentInfo.count", 23.0)),
    ("enrollment 1e3", _set(f"{P}.designModule.enrollmentInfo.count", 1e3)),
    ("enrollment negative", _set(f"{P}.designModule.enrollmentInfo.count", -1)),
    ("enrollment half", _set(f"{P}.designModule.enrollmentInfo.count", 2.5)),
    ("enrollment bool", _set(f"{P}.designModule.enrollmentInfo.count", True)),
    ("enrollment words", _set(f"{P}.designModule.enrollmentInfo.count", "forty")),
    ("date month", _set(f"{P}.statusModule.startDateStruct", {"date": "2021-03"})),
    ("date legacy", _set(f"{P}.statusModule.completionDateStruct", {"date": "March 5, 2020"})),
    ("date impossible", _set(f"{P}.statusModule.startDateStruct", {"date": "2021-02-30"})),
    ("date words", _set(f"{P}.statusModule.studyFirstPostDateStruct", {"date": "soon"})),
    ("date number", _set(f"{P}.statusModule.lastUpdatePostDateStruct", {"date": 2021})),
    (
        "date and count both bad",
        _both(
            _set(f"{P}.statusModule.startDateStruct", {"date": "2021-13"}),
            _set(f"{P}.designModule.enrollmentInfo.count", "x"),
        ),
    ),
    ("healthy volunteers text", _set(f"{P}.eligibilityModule.healthyVolunteers", "yes")),
    ("has results text", _set("hasResults", "true")),
    ("phases odd", _set(f"{P}.designModule.phases", ["", " PHASE2 ", "Early Phase 1"])),
    ("no study type", lambda s: s[P]["designModule"].pop("studyType", None)),
    (
        "countries",
        _set(
            f"{P}.contactsLocationsModule.locations",
            [
                {"country": "Zambia"},
                {"country": " Austria"},
                {},
                {"country": "Zambia"},
                {"country": "Åland"},
            ],
        ),
    ),
    (
        "collaborators",
        _set(f"{P}.sponsorCollaboratorsModule.collaborators", [{"name": " B "}, {}, {"name": "A"}]),
    ),
    (
        "aliases",
        _set(
            f"{P}.identificationModule.nctIdAliases",
            ["NCT09000009", "NCT01000000", "NCT09000001", " NCT09000009", "", "NCT01000000"],
        ),
    ),
    (
        "secondary ids",
        _set(
            f"{P}.identificationModule.secondaryIdInfos",
            [
                {"id": "ISRCTN12345678", "domain": "ISRCTN"},
                {"id": "2019-001234-56", "type": "EUDRACT_NUMBER"},
                {"id": "2019-001234-56", "type": "EUDRACT_NUMBER", "domain": "EMA"},
                {"id": "2019-001234-56", "type": "EUDRACT_NUMBER", "domain": "EMA; Other"},
                {"id": " ", "domain": "nothing"},
                {"id": "R01 DA000000", "type": "NIH", "domain": "NIDA"},
                {"id": "ACTRN12600000000", "domain": None},
                {"id": "X-1", "type": "OTHER"},
                {"id": "X-1", "type": "OTHER", "domain": "A"},
                {"id": "X-1", "type": "OTHER", "domain": "B"},
                {"id": "X-1", "type": "OTHER", "domain": "A"},
            ],
        ),
    ),
    (
        "org id",
        _both(
            _set(f"{P}.identificationModule.orgStudyIdInfo", {"id": " ORG-1 "}),
            _set(f"{P}.identificationModule.organization", {"fullName": "Org"}),
        ),
    ),
    (
        "conditions",
        _both(
            _set(
                f"{P}.conditionsModule.conditions",
                ["Pain", " pain", "Straße", "", "Pain", "STRASSE"],
            ),
            _set(
                "derivedSection.conditionBrowseModule.meshes",
                [
                    {"id": "D1", "term": "PAIN"},
                    {"id": "D2", "term": "pain"},
                    {"term": "strasse"},
                    {"id": "D4", "term": " "},
                    {"id": "D5"},
                ],
            ),
        ),
    ),
    (
        "interventions repeated",
        _set(
            f"{P}.armsInterventionsModule.interventions",
            [
                {"name": "Kratom", "type": "DRUG", "armGroupLabels": ["A", "A", "B"]},
                {"name": " ", "type": "DRUG"},
                {"type": "DRUG", "armGroupLabels": ["Z"]},
                {"name": "Placebo", "armGroupLabels": ["B"], "otherNames": ["Sugar pill"]},
                {
                    "name": "Kratom ",
                    "type": "OTHER",
                    "description": "later",
                    "armGroupLabels": ["B", "C", "C"],
                    "otherNames": ["Mitragyna", "Mitragyna"],
                },
            ],
        ),
    ),
    (
        "interventions plain",
        _set(
            f"{P}.armsInterventionsModule.interventions",
            [{"name": "A", "armGroupLabels": ["x", "x"], "otherNames": [" ", "o"]}, {"name": "B"}],
        ),
    ),
    (
        "outcomes",
        _both(
            _set(
                f"{P}.outcomesModule.primaryOutcomes",
                [
                    {"measure": "M1", "timeFrame": " 4 weeks "},
                    {"measure": " "},
                    {"measure": "M3"},
                ],
            ),
            _set(f"{P}.outcomesModule.otherOutcomes", [{"measure": "O1"}]),
        ),
    ),
    (
        "references",
        _set(
            f"{P}.referencesModule.references",
            [
                {"pmid": "123", "type": "RESULT"},
                {"pmid": " 123 ", "type": "BACKGROUND"},
                {"pmid": "x12", "type": "NOPE"},
                {"type": "NOPE"},
                {"pmid": "456", "type": "DERIVED"},
                {"pmid": "\u0661\u0662", "type": "RESULT"},
            ],
        ),
    ),
    (
        "reference bad type",
        _set(
            f"{P}.referencesModule.references",
            [
                {"pmid": "1", "type": "RESULT"},
                {"pmid": "2", "type": "SOMETHING"},
                {"pmid": "3"},
            ],
        ),
    ),
    ("reference type null", _set(f"{P}.referencesModule.references", [{"pmid": "3"}])),
    ("reference type number", _set(f"{P}.referencesModule.references", [{"pmid": "3", "type": 5}])),
]


def _unmatched(rows: list[Any], others: list[Any]) -> list[Any]:
    """Rows of either list that the other does not hold."""
    return [r for r in rows if r not in others] + [r for r in others if r not in rows]


def test_odd_studies_stage_the_same_and_a_difference_names_its_edits(tmp_path: Path) -> None:
    """Every odd study in one page, each under its own NCT id: a study is read on its own (one
    `from_json` structure for all), so one staging of them all checks each edit; a row that
    differs is reported by the edits whose studies it holds. (One page of two studies per
    edit took the suite a minute of CPU.)"""
    edits = {f"NCT0900{n:04d}": name for n, (name, _) in enumerate(ODD_EDITS)}
    studies = [edited(edit, nct) for nct, (_, edit) in zip(edits, ODD_EDITS, strict=True)]
    (stats, tables), (set_stats, set_tables) = stage_both(
        write_studies(tmp_path, {"p-0001.json": studies})
    )
    differing = {
        name
        for table in tables.keys() | set_tables.keys()
        for row in _unmatched(tables.get(table, ([], []))[1], set_tables.get(table, ([], []))[1])
        for nct, name in edits.items()
        if nct in row
    }
    assert not differing, f"staged otherwise set-wise: {sorted(differing)}"
    assert set_stats == stats
    assert set_tables == tables
    assert stats.quarantined == len(quarantine(tables)) > 5


# --- keys seen again, superseded, off-topic ------------------------------------------------------


def test_duplicates_and_repeats_across_pages_and_batches(tmp_path: Path) -> None:
    first = base_study("NCT09000001")
    changed = edited(_set(f"{P}.identificationModule.briefTitle", "Changed"), "NCT09000001")
    broken = edited(_set(f"{P}.designModule.enrollmentInfo.count", "x"), "NCT09000002")
    fixed = base_study("NCT09000002")
    reordered = dict(reversed(list(first.items())))  # same content, keys in another order
    snap = write_studies(
        tmp_path,
        {
            "a-0001.json": [first, first, broken, broken],
            "a-0002.json": [changed, reordered, fixed, changed],
            "b-0001.json": [fixed, first],
        },
    )
    stats, tables = assert_same(snap)
    assert stats.duplicates >= 3
    assert any("appears again" in row[3] for row in quarantine(tables))


def test_superseded_and_off_topic_records(tmp_path: Path) -> None:
    off = base_study("NCT09000003")
    fingerprint = hashlib.sha256(raw_json(off).encode()).hexdigest()
    info = {
        "supersedes": {f"{SOURCE}/a-0001.json": ["NCT09000001", "NCT09999999"]},
        "off_topic": {SOURCE: {"NCT09000003": fingerprint, "NCT09000004": "0" * 64}},
    }
    snap = write_studies(
        tmp_path,
        {
            "a-0001.json": [base_study("NCT09000001"), base_study("NCT09000002")],
            "a-0002.json": [base_study("NCT09000001"), off, base_study("NCT09000004")],
        },
        info,
    )
    stats, tables = assert_same(snap)
    assert stats.superseded == 1
    assert any(row[3].startswith("off topic") or "topic" in row[3] for row in quarantine(tables))


def test_a_one_study_file_and_pages_in_one_snapshot(tmp_path: Path) -> None:
    snap = write_studies(tmp_path, {"p-0001.json": [base_study("NCT09000001")]})
    (snap / SOURCE / "single.json").write_text(json.dumps(base_study("NCT09000002")))
    (snap / SOURCE / "z-0001.json").write_text(
        json.dumps({"nextPageToken": "x", "studies": [base_study("NCT09000001")]})
    )
    assert_same(snap)


def test_structures_merge_and_refuse_two_types_for_one_field() -> None:
    merged = merge_structures(
        [
            {"a": {"b": "VARCHAR"}, "l": [{"x": "JSON"}]},
            {"a": {"c": "JSON"}, "l": [{"y": "VARCHAR"}]},
        ]
    )
    assert merged == {"a": {"b": "VARCHAR", "c": "JSON"}, "l": [{"x": "JSON", "y": "VARCHAR"}]}
    with pytest.raises(ValueError, match=r"a\.b"):
        merge_structures([{"a": {"b": "VARCHAR"}}, {"a": {"b": "JSON"}}])


# --- an archive read in small batches ------------------------------------------------------------


def test_rows_moved_from_small_buffers_stage_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch per file and a table's buffer written out every two rows: the same tables."""
    snap = tmp_path / "snap"
    shutil.copytree(paths.BUNDLED_SNAPSHOT / SOURCE, snap / SOURCE)
    monkeypatch.setattr(setwise, "GROUP_BYTES", 1)
    monkeypatch.setattr(setwise, "FLUSH_ROWS", 2)
    written: list[str] = []
    flush = setwise._Writer._flush

    def counted(writer: Any, con: Any, table: str, every: bool = False) -> None:
        if writer.buffered[table] >= (1 if every else 2):
            written.append(table)
        flush(writer, con, table, every)

    monkeypatch.setattr(setwise._Writer, "_flush", counted)
    assert_same(snap)
    assert any(written.count(table) > 2 for table in written)


def test_an_archive_in_batches_cut_by_size_stages_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of a few members (by `BATCH_BYTES`), with keys coming again in later batches, a
    member that is not UTF-8 in the middle of one and a superseded member: the same tables."""
    first = base_study("NCT09000001")
    changed = edited(_set(f"{P}.identificationModule.briefTitle", "Changed"), "NCT09000001")
    studies = [first, base_study("NCT09000002"), changed, first, base_study("NCT09000003")]
    snap = tmp_path / "snap"
    (snap / SOURCE).mkdir(parents=True)
    archive = f"{SOURCE}/ctg-studies.json.zip"
    with zipfile.ZipFile(snap / archive, "w") as bulk:
        for n, study in enumerate(studies):
            nct = study["protocolSection"]["identificationModule"]["nctId"]
            bulk.writestr(f"{n:02d}/{nct}.json", json.dumps(study))
            if n == 2:
                bulk.writestr("05/NCT00000006.json", b'{"x": "\xff not utf-8"}')
    (snap / "SNAPSHOT.json").write_text(json.dumps({"supersedes": {archive: ["NCT09000003"]}}))
    size = len(json.dumps(first).encode())
    batches: list[int] = []
    decide = setwise._Run.batch

    def counted(run: Any, batch: Any) -> None:
        batches.append(batch.count)
        decide(run, batch)

    monkeypatch.setattr(setwise, "BATCH_BYTES", 2 * size)
    monkeypatch.setattr(setwise._Run, "batch", counted)
    stats, tables = assert_same(snap)
    assert batches == [
        2,
        3,
        1,
    ]  # the second: a shorter study and the small member that is not UTF-8
    assert (stats.duplicates, stats.superseded, stats.quarantined) == (1, 1, 2)
    assert any("appears again" in row[3] for row in quarantine(tables))


def test_texts_are_one_utf8_column_over_one_buffer() -> None:
    texts = setwise._Texts()
    for body in (b'{"a": 1}', '{"b": "\u00e9"}'.encode(), b""):
        texts.add(body)
    column = texts.column()
    assert column is not None
    assert column.to_pylist() == ['{"a": 1}', '{"b": "\u00e9"}', ""]
    assert list(texts.bodies()) == [b'{"a": 1}', '{"b": "\u00e9"}'.encode(), b""]
    broken = setwise._Texts()
    broken.add(b'{"a": 1}')
    broken.add(b'{"b": "\xc3"}')
    assert len(broken) == 2
    assert broken.column() is None


# --- numbers DuckDB's JSON reader takes and the unit's reader refuses ----------------------------

_BEYOND = "@@beyond strict JSON@@"


def _at_risk(study: dict[str, Any]) -> None:
    study["resultsSection"]["adverseEventsModule"]["otherEvents"][0]["stats"][0]["numAtRisk"] = (
        _BEYOND
    )


NON_STRICT = [
    ("numAtRisk NaN", _at_risk, "NaN"),
    ("enrollment nan", _set(f"{P}.designModule.enrollmentInfo.count", _BEYOND), "nan"),
    ("start date -Infinity", _set(f"{P}.statusModule.startDateStruct.date", _BEYOND), "-Infinity"),
]
"""Values that set-wise staging hands to Python as the JSON text DuckDB wrote back (a reason's
repr, a count, a date): before, orjson refused them there and staging stopped with its error."""


def _non_strict_study(edit: Callable[[dict[str, Any]], None], token: str) -> str:
    study = json.loads((SAMPLES / "v2_study_NCT03722472_with_results.json").read_text())
    edit(study)
    return json.dumps(study).replace(f'"{_BEYOND}"', token)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples/ctgov is not here")
@pytest.mark.parametrize(("name", "edit", "token"), NON_STRICT, ids=[n for n, _, _ in NON_STRICT])
def test_a_page_with_a_non_finite_number_fails_with_the_same_message(
    tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None], token: str
) -> None:
    """The page stops staging both ways with the unit's reader's error, not a Python error
    from inside a set-wise statement."""
    (tmp_path / SOURCE).mkdir()
    study = _non_strict_study(edit, token)
    (tmp_path / SOURCE / "page.json").write_text(f'{{"studies": [{study}]}}')
    with record_by_record(), pytest.raises(SnapshotFormatError) as before:
        stage(tmp_path)
    with pytest.raises(SnapshotFormatError) as after:
        stage(tmp_path)
    assert str(after.value) == str(before.value)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/samples/ctgov is not here")
@pytest.mark.parametrize(("name", "edit", "token"), NON_STRICT, ids=[n for n, _, _ in NON_STRICT])
def test_an_archive_member_with_a_non_finite_number_is_quarantined_the_same(
    tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None], token: str
) -> None:
    (tmp_path / SOURCE).mkdir()
    with zipfile.ZipFile(tmp_path / SOURCE / "ctg-studies.json.zip", "w") as bulk:
        bulk.writestr("NCT03722472.json", _non_strict_study(edit, token))
    stats, tables = assert_same(tmp_path)
    assert (stats.staged, stats.quarantined) == (0, 1)
    assert "archive member NCT03722472.json: not JSON" in quarantine(tables)[0][3]


def test_a_query_read_by_first_leaves_no_transaction_holding_a_dropped_table() -> None:
    """A cursor that read one row of a SELECT and waits (the reader while a batch is staged)
    must not keep the batch tables replaced meanwhile: DuckDB frees a dropped table's memory
    once no open transaction can see it."""
    con = duckdb.connect()
    con.execute(f"ATTACH ':memory:' AS {BATCH_DB}")
    cursor = con.cursor()

    def held() -> int:
        (used,) = con.execute(
            "SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'"
        ).fetchone()  # type: ignore[misc]
        return int(used)

    def dropped_after(read: Callable[[], Any]) -> int:
        con.execute(
            f"CREATE OR REPLACE TABLE {BATCH_DB}.t AS "
            "SELECT range AS i, md5(range::VARCHAR) AS s FROM range(200000)"
        )
        read()
        con.execute(f"DROP TABLE {BATCH_DB}.t")
        return held()

    left_open = dropped_after(
        lambda: cursor.execute(f"SELECT count(*) FROM {BATCH_DB}.t").fetchone()
    )
    assert left_open > 1024 * 1024  # the cursor's open result keeps the table
    cursor.execute("SELECT 1").fetchall()
    assert setwise._first(cursor, "SELECT 1") == (1,)
    assert dropped_after(lambda: setwise._first(cursor, f"SELECT count(*) FROM {BATCH_DB}.t")) == 0

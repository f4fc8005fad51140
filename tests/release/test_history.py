"""Record history: record_versions and removed_records, as pure functions and in real releases."""

from __future__ import annotations

import json
import random
import shutil
from datetime import date
from pathlib import Path
from typing import Any, cast

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.release import catalog
from pipelines.release import history as record_history
from pipelines.release.describe import begin_describe
from pipelines.release.history import (
    History,
    PreviousRelease,
    Records,
    compute_history,
    read_previous,
)
from pipelines.release.publish import DataDir, publish
from pipelines.release.validate import read_table, validate_release
from pipelines.snapshot import SnapshotInfo
from schemas import HISTORY, QUARANTINE, TABLES
from schemas.arrow import arrow_schema
from tests.cli_query import query_json
from tests.release.conftest import (
    DELETED_STUDY,
    EDITED_STUDY,
    FIRST_VERSION,
    SECOND_VERSION,
    TwoReleases,
)

V1, V2, V3 = "2026.11.25", "2026.11.25.1", "2026.12.01"
FLOW_COLUMNS = pa.schema(
    [(c, pa.string()) for c in ("study_id", "period", "milestone_or_reason", "kind", "group_title")]
    + [("participants", pa.int64())]
)
CHANGE_COLUMNS = pa.schema(
    [
        (c, pa.string())
        for c in ("study_id", "registered_outcome_id", "reported_outcome_id", "status")
    ]
)
PUBLICATION_COLUMNS = pa.schema(
    [("publication_id", pa.string()), ("title", pa.string()), ("sources", pa.list_(pa.string()))]
)
IDENTIFIER_COLUMNS = pa.schema(
    [(c, pa.string()) for c in ("study_id", "id_type", "id_value", "id_domain")]
    + [("is_alias", pa.bool_())]
)


def study(study_id: str, **values: Any) -> dict[str, Any]:
    """A registered study row with the columns history looks at."""
    row = {
        "study_id": study_id,
        "evidence_source": "registry",
        "registry": "clinicaltrials.gov",
        "overall_status": "RECRUITING",
        "enrollment": 40,
        "phases": ["PHASE1"],
    }
    return {**row, **values}


def publication(publication_id: str, **values: Any) -> dict[str, Any]:
    row = {"publication_id": publication_id, "title": "A title", "sources": ["pubmed"]}
    return {**row, **values}


def alias(study_id: str, value: str) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "id_type": "nct",
        "id_value": value,
        "id_domain": None,
        "is_alias": True,
    }


def records(
    studies: list[dict[str, Any]],
    publications: list[dict[str, Any]] | None = None,
    identifiers: list[dict[str, Any]] | None = None,
) -> Records:
    """The followed tables of a release, from rows (only the columns the rows have)."""
    return Records(
        pa.Table.from_pylist(studies)
        if studies
        else pa.table({"study_id": pa.array([], pa.string())}),
        pa.Table.from_pylist(publications or [], schema=PUBLICATION_COLUMNS),
        pa.Table.from_pylist(identifiers or [], schema=IDENTIFIER_COLUMNS),
    )


def after(previous: History | None, prev_version: str, prev: Records) -> PreviousRelease:
    """The previous release as history sees it: its records and the history it published."""
    return PreviousRelease(
        prev_version,
        prev,
        previous.record_versions if previous else None,
        previous.removed_records if previous else None,
    )


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


def test_first_release_marks_every_study_and_publication_added() -> None:
    first = records([study("NCT00000002"), study("NCT00000001")], [publication("PMID:7")])
    history = compute_history(None, first, V1)
    assert rows(history.record_versions) == [
        ("publication", "PMID:7", V1, "added", []),
        ("study", "NCT00000001", V1, "added", []),
        ("study", "NCT00000002", V1, "added", []),
    ]
    assert history.removed_records.num_rows == 0


def test_changed_study_names_exactly_the_changed_fields() -> None:
    one = records([study("NCT00000001"), study("NCT00000002")], [publication("PMID:7")])
    two = records(
        [
            study("NCT00000001", overall_status="COMPLETED", enrollment=38),
            study("NCT00000002"),
        ],
        [publication("PMID:7", sources=["europepmc", "pubmed"])],
    )
    first = compute_history(None, one, V1)
    second = compute_history(after(first, V1, one), two, V2)
    new = [r for r in rows(second.record_versions) if r[2] == V2]
    assert new == [
        ("publication", "PMID:7", V2, "changed", ["sources"]),
        ("study", "NCT00000001", V2, "changed", ["enrollment", "overall_status"]),
    ]
    assert second.record_versions.num_rows == 3 + 2


def changed_in_second(old: pa.Table, new: pa.Table) -> dict[str, list[str]]:
    """Study id -> changed fields of the second of two releases whose studies are given."""
    ids = pa.Table.from_pylist([], schema=IDENTIFIER_COLUMNS)
    pubs = pa.Table.from_pylist([], schema=PUBLICATION_COLUMNS)
    one, two = Records(old, pubs, ids), Records(new, pubs, ids)
    second = compute_history(after(compute_history(None, one, V1), V1, one), two, V2)
    return {
        r["record_id"]: r["changed_fields"]
        for r in second.record_versions.to_pylist()
        if r["version"] == V2 and r["change"] == "changed"
    }


def test_a_column_only_one_release_has_is_not_a_change() -> None:
    before = pa.table({"study_id": ["a", "b"], "n": [1, 2], "tags": [["x"], []]})
    after = pa.table({"study_id": ["b", "a"], "n": [2, 1], "tags": [[], ["x"]], "new": ["y", "z"]})
    assert changed_in_second(before, after) == {}


def test_nulls_and_nans_compare_equal_to_themselves_only() -> None:
    before = pa.table(
        {
            "study_id": ["a", "b", "c"],
            "n": pa.array([None, None, 3], pa.int64()),
            "x": [float("nan"), 1.0, None],
            "tags": [None, ["p"], ["q", "r"]],
        }
    )
    after = pa.table(
        {
            "study_id": ["a", "b", "c"],
            "n": pa.array([None, 0, 3], pa.int64()),
            "x": [float("nan"), float("nan"), None],
            "tags": [None, ["p"], ["r", "q"]],
        }
    )
    assert changed_in_second(before, after) == {"b": ["n", "x"], "c": ["tags"]}


def test_a_column_whose_type_changed_is_compared_by_value() -> None:
    before = pa.table({"study_id": ["a", "b"], "n": pa.array([1, 2], pa.int64())})
    after = pa.table({"study_id": ["a", "b"], "n": pa.array([1.0, 2.5], pa.float64())})
    assert changed_in_second(before, after) == {"b": ["n"]}


def test_removed_records_become_tombstones_with_sources_and_last_version_seen() -> None:
    one = records(
        [study("NCT00000001"), study("PMID:5", registry=None, evidence_source="literature")],
        [publication("PMID:7", sources=["pubmed", "crossref"]), publication("PMID:8")],
    )
    two = records([], [publication("PMID:8")])
    second = compute_history(after(compute_history(None, one, V1), V1, one), two, V2)
    assert rows(second.removed_records) == [
        ("publication", "PMID:7", ["crossref", "pubmed"], V1, V2, None),
        ("study", "NCT00000001", ["clinicaltrials.gov"], V1, V2, None),
        ("study", "PMID:5", ["literature"], V1, V2, None),
    ]
    removed = [r[:4] for r in rows(second.record_versions) if r[3] == "removed"]
    assert removed == [
        ("publication", "PMID:7", V2, "removed"),
        ("study", "NCT00000001", V2, "removed"),
        ("study", "PMID:5", V2, "removed"),
    ]


def test_tombstone_is_carried_over_while_the_record_stays_away() -> None:
    one = records([study("NCT00000001"), study("NCT00000002")])
    two = records([study("NCT00000002")])
    three = records([study("NCT00000002", enrollment=41)])
    first = compute_history(None, one, V1)
    second = compute_history(after(first, V1, one), two, V2)
    third = compute_history(after(second, V2, two), three, V3)
    assert rows(third.removed_records) == rows(second.removed_records)
    assert rows(third.removed_records)[0][3:5] == (V1, V2)


def test_record_that_comes_back_is_restored_and_leaves_removed_records() -> None:
    one = records([study("NCT00000001"), study("NCT00000002")])
    two = records([study("NCT00000002")])
    three = records([study("NCT00000001", overall_status="COMPLETED"), study("NCT00000002")])
    first = compute_history(None, one, V1)
    second = compute_history(after(first, V1, one), two, V2)
    third = compute_history(after(second, V2, two), three, V3)
    assert third.removed_records.num_rows == 0
    trail = [r[2:4] for r in rows(third.record_versions) if r[1] == "NCT00000001"]
    assert trail == [(V1, "added"), (V2, "removed"), (V3, "restored")]


def test_removed_nct_id_listed_as_alias_is_merged_into_the_present_study() -> None:
    one = records([study("NCT00000001"), study("NCT00000002"), study("NCT00000003")])
    two = records(
        [study("NCT00000002")],
        identifiers=[alias("NCT00000002", "NCT00000001"), alias("NCT00000099", "NCT00000003")],
    )
    second = compute_history(after(compute_history(None, one, V1), V1, one), two, V2)
    merged = {r["record_id"]: r["merged_into"] for r in second.removed_records.to_pylist()}
    assert merged == {"NCT00000001": "NCT00000002", "NCT00000003": None}


def test_merge_found_in_a_later_release_updates_the_carried_tombstone() -> None:
    one = records([study("NCT00000001"), study("NCT00000002")])
    two = records([study("NCT00000002")])
    three = records([study("NCT00000002")], identifiers=[alias("NCT00000002", "NCT00000001")])
    first = compute_history(None, one, V1)
    second = compute_history(after(first, V1, one), two, V2)
    third = compute_history(after(second, V2, two), three, V3)
    assert rows(second.removed_records)[0][5] is None
    assert rows(third.removed_records) == [
        ("study", "NCT00000001", ["clinicaltrials.gov"], V1, V2, "NCT00000002")
    ]


def test_release_before_history_tables_is_seeded_as_added_in_it() -> None:
    old = records([study("NCT00000001"), study("NCT00000002")])
    new = records([study("NCT00000001")])
    history = compute_history(PreviousRelease(V1, old, None, None), new, V2)
    assert [r[1:4] for r in rows(history.record_versions)] == [
        ("NCT00000001", V1, "added"),
        ("NCT00000002", V1, "added"),
        ("NCT00000002", V2, "removed"),
    ]


def _shuffled(table: pa.Table, rng: random.Random) -> pa.Table:
    order = list(range(table.num_rows))
    rng.shuffle(order)
    return table.take(pa.array(order, type=pa.int64()))


def test_history_is_the_same_whatever_the_input_row_order() -> None:
    one = records(
        [study(f"NCT0000000{i}", enrollment=i) for i in range(1, 8)],
        [publication(f"PMID:{i}") for i in range(1, 6)],
    )
    two = records(
        [study(f"NCT0000000{i}", enrollment=i * 2) for i in range(3, 10)],
        [publication(f"PMID:{i}", title=f"T{i}") for i in range(2, 8)],
        [alias("NCT00000005", "NCT00000001"), alias("NCT00000004", "NCT00000001")],
    )
    first = compute_history(None, one, V1)
    expected = compute_history(after(first, V1, one), two, V2)
    for seed in range(5):
        rng = random.Random(seed)
        shuffled_one = Records(*(_shuffled(t, rng) for t in vars(one).values()))
        shuffled_two = Records(*(_shuffled(t, rng) for t in vars(two).values()))
        shuffled_first = History(
            _shuffled(first.record_versions, rng), _shuffled(first.removed_records, rng)
        )
        got = compute_history(after(shuffled_first, V1, shuffled_one), shuffled_two, V2)
        assert got.record_versions.equals(expected.record_versions)
        assert got.removed_records.equals(expected.removed_records)
    merged = expected.removed_records.to_pylist()
    assert [(r["record_id"], r["merged_into"]) for r in merged if r["record_type"] == "study"] == [
        ("NCT00000001", "NCT00000004"),
        ("NCT00000002", None),
    ]


def test_versions_sort_numerically() -> None:
    one = records([study("NCT00000001")])
    versions = ["2026.11.25.10", "2026.11.25", "2026.11.25.9"]
    trail = pa.Table.from_pylist(
        [
            {
                "record_type": "study",
                "record_id": "NCT00000001",
                "version": v,
                "change": "changed",
                "changed_fields": ["enrollment"],
            }
            for v in versions
        ],
        schema=compute_history(None, one, V1).record_versions.schema,
    )
    empty = compute_history(None, one, V1).removed_records.slice(0, 0)
    history = compute_history(PreviousRelease(V1, one, trail, empty), one, V3)
    assert [r[2] for r in rows(history.record_versions)] == [
        "2026.11.25",
        "2026.11.25.9",
        "2026.11.25.10",
    ]


@pytest.mark.slow
def test_query_finds_the_release_in_which_a_trial_status_changed(
    two_releases: TwoReleases, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = (
        "SELECT version FROM record_versions WHERE record_id = 'NCT06089980' "
        "AND list_contains(changed_fields, 'overall_status')"
    )
    assert EDITED_STUDY == "NCT06089980"
    assert query_json(two_releases.data_dir, sql, capsys) == [{"version": SECOND_VERSION}]


@pytest.mark.slow
def test_query_finds_the_removed_study_with_its_last_version_seen(
    two_releases: TwoReleases, capsys: pytest.CaptureFixture[str]
) -> None:
    found = query_json(
        two_releases.data_dir,
        "SELECT * FROM removed_records ORDER BY record_type, record_id",
        capsys,
    )
    assert found == [
        {
            "record_type": "study",
            "record_id": DELETED_STUDY,
            "sources": ["clinicaltrials.gov"],
            "last_version_seen": FIRST_VERSION,
            "removed_in_version": SECOND_VERSION,
            "merged_into": None,
        }
    ]
    second = query_json(
        two_releases.data_dir,
        "SELECT record_id, change, changed_fields FROM record_versions "
        f"WHERE version = '{SECOND_VERSION}' ORDER BY record_type, record_id",
        capsys,
    )
    assert second == [
        {"record_id": EDITED_STUDY, "change": "changed", "changed_fields": ["overall_status"]},
        {"record_id": DELETED_STUDY, "change": "removed", "changed_fields": []},
    ]


@pytest.mark.slow
def test_first_release_history_holds_every_record_added(
    two_releases: TwoReleases, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = query_json(
        two_releases.data_dir,
        "SELECT (SELECT count(*) FROM studies) + (SELECT count(*) FROM publications) "
        "+ (SELECT count(*) FROM product_composition) + (SELECT count(*) FROM interaction_effects) "
        "+ (SELECT count(*) FROM safety_signals) AS records, "
        "(SELECT count(*) FROM record_versions WHERE change = 'added') AS added, "
        "(SELECT count(*) FROM record_versions) AS history, "
        "(SELECT count(*) FROM removed_records) AS removed",
        capsys,
        "--release-version",
        FIRST_VERSION,
    )
    assert counts[0]["records"] == counts[0]["added"] == counts[0]["history"] > 0
    assert counts[0]["removed"] == 0


@pytest.mark.slow
def test_history_tables_are_published_like_every_table(two_releases: TwoReleases) -> None:
    manifest = json.loads((two_releases.second / "manifest.json").read_text(encoding="utf-8"))
    con = catalog.connect(DataDir(two_releases.data_dir).lake, read_only=True)
    try:
        record = catalog.snapshot_for(con, SECOND_VERSION)
    finally:
        con.close()
    problems = validate_release(two_releases.second)
    for spec in HISTORY:
        entry = manifest["tables"][spec.name]
        assert record.tables_sha256[spec.name] == entry["sha256"]
        assert record.rows[spec.name] == entry["rows"]
        table, unreadable = read_table(two_releases.second, spec, entry["file"])
        assert unreadable == [] and table is not None and table.num_rows == entry["rows"]
        assert not [p for p in problems if p.startswith(entry["file"])]
    previous = read_previous(two_releases.first, FIRST_VERSION)
    assert previous.record_versions is not None
    assert pq.read_table(two_releases.second / "record_versions.parquet").num_rows == (
        previous.record_versions.num_rows + 2
    )


def _curated(folder: Path) -> dict[str, pa.Table]:
    """A release's curated tables and quarantine, read back to publish again."""
    return {
        spec.name: pq.read_table(folder / f"{spec.name}.parquet") for spec in (*TABLES, QUARANTINE)
    }


def _publish(data_dir: Path, tables: dict[str, pa.Table], version: str | None = None) -> Any:
    info = SnapshotInfo(date(2026, 11, 25), "kratom", "reconstructed", "")
    created_at = "2026-11-25T00:00:00Z"
    return publish(
        DataDir(data_dir), tables, info, "0" * 64, {}, created_at, version, begin_describe
    )


@pytest.mark.slow
def test_publish_ignores_history_when_deciding_nothing_changed(
    two_releases: TwoReleases, tmp_path: Path
) -> None:
    tables = _curated(two_releases.first)
    assert _publish(tmp_path, tables).version == FIRST_VERSION
    again = _publish(tmp_path, tables)
    assert again.version is None and again.message.startswith("nothing changed since release")
    forced = _publish(tmp_path, tables, "2026.12.01")
    assert forced.version == "2026.12.01"
    versions = pq.read_table(tmp_path / "releases" / "2026.12.01" / "record_versions.parquet")
    assert set(versions["version"].to_pylist()) == {FIRST_VERSION}


@pytest.mark.slow
def test_publish_continues_history_from_the_catalog_without_the_previous_folder(
    two_releases: TwoReleases, tmp_path: Path
) -> None:
    """With a shared catalog the previous release may have no folder here: time travel."""
    assert _publish(tmp_path, _curated(two_releases.first)).version == FIRST_VERSION
    shutil.rmtree(tmp_path / "releases" / FIRST_VERSION)
    result = _publish(tmp_path, _curated(two_releases.second))
    assert result.version == SECOND_VERSION
    for name in ("record_versions.parquet", "removed_records.parquet", "CHANGES.md"):
        assert (result.folder / name).read_bytes() == (two_releases.second / name).read_bytes()


@pytest.mark.slow
def test_removed_nct_id_that_became_an_alias_is_published_as_merged(
    two_releases: TwoReleases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _publish(tmp_path, _curated(two_releases.first)).version == FIRST_VERSION
    tables = _curated(two_releases.second)
    merged = pa.Table.from_pylist(
        [alias(EDITED_STUDY, DELETED_STUDY)], schema=tables["study_identifiers"].schema
    )
    tables["study_identifiers"] = pa.concat_tables([tables["study_identifiers"], merged])
    assert _publish(tmp_path, tables).version == SECOND_VERSION
    found = query_json(
        tmp_path, "SELECT record_id, merged_into, last_version_seen FROM removed_records", capsys
    )
    assert found == [
        {
            "record_id": DELETED_STUDY,
            "merged_into": EDITED_STUDY,
            "last_version_seen": FIRST_VERSION,
        }
    ]
    assert validate_release(tmp_path / "releases" / SECOND_VERSION) == []


def test_only_nct_rows_marked_is_alias_are_merge_targets() -> None:
    """An NCT id listed as a plain nct row (not is_alias) is no nctIdAlias: nothing merged."""
    one = records([study(f"NCT0000000{i}") for i in (1, 2, 3, 4, 5)])
    two = records(
        [study("NCT00000002"), study("NCT00000003")],
        identifiers=[
            alias("NCT00000002", "NCT00000001"),
            {**alias("NCT00000003", "NCT00000004"), "is_alias": False},
            {**alias("NCT00000003", "NCT00000005"), "id_type": "secondary"},
        ],
    )
    second = compute_history(after(compute_history(None, one, V1), V1, one), two, V2)
    merged = {r["record_id"]: r["merged_into"] for r in second.removed_records.to_pylist()}
    assert merged == {"NCT00000001": "NCT00000002", "NCT00000004": None, "NCT00000005": None}


def test_evidence_rows_are_followed_like_studies() -> None:
    """A composition row that changes, and a safety signal that goes, are in the history."""
    page = "https://example.org/paper"

    def evidence(value: float, signals: list[str]) -> Records:
        return Records(
            pa.table({"study_id": pa.array([], pa.string())}),
            pa.Table.from_pylist([], schema=PUBLICATION_COLUMNS),
            pa.Table.from_pylist([], schema=IDENTIFIER_COLUMNS),
            product_composition=pa.Table.from_pylist(
                [{"composition_id": "pc-001", "value": value, "source_url": page}]
            ),
            safety_signals=pa.table(
                {
                    "signal_id": pa.array(signals, pa.string()),
                    "source_url": pa.array([page] * len(signals), pa.string()),
                }
            ),
        )

    one, two = evidence(1.0, ["ss-001", "ss-002"]), evidence(2.0, ["ss-001"])
    first = compute_history(None, one, V1)
    second = compute_history(after(first, V1, one), two, V2)
    changes = {
        (r["record_type"], r["record_id"], r["change"], tuple(r["changed_fields"]))
        for r in second.record_versions.to_pylist()
        if r["version"] == V2
    }
    assert changes == {
        ("composition", "pc-001", "changed", ("value",)),
        ("safety_signal", "ss-002", "removed", ()),
    }
    (tombstone,) = second.removed_records.to_pylist()
    assert (tombstone["record_id"], tombstone["sources"]) == ("ss-002", [page])


def test_results_rows_are_followed_by_their_composite_key() -> None:
    """An adverse event whose count changes, a flow row that goes and an outcome change with a
    null key part that comes are in the history, each named by its key values joined by |."""
    nct = "NCT03722472"

    def posted(affected: int, has_dropout: bool) -> Records:
        event = {
            "study_id": nct,
            "event_group_id": "EG000",
            "event_type": "serious",
            "term": "Anaemia",
            "organ_system": "Blood and lymphatic system disorders",
            "group_title": "Group A",
            "affected": affected,
        }
        flow = [
            {
                "study_id": nct,
                "period": "Overall Study",
                "milestone_or_reason": reason,
                "kind": "drop_withdraw",
                "group_title": "Group A",
                "participants": 1,
            }
            for reason in (["Lost to Follow-up"] if has_dropout else [])
        ]
        change = {
            "study_id": nct,
            "registered_outcome_id": None,
            "reported_outcome_id": f"{nct}:R1",
            "status": "reported_not_registered",
        }
        return Records(
            pa.table({"study_id": pa.array([], pa.string())}),
            pa.Table.from_pylist([], schema=PUBLICATION_COLUMNS),
            pa.Table.from_pylist([], schema=IDENTIFIER_COLUMNS),
            adverse_events=pa.Table.from_pylist([event]),
            participant_flow=pa.Table.from_pylist(flow, schema=FLOW_COLUMNS),
            outcome_changes=pa.Table.from_pylist(
                [] if has_dropout else [change], schema=CHANGE_COLUMNS
            ),
        )

    one, two = posted(2, has_dropout=True), posted(3, has_dropout=False)
    first = compute_history(None, one, V1)
    assert {(r["record_type"], r["record_id"]) for r in first.record_versions.to_pylist()} == {
        (
            "adverse_event",
            f"{nct}|EG000|serious|Anaemia|Blood and lymphatic system disorders|Group A",
        ),
        ("participant_flow", f"{nct}|Overall Study|Lost to Follow-up|drop_withdraw|Group A"),
    }
    second = compute_history(after(first, V1, one), two, V2)
    assert {
        (r["record_type"], r["record_id"], r["change"], tuple(r["changed_fields"]))
        for r in second.record_versions.to_pylist()
        if r["version"] == V2
    } == {
        (
            "adverse_event",
            f"{nct}|EG000|serious|Anaemia|Blood and lymphatic system disorders|Group A",
            "changed",
            ("affected",),
        ),
        (
            "participant_flow",
            f"{nct}|Overall Study|Lost to Follow-up|drop_withdraw|Group A",
            "removed",
            (),
        ),
        ("outcome_change", f"{nct}||{nct}:R1", "added", ()),
    }
    (tombstone,) = second.removed_records.to_pylist()
    assert tombstone["sources"] == [f"https://clinicaltrials.gov/study/{nct}"]


def test_record_ids_that_would_merge_two_records_are_an_error() -> None:
    arms = pa.table({"study_id": ["NCT1|a", "NCT1"], "arm_label": ["b", "a|b"]})
    colliding = Records(
        pa.table({"study_id": pa.array([], pa.string())}),
        pa.Table.from_pylist([], schema=PUBLICATION_COLUMNS),
        pa.Table.from_pylist([], schema=IDENTIFIER_COLUMNS),
        arms=arms,
    )
    with pytest.raises(ValueError, match="not unique"):
        compute_history(None, colliding, V1)


def _with_arms(arms: pa.Table) -> Records:
    return Records(
        pa.table({"study_id": pa.array([], pa.string())}),
        pa.Table.from_pylist([], schema=PUBLICATION_COLUMNS),
        pa.Table.from_pylist([], schema=IDENTIFIER_COLUMNS),
        arms=arms,
    )


def test_a_repeated_key_is_an_error_across_a_batch_boundary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sorted, the two rows of one id are neighbours, here in two batches of the stream."""
    monkeypatch.setattr(record_history, "ROWS_PER_BATCH", 2)
    arms = pa.table({"study_id": ["NCT2", "NCT1", "NCT2"], "arm_label": ["a", "a", "a"]})
    with pytest.raises(ValueError, match=r"not unique: two rows are 'NCT2\|a'"):
        compute_history(None, _with_arms(arms), V1)


def test_a_null_key_part_meeting_an_empty_one_is_an_error() -> None:
    """A null key part is written as the empty string, so ('NCT1', null) is ('NCT1', '')."""
    arms = pa.table({"study_id": ["NCT1", "NCT1"], "arm_label": [None, ""]})
    with pytest.raises(ValueError, match="not unique"):
        compute_history(None, _with_arms(arms), V1)


def test_a_repeated_key_is_an_error_in_a_release_with_a_history() -> None:
    """Rows of earlier versions share their record's id; two rows new in this one may not."""
    before = _with_arms(pa.table({"study_id": ["NCT1", "NCT2"], "arm_label": ["a", "a"]}))
    first = compute_history(None, before, V1)
    arms = pa.table({"study_id": ["NCT1", "NCT1", "NCT2"], "arm_label": ["a|b", "a|b", "a"]})
    with pytest.raises(ValueError, match=r"two rows are 'NCT1\|a\|b'"):
        compute_history(after(first, V1, before), _with_arms(arms), V2)


class _Counted:
    """A DuckDB connection that counts the calls history makes into it (each call gives up
    Python's GIL and waits to take it back)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.calls = con, 0

    def execute(self, sql: str) -> duckdb.DuckDBPyConnection:
        self.calls += 1
        return self.con.execute(sql)

    def register(self, name: str, table: pa.Table) -> duckdb.DuckDBPyConnection:
        self.calls += 1
        return self.con.register(name, table)


def test_a_first_release_history_is_one_call_then_a_query_per_record_type(
    tmp_path: Path,
) -> None:
    """No previous release: no previous side to read, compare or check, and no tombstones."""
    files = {}
    for name, model in record_history.FOLLOWED.items():
        files[name] = tmp_path / f"{name}.parquet"
        pq.write_table(arrow_schema(model).empty_table(), files[name])
    pq.write_table(pa.Table.from_pylist([study("NCT2"), study("NCT1")]), files["studies"])
    tables = {name: f"read_parquet('{path}')" for name, path in files.items()}
    counted = _Counted(duckdb.connect())
    found = {
        name: reader.read_all()
        for name, reader in record_history.history_batches(
            cast(duckdb.DuckDBPyConnection, counted), None, record_history.Scans(V1, tables), V1
        )
    }
    assert [r[:4] for r in rows(found[record_history.RECORD_VERSIONS])] == [
        ("study", "NCT1", V1, "added"),
        ("study", "NCT2", V1, "added"),
    ]
    assert found[record_history.REMOVED_RECORDS].num_rows == 0
    record_types = len(record_history.FOLLOWED) - 1  # study_identifiers is no record type
    assert counted.calls == 1 + record_types

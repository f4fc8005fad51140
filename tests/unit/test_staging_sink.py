"""The staging sink turns parsed rows into staging tables column by column, batch by batch, and
staging pauses the cycle collector only while it runs."""

from __future__ import annotations

import gc
from typing import Any

import duckdb
import pytest

from pipelines.staging import cyclic_gc_paused
from pipelines.warehouse import StagingSink, ensure_schemas, row_columns


def condition(n: int, **extra: Any) -> dict[str, Any]:
    return {"study_id": f"NCT0000000{n}", "condition": f"Condition {n}", "mesh_id": None, **extra}


def test_rows_sharing_their_keys_are_transposed_whole() -> None:
    rows = [condition(1), condition(2)]
    assert row_columns(rows, ["study_id", "condition", "mesh_id", "mesh_term"]) == {
        "study_id": ["NCT00000001", "NCT00000002"],
        "condition": ["Condition 1", "Condition 2"],
        "mesh_id": [None, None],
    }


@pytest.mark.parametrize(
    "rows",
    [
        [condition(1), {"study_id": "NCT00000002", "condition": "Condition 2", "other": 1}],
        [condition(1), {"study_id": "NCT00000002", "condition": "Condition 2"}],
        [{"study_id": "NCT00000001"}, {"condition": "Condition 2"}],
    ],
    ids=["same-count-other-key", "fewer-keys", "one-key-each"],
)
def test_rows_with_different_keys_read_a_missing_key_as_null(rows: list[dict[str, Any]]) -> None:
    columns = row_columns(rows, ["study_id", "condition", "mesh_id"])
    for name, values in columns.items():
        assert values == [row.get(name) for row in rows]
    assert set(columns) == {"study_id", "condition", "mesh_id"} & set().union(*rows)


def test_sink_batches_keep_lineage_order_and_fill_missing_columns() -> None:
    con = duckdb.connect()
    ensure_schemas(con)
    sink = StagingSink(con, "toy", batch_rows=2)
    sink.add_rows("conditions", [condition(1), condition(2), condition(3)], "toy/a.json")
    sink.add_rows("conditions", [], "toy/b.json")
    sink.add("conditions", {"study_id": "NCT00000004", "condition": "C4"}, "toy/b.json")
    sink.close()
    got = con.execute(
        "SELECT study_id, condition, mesh_term, _source, _source_file, _seq "
        "FROM staging.toy__conditions ORDER BY _seq"
    ).fetchall()
    assert got == [
        ("NCT00000001", "Condition 1", None, "toy", "toy/a.json", 0),
        ("NCT00000002", "Condition 2", None, "toy", "toy/a.json", 1),
        ("NCT00000003", "Condition 3", None, "toy", "toy/a.json", 2),
        ("NCT00000004", "C4", None, "toy", "toy/b.json", 3),
    ]
    assert sink.counts == {"conditions": 4}


def test_a_later_run_appends_to_the_tables_it_continues_with_lineage_going_on() -> None:
    """Runs of one source staged one after another into one database (`setwise.Place`): a
    continued table gets the next rows after the earlier run's; one that run never wrote is
    created."""
    con = duckdb.connect()
    ensure_schemas(con)
    first = StagingSink(con, "toy")
    first.add_rows("conditions", [condition(1), condition(2)], "toy/a.json")
    first.close()
    later = StagingSink(con, "toy", continued=("conditions", "quarantine"))
    later.add("conditions", condition(3), "toy/b.json")
    later.add("quarantine", {"record_key": "NCT00000004", "reason": "bad"}, "toy/b.json")
    later.close()

    got = con.execute(
        "SELECT study_id, _source_file, _seq FROM staging.toy__conditions ORDER BY _seq"
    ).fetchall()
    assert got == [
        ("NCT00000001", "toy/a.json", 0),
        ("NCT00000002", "toy/a.json", 1),
        ("NCT00000003", "toy/b.json", 2),
    ]
    quarantined = con.execute("SELECT record_key, _seq FROM staging.toy__quarantine").fetchall()
    assert quarantined == [("NCT00000004", 0)]
    assert later.counts == {"conditions": 3, "quarantine": 1}


def test_cycle_collector_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("a failed load")
    assert gc.isenabled()


def test_cycle_collector_left_off_when_it_was_off() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()

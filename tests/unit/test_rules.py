"""The rules, applied three ways: the gate quarantines with the rule named, none vanish; the
asset check and `validate` report the same rules as counted lines."""

from __future__ import annotations

import dataclasses
import json
import random

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipelines import rules
from pipelines.assets.curated import TableWriter
from pipelines.rules import (
    Frames,
    all_problem_lines,
    breaches,
    enforce,
    gate,
    in_model_types,
    nullable_key_columns,
    staged_rows,
    table_check,
    warehouse_parents,
)
from pipelines.tables import LINEAGE_SCHEMA
from pipelines.warehouse import staging_tables, union_staging
from schemas import RELEASED, TABLES_BY_NAME, TableSpec
from schemas.arrow import arrow_schema, to_arrow

CONDITIONS = TABLES_BY_NAME["conditions"]


def _staged(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["_source"] = "clinicaltrials"
    frame["_source_file"] = "clinicaltrials/page.json"
    frame["_seq"] = range(len(frame))
    return frame


def _condition(study_id: str, condition: str, category: str = "pain") -> dict:
    return {"study_id": study_id, "condition": condition, "condition_category": category}


def test_duplicate_primary_key_keeps_the_first_and_quarantines_the_rest() -> None:
    staged = _staged(
        [_condition("NCT00000001", "Pain"), _condition("NCT00000001", "Pain", "other")]
    )
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert result.frame["condition_category"].tolist() == ["pain"]
    assert result.rejects["reason"].tolist() == ["duplicate primary key (study_id, condition)"]
    assert json.loads(result.rejects["raw"][0])["condition_category"] == "other"


def test_value_outside_the_vocabulary_is_quarantined_with_the_column_named() -> None:
    staged = _staged(
        [_condition("NCT00000001", "Pain"), _condition("NCT00000001", "Itch", "itchy")]
    )
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert result.frame["condition"].tolist() == ["Pain"]
    (reason,) = result.rejects["reason"]
    assert reason.startswith("condition_category: failed isin") and "itchy" in reason
    assert result.rejects["record_key"].tolist() == ["NCT00000001|Itch"]
    assert result.rejects["source_file"].tolist() == ["clinicaltrials/page.json"]


def test_unresolved_foreign_key_is_quarantined() -> None:
    staged = _staged([_condition("NCT00000001", "Pain"), _condition("NCT00000002", "Pain")])
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert result.frame["study_id"].tolist() == ["NCT00000001"]
    assert result.rejects["reason"].tolist() == ["study_id 'NCT00000002' not found in studies"]


def test_rows_in_equal_rows_out_plus_rejects() -> None:
    staged = _staged(
        [
            _condition("NCT00000001", "Pain"),
            _condition("NCT00000001", "Pain"),
            _condition("NCT00000003", "Pain"),
            _condition("bad id", "Pain", "nope"),
        ]
    )
    result = enforce(staged, CONDITIONS, {"studies": {("NCT00000001",)}})
    assert len(result.frame) + len(result.rejects) == len(staged)


def test_missing_columns_become_nulls_and_empty_lists() -> None:
    studies = TABLES_BY_NAME["studies"]
    staged = _staged(
        [
            {
                "study_id": "NCT00000001",
                "evidence_source": "registry",
                "population": "human",
                "design": "rct",
            }
        ]
    )
    result = enforce(staged, studies, {})
    assert result.rejects.empty
    assert result.frame.loc[0, "phases"] == [] and pd.isna(result.frame.loc[0, "title"])


@pytest.mark.parametrize("spec", [s for s in RELEASED if s.primary_key], ids=lambda s: s.name)
def test_key_table_and_model_agree_on_the_primary_key(spec: TableSpec) -> None:
    """A key column is nullable exactly where its model opts in (nullable_key_part)."""
    schema = spec.model.to_schema()
    nullable = tuple(c for c in spec.primary_key if schema.columns[c].nullable)
    assert nullable == nullable_key_columns(spec)
    if len(spec.primary_key) == 1:
        assert schema.columns[spec.primary_key[0]].unique
    else:
        assert list(schema.unique or []) == list(spec.primary_key)


OUTCOME_CHANGES = TABLES_BY_NAME["outcome_changes"]
OUTCOMES = {("NCT00000001:P1",), ("NCT00000001:R1",), ("NCT00000001:R2",)}


def _change(registered: str | None, reported: str | None, status: str) -> dict:
    return {
        "study_id": "NCT00000001",
        "registered_outcome_id": registered,
        "reported_outcome_id": reported,
        "status": status,
    }


def test_only_outcome_changes_opts_in_to_null_key_parts() -> None:
    opted = {s.name: nullable_key_columns(s) for s in RELEASED if nullable_key_columns(s)}
    assert opted == {"outcome_changes": ("registered_outcome_id", "reported_outcome_id")}


def test_a_declared_nullable_key_part_keeps_its_row_and_counts_null_as_a_value() -> None:
    staged = _staged(
        [
            _change("NCT00000001:P1", "NCT00000001:R1", "matched"),
            _change(None, "NCT00000001:R2", "reported_not_registered"),
            _change(None, "NCT00000001:R2", "reported_not_registered"),
        ]
    )
    parents = {"studies": {("NCT00000001",)}, "outcomes": OUTCOMES}
    result = enforce(staged, OUTCOME_CHANGES, parents)
    assert result.frame["reported_outcome_id"].tolist() == ["NCT00000001:R1", "NCT00000001:R2"]
    assert result.rejects["reason"].tolist() == [
        "duplicate primary key (study_id, registered_outcome_id, reported_outcome_id)"
    ]
    assert result.rejects["record_key"].tolist() == ["NCT00000001||NCT00000001:R2"]


def test_a_null_in_a_key_column_that_did_not_opt_in_is_quarantined() -> None:
    nameless = {**_change(None, "NCT00000001:R2", "reported_not_registered"), "study_id": None}
    staged = _staged([_change("NCT00000001:P1", "NCT00000001:R1", "matched"), nameless])
    parents = {"studies": {("NCT00000001",)}, "outcomes": OUTCOMES}
    result = enforce(staged, OUTCOME_CHANGES, parents)
    assert result.frame["registered_outcome_id"].tolist() == ["NCT00000001:P1"]
    assert result.rejects["reason"].tolist() == ["primary key column study_id is null"]
    nulls = pd.DataFrame([_condition("NCT00000001", "Pain"), _condition(None, "Pain")])
    lines = all_problem_lines(
        CONDITIONS,
        breaches(
            nulls.assign(mesh_term=None, mesh_id=None, matched_in=None, matched_term=None),
            CONDITIONS,
            {},
        ),
    )
    assert lines == ["table conditions, primary key column study_id has 1 nulls"]


def test_problem_lines_count_each_rule_once_with_examples() -> None:
    frame = pd.DataFrame(
        [
            _condition("NCT00000001", "Pain"),
            _condition("NCT00000001", "Pain"),
            _condition("NCT00000001", "Itch", "itchy"),
            _condition("NCT00000002", "Pain"),
            _condition("NCT00000003", "Pain"),
        ]
    ).assign(mesh_term=None, mesh_id=None, matched_in=None, matched_term=None)
    found = breaches(frame, CONDITIONS, {"studies": {("NCT00000001",)}})
    lines = all_problem_lines(CONDITIONS, found)
    assert lines[0].startswith("table conditions, column condition_category fails isin(")
    assert lines[0].endswith("(1 values, e.g. 'itchy')")
    assert lines[1:] == [
        "table conditions, primary key study_id, condition has 1 duplicate rows",
        "foreign key study_id -> studies: 2 values do not resolve, e.g. NCT00000002, NCT00000003",
    ]


def _warehouse(conditions: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA curated")
    con.execute("CREATE TABLE curated.studies AS SELECT 'NCT00000001' AS study_id")
    con.execute(
        "CREATE TABLE curated.conditions AS SELECT *, NULL::VARCHAR AS matched_in, "
        f"NULL::VARCHAR AS matched_term FROM (VALUES {conditions}) "
        "t(study_id, condition, condition_category, mesh_term, mesh_id)"
    )
    return con


def test_asset_check_passes_a_curated_table_that_keeps_the_rules() -> None:
    con = _warehouse("('NCT00000001', 'Pain', 'pain', NULL, NULL)")
    result = table_check(con, CONDITIONS)
    assert result.check_name == "conditions_matches_schema"
    assert result.passed and result.metadata["problems"].value == []


def test_asset_check_fails_naming_each_broken_rule() -> None:
    con = _warehouse(
        "('NCT00000001', 'Pain', 'pain', NULL, NULL), ('NCT00000001', 'Pain', 'pain', NULL, NULL), "
        "('NCT00000009', 'Pain', 'pain', NULL, NULL)",
    )
    result = table_check(con, CONDITIONS)
    assert not result.passed
    assert result.metadata["problems"].value == [
        "table conditions, primary key study_id, condition has 1 duplicate rows",
        "foreign key study_id -> studies: 1 values do not resolve, e.g. NCT00000009",
    ]


ARMS = TABLES_BY_NAME["arms"]


def _arm(study_id: str | None, label: str, names: list[str] | None, kind: str = "EXPERIMENTAL"):
    return {
        "study_id": study_id,
        "arm_label": label,
        "arm_type": kind,
        "description": None,
        "intervention_names": names,
    }


ARM_ROWS = [
    _arm("NCT00000002", "B", ["kratom", "placebo", "kratom"]),
    _arm("NCT00000001", "A", None),
    _arm("NCT00000009", "A", ["kratom"]),  # no such study
    _arm("NCT00000001", "A", ["placebo"]),  # a duplicate, later in lineage order
    _arm(None, "C", []),  # a key column that may not be null
    _arm("NCT00000002", "C", ["kratom"]),
]
"""Arms breaking each rule, the rows of a key spread over chunks of two."""
STUDIES = {("NCT00000001",), ("NCT00000002",)}


def test_the_gate_in_chunks_keeps_and_quarantines_what_it_does_in_one() -> None:
    staged = _staged(ARM_ROWS)
    whole = enforce(staged, ARMS, {"studies": STUDIES})
    chunked = enforce(staged, ARMS, {"studies": STUDIES}, chunk_rows=2)
    assert whole.rejects["reason"].tolist() == [
        "duplicate primary key (study_id, arm_label)",
        "study_id 'NCT00000009' not found in studies",
        "primary key column study_id is null",
    ]
    assert whole.frame["intervention_names"].tolist() == [[], ["kratom", "placebo"], ["kratom"]]
    pd.testing.assert_frame_equal(whole.frame, chunked.frame)
    pd.testing.assert_frame_equal(whole.rejects, chunked.rejects)


def _staging_table(con: duckdb.DuckDBPyConnection, source: str, rows: list[dict]) -> None:
    """A staging table as the staging sink writes it: model columns typed, then lineage."""
    frame = _staged(rows).assign(_source=source)
    fields = [
        *arrow_schema(ARMS.model),
        pa.field("_source", pa.string()),
        pa.field("_source_file", pa.string()),
        pa.field("_seq", pa.int64()),
    ]
    table = pa.Table.from_pandas(
        frame, pa.schema([f.with_nullable(True) for f in fields]), preserve_index=False
    )
    con.register("_rows", table)
    con.execute(f"CREATE TABLE staging.{source}__arms AS SELECT * FROM _rows")
    con.unregister("_rows")


def test_staged_rows_gated_in_place_give_what_the_frame_gives() -> None:
    """`staged_rows` conforms and orders in SQL what `conform` and the sort do in pandas, and
    the gate screens them in SQL (schemas/sql.py) to the same rows and reasons."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE SCHEMA curated")
    con.execute(
        "CREATE TABLE curated.studies AS SELECT * FROM (VALUES ('NCT00000001'), "
        "('NCT00000002')) t(study_id)"
    )
    unnamed = _arm("NCT00000002", "D", ["kratom", ""])  # breaks the model: an empty name
    _staging_table(con, "clinicaltrials", ARM_ROWS[:4])
    _staging_table(con, "another", [*ARM_ROWS[4:], unnamed])
    parents = warehouse_parents(ARMS)
    rows = staged_rows(con, ARMS, staging_tables(con, "arms"))
    assert in_model_types(con, rows, ARMS)
    in_place = Frames(con, ARMS, [])
    rejects = gate(con, rows, ARMS, parents, in_place, chunk_rows=2)
    from_frame = enforce(union_staging(con, "arms"), ARMS, {"studies": STUDIES})
    con.close()
    pd.testing.assert_frame_equal(in_place.frame(), from_frame.frame)
    pd.testing.assert_frame_equal(rejects, from_frame.rejects)
    assert rejects["reason"].tolist() == [
        "duplicate primary key (study_id, arm_label)",
        "intervention_names: failed is_str_list (value ['', 'kratom'])",
        "study_id 'NCT00000009' not found in studies",
        "primary key column study_id is null",
    ]


@pytest.mark.parametrize("in_place", [False, True])
def test_rows_kept_in_sql_are_written_as_the_models_coercion_writes_them(in_place: bool) -> None:
    """A staged NaN (Pandera's Float64 reads it as missing) is written null by the SQL path
    too, and every other value as the frame path's Arrow table has it; rows sorted into the
    writer's own table (`in_place`) are kept there, less the rejected ones, with the model's
    columns alone, and nothing else is left behind."""
    results = TABLES_BY_NAME["outcome_results"]
    row = {
        "outcome_id": "NCT00000001:R1",
        "group_title": "Kratom",
        "param_type": "MEAN",
        "category": "",
        "value": float("nan"),
        "value_text": None,
        "dispersion_type": None,
        "dispersion_value": 1.5,
        "lower_limit": None,
        "upper_limit": None,
        "unit": "points",
        "participants": 12,
    }
    repeated = {**row, "value": 3.0}
    orphan = {**row, "outcome_id": "NCT00000002:R1"}
    staged = _staged([row, {**row, "group_title": "Placebo", "value": 2.0}, repeated, orphan])
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE SCHEMA curated")
    con.execute("CREATE TABLE curated.outcomes AS SELECT 'NCT00000001:R1' AS outcome_id")
    fields = [*arrow_schema(results.model), *LINEAGE_SCHEMA]
    table = pa.Table.from_pandas(staged, pa.schema(fields), preserve_index=False)
    index = table.schema.get_field_index("value")  # from_pandas reads NaN as null: keep it NaN
    table = table.set_column(index, "value", pa.array([float("nan"), 2.0, 3.0, float("nan")]))
    con.register("_rows", table)
    con.execute("CREATE TABLE staging.clinicaltrials__outcome_results AS SELECT * FROM _rows")
    writer = TableWriter(con, results)
    sorted_into = writer.sorted_table if in_place else None
    rows = staged_rows(con, results, staging_tables(con, "outcome_results"), sorted_into)
    rejects = gate(con, rows, results, warehouse_parents(results), writer)
    written = con.execute("SELECT * FROM curated.outcome_results").to_arrow_table()
    stored = "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1"
    left = [name for (name,) in con.execute(stored).fetchall()]
    from_frame = enforce(staged, results, {"outcomes": {("NCT00000001:R1",)}})
    con.close()
    assert writer.rows == 2
    pd.testing.assert_frame_equal(rejects, from_frame.rejects)
    assert len(rejects) == 2
    expected = to_arrow(from_frame.frame, results.model)
    assert written.cast(expected.schema).equals(expected)  # the model's nullability aside
    assert written.column("value").to_pylist() == [None, 2.0]
    assert left == [
        "clinicaltrials__outcome_results",
        "outcome_results",
        "outcomes",
    ]


@pytest.mark.parametrize("seed", range(8))
def test_rows_sorted_in_runs_are_the_rows_sorted_whole(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A staged table sorted a run of records at a time gives the rows the whole sort gives:
    runs are taken when the files were staged in key order, and refused (the rows then sorted
    whole) when a later file holds keys before an earlier one's."""
    draw = random.Random(seed)
    results = TABLES_BY_NAME["outcome_results"]
    in_key_order = seed % 2 == 0
    files = [[f"NCT{2 * n + 1:08d}", f"NCT{2 * n + 2:08d}"] for n in range(4)]
    if not in_key_order:
        files.insert(draw.randrange(3), files.pop())
    rows = []
    for number, studies in enumerate(files):
        for study in studies:
            for _ in range(draw.randint(1, 4)):
                rows.append(
                    {
                        "outcome_id": f"{study}:{draw.choice(['O1', 'O2', 'AE1'])}",
                        "group_title": draw.choice(["Kratom", "Placebo", "Ölçek"]),
                        "param_type": draw.choice(["MEAN", "COUNT_OF_PARTICIPANTS"]),
                        "category": draw.choice(["", "a / b"]),
                        "_source_file": f"clinicaltrials/page{number}.json",
                    }
                )
    staged = pd.DataFrame(rows).assign(_source="clinicaltrials", _seq=range(len(rows)))
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    fields = [*arrow_schema(results.model), *LINEAGE_SCHEMA]
    for column in set(pa.schema(fields).names) - set(staged.columns):
        staged[column] = None
    con.register("_rows", pa.Table.from_pandas(staged, pa.schema(fields), preserve_index=False))
    con.execute("CREATE TABLE staging.clinicaltrials__outcome_results AS SELECT * FROM _rows")
    monkeypatch.setattr(rules, "SORT_RUN_ROWS", draw.choice([1, 2, 3, 5]))
    took: list[bool] = []
    in_runs = rules._sorted_in_runs
    monkeypatch.setattr(rules, "_sorted_in_runs", lambda *a: took.append(in_runs(*a)) or took[-1])
    staged_rows(con, results, staging_tables(con, "outcome_results"))
    columns = ["outcome_id", "group_title", "param_type", "category", "_source_file", "_seq"]
    got = con.execute(f"SELECT {', '.join(columns)} FROM _rows__outcome_results ORDER BY rowid")
    written = [tuple(row) for row in got.fetchall()]
    con.close()
    assert took == [in_key_order]
    keys = ["outcome_id", "group_title", "param_type", "category", "_source", "_source_file"]
    expected = staged.sort_values([*keys, "_seq"])[columns]
    assert written == [tuple(row) for row in expected.itertuples(index=False)]


def _random_key_rows(seed: int, n: int) -> pa.Table:
    """outcome_changes keys (two of three parts nullable) and conditions' (none), drawn from
    few values so repeats are common: nulls, empty text, non-ASCII and a study id with a
    prefix of another."""
    draw = random.Random(seed)
    values = ["NCT01", "NCT012", "", "Ölçek", "ölçek", "z", "Z ", "é", "e\u0301", None]
    rows = [[draw.choice(values) for _ in range(3)] for _ in range(n)]
    return pa.table(
        {
            "study_id": [r[0] or "NCT09" for r in rows],
            "registered_outcome_id": [r[1] for r in rows],
            "reported_outcome_id": [r[2] for r in rows],
            "condition": [r[2] for r in rows],
        }
    )


@pytest.mark.parametrize("table", ["outcome_changes", "conditions"])
@pytest.mark.parametrize("seed", range(4))
def test_repeats_found_between_neighbours_are_those_the_grouped_query_finds(
    table: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streamed check of sorted rows (batches of 7 rows here, so repeats cross batches)
    against the grouped query, on the same rows sorted as the gate sorts them and shuffled
    (which it must leave to the query)."""
    monkeypatch.setattr(rules, "KEY_BATCH_ROWS", 7)
    spec = TABLES_BY_NAME[table]
    allowed = nullable_key_columns(spec)
    order = ", ".join(f'"{c}" NULLS LAST' for c in spec.primary_key)
    con = duckdb.connect()
    con.register("drawn", _random_key_rows(seed, 200))
    con.execute("CREATE TABLE drawn_keys AS SELECT * FROM drawn")
    con.execute(f"CREATE TABLE sorted_keys AS SELECT * FROM drawn_keys ORDER BY {order}")
    con.execute("CREATE TABLE shuffled_keys AS SELECT * FROM drawn_keys ORDER BY hash(rowid)")
    for name, sorted_ in (("sorted_keys", True), ("shuffled_keys", False)):
        rows = rules.stored_rows(con, name)
        grouped = rules._grouped_repeats(con, rows, spec, allowed)
        adjacent = rules._adjacent_repeats(con, rows, spec, allowed)
        assert grouped, "the draw holds repeats"
        assert adjacent == (grouped if sorted_ else None)
        found = rules._duplicate_keys(con, rows, spec)
        assert [b.row for b in found] == grouped


def test_keys_without_an_order_here_go_to_the_grouped_query() -> None:
    """A key part Arrow cannot order (a list) is not streamed; NaN, never equal to itself,
    breaks the order too."""
    con = duckdb.connect()
    con.execute("CREATE TABLE listed AS SELECT [1] AS study_id, 'a' AS condition FROM range(3)")
    rows = rules.stored_rows(con, "listed")
    assert rules._adjacent_repeats(con, rows, CONDITIONS, ()) is None
    assert [b.row for b in rules._duplicate_keys(con, rows, CONDITIONS)] == [1, 2]
    con.execute("CREATE TABLE nan_keys AS SELECT 'nan'::DOUBLE AS study_id, 'a' AS condition")
    con.execute("INSERT INTO nan_keys SELECT * FROM nan_keys")
    rows = rules.stored_rows(con, "nan_keys")
    assert rules._adjacent_repeats(con, rows, CONDITIONS, ()) is None


@pytest.mark.parametrize("seed", range(4))
def test_orphans_found_by_merging_sorted_keys_are_those_the_anti_join_finds(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """outcome_results' foreign key checked by merging its sorted outcome_ids with outcomes'
    (batches of 7 rows here, so parents and runs of a key span batches), against the
    anti-join; a child or parent out of order, even only between two batches, goes to the
    anti-join, which finds the same rows."""
    monkeypatch.setattr(rules, "KEY_BATCH_ROWS", 7)
    spec = TABLES_BY_NAME["outcome_results"]
    (fk,) = spec.foreign_keys
    draw = random.Random(seed)
    odd = ["", "Ölçek", "ölçek", "z", "Z ", "é", "e\u0301"]
    values = [*odd, *(f"NCT{n:02}:P1" for n in range(33))]
    parents = sorted(draw.sample(values, 28))
    drawn = sorted(draw.choice(values) for _ in range(126))
    con = duckdb.connect()
    tables = {
        "sorted_rows": [*drawn[:60], None, *drawn[60:], None],
        "shuffled_rows": draw.sample(drawn, len(drawn)),
        "rows_sorted_in_two_runs": drawn[63:] + drawn[:63],  # a run ends with a batch
        "sorted_parents": parents,
        "shuffled_parents": draw.sample(parents, len(parents)),
        "parents_sorted_in_two_runs": parents[14:] + parents[:14],
    }
    for name, keys in tables.items():
        con.register("drawn", pa.table({"outcome_id": keys}))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM drawn")
    con.register("registered_parents", pa.table({"outcome_id": parents}))
    for child, parent, merges in [
        ("sorted_rows", "sorted_parents", True),
        ("shuffled_rows", "sorted_parents", False),
        ("rows_sorted_in_two_runs", "sorted_parents", False),
        ("sorted_rows", "shuffled_parents", False),
        ("sorted_rows", "parents_sorted_in_two_runs", False),
        ("sorted_rows", "registered_parents", False),  # a second cursor cannot see it
    ]:
        rows = rules.stored_rows(con, child)
        joined = rules._joined_orphans(con, rows, fk, parent)
        assert joined, "the draw holds orphans"
        merged = rules._merged_orphans(con, rows, fk, parent)
        assert merged == (joined if merges else None), (child, parent)
        found = rules._dangling(con, rows, spec, {"outcomes": parent})
        assert [(row, b.value) for row, (b,) in found.items()] == joined
    numbered_backwards = "(SELECT 1000 - rowid AS _row, * FROM sorted_rows)"
    rows = dataclasses.replace(rules.stored_rows(con, "sorted_rows"), relation=numbered_backwards)
    assert rules._merged_orphans(con, rows, fk, "sorted_parents") is None


@pytest.mark.parametrize("spec", [s for s in RELEASED if s.foreign_keys], ids=lambda s: s.name)
def test_an_empty_table_in_the_models_types_runs_no_rule(spec: TableSpec) -> None:
    """No rows to screen, no rule's statement: the foreign-key rule would read its parents,
    which do not exist here. One row and the rules run (and find the parents missing)."""
    con = duckdb.connect()
    schema = arrow_schema(spec.model)
    con.register("_empty", schema.empty_table())
    con.execute("CREATE SCHEMA curated")
    con.execute(f"CREATE TABLE curated.{spec.name} AS SELECT * FROM _empty")
    rows = rules.stored_rows(con, f"curated.{spec.name}")
    assert in_model_types(con, rows, spec)
    assert list(rules.checked(con, rows, spec, warehouse_parents(spec))) == []
    con.execute(f"INSERT INTO curated.{spec.name} DEFAULT VALUES")
    rows = rules.stored_rows(con, f"curated.{spec.name}")
    with pytest.raises(duckdb.CatalogException):
        list(rules.checked(con, rows, spec, warehouse_parents(spec)))

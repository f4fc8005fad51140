"""Registered versus reported outcomes: each study's protocol outcomes matched to its results.

Outcome rows in, outcome_changes rows out. Only studies that posted results are compared
(before results, nothing is "not reported" yet). The rule, measured on hand-matched pairs in
tests/data/labelled_outcome_changes.csv (docs/vocabularies-and-accuracy.md):

1. Every (registered, reported) pair of a study is scored by the word overlap of the two titles
   (Dice coefficient of their word sets, ignoring case and punctuation).
2. Pairs scoring at least MIN_TITLE_SIMILARITY are matched greedily, best first, each outcome at
   most once; a tie goes to the pair whose time frames share more words, then to the pair
   nearest in registry order (two measures titled alike are told apart by time frame and place).
3. A matched pair is `primary_demoted` (registered primary, reported secondary or other),
   `secondary_promoted` (the reverse), else `time_frame_changed` when the time frames differ in
   their words, else `matched`. An outcome left over is `registered_not_reported` or
   `reported_not_registered`.

The comparison is set-wise SQL in DuckDB, not a loop per pair: a registry's studies compare
tens of millions of pairs (18.7 million at 560 000 studies, bench/README.md "Session 18"). Word
sets are made in Python once per distinct text (`similarity.words`), each pair of distinct word
sets is scored once, and the greedy assignment runs in rounds: a candidate that ranks first
among the remaining candidates of both its outcomes is the one the greedy walk would take for
them, so each round takes all such pairs at once and drops what they touch; every study with
candidates left loses at least its best one per round.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.normalize.distinct import classify_distinct
from pipelines.normalize.similarity import words
from pipelines.warehouse import write_arrow
from schemas.sql import literal

MIN_TITLE_SIMILARITY = 0.5
"""Title word overlap below which a registered and a reported outcome are different outcomes."""

REGISTERED = "registry_protocol"
REPORTED = "registry_results"
NOT_COMPARED = frozenset({"adverse_events"})
"""Kinds outside the comparison: the adverse-event table is results-only by design."""

OUTCOME_COLUMNS = ("study_id", "source", "outcome_kind", "outcome_id", "title", "time_frame")
"""The columns of outcomes the comparison reads."""
CHANGE_COLUMNS = (
    "study_id",
    "registered_outcome_id",
    "reported_outcome_id",
    "status",
    "similarity",
    "registered_kind",
    "reported_kind",
)
"""The columns of an outcome_changes row, in its order (then `_seq`)."""

_CHANGE_TYPES = (
    "study_id VARCHAR, registered_outcome_id VARCHAR, reported_outcome_id VARCHAR, "
    "status VARCHAR, similarity DOUBLE, registered_kind VARCHAR, reported_kind VARCHAR, "
    "_seq BIGINT"
)
"""The columns of a table of outcome_changes' rows (CHANGE_COLUMNS, then `_seq`)."""

_ORDER = "title DESC, frame DESC, abs(i - j), i, j"
"""A study's candidate pairs best first (the module docstring's rule)."""


STUDY_BATCH = 50_000
"""Compared studies matched at a time: their working tables (`_oc_*`) are in DuckDB's memory
at once. All 186 667 compared studies of 560 000 at once ran out of 488 MiB on two threads
(bench/README.md, "Session 18")."""


def create_outcome_changes(con: duckdb.DuckDBPyConnection, outcomes: str, table: str) -> None:
    """Create the temporary table `table` of outcome_changes' rows (CHANGE_COLUMNS, `_seq`)
    for the outcomes of the query `outcomes` (OUTCOME_COLUMNS, any others), in study order:
    per study the matched pairs best first, then the registered outcomes left over, then the
    reported ones. Studies are matched STUDY_BATCH at a time, in study order.

    Raises:
        ValueError: a compared outcome's id is not `<study_id>:<P|S|O|R><n>`.
    """
    not_compared = ", ".join(literal(kind) for kind in sorted(NOT_COMPARED))
    kept = f"""
        SELECT * FROM ({outcomes})
        WHERE source IN ({literal(REGISTERED)}, {literal(REPORTED)})
            AND outcome_kind NOT IN ({not_compared})"""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _oc_studies AS
        SELECT study_id, row_number() OVER (ORDER BY study_id) - 1 AS sn
        FROM (SELECT DISTINCT study_id FROM ({kept}) WHERE source = {literal(REPORTED)})"""
    )
    (count,) = con.execute("SELECT count(*) FROM _oc_studies").fetchone() or (0,)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({_CHANGE_TYPES})")
    written = 0
    for start in range(0, count, STUDY_BATCH):
        _numbered(con, kept, start, start + STUDY_BATCH)
        _candidates(con)
        _assign(con)
        (inserted,) = con.execute(
            f"INSERT INTO {table} SELECT * EXCLUDE (_seq), {written} + _seq AS _seq "
            f"FROM ({_CHANGES})"
        ).fetchone() or (0,)
        written += inserted
        con.execute("DROP TABLE _oc_numbered")
        con.execute("DROP TABLE _oc_matched")
    con.execute("DROP TABLE _oc_studies")


def outcome_changes(outcomes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """outcome_changes rows for every study with reported outcomes, in study order: the rule
    on rows in memory (an in-memory DuckDB), as the accuracy tests measure it."""
    rows = list(outcomes)
    con = duckdb.connect()
    try:
        schema = pa.schema([(c, pa.string()) for c in OUTCOME_COLUMNS])
        columns = {c: [row[c] for row in rows] for c in OUTCOME_COLUMNS}
        write_arrow(con, "CREATE TABLE outcomes AS", pa.table(columns, schema=schema))
        create_outcome_changes(con, "SELECT * FROM outcomes", "changes")
        found = con.execute(f"SELECT {', '.join(CHANGE_COLUMNS)} FROM changes ORDER BY _seq")
        return [dict(zip(CHANGE_COLUMNS, row, strict=True)) for row in found.fetchall()]
    finally:
        con.close()


def _numbered(con: duckdb.DuckDBPyConnection, kept: str, start: int, stop: int) -> None:
    """`_oc_numbered`: the outcomes (of the query `kept`) of the compared studies numbered
    `start` to `stop` - 1 in `_oc_studies`, each with its study's number (`sn`), its side, its
    place in registry order on that side (`pos`, from 0: primary, secondary, other protocol
    outcomes, then results measures, each by number, `:S2` before `:S10`), and its title's and
    time frame's word-set ids (`_oc_sets`)."""
    compared = f"""
        SELECT sn, source = {literal(REPORTED)} AS reported, outcome_id, outcome_kind AS kind,
            coalesce(title, '') AS title, coalesce(time_frame, '') AS time_frame
        FROM ({kept}) JOIN _oc_studies USING (study_id)
        WHERE sn >= {start} AND sn < {stop}"""
    classify_distinct(
        con,
        "_oc_words",
        f"SELECT title AS text FROM ({compared}) UNION ALL SELECT time_frame FROM ({compared})",
        lambda text: (sorted(words(text)),),
        pa.schema([("words", pa.list_(pa.string()))]),
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _oc_sets AS "
        "SELECT text, words, dense_rank() OVER (ORDER BY words) AS set_id FROM _oc_words"
    )
    con.execute("DROP TABLE _oc_words")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _oc_numbered AS
        SELECT o.sn, o.reported, o.outcome_id, o.kind,
            row_number() OVER (PARTITION BY o.sn, o.reported
                ORDER BY o.place_rank, o.number, o.outcome_id) - 1 AS pos,
            o.place_rank IS NULL OR o.number IS NULL AS unordered,
            t.set_id AS title_set, f.set_id AS frame_set
        FROM (
            SELECT *, CASE WHEN contains(outcome_id, ':')
                    AND regexp_full_match(place, '[PSOR][0-9]+')
                    THEN instr('PSOR', place[1]) END AS place_rank,
                TRY_CAST(place[2:] AS BIGINT) AS number
            FROM (SELECT *, string_split(outcome_id, ':')[-1] AS place FROM ({compared}))
        ) o
        JOIN _oc_sets t ON t.text = o.title
        JOIN _oc_sets f ON f.text = o.time_frame"""
    )
    (unordered,) = con.execute(
        "SELECT min(outcome_id) FROM _oc_numbered WHERE unordered"
    ).fetchone() or (None,)
    if unordered is not None:
        raise ValueError(f"{unordered!r} is not a registry outcome id")


def _candidates(con: duckdb.DuckDBPyConnection) -> None:
    """`_oc_candidates`: every (registered i, reported j) pair of a study whose titles' Dice
    reaches MIN_TITLE_SIMILARITY, with its time frames' Dice; each pair of distinct word sets
    is scored once."""
    pairs = (
        "FROM (SELECT sn, pos AS i, title_set AS rt, frame_set AS rf FROM _oc_numbered "
        "WHERE NOT reported) r JOIN (SELECT sn, pos AS j, title_set AS pt, "
        "frame_set AS pf FROM _oc_numbered WHERE reported) p USING (sn)"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _oc_title_pairs AS
        SELECT sn, i, j, d.dice AS title, d.common, d.total, rf, pf {pairs}
        JOIN ({_scored(f"SELECT rt AS x, pt AS y {pairs}")}) d ON d.x = rt AND d.y = pt
        WHERE d.dice >= {MIN_TITLE_SIMILARITY}"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _oc_candidates AS
        SELECT c.sn, c.i, c.j, c.title, c.common, c.total, c.rf = c.pf AS same_frame,
            f.dice AS frame
        FROM _oc_title_pairs c
        JOIN ({_scored("SELECT rf AS x, pf AS y FROM _oc_title_pairs")}) f
            ON f.x = c.rf AND f.y = c.pf"""
    )
    con.execute("DROP TABLE _oc_title_pairs")
    con.execute("DROP TABLE _oc_sets")


def _scored(pairs: str) -> str:
    """Each distinct (x, y) pair of word-set ids the query `pairs` gives, with the words the
    two sets share (`common`), their sizes' sum (`total`) and their Dice, 2 * common / total
    (1.0 for two empty sets): the same double as Python's, both dividing two exact integers."""
    sets = "(SELECT set_id, any_value(words) AS words FROM _oc_sets GROUP BY set_id)"
    return f"""
        SELECT x, y, common, total,
            CASE WHEN total = 0 THEN 1.0 ELSE 2 * common / total END AS dice
        FROM (
            SELECT x, y, len(list_intersect(a.words, b.words)) AS common,
                len(a.words) + len(b.words) AS total
            FROM (SELECT DISTINCT x, y FROM ({pairs}))
            JOIN {sets} a ON a.set_id = x JOIN {sets} b ON b.set_id = y)"""


def _assign(con: duckdb.DuckDBPyConnection) -> None:
    """`_oc_matched`: the greedy assignment of each study's candidates, in rounds (module
    docstring): a round takes every candidate first among the remaining ones of both its
    outcomes, then drops the candidates of the outcomes it matched."""
    con.execute("CREATE OR REPLACE TEMP TABLE _oc_matched AS FROM _oc_candidates LIMIT 0")
    con.execute("CREATE OR REPLACE TEMP TABLE _oc_left AS FROM _oc_candidates")
    while True:
        con.execute(
            f"""INSERT INTO _oc_matched SELECT * FROM _oc_left
            QUALIFY row_number() OVER (PARTITION BY sn, i ORDER BY {_ORDER}) = 1
                AND row_number() OVER (PARTITION BY sn, j ORDER BY {_ORDER}) = 1"""
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _oc_left AS SELECT l.* FROM _oc_left l "
            "ANTI JOIN _oc_matched m ON m.sn = l.sn AND m.i = l.i "
            "ANTI JOIN _oc_matched n ON n.sn = l.sn AND n.j = l.j"
        )
        (left,) = con.execute("SELECT count(*) FROM _oc_left").fetchone() or (0,)
        if not left:
            con.execute("DROP TABLE _oc_left")
            con.execute("DROP TABLE _oc_candidates")
            return


_CHANGES = """
SELECT s.study_id, c.* EXCLUDE (sn, part, k1, k2, k3, k4, k5),
    row_number() OVER (ORDER BY c.sn, c.part, c.k1, c.k2, c.k3, c.k4, c.k5) - 1 AS _seq
FROM _oc_studies s JOIN (
    SELECT m.sn, r.outcome_id AS registered_outcome_id,
        p.outcome_id AS reported_outcome_id,
        CASE WHEN r.kind = 'primary' AND p.kind <> 'primary' THEN 'primary_demoted'
            WHEN r.kind <> 'primary' AND p.kind = 'primary' THEN 'secondary_promoted'
            WHEN NOT m.same_frame THEN 'time_frame_changed' ELSE 'matched' END AS status,
        -- the title Dice 2*common/total rounded half to even at three places, on the exact ratio
        (q + (2 * rest > m.total OR (2 * rest = m.total AND q % 2 = 1))::INTEGER) / 1000
            AS similarity,
        r.kind AS registered_kind, p.kind AS reported_kind,
        0 AS part, -m.title AS k1, -m.frame AS k2, abs(m.i - m.j) AS k3, m.i AS k4, m.j AS k5
    FROM (SELECT *, (2000 * common) // total AS q, (2000 * common) % total AS rest
          FROM _oc_matched) m
    JOIN _oc_numbered r ON r.sn = m.sn AND NOT r.reported AND r.pos = m.i
    JOIN _oc_numbered p ON p.sn = m.sn AND p.reported AND p.pos = m.j
    UNION ALL
    SELECT sn, CASE WHEN NOT reported THEN outcome_id END,
        CASE WHEN reported THEN outcome_id END,
        CASE WHEN reported THEN 'reported_not_registered' ELSE 'registered_not_reported' END,
        NULL, CASE WHEN NOT reported THEN kind END, CASE WHEN reported THEN kind END,
        1 + reported::INTEGER, pos, 0, 0, 0, 0
    FROM (
        SELECT n.* FROM _oc_numbered n
        ANTI JOIN _oc_matched m ON m.sn = n.sn AND m.i = n.pos
        WHERE NOT n.reported
        UNION ALL
        SELECT n.* FROM _oc_numbered n
        ANTI JOIN _oc_matched m ON m.sn = n.sn AND m.j = n.pos
        WHERE n.reported)) c USING (sn)"""
"""outcome_changes' rows from the matched pairs and the outcomes left over."""

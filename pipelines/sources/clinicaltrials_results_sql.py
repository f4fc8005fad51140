"""ClinicalTrials.gov v2 results -> staging rows, set-wise in DuckDB SQL.

The same rows, in the same order, and the same RecordError reasons as `clinicaltrials._results`
(results outcomes and outcome_results) and `clinicaltrials_results.parse_results` (arms, result
groups, adverse events, baseline, participant flow, analyses), but computed for a whole batch of
studies at once: the staging framework (`pipelines.sources.clinicaltrials_sql`) parses each batch
into a relation `ct_docs(_source_file, _rec, nct, doc)` with `from_json(text, STRUCTURE)`, where
STRUCTURE includes RESULTS_STRUCTURE, and runs the SELECTs of `tables_sql` and `problems_sql`
over it. A per-row Python parser costs at least 0.5 ms per study before any logic
(bench/README.md); here Python runs only per distinct value where SQL reads badly: the arm ties'
word overlap, number strings that are not plain decimals, and the repr of a bad value in a
reason text.

Values the registry gives as text or number ("23", 23, "NA", "≥5") are `JSON` leaves, read by
the ctr_j* macros with Python's semantics (`as_text`, `as_number`, `as_count`, `str`); titles,
ids and labels are VARCHAR leaves (a JSON number there reads as its JSON text, true as 'true').
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.sources.base import BATCH_DB
from pipelines.sources.clinicaltrials_results import ArmLabels, parse_p_value
from pipelines.sources.clinicaltrials_sql import json_leaf
from pipelines.sources.clinicaltrials_values import as_number, as_text

_V = "VARCHAR"
_J = "JSON"
_GROUPS = [{"id": _V, "title": _V, "description": _V}]
_DENOMS = [{"units": _V, "counts": [{"groupId": _V, "value": _J}]}]
_CLASSES = [
    {
        "title": _V,
        "denoms": _DENOMS,
        "categories": [
            {
                "title": _V,
                "measurements": [
                    {"groupId": _V, "value": _J, "spread": _J, "lowerLimit": _J, "upperLimit": _J}
                ],
            }
        ],
    }
]
_EVENTS = [
    {
        "term": _V,
        "organSystem": _V,
        "assessmentType": _V,
        "sourceVocabulary": _V,
        "stats": [{"groupId": _V, "numAffected": _J, "numAtRisk": _J, "numEvents": _J}],
    }
]
_TOTALS = {
    f"{prefix}{field}": _J
    for prefix in ("deaths", "serious", "other")
    for field in ("NumAffected", "NumAtRisk")
}

RESULTS_STRUCTURE: dict[str, Any] = {
    "protocolSection": {
        "armsInterventionsModule": {
            "armGroups": [{"label": _V, "type": _V, "description": _V, "interventionNames": [_V]}],
            "interventions": [{"name": _V, "armGroupLabels": [_V]}],
        }
    },
    "resultsSection": {
        "participantFlowModule": {
            "groups": _GROUPS,
            "periods": [
                {
                    "title": _V,
                    "milestones": [
                        {"type": _V, "achievements": [{"groupId": _V, "numSubjects": _J}]}
                    ],
                    "dropWithdraws": [
                        {"type": _V, "reasons": [{"groupId": _V, "numSubjects": _J}]}
                    ],
                }
            ],
        },
        "baselineCharacteristicsModule": {
            "groups": _GROUPS,
            "denoms": _DENOMS,
            "measures": [
                {
                    "title": _V,
                    "paramType": _V,
                    "dispersionType": _V,
                    "unitOfMeasure": _V,
                    "denoms": _DENOMS,
                    "classes": _CLASSES,
                }
            ],
        },
        "outcomeMeasuresModule": {
            "outcomeMeasures": [
                {
                    "type": _V,
                    "title": _V,
                    "timeFrame": _V,
                    "paramType": _V,
                    "unitOfMeasure": _V,
                    "dispersionType": _V,
                    "groups": _GROUPS,
                    "denoms": _DENOMS,
                    "classes": _CLASSES,
                    "analyses": [
                        {
                            "groupIds": [_V],
                            "pValue": _J,
                            "statisticalMethod": _V,
                            "paramType": _V,
                            "paramValue": _J,
                            "dispersionType": _V,
                            "dispersionValue": _J,
                            "ciLowerLimit": _J,
                            "ciUpperLimit": _J,
                            "ciPctValue": _J,
                            "ciNumSides": _V,
                            "nonInferiorityType": _V,
                        }
                    ],
                }
            ]
        },
        "adverseEventsModule": {
            "timeFrame": _V,
            "frequencyThreshold": _J,
            "eventGroups": [{**_GROUPS[0], **_TOTALS}],
            "seriousEvents": _EVENTS,
            "otherEvents": _EVENTS,
        },
    },
}
"""The v2 fields the results tables read, in from_json's structure notation."""

_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What Python's str.strip() removes (as_text strips with it): every character whose
str.isspace() is true (a unit test scans them all; scanning them here cost each import 0.1 s)."""
_DECIMAL = "[+-]?[0-9]{1,15}([.][0-9]{0,15})?"
"""A decimal short enough to be finite, read alike by DuckDB and Python (no spaces)."""
_P_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]"
_P_VALUE = (
    rf"^{_P_SPACE}*(<=|>=|<|>|=)?{_P_SPACE}*([0-9]*[.]?[0-9]+(?:[eE][-+]?[0-9]+)?){_P_SPACE}*$"
)
"""parse_p_value's pattern for ASCII text; Python's \\s and \\d also match beyond ASCII, so a
p-value with other characters goes to parse_p_value itself (ctr_py_p_value)."""


def _literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_MACROS = {
    # as_text of a string: Python's strip(), blank as null. Printable ASCII at both ends (most
    # values) needs no trim, which is slow with a set of characters.
    "ctr_strip(s)": f"""CASE
        WHEN s[1] > ' ' AND s[1] < {_literal(chr(127))} AND s[-1] > ' '
            AND s[-1] < {_literal(chr(127))} THEN s
        ELSE trim(s, {_literal(_WHITESPACE)}) END""",
    "ctr_text(s)": f"""CASE
        WHEN s[1] > ' ' AND s[1] < {_literal(chr(127))} AND s[-1] > ' '
            AND s[-1] < {_literal(chr(127))} THEN s
        ELSE nullif(trim(s, {_literal(_WHITESPACE)}), '') END""",
    # The values no fast path below reads (not plain text, decimals or counts: "≥5", "1_000",
    # Unicode digits, booleans, objects, numbers to print as Python does) go to Python's own
    # as_number / as_text / str, once per distinct value of a vector: exact by construction,
    # and a small expression to bind (the SQL these replaced cost 1-2 ms of planning per use).
    "ctr_num_any(s)": "ctr_py_number(s)",
    "ctr_jtext_any(j)": "ctr_py_text(CAST(j AS VARCHAR))",
    "ctr_jnum_any(j)": "ctr_py_jnumber(CAST(j AS VARCHAR))",
    "ctr_jstr(j)": """CASE WHEN j IS NULL THEN NULL
        WHEN ctr_plain_text(CAST(j AS VARCHAR)) THEN CAST(j AS VARCHAR)[2:-2]
        ELSE ctr_py_str(CAST(j AS VARCHAR)) END""",
    "ctr_count_of(d)": """list_transform([d], c ->
        CASE WHEN c >= 0 AND c = floor(c) THEN TRY_CAST(c AS BIGINT) END)[1]""",
    "ctr_jcount_any(j)": "ctr_count_of(ctr_jnum_any(j))",
    # _count_cell / _number_cell: the printed text only where the value is not read.
    "ctr_count_text_any(j)": """list_transform([j], v ->
        CASE WHEN ctr_jcount_any(v) IS NULL THEN ctr_jtext_any(v) END)[1]""",
    "ctr_number_text_any(j)": """list_transform([j], v ->
        CASE WHEN ctr_jnum_any(v) IS NULL THEN ctr_jtext_any(v) END)[1]""",
    # Fast paths for the common values (plain text, plain decimals and counts, as a JSON
    # string or number), exact by construction; anything else takes the *_any macros above.
    "ctr_plain_text(v)": f"""starts_with(v, '"') AND strlen(v) > 2 AND NOT contains(v, '\\')
        AND v[2] > ' ' AND v[2] < {_literal(chr(127))}
        AND v[-2] > ' ' AND v[-2] < {_literal(chr(127))}""",
    "ctr_plain_number(v)": f"regexp_full_match(v, '\"?{_DECIMAL}\"?')",
    "ctr_plain_count(v)": "regexp_full_match(v, '\"?[0-9]{1,15}\"?')",
    "ctr_num(s)": f"""CASE WHEN regexp_full_match(s, '{_DECIMAL}') THEN CAST(s AS DOUBLE)
        ELSE ctr_num_any(s) END""",
    "ctr_jtext(j)": """CASE WHEN j IS NULL THEN NULL
        WHEN ctr_plain_text(CAST(j AS VARCHAR)) THEN CAST(j AS VARCHAR)[2:-2]
        ELSE ctr_jtext_any(j) END""",
    "ctr_jnum(j)": """CASE WHEN j IS NULL THEN NULL
        WHEN ctr_plain_number(CAST(j AS VARCHAR)) THEN CAST(trim(CAST(j AS VARCHAR), '"') AS DOUBLE)
        ELSE ctr_jnum_any(j) END""",
    "ctr_jcount(j)": """CASE WHEN j IS NULL THEN NULL
        WHEN ctr_plain_count(CAST(j AS VARCHAR)) THEN CAST(trim(CAST(j AS VARCHAR), '"') AS BIGINT)
        ELSE ctr_jcount_any(j) END""",
    "ctr_count_text(j)": """CASE WHEN j IS NULL OR ctr_plain_count(CAST(j AS VARCHAR)) THEN NULL
        ELSE ctr_count_text_any(j) END""",
    "ctr_number_text(j)": """CASE WHEN j IS NULL OR ctr_plain_number(CAST(j AS VARCHAR)) THEN NULL
        ELSE ctr_number_text_any(j) END""",
    # denominators(): the 'Participants' denoms (else the first): valid counts by raw group id.
    "ctr_denoms(denoms)": """list_filter(
        list_transform(
            coalesce(
                list_filter(denoms, d -> lower(coalesce(d.units, '')) = 'participants')[1],
                denoms[1]
            ).counts,
            c -> {'k': c.groupId, 'v': ctr_jcount(c.value)}),
        e -> e.v IS NOT NULL)""",
    # `denominators(...) or fallback`: an empty map falls back.
    "ctr_denoms_or(denoms, fallback)": "coalesce(nullif(ctr_denoms(denoms), []), fallback)",
    # Group id -> title: clinicaltrials.py keys raw ids, clinicaltrials_results.py stripped ids.
    "ctr_raw_titles(groups)": (
        "list_transform(groups, g -> {'k': g.id, 'v': coalesce(ctr_text(g.title), g.id)})"
    ),
    "ctr_titles(groups)": """list_transform(
        list_filter(groups, g -> ctr_text(g.id) IS NOT NULL),
        g -> {'k': ctr_text(g.id), 'v': coalesce(ctr_text(g.title), ctr_text(g.id))})""",
    # The value of a key in a {k, v} list, the last one winning as in a Python dict.
    "ctr_get(entries, key)": "list_filter(entries, e -> e.k IS NOT DISTINCT FROM key)[-1].v",
    "ctr_has(entries, key)": "list_position(list_transform(entries, e -> e.k), key) IS NOT NULL",
    # Quick checks (see _SCREEN): the group ids a module's cells use, and whether any of
    # them may name no group: a null, one not among the groups' raw ids, or a group id blank
    # once stripped (each cell that passes names a group exactly, so also once stripped).
    "ctr_cell_ids(classes)": """flatten(flatten(list_transform(classes, c ->
        list_transform(c.categories, k -> list_transform(k.measurements, x -> x.groupId)))))""",
    "ctr_stray(groups, used)": """list_position(used, NULL) IS NOT NULL
        OR NOT list_has_all(list_transform(groups, g -> g.id), used)
        OR list_bool_or(list_transform(groups, g -> ctr_text(g.id) IS NULL))""",
    "ctr_str_list(items)": (
        "list_filter(list_transform(items, v -> ctr_text(v)), v -> v IS NOT NULL)"
    ),
}


def setup_sql() -> list[str]:
    """TEMP MACROs the SELECTs use: run once per connection, after `register`."""
    return [f"CREATE OR REPLACE TEMP MACRO {name} AS {body}" for name, body in _MACROS.items()]


# --- Python per distinct value ------------------------------------------------------------------
# The macros call these only for what SQL cannot read exactly (a number string that is not a
# plain decimal, a JSON object where a value belongs, a p-value beyond ASCII, a reason's repr):
# rare values, each vector's distinct ones computed once. Arm ties go through ctr_py_tie once per
# distinct (arm labels, title) of the batch (the SELECT DISTINCT in `_result_groups_sql`).


def _py_text(value: str | None) -> str | None:
    return None if value is None else as_text(json_leaf(value))


def _py_jnumber(value: str | None) -> float | None:
    return None if value is None else as_number(json_leaf(value))


def _py_str(value: str | None) -> str | None:
    """`str` of a string leaf as it is, `as_text` of any other."""
    if value is None:
        return None
    found = json_leaf(value)
    return found if isinstance(found, str) else as_text(found)


def _py_repr(value: str | None) -> str:
    return repr(None if value is None else json_leaf(value))


def _py_p_value(text: str | None) -> dict[str, Any]:
    number, relation = parse_p_value(text)
    return {"value": number, "relation": relation}


def _py_tie(labels: list[str] | None, title: str | None) -> dict[str, Any]:
    arm, tie, similarity = ArmLabels(labels or []).tie(title)
    return {"arm": arm, "tie": tie, "similarity": similarity}


def _per_distinct(function: Callable[[Any], Any], returns: pa.DataType) -> Callable[..., pa.Array]:
    """A vectorised UDF calling `function` once per distinct value of the vector."""

    def vectorised(values: pa.Array) -> pa.Array:
        items = values.to_pylist()
        memo = {v: function(v) for v in set(items)}
        return pa.array([memo[v] for v in items], returns)

    return vectorised


_P_VALUE_TYPE = pa.struct([("value", pa.float64()), ("relation", pa.string())])
_TIE_TYPE = "STRUCT(arm VARCHAR, tie VARCHAR, similarity DOUBLE)"


_FUNCTIONS: list[tuple[str, Callable[..., Any], list[str], str, bool]] = [
    ("ctr_py_number", _per_distinct(as_number, pa.float64()), ["VARCHAR"], "DOUBLE", True),
    ("ctr_py_text", _per_distinct(_py_text, pa.string()), ["VARCHAR"], "VARCHAR", True),
    ("ctr_py_jnumber", _per_distinct(_py_jnumber, pa.float64()), ["VARCHAR"], "DOUBLE", True),
    ("ctr_py_str", _per_distinct(_py_str, pa.string()), ["VARCHAR"], "VARCHAR", True),
    ("ctr_py_repr", _per_distinct(_py_repr, pa.string()), ["VARCHAR"], "VARCHAR", True),
    (
        "ctr_py_p_value",
        _per_distinct(_py_p_value, _P_VALUE_TYPE),
        ["VARCHAR"],
        "STRUCT(value DOUBLE, relation VARCHAR)",
        True,
    ),
    ("ctr_py_tie", _py_tie, ["VARCHAR[]", "VARCHAR"], _TIE_TYPE, False),
]
"""(name, function, parameters, returns, vectorised by Arrow) of the Python functions the
macros call. Module objects: DuckDB keeps a Python function in the database's catalog, where
every cursor of the database finds it, but drops its reference to the function when the
connection that registered it closes; a function made per call would then be freed under a
catalog entry that other cursors still call (a segfault)."""


def register(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions the macros call (ctr_py_*), in this connection's database, once:
    a function the database has (registered by this cursor or another: a staging run's
    statement cursors, `pipelines.setwise`) is kept, DuckDB refusing its name again. Refused
    costs 0.7 ms a function; asking the catalog first (`duckdb_functions()`, some 3 000
    functions) cost 13 ms a call, four calls a staging run (bench/README.md, session 21).
    The test that registers twice on one connection pins DuckDB's words for that refusal."""
    for name, function, parameters, returns, vectorised in _FUNCTIONS:
        try:
            con.create_function(  # type: ignore[call-overload]  # stubs: no overload fits
                name,
                function,
                parameters,
                returns,
                type="arrow" if vectorised else "native",
                null_handling="special",
                side_effects=False,
            )
        except duckdb.CatalogException:  # another cursor's, in the database's catalog
            continue
        except duckdb.NotImplementedException as refused:  # this connection's own
            if "already created" not in str(refused):
                raise


# --- shared steps -------------------------------------------------------------------------------

_RESULTS = """
    res AS NOT MATERIALIZED (
        SELECT _rec, nct, doc FROM ct_docs)"""
"""The batch's studies; every step below names the full path from `doc` to what it reads, so
the scan of `ct_docs` copies only that list (a path from an alias such as
`doc.resultsSection AS r`, a filter on a section or a materialized step copied the whole
section, once per statement)."""

_MEASURES = """
    om AS (
        SELECT _rec, nct, unnest(doc.resultsSection.outcomeMeasuresModule.outcomeMeasures) AS m,
            generate_subscripts(doc.resultsSection.outcomeMeasuresModule.outcomeMeasures, 1) AS n
        FROM res)"""


def _cells(prefix: str, carry: str, denoms: bool = True) -> str:
    """Steps `<prefix>cls`, `<prefix>cat`, `<prefix>cell`: every class x category x measurement
    of the measures in `<prefix>msr` (columns `carry`, `classes` and, with `denoms`, the
    measure's denominators `denoms`), with the category label and the class's denominators."""
    d_in = ", denoms" if denoms else ""
    d_cls = ", ctr_denoms_or(c.denoms, denoms) AS class_denoms" if denoms else ""
    d_out = ", class_denoms" if denoms else ""
    return f"""
    {prefix}cls AS (
        SELECT {carry}, ci, ctr_text(c.title) AS class_title, c.categories AS categories{d_cls}
        FROM (SELECT {carry}{d_in}, unnest(classes) AS c, generate_subscripts(classes, 1) AS ci
              FROM {prefix}msr)),
    {prefix}cat AS (
        SELECT {carry}, ci, ki{d_out}, k.measurements AS cells,
            concat_ws(' / ', class_title, ctr_text(k.title)) AS label
        FROM (SELECT {carry}, ci, class_title{d_out}, unnest(categories) AS k,
                  generate_subscripts(categories, 1) AS ki
              FROM {prefix}cls)),
    {prefix}cell AS (
        SELECT {carry}, ci, ki{d_out}, label, unnest(cells) AS x,
            generate_subscripts(cells, 1) AS xi
        FROM {prefix}cat)"""


_EVENTS_STEPS = """
    ae AS (
        SELECT _rec, nct, doc.resultsSection.adverseEventsModule.seriousEvents AS serious,
            doc.resultsSection.adverseEventsModule.otherEvents AS other,
            ctr_raw_titles(doc.resultsSection.adverseEventsModule.eventGroups) AS raw_titles,
            ctr_titles(doc.resultsSection.adverseEventsModule.eventGroups) AS titles
        FROM res),
    evt AS (
        SELECT _rec, nct, raw_titles, titles, kind, event_type, ei, e.stats AS stats,
            ctr_text(e.term) AS term, ctr_text(e.organSystem) AS organ_system,
            ctr_text(e.assessmentType) AS assessment,
            ctr_text(e.sourceVocabulary) AS source_vocabulary
        FROM (
            SELECT _rec, nct, raw_titles, titles, 1 AS kind, 'serious' AS event_type,
                unnest(serious) AS e, generate_subscripts(serious, 1) AS ei FROM ae
            UNION ALL
            SELECT _rec, nct, raw_titles, titles, 2, 'other',
                unnest(other), generate_subscripts(other, 1) FROM ae))"""

_STATS = """
    stat AS (
        SELECT * EXCLUDE (stats), unnest(stats) AS s, generate_subscripts(stats, 1) AS si
        FROM evt)"""


# --- the tables ---------------------------------------------------------------------------------


def _arms_sql() -> str:
    """One row per distinct arm label (the first such arm's type and description), with the
    interventions both sides of the link name, as `clinicaltrials_results._arms`. The names
    are unnested to rows and gathered per label: a lambda naming another column of the row
    (the module's names, the arm's label) runs row by row, several times slower."""
    return """
WITH module AS (
    SELECT _rec, nct, doc.protocolSection.armsInterventionsModule AS m
    FROM ct_docs WHERE len(doc.protocolSection.armsInterventionsModule.armGroups) > 0),
arm AS (
    SELECT _rec, nct, ctr_str_list(list_transform(m.interventions, v -> v.name)) AS known,
        unnest(m.armGroups) AS a, generate_subscripts(m.armGroups, 1) AS i
    FROM module),
merged AS (
    SELECT _rec, ctr_text(a.label) AS label, min(i) AS i, any_value(nct) AS nct,
        arg_min({'type': ctr_text(a.type), 'description': ctr_text(a.description)}, i) AS first
    FROM arm GROUP BY ALL),
listed AS (
    SELECT _rec, label, CASE
        WHEN p > 0 AND ctr_strip(n[:p - 1]) <> '' AND list_contains(known, rest) THEN rest
        ELSE n END AS name
    FROM (SELECT *, ctr_strip(n[p + 1:]) AS rest
          FROM (SELECT *, position(':' IN n) AS p
                FROM (SELECT _rec, ctr_text(a.label) AS label, known,
                          unnest(ctr_str_list(a.interventionNames)) AS n
                      FROM arm)))),
linked AS (
    SELECT _rec, unnest(ctr_str_list(v.armGroupLabels)) AS label, ctr_text(v.name) AS name
    FROM (SELECT _rec, unnest(m.interventions) AS v FROM module)
    WHERE ctr_text(v.name) IS NOT NULL),
named AS (
    SELECT _rec, label, list_sort(list_distinct(list(name))) AS names
    FROM (SELECT * FROM listed UNION ALL SELECT * FROM linked)
    GROUP BY ALL)
SELECT merged._rec, [i]::INTEGER[] AS _pos, nct AS study_id, merged.label AS arm_label,
    first.type AS arm_type, first.description AS description,
    coalesce(names, []) AS intervention_names
FROM merged LEFT JOIN named
    ON named._rec = merged._rec AND named.label IS NOT DISTINCT FROM merged.label"""


_LABELS = """
    SELECT _rec, list_transform(
        list_filter(list_transform(l, (x, i) -> {'x': x, 'i': i}),
            s -> list_position(l, s.x) = s.i),
        s -> s.x) AS labels
    FROM (
        SELECT _rec, ctr_str_list(list_transform(
            doc.protocolSection.armsInterventionsModule.armGroups, a -> a.label)) AS l
        FROM ct_docs)"""
"""A study's arm labels as ArmLabels gets them: stripped, non-blank, first occurrences. The
labels are read first: a lambda naming `doc` made the scan copy every record whole."""


def _result_groups_sql() -> str:
    """Every results group (flow, baseline, adverse events, then each measure's), tied to an
    arm by `ArmLabels.tie`, once per distinct (arm labels, title)."""
    return f"""
WITH d AS NOT MATERIALIZED (SELECT _rec, nct, doc FROM ct_docs),
lab AS ({_LABELS.strip()}),
grp AS (
    SELECT _rec, nct, 1 AS part, 0 AS n, 'participant_flow' AS scope,
        unnest(doc.resultsSection.participantFlowModule.groups) AS g,
        generate_subscripts(doc.resultsSection.participantFlowModule.groups, 1) AS i FROM d
    UNION ALL
    SELECT _rec, nct, 2, 0, 'baseline',
        unnest(doc.resultsSection.baselineCharacteristicsModule.groups),
        generate_subscripts(doc.resultsSection.baselineCharacteristicsModule.groups, 1) FROM d
    UNION ALL
    SELECT _rec, nct, 3, 0, 'adverse_events',
        unnest(list_transform(doc.resultsSection.adverseEventsModule.eventGroups,
            e -> {{'id': e.id, 'title': e.title, 'description': e.description}})),
        generate_subscripts(doc.resultsSection.adverseEventsModule.eventGroups, 1) FROM d
    UNION ALL
    SELECT _rec, nct, 4, n, nct || ':R' || n, unnest(m.groups),
        generate_subscripts(m.groups, 1)
    FROM (
        SELECT _rec, nct, unnest(doc.resultsSection.outcomeMeasuresModule.outcomeMeasures) AS m,
            generate_subscripts(doc.resultsSection.outcomeMeasuresModule.outcomeMeasures, 1) AS n
        FROM d)),
titled AS (
    SELECT _rec, nct, part, n, scope, i, ctr_text(g.id) AS group_id,
        ctr_text(g.title) AS title, ctr_text(g.description) AS group_description, labels
    FROM grp JOIN lab USING (_rec)),
tie AS (
    SELECT labels, title, ctr_py_tie(labels, title) AS t
    FROM (SELECT DISTINCT labels, title FROM titled
          WHERE title IS NOT NULL AND len(labels) > 0))
SELECT titled._rec, [part, n, i]::INTEGER[] AS _pos, nct AS study_id, scope AS group_scope,
    group_id, titled.title AS group_title, group_description, t.arm AS arm_label,
    coalesce(t.tie, 'none') AS arm_tie, t.similarity AS tie_similarity
FROM titled LEFT JOIN tie ON titled.labels = tie.labels AND titled.title = tie.title"""


def _results_outcomes_sql() -> str:
    """The `outcomes` rows of the results: one per measure (R<n>), then AE1 when any adverse
    event cell was posted (`clinicaltrials._results`)."""
    return f"""
WITH {_RESULTS.strip()}, {_MEASURES.strip()}
SELECT _rec, [1, n]::INTEGER[] AS _pos, nct || ':R' || n AS outcome_id, nct AS study_id,
    CASE m.type WHEN 'PRIMARY' THEN 'primary' WHEN 'SECONDARY' THEN 'secondary'
        ELSE 'other' END AS outcome_kind,
    ctr_text(m.title) AS title, ctr_text(m.timeFrame) AS time_frame,
    NULL::VARCHAR AS domain, NULL::VARCHAR AS instrument,
    ctr_text(m.paramType) AS param_type, ctr_text(m.unitOfMeasure) AS unit,
    'registry_results' AS source
FROM om
UNION ALL
SELECT _rec, [2, 1]::INTEGER[], nct || ':AE1', nct, 'adverse_events', 'Adverse events',
    ctr_text(doc.resultsSection.adverseEventsModule.timeFrame), NULL, NULL,
    'COUNT_OF_PARTICIPANTS', NULL, 'registry_results'
FROM res
WHERE len(flatten(list_transform(
        doc.resultsSection.adverseEventsModule.seriousEvents, e -> e.stats))) > 0
    OR len(flatten(list_transform(
        doc.resultsSection.adverseEventsModule.otherEvents, e -> e.stats))) > 0"""


_MEASURE_CARRY = "_rec, nct, n, titles, param_type, unit, dispersion"


def _outcome_results_sql() -> str:
    """Every measurement cell of every results measure, then the adverse events as AE1 cells
    (`clinicaltrials._measurements` and `clinicaltrials._adverse_events`)."""
    return f"""
WITH {_RESULTS.strip()}, {_MEASURES.strip()},
msr AS (
    SELECT _rec, nct, n, ctr_raw_titles(m.groups) AS titles, ctr_denoms(m.denoms) AS denoms,
        m.classes AS classes, coalesce(ctr_text(m.paramType), '') AS param_type,
        ctr_text(m.unitOfMeasure) AS unit, ctr_text(m.dispersionType) AS dispersion
    FROM om),
{_cells("", _MEASURE_CARRY).strip()},
{_EVENTS_STEPS.strip()},
named AS (
    SELECT *, event_type || ': ' || coalesce(term, '') || CASE
        WHEN organ_system IS NOT NULL
            AND count(*) OVER (PARTITION BY _rec, kind, coalesce(term, '')) > 1
        THEN ' (' || organ_system || ')' ELSE '' END AS label
    FROM evt),
{_STATS.replace("FROM evt", "FROM named").strip()}
SELECT _rec, [1, n, ci, ki, xi]::INTEGER[] AS _pos, nct || ':R' || n AS outcome_id,
    ctr_get(titles, x.groupId) AS group_title, param_type, label AS category,
    ctr_num(value_text) AS value, value_text, dispersion AS dispersion_type,
    ctr_jnum(x.spread) AS dispersion_value, ctr_jnum(x.lowerLimit) AS lower_limit,
    ctr_jnum(x.upperLimit) AS upper_limit, unit,
    ctr_get(class_denoms, x.groupId) AS participants
FROM (SELECT *, ctr_jtext(x.value) AS value_text FROM cell)
UNION ALL
SELECT _rec, [2, kind, ei, si]::INTEGER[], nct || ':AE1', ctr_get(raw_titles, s.groupId),
    'COUNT_OF_PARTICIPANTS', label, ctr_jnum(s.numAffected), ctr_jstr(s.numAffected),
    NULL, NULL, NULL, NULL, NULL, ctr_jcount(s.numAtRisk)
FROM stat"""


def _adverse_events_sql() -> str:
    """Per term x group counts of serious and other events (`clinicaltrials_results`)."""
    return f"""
WITH {_RESULTS.strip()}, {_EVENTS_STEPS.strip()}, {_STATS.strip()}
SELECT _rec, [kind, ei, si]::INTEGER[] AS _pos, nct AS study_id, group_id AS event_group_id,
    event_type, term, organ_system, ctr_get(titles, group_id) AS group_title,
    ctr_jcount(s.numAffected) AS affected, ctr_count_text(s.numAffected) AS affected_text,
    ctr_jcount(s.numAtRisk) AS at_risk, ctr_count_text(s.numAtRisk) AS at_risk_text,
    ctr_jcount(s.numEvents) AS events, ctr_count_text(s.numEvents) AS events_text,
    assessment, source_vocabulary
FROM (SELECT *, ctr_text(s.groupId) AS group_id FROM stat)"""


def _adverse_event_totals_sql() -> str:
    """Each event group's deaths / serious / other totals, where posted."""
    return f"""
WITH {_RESULTS.strip()},
eg AS (
    SELECT _rec, nct, ctr_text(doc.resultsSection.adverseEventsModule.timeFrame) AS time_frame,
        ctr_jnum(doc.resultsSection.adverseEventsModule.frequencyThreshold) AS frequency_threshold,
        unnest(doc.resultsSection.adverseEventsModule.eventGroups) AS g,
        generate_subscripts(doc.resultsSection.adverseEventsModule.eventGroups, 1) AS i
    FROM res),
total AS (
    SELECT *, unnest([
        {{'t': 1, 'type': 'all_cause_mortality', 'affected': g.deathsNumAffected,
            'at_risk': g.deathsNumAtRisk}},
        {{'t': 2, 'type': 'serious', 'affected': g.seriousNumAffected,
            'at_risk': g.seriousNumAtRisk}},
        {{'t': 3, 'type': 'other', 'affected': g.otherNumAffected,
            'at_risk': g.otherNumAtRisk}}]) AS v
    FROM eg)
SELECT _rec, [i, v.t]::INTEGER[] AS _pos, nct AS study_id, ctr_text(g.id) AS event_group_id,
    v.type AS total_type, ctr_text(g.title) AS group_title,
    ctr_jcount(v.affected) AS affected, ctr_count_text(v.affected) AS affected_text,
    ctr_jcount(v.at_risk) AS at_risk, ctr_count_text(v.at_risk) AS at_risk_text,
    time_frame, frequency_threshold
FROM total WHERE v.affected IS NOT NULL OR v.at_risk IS NOT NULL"""


_BASELINE = """
    bm AS (
        SELECT _rec, nct, ctr_titles(b.groups) AS titles, ctr_denoms(b.denoms) AS denoms,
            unnest(b.measures) AS m, generate_subscripts(b.measures, 1) AS n
        FROM (SELECT _rec, nct, doc.resultsSection.baselineCharacteristicsModule AS b FROM res))"""

_BASELINE_CARRY = "_rec, nct, n, titles, title, param_type, dispersion, unit"


def _baseline_measures_sql() -> str:
    """Every baseline cell: measure x class/category x group, with its denominator."""
    return f"""
WITH {_RESULTS.strip()}, {_BASELINE.strip()},
msr AS (
    SELECT _rec, nct, n, titles, ctr_denoms_or(m.denoms, denoms) AS denoms,
        m.classes AS classes, ctr_text(m.title) AS title, ctr_text(m.paramType) AS param_type,
        ctr_text(m.dispersionType) AS dispersion, ctr_text(m.unitOfMeasure) AS unit
    FROM bm),
{_cells("", _BASELINE_CARRY).strip()}
SELECT _rec, [n, ci, ki, xi]::INTEGER[] AS _pos, nct AS study_id, title,
    ctr_get(titles, group_id) AS group_title, label AS category, param_type, group_id,
    ctr_jnum(x.value) AS value, ctr_number_text(x.value) AS value_text,
    dispersion AS dispersion_type, ctr_jnum(x.spread) AS dispersion_value,
    ctr_jnum(x.lowerLimit) AS lower_limit, ctr_jnum(x.upperLimit) AS upper_limit, unit,
    ctr_get(class_denoms, group_id) AS participants
FROM (SELECT *, ctr_text(x.groupId) AS group_id FROM cell)"""


_FLOW = """
    period AS (
        SELECT _rec, nct, ctr_titles(doc.resultsSection.participantFlowModule.groups) AS titles,
            unnest(doc.resultsSection.participantFlowModule.periods) AS p,
            generate_subscripts(doc.resultsSection.participantFlowModule.periods, 1) AS pi
        FROM res),
    item AS (
        SELECT _rec, nct, titles, pi, coalesce(ctr_text(p.title), '') AS period, kind,
            kind_name, vi, ctr_text(v.type) AS name, v.cells AS cells
        FROM (
            SELECT _rec, nct, titles, p, pi, 1 AS kind, 'milestone' AS kind_name,
                unnest(list_transform(p.milestones,
                    v -> {'type': v.type, 'cells': v.achievements})) AS v,
                generate_subscripts(p.milestones, 1) AS vi FROM period
            UNION ALL
            SELECT _rec, nct, titles, p, pi, 2, 'drop_withdraw',
                unnest(list_transform(p.dropWithdraws,
                    v -> {'type': v.type, 'cells': v.reasons})),
                generate_subscripts(p.dropWithdraws, 1) FROM period)),
    flow AS (
        SELECT * EXCLUDE (cells), unnest(cells) AS x, generate_subscripts(cells, 1) AS xi
        FROM item)"""


def _participant_flow_sql() -> str:
    """Participants per period x milestone or drop-out reason x group."""
    return f"""
WITH {_RESULTS.strip()}, {_FLOW.strip()}
SELECT _rec, [pi, kind, vi, xi]::INTEGER[] AS _pos, nct AS study_id, period,
    name AS milestone_or_reason, kind_name AS kind, ctr_get(titles, group_id) AS group_title,
    group_id, ctr_jcount(x.numSubjects) AS participants,
    ctr_count_text(x.numSubjects) AS participants_text
FROM (SELECT *, ctr_text(x.groupId) AS group_id FROM flow)"""


_ANALYSES = """
    analysis AS (
        SELECT _rec, nct, n, titles, ai, a, ctr_str_list(a.groupIds) AS group_ids
        FROM (
            SELECT _rec, nct, n, ctr_titles(m.groups) AS titles, unnest(m.analyses) AS a,
                generate_subscripts(m.analyses, 1) AS ai
            FROM om))"""


def _outcome_analyses_sql() -> str:
    """Each measure's statistical analyses: groups compared, estimate, CI and p-value."""
    return f"""
WITH {_RESULTS.strip()}, {_MEASURES.strip()}, {_ANALYSES.strip()},
printed AS (SELECT *, ctr_jtext(a.pValue) AS p_text FROM analysis),
matched AS (
    SELECT *, CASE WHEN strlen(p_text) <> length(p_text) THEN ctr_py_p_value(p_text) ELSE {{
        'value': TRY_CAST(regexp_extract(p_text, '{_P_VALUE}', 2) AS DOUBLE),
        'relation': coalesce(nullif(regexp_extract(p_text, '{_P_VALUE}', 1), ''), '=')}}
        END AS p
    FROM printed)
SELECT _rec, [n, ai]::INTEGER[] AS _pos, nct || ':R' || n || ':A' || ai AS analysis_id,
    nct || ':R' || n AS outcome_id,
    list_transform(group_ids, g -> ctr_get(titles, g)) AS group_titles, group_ids,
    ctr_text(a.statisticalMethod) AS method, ctr_text(a.paramType) AS param_type,
    ctr_jnum(a.paramValue) AS estimate, ctr_number_text(a.paramValue) AS estimate_text,
    ctr_text(a.dispersionType) AS dispersion_type,
    ctr_jnum(a.dispersionValue) AS dispersion_value,
    ctr_jnum(a.ciLowerLimit) AS ci_low, ctr_number_text(a.ciLowerLimit) AS ci_low_text,
    ctr_jnum(a.ciUpperLimit) AS ci_high, ctr_number_text(a.ciUpperLimit) AS ci_high_text,
    ctr_jnum(a.ciPctValue) AS ci_pct, ctr_text(a.ciNumSides) AS ci_sides,
    CASE WHEN p.value BETWEEN 0 AND 1 THEN p.value END AS p_value,
    CASE WHEN p.value BETWEEN 0 AND 1 THEN p.relation END AS p_value_relation,
    p_text AS p_value_text, ctr_text(a.nonInferiorityType) AS non_inferiority
FROM matched"""


def tables_sql() -> dict[str, str]:
    """Table -> SELECT of its model columns + `_rec` + `_pos` (row order inside the record).

    `outcomes` holds only the results' rows (R<n>, AE1); the protocol's come before them.
    """
    return {
        "arms": _arms_sql(),
        "result_groups": _result_groups_sql(),
        "outcomes": _results_outcomes_sql(),
        "outcome_results": _outcome_results_sql(),
        "adverse_events": _adverse_events_sql(),
        "adverse_event_totals": _adverse_event_totals_sql(),
        "baseline_measures": _baseline_measures_sql(),
        "participant_flow": _participant_flow_sql(),
        "outcome_analyses": _outcome_analyses_sql(),
    }


# --- the problems -------------------------------------------------------------------------------

RANK_RESULTS_OUTCOMES = 20
"""`clinicaltrials._results`: after the references (10), before the study row (30)."""
RANK_PARSE_RESULTS = 40
"""`clinicaltrials_results.parse_results`: the last part of parse_study."""


def _unknown(where: str, name: str, group: str) -> str:
    """`_known_group`'s reason text."""
    return (
        f"nct || ': {where} ' || ctr_py_repr(to_json({name})) || ' for group ' "
        f"|| ctr_py_repr(to_json({group})) || ', not one of the module''s groups'"
    )


SUSPECTS = "ctr_suspects"
"""The batch's records that may break a rule (`_rec`), as `screen` finds them."""

_SCREEN = """
        SELECT _rec FROM (
            SELECT _rec, doc,
                doc.resultsSection.baselineCharacteristicsModule.groups AS b_groups,
                flatten(list_transform(doc.resultsSection.baselineCharacteristicsModule.measures,
                    m -> ctr_cell_ids(m.classes))) AS b_ids,
                doc.resultsSection.participantFlowModule.groups AS f_groups,
                flatten(list_transform(doc.resultsSection.participantFlowModule.periods,
                    p -> flatten(list_concat(
                        list_transform(p.milestones,
                            v -> list_transform(v.achievements, x -> x.groupId)),
                        list_transform(p.dropWithdraws,
                            v -> list_transform(v.reasons, x -> x.groupId)))))) AS f_ids
            FROM ct_docs)
        WHERE list_bool_or(list_transform(doc.resultsSection.outcomeMeasuresModule.outcomeMeasures,
                m -> ctr_text(m.title) IS NULL
                    OR ctr_stray(m.groups, ctr_cell_ids(m.classes))
                    OR ctr_stray(m.groups, flatten(list_transform(m.analyses, a -> a.groupIds)))))
            OR ctr_stray(b_groups, b_ids) OR ctr_stray(f_groups, f_ids)
            OR list_transform([flatten(list_transform(list_concat(
                    doc.resultsSection.adverseEventsModule.seriousEvents,
                    doc.resultsSection.adverseEventsModule.otherEvents),
                    e -> e.stats))],
                stats -> ctr_stray(doc.resultsSection.adverseEventsModule.eventGroups,
                        list_transform(stats, s -> s.groupId))
                    OR list_bool_or(list_transform(stats, s -> s.numAtRisk IS NOT NULL
                        AND NOT regexp_full_match(CAST(s.numAtRisk AS VARCHAR), '[0-9]+'))))[1]"""
"""Records that may break a rule, found with list functions on each record as a whole (a
superset: a null group id or a numAtRisk that is not a plain JSON integer is suspect; a module's
cells are checked against its groups all at once, a lambda naming a column of the row being
slow); only these are unnested cell by cell to find the exact problem."""

_SUSPECT_RES = f"""
    res AS NOT MATERIALIZED (
        SELECT _rec, nct, doc FROM ct_docs
        WHERE _rec IN (SELECT _rec FROM {SUSPECTS}))"""


def screen(con: duckdb.DuckDBPyConnection) -> None:
    """This batch's suspect records into `SUSPECTS`: when there are none (a registry batch
    usually has none), staging skips `problems_sql`, its planning and its empty steps."""
    con.execute(f"CREATE OR REPLACE TABLE {BATCH_DB}.{SUSPECTS} AS {_SCREEN}")


def problems_sql() -> str:
    """SELECT _rec, _rank, _pos, reason: every RecordError `clinicaltrials._results` (rank 20)
    and `parse_results` (rank 40) would raise for a record; the least (_rank, _pos) of a
    record is the one Python raises first. Reads the records `screen` kept in `SUSPECTS`."""
    return f"""
WITH {_SUSPECT_RES.strip()}, {_MEASURES.strip()},
msr AS (SELECT _rec, nct, n, ctr_raw_titles(m.groups) AS titles, m.classes AS classes FROM om),
{_cells("", "_rec, nct, n, titles", denoms=False).strip()},
{_EVENTS_STEPS.strip()}, {_STATS.strip()}, {_ANALYSES.strip()}, {_BASELINE.strip()},
bmsr AS (SELECT _rec, nct, n, titles, ctr_text(m.title) AS title, m.classes AS classes FROM bm),
{_cells("b", "_rec, nct, n, titles, title", denoms=False).strip()},
{_FLOW.strip()}
SELECT _rec, {RANK_RESULTS_OUTCOMES} AS _rank, [1, n, 0]::INTEGER[] AS _pos,
    nct || ':R' || n || ': title is missing' AS reason
FROM om WHERE ctr_text(m.title) IS NULL
UNION ALL
SELECT _rec, {RANK_RESULTS_OUTCOMES}, [1, n, ci, ki, xi]::INTEGER[],
    nct || ':R' || n || ': measurement for group ' || ctr_py_repr(to_json(x.groupId))
        || ' not among the measure''s groups'
FROM cell WHERE NOT ctr_has(titles, x.groupId)
UNION ALL
SELECT _rec, {RANK_RESULTS_OUTCOMES}, [2, kind, ei, si, 0]::INTEGER[],
    nct || ': adverse event ' || ctr_py_repr(to_json(coalesce(term, '')))
        || ' for unknown group ' || ctr_py_repr(to_json(s.groupId))
FROM stat WHERE NOT ctr_has(raw_titles, s.groupId)
UNION ALL
SELECT _rec, {RANK_RESULTS_OUTCOMES}, [2, kind, ei, si, 1]::INTEGER[],
    nct || ': numAtRisk is not a count: ' || ctr_py_repr(CAST(s.numAtRisk AS VARCHAR))
FROM stat WHERE s.numAtRisk IS NOT NULL AND ctr_jcount(s.numAtRisk) IS NULL
UNION ALL
SELECT _rec, {RANK_PARSE_RESULTS}, [1, n, ai]::INTEGER[],
    nct || ':R' || n || ': analysis ' || ai || ' compares unknown groups '
        || ctr_py_repr(to_json(list_filter(group_ids, g -> NOT ctr_has(titles, g))))
FROM analysis WHERE len(list_filter(group_ids, g -> NOT ctr_has(titles, g))) > 0
UNION ALL
SELECT _rec, {RANK_PARSE_RESULTS}, [2, kind, ei, si]::INTEGER[],
    {_unknown("adverse event", "term", "ctr_text(s.groupId)")}
FROM stat WHERE NOT coalesce(ctr_has(titles, ctr_text(s.groupId)), false)
UNION ALL
SELECT _rec, {RANK_PARSE_RESULTS}, [3, n, ci, ki, xi]::INTEGER[],
    {_unknown("baseline measure", "title", "ctr_text(x.groupId)")}
FROM bcell WHERE NOT coalesce(ctr_has(titles, ctr_text(x.groupId)), false)
UNION ALL
SELECT _rec, {RANK_PARSE_RESULTS}, [4, pi, kind, vi, xi]::INTEGER[],
    {_unknown("participant flow", "name", "ctr_text(x.groupId)")}
FROM flow WHERE NOT coalesce(ctr_has(titles, ctr_text(x.groupId)), false)"""

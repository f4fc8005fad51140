"""ClinicalTrials.gov v2 studies -> the protocol-side staging tables, set-wise in DuckDB.

The same rows and reasons as `clinicaltrials.parse_study` gives study by study (its tests hold
the two to parity), as SQL over a batch of studies parsed by DuckDB's JSON reader
(`pipelines.setwise`, the `ct_docs` table: `_rec`, `_source_file`, `nct`, `doc`). Where SQL
reads a value differently from Python (partial dates, counts given as text, Unicode case
folding, other registries' id patterns, `repr` in a reason) `prepare` computes it in Python
once per distinct value of the batch, into small tables the SQL joins.

Leaves typed VARCHAR read a JSON number as its JSON text (`as_text` gives the same) and `true`
as 'true' where `as_text` gives 'True'; the registry never sends either where a text belongs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.normalize.dates import parse_partial_date
from pipelines.normalize.design import registered_design
from pipelines.sources.base import BATCH_DB, SqlSide
from pipelines.sources.clinicaltrials_values import as_number
from pipelines.warehouse import write_table

DOCS = "ct_docs"
_NON_FINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)
"""The non-finite numbers DuckDB's JSON reader takes (as float() does)."""

_OUTCOME_LIST = [{"measure": "VARCHAR", "timeFrame": "VARCHAR"}]
_DATE = {"date": "JSON"}

PROTOCOL_STRUCTURE: dict[str, Any] = {
    "protocolSection": {
        "identificationModule": {
            "nctId": "JSON",
            "nctIdAliases": ["VARCHAR"],
            "briefTitle": "VARCHAR",
            "officialTitle": "VARCHAR",
            "acronym": "VARCHAR",
            "orgStudyIdInfo": {"id": "VARCHAR"},
            "organization": {"fullName": "VARCHAR"},
            "secondaryIdInfos": [{"id": "VARCHAR", "domain": "VARCHAR", "type": "VARCHAR"}],
        },
        "statusModule": {
            "overallStatus": "VARCHAR",
            "lastKnownStatus": "VARCHAR",
            "startDateStruct": _DATE,
            "primaryCompletionDateStruct": _DATE,
            "completionDateStruct": _DATE,
            "studyFirstPostDateStruct": _DATE,
            "lastUpdatePostDateStruct": _DATE,
            "resultsFirstPostDateStruct": _DATE,
        },
        "sponsorCollaboratorsModule": {
            "leadSponsor": {"name": "VARCHAR", "class": "VARCHAR"},
            "collaborators": [{"name": "VARCHAR"}],
        },
        "designModule": {
            "studyType": "VARCHAR",
            "phases": ["VARCHAR"],
            "designInfo": {
                "allocation": "VARCHAR",
                "interventionModel": "VARCHAR",
                "primaryPurpose": "VARCHAR",
                "observationalModel": "VARCHAR",
                "timePerspective": "VARCHAR",
                "maskingInfo": {"masking": "VARCHAR", "whoMasked": ["VARCHAR"]},
            },
            "enrollmentInfo": {"count": "JSON", "type": "VARCHAR"},
        },
        "eligibilityModule": {
            "sex": "VARCHAR",
            "minimumAge": "VARCHAR",
            "maximumAge": "VARCHAR",
            "healthyVolunteers": "JSON",
        },
        "contactsLocationsModule": {"locations": [{"country": "VARCHAR"}]},
        "conditionsModule": {"conditions": ["VARCHAR"]},
        "armsInterventionsModule": {
            "interventions": [
                {
                    "name": "VARCHAR",
                    "type": "VARCHAR",
                    "description": "VARCHAR",
                    "armGroupLabels": ["VARCHAR"],
                    "otherNames": ["VARCHAR"],
                }
            ]
        },
        "outcomesModule": {
            "primaryOutcomes": _OUTCOME_LIST,
            "secondaryOutcomes": _OUTCOME_LIST,
            "otherOutcomes": _OUTCOME_LIST,
        },
        "referencesModule": {"references": [{"pmid": "VARCHAR", "type": "JSON"}]},
    },
    "derivedSection": {"conditionBrowseModule": {"meshes": [{"id": "VARCHAR", "term": "VARCHAR"}]}},
    "hasResults": "JSON",
}
"""Every field the protocol-side tables read (`from_json` notation)."""

_SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(0x3001)) if c.isspace()) + "]"
"""What Python's str.strip() removes, as a regular expression class (no whitespace character
lies above U+3000); a regular expression strips faster than trim() with a character set."""

MACROS = (
    f"CREATE OR REPLACE TEMP MACRO ct_text(s) AS "
    f"nullif(regexp_replace(s, '^{_SPACE}+|{_SPACE}+$', '', 'g'), '')",
    "CREATE OR REPLACE TEMP MACRO ct_texts(l) AS "
    "coalesce(list_filter(list_transform(l, v -> ct_text(v)), v -> v IS NOT NULL), [])",
    "CREATE OR REPLACE TEMP MACRO ct_bool(j) AS "
    "CASE j WHEN 'true' THEN true WHEN 'false' THEN false END",
)
"""`as_text`, `str_list` and `_bool` of `clinicaltrials_values` / `clinicaltrials` in SQL."""

_NCT = "doc.protocolSection.identificationModule.nctId"
KEY_SQL = (
    f"CASE WHEN json_type({_NCT}) = 'VARCHAR' AND ct_text({_NCT} ->> '$') IS NOT NULL "
    f"THEN {_NCT} ->> '$' END"
)
"""`record_key`: the nctId when it is a string not blank once stripped (checked in ID_SQL)."""
ID_SQL = "CASE WHEN regexp_full_match(ct_text(_key), 'NCT[0-9]{8}') THEN ct_text(_key) END"
"""The stripped nctId when it is NCT and eight digits (`clinicaltrials.NCT_ID`), else NULL."""


def setup(con: duckdb.DuckDBPyConnection) -> None:
    """The value macros the SQL below uses."""
    for statement in MACROS:
        con.execute(statement)


# --- Python per distinct value ----------------------------------------------------------------


def py_map(
    con: duckdb.DuckDBPyConnection,
    name: str,
    values_sql: str,
    fn: Callable[..., tuple[Any, ...]],
    schema: pa.Schema,
) -> None:
    """The batch's table `name`: each distinct row of `values_sql` with what `fn` makes of it
    (in `BATCH_DB`, where every cursor staging the batch reads it).

    `schema` names the key columns (as many as `values_sql` gives) then `fn`'s outputs.
    """
    keys = con.execute(f"SELECT DISTINCT * FROM ({values_sql})").fetchall()
    rows = [(*key, *fn(*key)) for key in keys]
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    table = pa.Table.from_arrays(
        [pa.array(list(c), f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )
    write_table(con, f"{BATCH_DB}.{name}", table)


def json_leaf(text: str) -> Any:
    """A JSON leaf as DuckDB wrote it back. DuckDB's JSON reader takes NaN and infinities (in
    any case) and numbers beyond a double, which orjson refuses: read here by float() and the
    standard library's reader, such a value gets its record quarantined with a reason (or
    its file read again by the unit's reader) instead of stopping staging."""
    return float(text) if _NON_FINITE.fullmatch(text) else json.loads(text)


def _date(text: str) -> tuple[Any, str | None, str | None]:
    """`_date` of clinicaltrials.py for one JSON value: (date, precision, error)."""
    value = json_leaf(text)
    try:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"not a date string: {value!r}")
        day, precision = parse_partial_date(value)
    except ValueError as exc:
        return None, None, str(exc)
    return day, precision, None


def _count(text: str) -> tuple[int | None, str | None]:
    """`_count` of clinicaltrials.py for one JSON value: (count, error)."""
    value = json_leaf(text)
    if value is None:
        return None, None
    number = as_number(value)
    if number is None or not number.is_integer() or number < 0:
        return None, f"enrollmentInfo.count is not a count: {value!r}"
    return int(number), None


def _merge_domains(domains: list[str | None]) -> tuple[str | None]:
    """The issuers of one secondary id given several times, as `_identifiers` joins them."""
    found = domains[0]
    for domain in domains[1:]:
        if domain and domain not in (found or "").split("; "):
            found = "; ".join(d for d in (found, domain) if d)
    return (found,)


def _repr_json(text: str | None) -> tuple[str]:
    return (repr(None if text is None else json_leaf(text)),)


_DATE_STRUCTS = (
    ("start_date", "startDateStruct"),
    ("primary_completion_date", "primaryCompletionDateStruct"),
    ("completion_date", "completionDateStruct"),
    ("first_posted", "studyFirstPostDateStruct"),
    ("last_update_posted", "lastUpdatePostDateStruct"),
    ("results_first_posted", "resultsFirstPostDateStruct"),
)
_STATUS = f"{DOCS}.doc.protocolSection.statusModule"
_IDENT = "doc.protocolSection.identificationModule"
_S = pa.string()


def prepare(con: duckdb.DuckDBPyConnection, id_type: Callable[[str, str | None], str]) -> None:
    """This batch's distinct dates, counts, study designs, secondary ids (`id_type`: another
    registry's id or plain secondary), texts to case-fold, PMIDs and reference types, read by
    the Python functions `parse_study` uses."""
    dates = " UNION ".join(f"SELECT {_STATUS}.{s}.date AS j FROM {DOCS}" for _, s in _DATE_STRUCTS)
    py_map(
        con,
        "ct_dates",
        f"SELECT j FROM ({dates}) WHERE j IS NOT NULL",
        _date,
        pa.schema([("j", _S), ("day", pa.date32()), ("precision", _S), ("error", _S)]),
    )
    py_map(
        con,
        "ct_counts",
        f"SELECT doc.protocolSection.designModule.enrollmentInfo.count FROM {DOCS} "
        "WHERE doc.protocolSection.designModule.enrollmentInfo.count IS NOT NULL",
        _count,
        pa.schema([("j", _S), ("n", pa.int64()), ("error", _S)]),
    )
    design = "doc.protocolSection.designModule"
    py_map(
        con,
        "ct_designs",
        f"SELECT {design}.studyType, {design}.designInfo.allocation, ct_texts({design}.phases) "
        f"FROM {DOCS}",
        lambda kind, allocation, phases: (registered_design(kind, allocation, phases),),
        pa.schema([("kind", _S), ("allocation", _S), ("phases", pa.list_(_S)), ("design", _S)]),
    )
    py_map(
        con,
        "ct_id_kinds",
        f"SELECT ct_text(s.id), s.type FROM (SELECT unnest({_IDENT}.secondaryIdInfos) AS s "
        f"FROM {DOCS}) WHERE ct_text(s.id) IS NOT NULL",
        lambda value, kind: (id_type(value, kind),),
        pa.schema([("value", _S), ("type", _S), ("kind", _S)]),
    )
    py_map(
        con,
        "ct_folds",
        f"SELECT unnest(ct_texts(doc.protocolSection.conditionsModule.conditions)) FROM {DOCS} "
        "UNION SELECT ct_text(unnest(doc.derivedSection.conditionBrowseModule.meshes).term) "
        f"FROM {DOCS}",
        lambda text: (None if text is None else text.casefold(),),
        pa.schema([("text", _S), ("folded", _S)]),
    )
    references = f"SELECT unnest(doc.protocolSection.referencesModule.references) AS r FROM {DOCS}"
    py_map(
        con,
        "ct_pmids",
        f"SELECT ct_text(r.pmid) FROM ({references}) WHERE r.pmid IS NOT NULL",
        lambda text: (text is not None and text.isdigit(),),
        pa.schema([("pmid", _S), ("digits", pa.bool_())]),
    )
    py_map(
        con,
        "ct_ref_types",
        f"SELECT r.type FROM ({references}) WHERE r.pmid IS NOT NULL",
        _repr_json,
        pa.schema([("j", _S), ("shown", _S)]),
    )
    py_map(
        con,
        "ct_domains",
        f"SELECT domains FROM ({_SECONDARY_GROUPS}) WHERE len(domains) > 1",
        _merge_domains,
        pa.schema([("domains", pa.list_(_S)), ("domain", _S)]),
    )


# --- the SQL ------------------------------------------------------------------------------------

_LINK_TYPES = {"RESULT": "result", "BACKGROUND": "background", "DERIVED": "derived"}

_SECONDARY_GROUPS = f"""
    SELECT _rec, nct, kind, value, min(i) AS i, list(domain ORDER BY i) AS domains
    FROM (
        SELECT s._rec, s.nct, s.i, ct_text(s.info.id) AS value,
               coalesce(ct_text(s.info.domain), ct_text(s.info.type)) AS domain, k.kind
        FROM (
            SELECT _rec, nct, unnest({_IDENT}.secondaryIdInfos) AS info,
                   generate_subscripts({_IDENT}.secondaryIdInfos, 1) AS i
            FROM {DOCS}
        ) s
        JOIN ct_id_kinds k
            ON k.value = ct_text(s.info.id) AND k.type IS NOT DISTINCT FROM s.info.type
    )
    GROUP BY ALL
"""
"""Secondary ids by (kind, value), first position and the issuers in order."""

_REFERENCES = f"""
    SELECT r._rec, r.nct, r.i, p.pmid, r.ref.type AS ref_type
    FROM (
        SELECT _rec, nct, unnest(doc.protocolSection.referencesModule.references) AS ref,
               generate_subscripts(doc.protocolSection.referencesModule.references, 1) AS i
        FROM {DOCS}
    ) r
    JOIN ct_pmids p ON p.pmid = ct_text(r.ref.pmid) AND p.digits
"""
"""References with a PMID of digits, in registry order."""

_LINK_TYPE_SQL = " ".join(f"WHEN '\"{k}\"' THEN '{v}'" for k, v in _LINK_TYPES.items())


def problems_sql() -> str:
    """Why a record cannot be staged: a reference of unknown type (rank 10), an enrollment
    that is not a count or an impossible date in the study row (rank 30)."""
    dates = "\n        UNION ALL ".join(
        f"SELECT d._rec, 30, [{n}], d.nct || ': statusModule.{s}.date: ' || m.error "
        f"FROM {DOCS} d JOIN ct_dates m ON m.j = d.doc.protocolSection.statusModule.{s}.date "
        "WHERE m.error IS NOT NULL"
        for n, (_, s) in enumerate(_DATE_STRUCTS, start=1)
    )
    return f"""
        SELECT r._rec, 10 AS _rank, [r.i] AS _pos,
               r.nct || ': reference PMID ' || r.pmid || ' has unknown type ' || t.shown AS reason
        FROM ({_REFERENCES}) r
        JOIN ct_ref_types t ON t.j IS NOT DISTINCT FROM r.ref_type
        WHERE (CASE r.ref_type {_LINK_TYPE_SQL} END) IS NULL
        UNION ALL
        SELECT d._rec, 30, [0], d.nct || ': ' || m.error
        FROM {DOCS} d
        JOIN ct_counts m ON m.j = d.doc.protocolSection.designModule.enrollmentInfo.count
        WHERE m.error IS NOT NULL
        UNION ALL {dates}
    """


def _studies() -> str:
    """The study row: its text columns first, then the joins to the maps on their keys alone
    (a join carrying the whole protocolSection copied it once per join)."""
    dates = ",\n".join(
        f"d{n}.day AS {column}" + (f", d{n}.precision AS {column}_precision" if n < 3 else "")
        for n, (column, _) in enumerate(_DATE_STRUCTS)
    )
    date_keys = ",\n".join(
        f"p.statusModule.{s}.date AS _date{n}" for n, (_, s) in enumerate(_DATE_STRUCTS)
    )
    date_joins = "\n".join(
        f"LEFT JOIN ct_dates d{n} ON d{n}.j = s._date{n}" for n in range(len(_DATE_STRUCTS))
    )
    info = "p.designModule.designInfo"
    return f"""
        SELECT s.* EXCLUDE ({", ".join(f"_date{n}" for n in range(len(_DATE_STRUCTS)))},
                _count, _kind, _allocation),
            c.n AS enrollment, {dates}, g.design
        FROM (
        SELECT _rec, [0] AS _pos, nct AS study_id, 'registry' AS evidence_source,
            'clinicaltrials.gov' AS registry,
            ct_text(p.identificationModule.briefTitle) AS title,
            ct_text(p.identificationModule.officialTitle) AS official_title,
            ct_text(p.identificationModule.acronym) AS acronym,
            ct_text(p.designModule.studyType) AS study_type,
            ct_texts(p.designModule.phases) AS phases,
            ct_text(p.statusModule.overallStatus) AS overall_status,
            ct_text(p.statusModule.lastKnownStatus) AS last_known_status,
            ct_text(p.designModule.enrollmentInfo.type) AS enrollment_type,
            ct_text(p.sponsorCollaboratorsModule.leadSponsor.name) AS lead_sponsor,
            ct_text(p.sponsorCollaboratorsModule.leadSponsor.class) AS sponsor_class,
            ct_texts(list_transform(p.sponsorCollaboratorsModule.collaborators, c -> c.name))
                AS collaborators,
            ct_text({info}.allocation) AS allocation,
            ct_text({info}.interventionModel) AS intervention_model,
            ct_text({info}.maskingInfo.masking) AS masking,
            ct_texts({info}.maskingInfo.whoMasked) AS who_masked,
            ct_text({info}.primaryPurpose) AS primary_purpose,
            ct_text({info}.observationalModel) AS observational_model,
            ct_text({info}.timePerspective) AS time_perspective,
            ct_text(p.eligibilityModule.sex) AS sex,
            ct_text(p.eligibilityModule.minimumAge) AS minimum_age,
            ct_text(p.eligibilityModule.maximumAge) AS maximum_age,
            ct_bool(p.eligibilityModule.healthyVolunteers) AS healthy_volunteers,
            list_sort(list_distinct(ct_texts(
                list_transform(p.contactsLocationsModule.locations, l -> l.country)))) AS countries,
            ct_bool(has_results) AS has_results,
            'human' AS population,
            []::VARCHAR[] AS flags,
            NULL::VARCHAR AS source_url,
            {date_keys},
            p.designModule.enrollmentInfo.count AS _count,
            p.designModule.studyType AS _kind,
            {info}.allocation AS _allocation
        FROM (SELECT _rec, nct, doc.protocolSection AS p, doc.hasResults AS has_results
              FROM {DOCS})
        ) s
        LEFT JOIN ct_counts c ON c.j = s._count
        LEFT JOIN ct_designs g ON g.kind IS NOT DISTINCT FROM s._kind
            AND g.allocation IS NOT DISTINCT FROM s._allocation
            AND g.phases = s.phases
        {date_joins}
    """


def _identifiers() -> str:
    return f"""
        SELECT _rec, [0] AS _pos, nct AS study_id, 'nct' AS id_type, nct AS id_value,
            NULL AS id_domain, false AS is_alias
        FROM {DOCS}
        UNION ALL
        SELECT _rec, [1, row_number() OVER (PARTITION BY _rec ORDER BY alias)::INTEGER], nct,
            'nct', alias, NULL, true
        FROM (
            SELECT DISTINCT _rec, nct, unnest(ct_texts({_IDENT}.nctIdAliases)) AS alias
            FROM {DOCS}
        )
        WHERE alias <> nct
        UNION ALL
        SELECT _rec, [2], nct, 'org_study_id', org_id,
            ct_text({_IDENT}.organization.fullName), false
        FROM (SELECT *, ct_text({_IDENT}.orgStudyIdInfo.id) AS org_id FROM {DOCS})
        WHERE org_id IS NOT NULL
        UNION ALL
        SELECT g._rec, [3, g.i], g.nct, g.kind, g.value,
            CASE WHEN len(g.domains) = 1 THEN g.domains[1] ELSE
                (SELECT m.domain FROM ct_domains m WHERE m.domains = g.domains) END,
            false
        FROM ({_SECONDARY_GROUPS}) g
    """


def _conditions() -> str:
    conditions = "ct_texts(doc.protocolSection.conditionsModule.conditions)"
    meshes = "doc.derivedSection.conditionBrowseModule.meshes"
    return f"""
        WITH named AS (
            SELECT _rec, nct, condition, min(i) AS i
            FROM (SELECT _rec, nct, unnest({conditions}) AS condition,
                         generate_subscripts({conditions}, 1) AS i FROM {DOCS})
            GROUP BY ALL
        ),
        terms AS (
            SELECT _rec, f.folded, first(m.term ORDER BY m.i DESC) AS term,
                first(m.id ORDER BY m.i DESC) AS id
            FROM (
                SELECT _rec, ct_text(unnest({meshes}).term) AS term,
                       ct_text(unnest({meshes}).id) AS id,
                       generate_subscripts({meshes}, 1) AS i
                FROM {DOCS}
            ) m
            JOIN ct_folds f ON f.text = m.term
            GROUP BY ALL
        )
        SELECT n._rec, [n.i] AS _pos, n.nct AS study_id, n.condition,
            NULL AS condition_category, t.term AS mesh_term, t.id AS mesh_id
        FROM named n
        JOIN ct_folds f ON f.text = n.condition
        LEFT JOIN terms t ON t._rec = n._rec AND t.folded = f.folded
    """


def _interventions() -> str:
    items = "doc.protocolSection.armsInterventionsModule.interventions"

    def union(field: str) -> str:
        """A name's `field` values over its items: an item's own repeats kept, a value an
        earlier item of the name gave left out (as `_interventions` extends its lists)."""
        values = f"ct_texts(item.{field})"
        return f"""
            SELECT _rec, name, list(v ORDER BY i, j) AS vs
            FROM (
                SELECT *, min(i) OVER (PARTITION BY _rec, name, v) AS first_i
                FROM (SELECT _rec, name, i, unnest({values}) AS v,
                             generate_subscripts({values}, 1) AS j
                      FROM named WHERE name IS NOT NULL)
            )
            WHERE i = first_i
            GROUP BY _rec, name
        """

    return f"""
        WITH listed AS (
            SELECT _rec, nct, {items} AS items,
                list_transform({items}, x -> ct_text(x.name)) AS names
            FROM {DOCS}
        ),
        repeats AS (
            SELECT _rec FROM listed
            WHERE len(list_distinct(names)) < len(list_filter(names, n -> n IS NOT NULL))
        ),
        plain AS (
            SELECT _rec, nct, unnest(items) AS item, unnest(names) AS name,
                generate_subscripts(items, 1) AS i
            FROM listed ANTI JOIN repeats USING (_rec)
        ),
        named AS (
            SELECT _rec, nct, unnest(items) AS item, unnest(names) AS name,
                generate_subscripts(items, 1) AS i
            FROM listed SEMI JOIN repeats USING (_rec)
        ),
        heads AS (
            SELECT _rec, nct, name, min(i) AS i,
                first(ct_text(item.type) ORDER BY i) AS intervention_type,
                first(ct_text(item.description) ORDER BY i) AS description
            FROM named WHERE name IS NOT NULL GROUP BY ALL
        ),
        labels AS ({union("armGroupLabels")}),
        others AS ({union("otherNames")})
        SELECT _rec, [i] AS _pos, nct AS study_id, name AS intervention_name,
            ct_text(item.type) AS intervention_type, NULL AS compound_id, NULL AS product_form,
            ct_texts(item.armGroupLabels) AS arm_group_labels,
            ct_texts(item.otherNames) AS other_names, ct_text(item.description) AS description
        FROM plain WHERE name IS NOT NULL
        UNION ALL
        SELECT h._rec, [h.i], h.nct, h.name, h.intervention_type, NULL, NULL,
            coalesce(l.vs, []), coalesce(o.vs, []), h.description
        FROM heads h
        LEFT JOIN labels l ON l._rec = h._rec AND l.name = h.name
        LEFT JOIN others o ON o._rec = h._rec AND o.name = h.name
    """


def _outcomes() -> str:
    outcomes = "doc.protocolSection.outcomesModule"
    lists = "\n        UNION ALL ".join(
        f"""SELECT _rec, nct, {k} AS k, '{letter}' AS letter, '{kind}' AS kind,
                   unnest({outcomes}.{key}) AS item, generate_subscripts({outcomes}.{key}, 1) AS n
            FROM {DOCS}"""
        for k, (key, letter, kind) in enumerate(
            (
                ("primaryOutcomes", "P", "primary"),
                ("secondaryOutcomes", "S", "secondary"),
                ("otherOutcomes", "O", "other"),
            )
        )
    )
    return f"""
        SELECT _rec, [k, n] AS _pos, nct || ':' || letter || n AS outcome_id, nct AS study_id,
            kind AS outcome_kind, ct_text(item.measure) AS title,
            ct_text(item.timeFrame) AS time_frame, NULL AS domain, NULL AS instrument,
            NULL AS param_type, NULL AS unit, 'registry_protocol' AS source
        FROM ({lists})
        WHERE ct_text(item.measure) IS NOT NULL
    """


def _publications() -> str:
    return f"""
        SELECT _rec, [min(i)] AS _pos, nct AS study_id, 'PMID:' || pmid AS publication_id,
            first(CASE ref_type {_LINK_TYPE_SQL} END ORDER BY i) AS link_type,
            'registry_reference' AS link_source, pmid
        FROM ({_REFERENCES})
        GROUP BY _rec, nct, pmid
    """


def tables_sql() -> dict[str, str]:
    """The protocol-side tables: table -> SELECT of its columns, `_rec`, `_pos`."""
    publications = _publications()
    return {
        "studies": _studies(),
        "study_identifiers": _identifiers(),
        "conditions": _conditions(),
        "interventions": _interventions(),
        "outcomes": _outcomes(),
        "study_publications": f"SELECT * EXCLUDE (pmid) FROM ({publications})",
        "publication_stubs": f"SELECT _rec, _pos, publication_id, pmid FROM ({publications})",
    }


def protocol_side(id_type: Callable[[str, str | None], str]) -> SqlSide:
    """The protocol side of a study's staging; `id_type` classifies a secondary id."""
    return SqlSide(
        PROTOCOL_STRUCTURE,
        problems_sql,
        tables_sql,
        prepare=lambda con: prepare(con, id_type),
        setup=setup,
    )

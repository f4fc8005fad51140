"""ClinicalTrials.gov API v2: stream snapshot pages into studies, parse each study into rows.

Parsing is pure (no I/O, no clock): one v2 study in, rows for every table it feeds out. Columns a
later stage fills from vocabularies (condition categories, compound ids, outcome domains) stay
None here.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import ijson
import orjson

from pipelines.http import PagingError, page_url
from pipelines.normalize.dates import parse_partial_date
from pipelines.normalize.design import registered_design
from pipelines.sources import (
    clinicaltrials_results,
    clinicaltrials_results_sql,
    clinicaltrials_sql,
    serving,
)
from pipelines.sources.base import (
    BulkExport,
    LiveRun,
    LiveSource,
    PageClient,
    RecordError,
    SetwiseStaging,
    SnapshotFormatError,
    SourceUnit,
    SqlSide,
    TableRows,
    VersionFeed,
    count_items,
    count_mismatch,
    slug,
)
from pipelines.sources.clinicaltrials_values import (
    as_number,
    as_text,
    denominators,
    dig,
    str_list,
)

SOURCE = "clinicaltrials"
REGISTRY = "clinicaltrials.gov"
STUB_TABLE = "publication_stubs"
"""Pseudo-table: publications known only as a registry reference; the caller creates stubs."""

TABLES = (
    "studies",
    "study_identifiers",
    "conditions",
    "interventions",
    "outcomes",
    "outcome_results",
    "study_publications",
    STUB_TABLE,
    *clinicaltrials_results.TABLES,
)
"""Every table `parse_study` returns (each present, possibly empty)."""

_PAGE_KEYS = frozenset({"studies", "nextPageToken", "totalCount"})
_STUDY_KEYS = frozenset(
    {
        "protocolSection",
        "resultsSection",
        "annotationSection",
        "documentSection",
        "derivedSection",
        "hasResults",
    }
)
_ITEM = "studies.item"

_OUTCOME_KIND = {
    "PRIMARY": "primary",
    "SECONDARY": "secondary",
    "OTHER_PRE_SPECIFIED": "other",
    "POST_HOC": "other",
}
_LINK_TYPE = {"RESULT": "result", "BACKGROUND": "background", "DERIVED": "derived"}
_PROTOCOL_OUTCOMES = (
    ("primaryOutcomes", "P", "primary"),
    ("secondaryOutcomes", "S", "secondary"),
    ("otherOutcomes", "O", "other"),
)
_REGISTRY_IDS = (
    (
        "ctis",
        re.compile(
            r"(?:CTIS|EU\s*CT(?:\s*(?:number|no\.?))?)?\s*:?\s*\d{4}-\d{6}-\d{2}-\d{2}", re.I
        ),
    ),
    (
        "euctr",
        re.compile(
            r"(?:EudraCT|EUCTR)?\s*(?:number|no\.?)?\s*:?\s*\d{4}-\d{6}-\d{2}(?:-[A-Z]{2})?", re.I
        ),
    ),
    ("isrctn", re.compile(r"ISRCTN\s*\d{8}", re.I)),
    ("nl_omon", re.compile(r"NL-OMON\d+|NL\d+", re.I)),
    ("tctr", re.compile(r"TCTR\d+", re.I)),
    ("anzctr", re.compile(r"ACTRN\d+", re.I)),
)
"""Secondary ids that are another registry's id, tried in order (CTIS before shorter EudraCT)."""
_SECONDARY_TYPE = {"EUDRACT_NUMBER": "euctr", "CTIS": "ctis"}
NCT_ID = re.compile(r"NCT[0-9]{8}")
"""The only form of id ClinicalTrials.gov issues: NCT and eight digits."""


# --- snapshot files --------------------------------------------------------------------------


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the studies of one snapshot file, one at a time.

    A list page (`{"studies": [...], "nextPageToken"?}`) or a single study
    (`{"protocolSection": ...}`, one record). A file up to WHOLE_FILE_BYTES (an API page of 1000
    studies is about 20 MB) is parsed whole by orjson, three times faster than building each
    study with ijson; a larger one is streamed study by study with ijson, so a page of any size
    is never held whole. A file orjson refuses is read again with ijson, whose errors name the
    problem.

    Raises:
        SnapshotFormatError: the file is not JSON, or neither a page nor a study.
    """
    if path.stat().st_size <= WHOLE_FILE_BYTES:
        body = path.read_bytes()
        try:
            doc = None if _long_digit_run(body) else orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if doc is not None:
            yield from _whole_file_records(path, doc)
            return
    with path.open("rb") as f:
        try:
            yield from _iter_json(f, path)
        except ijson.JSONError as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SnapshotFormatError(path, f"malformed JSON: {problem}") from exc


WHOLE_FILE_BYTES = 32 * 1024 * 1024
"""Snapshot files up to this size are parsed whole (a few hundred MB of Python objects at most)."""
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def _long_digit_run(body: bytes) -> bool:
    """True when the body holds 19 digits in a row: maybe an integer beyond 64 bits, which
    orjson reads as a float but ijson refuses ("integer overflow"), so ijson must read it."""
    return body.translate(_DIGITS).find(_LONG_RUN) >= 0


def _whole_file_records(path: Path, doc: Any) -> Iterator[dict[str, Any]]:
    """The studies of a parsed file, checked as `_iter_json` checks a stream, in the same order."""
    if not isinstance(doc, dict):
        raise SnapshotFormatError(path, "not a JSON object (expected a v2 studies page or study)")
    first = next(iter(doc), None)
    if first is None:
        raise SnapshotFormatError(path, "empty JSON object (expected a v2 studies page or study)")
    if first in _STUDY_KEYS:
        yield doc
        return
    if first not in _PAGE_KEYS:
        raise SnapshotFormatError(
            path, f"unknown top-level key {first!r}: neither a v2 studies page nor a study"
        )
    if "studies" not in doc:
        raise SnapshotFormatError(path, "studies page without a 'studies' list")
    studies = doc["studies"]
    if not isinstance(studies, list):
        raise SnapshotFormatError(path, "'studies' is not a list")
    for study in studies:
        if not isinstance(study, dict):
            event = _JSON_EVENT.get(type(study), "null")
            raise SnapshotFormatError(path, f"studies[] holds a {event}, not a study object")
        yield study


def _iter_json(f: BinaryIO, path: Path) -> Iterator[dict[str, Any]]:
    events = ijson.parse(f, use_float=True)
    first = next(events, None)
    if first is None or first[1] != "start_map":
        raise SnapshotFormatError(path, "not a JSON object (expected a v2 studies page or study)")
    key = next(events)
    if key[1] != "map_key":
        raise SnapshotFormatError(path, "empty JSON object (expected a v2 studies page or study)")
    f.seek(0)
    if key[2] in _STUDY_KEYS:
        yield from ijson.items(f, "", use_float=True)
    elif key[2] in _PAGE_KEYS:
        yield from _iter_page(path, f)
    else:
        raise SnapshotFormatError(
            path, f"unknown top-level key {key[2]!r}: neither a v2 studies page nor a study"
        )


_JSON_EVENT = {bool: "boolean", int: "number", float: "number", str: "string", list: "start_array"}
"""The ijson event that starts a value of each type (null's is "null")."""


def _iter_page(path: Path, f: BinaryIO) -> Iterator[dict[str, Any]]:
    """Each `studies[]` item; when there is none, check the page has a `studies` list."""
    found = 0
    for study in ijson.items(f, _ITEM, use_float=True):
        if not isinstance(study, dict):
            event = _JSON_EVENT.get(type(study), "null")
            raise SnapshotFormatError(path, f"studies[] holds a {event}, not a study object")
        found += 1
        yield study
    if not found:
        f.seek(0)
        _check_empty_page(path, ijson.parse(f, use_float=True))


def _check_empty_page(path: Path, events: Iterator[tuple[str, str, Any]]) -> None:
    """A page without studies still needs a `studies` key holding a list."""
    seen_studies = False
    for prefix, event, value in events:
        if prefix == "studies" and event not in ("start_array", "end_array"):
            raise SnapshotFormatError(path, "'studies' is not a list")
        if prefix == "" and event == "map_key" and value == "studies":
            seen_studies = True
    if not seen_studies:
        raise SnapshotFormatError(path, "studies page without a 'studies' list")


BULK_URL = "https://clinicaltrials.gov/api/v2/studies/download?format=json.zip"
"""The whole registry as one ZIP (`ctg-studies.json.zip`), the JSON download of
https://clinicaltrials.gov/data-api/how-download-study-records: one v2 study per member, named
by its NCT id in a folder per last two digits (`35/NCT02252835.json`, about 600 000 members)."""
_MEMBER = re.compile(r"(?:.*/)?(NCT\d{8})\.json")


def read_member(body: bytes) -> dict[str, Any]:
    """One member of the bulk ZIP: a single v2 study, as `GET /api/v2/studies/{nctId}` returns.

    Raises:
        ValueError: the member is not JSON or not a study object (its reason is quarantined).
    """
    try:
        study = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(study, dict) or not _STUDY_KEYS.intersection(study):
        raise ValueError("not a v2 study object (no protocolSection)")
    return study


def member_key(name: str) -> str | None:
    """The NCT id a bulk member's path names (`35/NCT02252835.json`); None when it names none."""
    found = _MEMBER.fullmatch(name)
    return found.group(1) if found else None


def record_key(study: dict[str, Any]) -> str | None:
    """The study's NCT id, for quarantine entries and de-duplication; None when absent."""
    ident = dig(study, "protocolSection", "identificationModule")
    nct = ident.get("nctId") if isinstance(ident, dict) else None
    return nct if isinstance(nct, str) and nct.strip() else None


# --- one study -> rows ------------------------------------------------------------------------


def id_problem(key: str | None) -> str | None:
    """Why a record key is not an NCT id (None: it is one, once stripped)."""
    if key is None:
        return "study has no protocolSection.identificationModule.nctId"
    nct = key.strip()
    if not NCT_ID.fullmatch(nct):
        return f"nctId {nct!r} is not an NCT id (NCT and eight digits)"
    return None


def parse_study(study: dict[str, Any]) -> TableRows:
    """One v2 study -> rows for every table it feeds, plus `publication_stubs`.

    Staging reads studies set-wise (`SETWISE`, held to the same rows and reasons by its
    tests); this is the record-by-record reading of one study.

    Raises:
        RecordError: no nctId or one not of the form NCT + 8 digits, or a date or number the
            registry would never give.
    """
    key = record_key(study)
    problem = id_problem(key)
    if problem is not None:
        raise RecordError(problem)
    assert key is not None
    nct = key.strip()
    protocol = study["protocolSection"]
    references = _references(nct, dig(protocol, "referencesModule", "references") or [])
    outcomes, results = _results(nct, study.get("resultsSection") or {})
    return {
        "studies": [_study_row(nct, study)],
        "study_identifiers": _identifiers(nct, protocol.get("identificationModule") or {}),
        "conditions": _conditions(nct, study),
        "interventions": _interventions(
            nct, dig(protocol, "armsInterventionsModule", "interventions") or []
        ),
        "outcomes": _protocol_outcomes(nct, protocol.get("outcomesModule") or {}) + outcomes,
        "outcome_results": results,
        "study_publications": [row for row, _ in references],
        STUB_TABLE: [stub for _, stub in references],
        **clinicaltrials_results.parse_results(nct, study),
    }


def _study_row(nct: str, study: dict[str, Any]) -> dict[str, Any]:
    protocol = study["protocolSection"]
    ident = protocol.get("identificationModule") or {}
    status = protocol.get("statusModule") or {}
    sponsors = protocol.get("sponsorCollaboratorsModule") or {}
    design = protocol.get("designModule") or {}
    info = design.get("designInfo") or {}
    masking = info.get("maskingInfo") or {}
    enrollment = design.get("enrollmentInfo") or {}
    eligibility = protocol.get("eligibilityModule") or {}
    locations = dig(protocol, "contactsLocationsModule", "locations") or []
    phases = str_list(design.get("phases"))
    row: dict[str, Any] = {
        "study_id": nct,
        "evidence_source": "registry",
        "registry": REGISTRY,
        "title": as_text(ident.get("briefTitle")),
        "official_title": as_text(ident.get("officialTitle")),
        "acronym": as_text(ident.get("acronym")),
        "study_type": as_text(design.get("studyType")),
        "phases": phases,
        "overall_status": as_text(status.get("overallStatus")),
        "last_known_status": as_text(status.get("lastKnownStatus")),
        "enrollment": _count(nct, "enrollmentInfo.count", enrollment.get("count")),
        "enrollment_type": as_text(enrollment.get("type")),
    }
    for column, struct in (
        ("start_date", "startDateStruct"),
        ("primary_completion_date", "primaryCompletionDateStruct"),
        ("completion_date", "completionDateStruct"),
    ):
        row[column], row[f"{column}_precision"] = _date(nct, status, struct)
    for column, struct in (
        ("first_posted", "studyFirstPostDateStruct"),
        ("last_update_posted", "lastUpdatePostDateStruct"),
        ("results_first_posted", "resultsFirstPostDateStruct"),
    ):
        row[column] = _date(nct, status, struct)[0]
    lead = sponsors.get("leadSponsor") or {}
    row |= {
        "lead_sponsor": as_text(lead.get("name")),
        "sponsor_class": as_text(lead.get("class")),
        "collaborators": str_list(c.get("name") for c in sponsors.get("collaborators") or []),
        "allocation": as_text(info.get("allocation")),
        "intervention_model": as_text(info.get("interventionModel")),
        "masking": as_text(masking.get("masking")),
        "who_masked": str_list(masking.get("whoMasked")),
        "primary_purpose": as_text(info.get("primaryPurpose")),
        "observational_model": as_text(info.get("observationalModel")),
        "time_perspective": as_text(info.get("timePerspective")),
        "sex": as_text(eligibility.get("sex")),
        "minimum_age": as_text(eligibility.get("minimumAge")),
        "maximum_age": as_text(eligibility.get("maximumAge")),
        "healthy_volunteers": _bool(eligibility.get("healthyVolunteers")),
        "countries": sorted(set(str_list(loc.get("country") for loc in locations))),
        "has_results": _bool(study.get("hasResults")),
        "population": "human",
        "design": registered_design(design.get("studyType"), info.get("allocation"), phases),
        "flags": [],
        "source_url": None,
    }
    return row


def _identifiers(nct: str, ident: dict[str, Any]) -> list[dict[str, Any]]:
    """NCT id, aliases, the sponsor's own id and secondary ids; one row per (type, value).

    An nctIdAlias is an NCT id too: id_type nct with `is_alias` (schemas/vocab.py ID_TYPES).
    """
    found: dict[tuple[str, str], str | None] = {("nct", nct): None}
    aliases = {("nct", a) for a in str_list(ident.get("nctIdAliases")) if a != nct}
    for key in sorted(aliases):
        found.setdefault(key, None)
    org_id = as_text((ident.get("orgStudyIdInfo") or {}).get("id"))
    if org_id:
        found.setdefault(("org_study_id", org_id), as_text(dig(ident, "organization", "fullName")))
    for info in ident.get("secondaryIdInfos") or []:
        value = as_text(info.get("id"))
        if not value:
            continue
        domain = as_text(info.get("domain")) or as_text(info.get("type"))
        key = (secondary_id_type(value, info.get("type")), value)
        if key not in found:
            found[key] = domain
        elif domain and domain not in (found[key] or "").split("; "):
            found[key] = "; ".join(d for d in (found[key], domain) if d)  # same id, two issuers
    return [
        {
            "study_id": nct,
            "id_type": kind,
            "id_value": value,
            "id_domain": domain,
            "is_alias": (kind, value) in aliases,
        }
        for (kind, value), domain in found.items()
    ]


def secondary_id_type(value: str, registry_type: str | None = None) -> str:
    """Classify a secondary id: another registry's id (isrctn, euctr, ...) or plain `secondary`."""
    if registry_type in _SECONDARY_TYPE:
        return _SECONDARY_TYPE[registry_type]
    for kind, pattern in _REGISTRY_IDS:
        if pattern.fullmatch(value.strip()):
            return kind
    return "secondary"


def _conditions(nct: str, study: dict[str, Any]) -> list[dict[str, Any]]:
    """Registered conditions; MeSH term and id only where the registry's own term equals one."""
    meshes = dig(study, "derivedSection", "conditionBrowseModule", "meshes") or []
    by_term = {
        term.casefold(): (term, as_text(m.get("id")))
        for m in meshes
        if (term := as_text(m.get("term")))
    }
    rows: dict[str, dict[str, Any]] = {}
    for condition in str_list(dig(study, "protocolSection", "conditionsModule", "conditions")):
        mesh_term, mesh_id = by_term.get(condition.casefold(), (None, None))
        rows.setdefault(
            condition,
            {
                "study_id": nct,
                "condition": condition,
                "condition_category": None,
                "mesh_term": mesh_term,
                "mesh_id": mesh_id,
            },
        )
    return list(rows.values())


def _interventions(nct: str, interventions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per distinct name; a name registered twice gets the union of its arms."""
    rows: dict[str, dict[str, Any]] = {}
    for item in interventions:
        name = as_text(item.get("name"))
        if name is None:  # nothing to key a row on; the registry always names interventions
            continue
        row = rows.setdefault(
            name,
            {
                "study_id": nct,
                "intervention_name": name,
                "intervention_type": as_text(item.get("type")),
                "compound_id": None,
                "product_form": None,
                "arm_group_labels": [],
                "other_names": [],
                "description": as_text(item.get("description")),
            },
        )
        for column, key in (("arm_group_labels", "armGroupLabels"), ("other_names", "otherNames")):
            row[column] += [v for v in str_list(item.get(key)) if v not in row[column]]
    return list(rows.values())


def _protocol_outcomes(nct: str, module: dict[str, Any]) -> list[dict[str, Any]]:
    """Registered outcome measures: titles and time frames, numbered in registry order."""
    rows = []
    for key, letter, kind in _PROTOCOL_OUTCOMES:
        for n, item in enumerate(module.get(key) or [], start=1):
            title = as_text(item.get("measure"))
            if title is None:
                continue
            rows.append(
                _outcome(
                    f"{nct}:{letter}{n}",
                    nct,
                    kind,
                    title,
                    as_text(item.get("timeFrame")),
                    "registry_protocol",
                )
            )
    return rows


def _outcome(
    outcome_id: str,
    nct: str,
    kind: str,
    title: str,
    time_frame: str | None,
    source: str,
    param_type: str | None = None,
    unit: str | None = None,
) -> dict[str, Any]:
    return {
        "outcome_id": outcome_id,
        "study_id": nct,
        "outcome_kind": kind,
        "title": title,
        "time_frame": time_frame,
        "domain": None,
        "instrument": None,
        "param_type": param_type,
        "unit": unit,
        "source": source,
    }


def _results(
    nct: str, results: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Outcomes and values from the results section: each measure, then the AE table."""
    outcomes: list[dict[str, Any]] = []
    values: list[dict[str, Any]] = []
    measures = dig(results, "outcomeMeasuresModule", "outcomeMeasures") or []
    for n, measure in enumerate(measures, start=1):
        outcome_id = clinicaltrials_results.results_outcome_id(nct, n)
        outcomes.append(
            _outcome(
                outcome_id,
                nct,
                _OUTCOME_KIND.get(measure.get("type") or "", "other"),
                _required(outcome_id, "title", measure.get("title")),
                as_text(measure.get("timeFrame")),
                "registry_results",
                as_text(measure.get("paramType")),
                as_text(measure.get("unitOfMeasure")),
            )
        )
        values += _measurements(outcome_id, measure)
    adverse = _adverse_events(nct, results.get("adverseEventsModule") or {})
    if adverse:
        module = results["adverseEventsModule"]
        outcomes.append(
            _outcome(
                f"{nct}:AE1",
                nct,
                "adverse_events",
                "Adverse events",
                as_text(module.get("timeFrame")),
                "registry_results",
                "COUNT_OF_PARTICIPANTS",
            )
        )
        values += adverse
    return outcomes, values


def _measurements(outcome_id: str, measure: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cell of one results table: group x class/category, with its denominator."""
    groups = {
        g.get("id"): as_text(g.get("title")) or g.get("id") for g in measure.get("groups") or []
    }
    param_type = as_text(measure.get("paramType")) or ""
    unit = as_text(measure.get("unitOfMeasure"))
    dispersion = as_text(measure.get("dispersionType"))
    measure_denoms = denominators(measure.get("denoms"))
    rows = []
    for klass in measure.get("classes") or []:
        denoms = denominators(klass.get("denoms")) or measure_denoms
        class_title = as_text(klass.get("title"))
        for category in klass.get("categories") or []:
            label = " / ".join(t for t in (class_title, as_text(category.get("title"))) if t)
            for cell in category.get("measurements") or []:
                group_id = cell.get("groupId")
                if group_id not in groups:
                    raise RecordError(
                        f"{outcome_id}: measurement for group {group_id!r} not among the "
                        "measure's groups"
                    )
                raw = as_text(cell.get("value"))
                rows.append(
                    {
                        "outcome_id": outcome_id,
                        "group_title": groups[group_id],
                        "param_type": param_type,
                        "category": label,
                        "value": as_number(raw),
                        "value_text": raw,
                        "dispersion_type": dispersion,
                        "dispersion_value": as_number(cell.get("spread")),
                        "lower_limit": as_number(cell.get("lowerLimit")),
                        "upper_limit": as_number(cell.get("upperLimit")),
                        "unit": unit,
                        "participants": denoms.get(group_id),
                    }
                )
    return rows


def _adverse_events(nct: str, module: dict[str, Any]) -> list[dict[str, Any]]:
    """Serious and other adverse events: participants affected per group and term."""
    groups = {
        g.get("id"): as_text(g.get("title")) or g.get("id") for g in module.get("eventGroups") or []
    }
    rows = []
    for kind, key in (("serious", "seriousEvents"), ("other", "otherEvents")):
        events = module.get(key) or []
        terms = [as_text(e.get("term")) or "" for e in events]
        for event, term in zip(events, terms, strict=True):
            label = f"{kind}: {term}"
            if terms.count(term) > 1 and as_text(event.get("organSystem")):
                label = f"{label} ({event['organSystem'].strip()})"  # same term, two systems
            for stat in event.get("stats") or []:
                if stat.get("groupId") not in groups:
                    raise RecordError(
                        f"{nct}: adverse event {term!r} for unknown group {stat.get('groupId')!r}"
                    )
                affected = stat.get("numAffected")
                rows.append(
                    {
                        "outcome_id": f"{nct}:AE1",
                        "group_title": groups[stat.get("groupId")],
                        "param_type": "COUNT_OF_PARTICIPANTS",
                        "category": label,
                        "value": as_number(affected),
                        "value_text": None if affected is None else str(affected),
                        "dispersion_type": None,
                        "dispersion_value": None,
                        "lower_limit": None,
                        "upper_limit": None,
                        "unit": None,
                        "participants": _count(nct, "numAtRisk", stat.get("numAtRisk")),
                    }
                )
    return rows


def _references(
    nct: str, references: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(study_publications row, publication stub) for each reference with a PMID."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for ref in references:
        pmid = as_text(ref.get("pmid"))
        if pmid is None or not pmid.isdigit():
            continue
        kind = ref.get("type")
        if kind not in _LINK_TYPE:
            raise RecordError(f"{nct}: reference PMID {pmid} has unknown type {kind!r}")
        publication_id = f"PMID:{pmid}"
        out.setdefault(
            publication_id,
            (
                {
                    "study_id": nct,
                    "publication_id": publication_id,
                    "link_type": _LINK_TYPE[kind],
                    "link_source": "registry_reference",
                },
                {"publication_id": publication_id, "pmid": pmid},
            ),
        )
    return list(out.values())


# --- small value helpers ----------------------------------------------------------------------


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _count(nct: str, field: str, value: Any) -> int | None:
    if value is None:
        return None
    number = as_number(value)
    if number is None or not number.is_integer() or number < 0:
        raise RecordError(f"{nct}: {field} is not a count: {value!r}")
    return int(number)


def _required(where: str, field: str, value: Any) -> str:
    text = as_text(value)
    if text is None:
        raise RecordError(f"{where}: {field} is missing")
    return text


def _date(nct: str, status: dict[str, Any], struct: str) -> tuple[date | None, str | None]:
    value = dig(status, struct, "date")
    try:
        if value is not None and not isinstance(value, str):
            raise ValueError(f"not a date string: {value!r}")
        return parse_partial_date(value)
    except ValueError as exc:
        raise RecordError(f"{nct}: statusModule.{struct}.date: {exc}") from exc


# --- live client ------------------------------------------------------------------------------

BASE_URL = "https://clinicaltrials.gov"
MIN_INTERVAL = 1.2
"""Seconds between request starts: about 50 a minute, the API's politeness limit."""
PAGE_SIZE = 1000
STUDIES_PATH = "/api/v2/studies"
VERSION_PATH = "/api/v2/version"
PROXY_REFUSAL = frozenset({403})
"""A 403 from ClinicalTrials.gov comes from the filtering proxy in front of the API (an HTML
"Access Denied" page, not an API answer: the API itself answers 400 or 404), which lifts such
blocks after a pause; so it is retried with back-off like a 429, within the bounded tries,
instead of ending the source on the first one (issue 13)."""
_NCT_PATH = f"{_ITEM}.protocolSection.identificationModule.nctId"


@dataclass(frozen=True)
class FetchSummary:
    """What a live fetch saw: the unique NCT ids across all queries, and what it took."""

    queries: int
    pages: int
    requests: int
    studies_seen: int
    nct_ids: tuple[str, ...]

    @property
    def unique(self) -> int:
        """Studies left once the same study found by several queries is counted once."""
        return len(self.nct_ids)


def iter_pages(http: PageClient, query: str) -> Iterator[bytes]:
    """Yield raw /api/v2/studies pages for one query until nextPageToken runs out.

    Each page is recorded by `http` as `<slug(query)>-pNNNN.json`, a file `iter_records` reads.
    """
    for page in _scanned_pages(http, query):
        yield page.body


def fetch_all(http: PageClient, queries: Sequence[str]) -> FetchSummary:
    """Walk every query's pages, counting each study once however many queries find it.

    `requests` counts the page requests this client made; retries happen inside `http`.
    """
    unique: dict[str, None] = {}
    pages = seen = 0
    for query in queries:
        for page in _scanned_pages(http, query):
            pages += 1
            seen += len(page.ids)
            unique.update(dict.fromkeys(page.ids))
    return FetchSummary(len(queries), pages, pages, seen, tuple(unique))


def data_timestamp(body: bytes) -> str:
    """`dataTimestamp` of a `/api/v2/version` answer: when the registry's data last changed.

    Raises:
        ValueError: the body is not JSON or carries no timestamp.
    """
    doc = orjson.loads(body)
    stamp = doc.get("dataTimestamp") if isinstance(doc, dict) else None
    if not isinstance(stamp, str) or not stamp:
        raise ValueError(f"{VERSION_PATH} answered without a dataTimestamp")
    return stamp


def fetch_version(http: PageClient) -> str:
    """The data timestamp of the registry's current release (not recorded: not a studies file)."""
    body = http.get_json(VERSION_PATH, None, record_as=None)
    stamp = body.get("dataTimestamp") if isinstance(body, dict) else None
    if not isinstance(stamp, str) or not stamp:
        raise PagingError(f"{VERSION_PATH} answered without a dataTimestamp")
    return stamp


@dataclass(frozen=True)
class ScannedPage:
    """One studies page as the pager saw it, without building a study object."""

    body: bytes
    ids: list[str]
    next_token: str | None
    total: int | None
    """`totalCount`: sent on the first page only, which asks `countTotal=true`."""


def _scanned_pages(http: PageClient, query: str) -> Iterator[ScannedPage]:
    """Every page of one query, following nextPageToken, through empty pages too.

    The first page asks `countTotal=true`, the documented way to get the hit count
    (https://clinicaltrials.gov/data-api/api); later pages do not repeat it. A token already
    followed is an error naming the source and the page's URL: following it again would loop
    forever.
    """
    token: str | None = None
    followed: set[str] = set()
    for number in itertools.count(1):
        params: dict[str, Any] = {"query.term": query, "pageSize": PAGE_SIZE}
        if token:
            params["pageToken"] = token
        else:
            params["countTotal"] = "true"
        body = http.get_bytes(STUDIES_PATH, params, record_as=f"{slug(query)}-p{number:04d}.json")
        page = _scan_page(body, query, number)
        yield page
        if not page.next_token:
            return
        if page.next_token in followed:
            url = page_url(http.base_url, STUDIES_PATH, params)
            raise PagingError(
                f"{SOURCE}: query {query!r} page {number} ({url}): nextPageToken repeats "
                f"{page.next_token!r}, a page already fetched"
            )
        followed.add(page.next_token)
        token = page.next_token


def _scan_page(body: bytes, query: str, number: int) -> ScannedPage:
    """NCT ids, nextPageToken and totalCount of one page, streamed: no study object is built."""
    ids: list[str] = []
    token = None
    total = None
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(body)):
            if prefix == _NCT_PATH and event == "string":
                ids.append(value)
            elif prefix == "nextPageToken" and event == "string":
                token = value
            elif prefix == "totalCount" and event == "number":
                total = int(value)
    except ijson.JSONError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PagingError(f"query {query!r} page {number} is not JSON: {problem}") from exc
    return ScannedPage(body, ids, token, total)


def nct_aliases(study: Any) -> list[str]:
    """Old NCT ids a study was registered under (`identificationModule.nctIdAliases`): a
    refresh that records the study supersedes the records of those ids."""
    ident = dig(study, "protocolSection", "identificationModule")
    aliases = ident.get("nctIdAliases") if isinstance(ident, dict) else None
    return [a for a in aliases if isinstance(a, str)] if isinstance(aliases, list) else []


def fetch(run: LiveRun) -> dict[str, int]:
    """Every query's study pages (the pager names pages by query slug), studies per query.

    A query whose studies recorded differ from the first page's `totalCount` gets a
    completeness warning.
    """
    fixed = {STUDIES_PATH: {"pageSize": run.page_size}} if run.page_size else None
    client = run.client("", fixed)
    hits: dict[str, int] = {}
    for query in run.work:
        total: int | None = None
        hits[query] = 0
        for number, page in enumerate(_scanned_pages(client, query)):
            total = page.total if number == 0 else total
            hits[query] += count_items(orjson.loads(page.body), "studies")
        warning = count_mismatch(query, total, hits[query], "totalCount")
        if warning is not None:
            run.warn(warning)
        run.advance(1)
    return hits


def changed_since(query: str, since: date, until: date) -> tuple[str, dict[str, dict[str, str]]]:
    """API v2 `filter.advanced=AREA[LastUpdatePostDate]RANGE[since,MAX]`."""
    advanced = f"AREA[LastUpdatePostDate]RANGE[{since.isoformat()},MAX]"
    return query, {STUDIES_PATH: {"filter.advanced": advanced}}


# --- served by the emulator -------------------------------------------------------------------

_RANGE = re.compile(r"^AREA\[(\w+)\]RANGE\[([\w-]+),\s*([\w-]+)\]$")
_DATE_FIELDS = {
    "LastUpdatePostDate": "lastUpdatePostDateStruct",
    "StudyFirstPostDate": "studyFirstPostDateStruct",
    "ResultsFirstPostDate": "resultsFirstPostDateStruct",
    "StartDate": "startDateStruct",
}


def study_filter(expression: str | None) -> Callable[[dict[str, Any]], bool]:
    """A `filter.advanced` date range (`AREA[LastUpdatePostDate]RANGE[a,b]`) as a predicate.

    Bounds are ISO dates or MIN / MAX; other Essie expressions are refused with a ValueError.
    """
    if not expression:
        return lambda study: True
    match = _RANGE.match(expression.strip())
    if match is None or match.group(1) not in _DATE_FIELDS:
        raise ValueError(f"unsupported filter.advanced {expression!r}")
    struct, low, high = _DATE_FIELDS[match.group(1)], match.group(2), match.group(3)

    def keep(study: dict[str, Any]) -> bool:
        status = study.get("protocolSection", {}).get("statusModule", {})
        return serving.within(str(status.get(struct, {}).get("date") or ""), low, high)

    return keep


def _served_studies(doc: Any) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    return list(doc["studies"]) if "studies" in doc else [doc]


def answer(studies: list[serving.Doc], request: serving.Request) -> serving.Reply:
    """GET /api/v2/studies (query.term, pageToken paging, countTotal) and /api/v2/version.

    `query.term` is searched over every text of a study as an Essie expression: words side by
    side form an AND expression, quoted words a phrase, OR binds loosest
    (https://classic.clinicaltrials.gov/api/gui/ref/syntax); `totalCount`
    comes only with `countTotal=true` (https://clinicaltrials.gov/data-api/api). A query or
    filter the emulator cannot read is a 400 with a plain-text reason, as the API answers.
    """
    params = request.params
    if request.path == VERSION_PATH:
        stamp = f"{request.captured_at}T00:00:00"
        return serving.json_reply({"apiVersion": "2.0.0-emulator", "dataTimestamp": stamp})
    if request.path != STUDIES_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    size = serving.int_param(params, "pageSize", 10) or 10
    try:
        keep = study_filter(params.get("filter.advanced"))
        found = serving.search(studies, params.get("query.term", ""), request.topics)
    except ValueError as exc:
        return serving.Reply(400, str(exc).encode(), "text/plain")
    kept = [doc.record for doc in found if keep(doc.record)]
    items, nxt = serving.page(kept, serving.offset(params.get("pageToken")), size)
    doc: dict[str, Any] = {"studies": items}
    if nxt is not None:
        doc["nextPageToken"] = serving.token(nxt)
    if params.get("countTotal") == "true":
        doc["totalCount"] = len(kept)
    return serving.json_reply(doc)


# --- set-wise staging ------------------------------------------------------------------------


def _results_setup(con: duckdb.DuckDBPyConnection) -> None:
    """The results side's functions (Python per distinct value) and macros."""
    clinicaltrials_results_sql.register(con)
    for statement in clinicaltrials_results_sql.setup_sql():
        con.execute(statement)


SETWISE = SetwiseStaging(
    docs=clinicaltrials_sql.DOCS,
    key_sql=clinicaltrials_sql.KEY_SQL,
    id_sql=clinicaltrials_sql.ID_SQL,
    id_problem=id_problem,
    parts=(
        clinicaltrials_sql.protocol_side(secondary_id_type),
        SqlSide(
            clinicaltrials_results_sql.RESULTS_STRUCTURE,
            clinicaltrials_results_sql.problems_sql,
            clinicaltrials_results_sql.tables_sql,
            prepare=clinicaltrials_results_sql.screen,
            setup=_results_setup,
            screen=clinicaltrials_results_sql.SUSPECTS,
        ),
    ),
    page_list="studies",
    page_keys=_PAGE_KEYS,
    record_keys=_STUDY_KEYS,
    extra_columns={
        "interventions": {"description": "VARCHAR"},
        STUB_TABLE: {"pmid": "VARCHAR", "publication_id": "VARCHAR"},
    },
)
"""How staging reads studies: set-wise in DuckDB, a page or 1 000 archive members at a time."""


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".json",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_study,
    primary_table="studies",
    tables=TABLES,
    replaces=nct_aliases,
    bulk=BulkExport(".zip", ".json", read_member, member_key),
    setwise=SETWISE,
    live=LiveSource(
        base_url=BASE_URL,
        fetch=fetch,
        emulator_path="/clinicaltrials",
        min_interval=lambda creds: MIN_INTERVAL,
        retry_statuses=PROXY_REFUSAL,
        changed_since=changed_since,
        version=VersionFeed(VERSION_PATH, data_timestamp),
    ),
    emulation=serving.Emulation(serving.json_docs(_served_studies), answer),
)
"""ClinicalTrials.gov API v2 studies, as every layer of the pipeline sees them."""

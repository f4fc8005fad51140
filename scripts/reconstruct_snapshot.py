"""Rebuild the bundled snapshot `data/snapshot/` from the public facts in `shared/facts/`.

The bundled snapshot was not captured live: every file here is derived from the facts CSVs
(identifiers, titles, dates, numbers, categories), never from prose and never from a guess.
An empty fact stays absent. Each source has its own writer (`write_clinicaltrials`,
`write_registries`, ...); a new source adds one writer to `WRITERS`.

Usage: python scripts/reconstruct_snapshot.py [--facts DIR] [--out DATA_DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipelines.sources import registries

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FACTS = REPO_ROOT.parent / "shared" / "facts"
DEFAULT_OUT = REPO_ROOT / "data"

SNAPSHOT_INFO: dict[str, str] = {
    "captured_at": "2026-11-25",
    "topic": "kratom",
    "method": "reconstructed",
    "notes": (
        "Rebuilt offline from the public facts tables in shared/facts (identifiers, titles, "
        "dates, categories only) by scripts/reconstruct_snapshot.py (clinicaltrials, "
        "registries, this file), scripts/snapshot_literature.py (pubmed, europepmc, crossref) "
        "and scripts/snapshot_compounds.py (pubchem); nothing here was captured live from a "
        "source API."
    ),
}

CTGOV = "ClinicalTrials.gov"
TIME_FRAMES_FILE = REPO_ROOT / "data" / "reference" / "registry_time_frames.csv"
"""Outcome time frames the facts state for a registration (most state none)."""

# ClinicalTrials.gov display labels of intervention types -> API v2 `InterventionType` values.
# A label outside this list (e.g. "Dietary Supplement/Other", two types at once) gets no type.
INTERVENTION_TYPES: dict[str, str] = {
    "Behavioral": "BEHAVIORAL",
    "Biological": "BIOLOGICAL",
    "Combination Product": "COMBINATION_PRODUCT",
    "Device": "DEVICE",
    "Diagnostic Test": "DIAGNOSTIC_TEST",
    "Dietary Supplement": "DIETARY_SUPPLEMENT",
    "Drug": "DRUG",
    "Genetic": "GENETIC",
    "Other": "OTHER",
    "Procedure": "PROCEDURE",
    "Radiation": "RADIATION",
}

# ClinicalTrials.gov display labels of secondary id types, as written in parentheses after an
# id in the facts ("R00DA055571 (U.S. NIH Grant/Contract)") -> API v2 id `type` values.
SECONDARY_ID_TYPES: dict[str, str] = {"U.S. NIH Grant/Contract": "NIH"}

# An NIH grant number (activity code, institute, serial: U54AT008909, R00DA055571) is what
# ClinicalTrials.gov types "NIH" (U.S. NIH Grant/Contract) even when the facts omit the label.
NIH_GRANT = re.compile(r"^[A-Z]\d{2}[A-Z]{2}\d{6}$")

# A parenthesised value that is not a type label is another identifier of the study
# ("75F40121C00199 (FDU-P4-117)"): it becomes a secondary id of type OTHER, the v2 type for
# sponsor-assigned identifiers.
ALIAS_ID_TYPE = "OTHER"

ID_WITH_NOTE = re.compile(r"^(?P<id>[^()]+?)\s*\((?P<note>[^()]+)\)$")
MASKING = re.compile(r"^(?P<masking>[A-Z_]+)(?:\s*\((?P<who>[^()]*)\))?$")


@dataclass(frozen=True)
class Registry:
    """A registry without an open API: its name, study id prefix and schemas/vocab.py id type."""

    name: str
    prefix: str
    id_type: str


# Facts `registry` cell (its start) -> registry. The Dutch register's NL-OMON id string was not
# seen, so its study id is `omon:<local id>` rather than a made-up NL-OMON number; its trial
# number is typed nl_omon with the value as seen (52572). withpower.com is a listing site, not a
# registry: its listing number is another id of the study, `secondary` (id_domain says whose).
REGISTRIES: dict[str, Registry] = {
    "Onderzoek met Mensen": Registry("onderzoekmetmensen.nl", "omon", "nl_omon"),
    "withpower.com listing": Registry("withpower.com", "withpower", "secondary"),
}

UNCONFIRMED_MATCH = re.compile(r"\bpossibly (NCT\d{8}) \(unconfirmed\)", re.IGNORECASE)
"""How the facts' notes name a registration a listing may be without confirming it."""

REGISTRY_COLUMNS = registries.COLUMNS
"""The registries CSV header is the parser's: one definition, read by both."""

# Registry CSV column <- facts column, for the columns copied as given.
REGISTRY_FROM_FACTS: dict[str, str] = {
    "title": "brief_title",
    "official_title": "official_title",
    "study_type": "study_type",
    "phases": "phase",
    "overall_status": "overall_status",
    "enrollment": "enrollment",
    "enrollment_type": "enrollment_type",
    "start_date": "start_date",
    "completion_date": "completion_date",
    "lead_sponsor": "sponsor",
    "sponsor_class": "sponsor_class",
    "conditions": "conditions",
    "interventions": "interventions",
    "allocation": "allocation",
    "masking": "masking",
    "primary_outcomes": "primary_outcomes",
    "secondary_outcomes": "secondary_outcomes",
    "countries": "countries",
    "source_url": "source_url",
}
REGISTRY_MULTI = (
    "phases",
    "conditions",
    "interventions",
    "primary_outcomes",
    "secondary_outcomes",
    "countries",
)

# Facts columns the registry CSV has no place for. A registry row that fills one is an error,
# so no fact is dropped silently when the facts grow. (`linked_pmids` goes to the links file;
# `notes` is prose and is never copied.)
REGISTRY_UNCARRIED = (
    "other_ids",
    "primary_completion_date",
    "first_posted",
    "last_update_posted",
    "primary_purpose",
    "has_results",
)

CURATED_LINK_SOURCE = "curated_inference"
"""Every link of the curated links file: stated by the facts, not by a registry or PubMed."""

LINK_COLUMNS: tuple[str, ...] = (
    "study_id",
    "pmid",
    "link_type",
    "link_source",
    "basis",
    "source_url",
)


@dataclass(frozen=True)
class Facts:
    """The facts tables, one dict per CSV row, cells stripped."""

    studies: list[dict[str, str]]
    publications: list[dict[str, str]]
    compounds: list[dict[str, str]]


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Read a facts CSV; cells are stripped so a blank cell is always ''."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def load_facts(facts_dir: Path) -> Facts:
    """Load the three facts tables."""
    return Facts(
        studies=read_csv_rows(facts_dir / "registered_studies.csv"),
        publications=read_csv_rows(facts_dir / "publications.csv"),
        compounds=read_csv_rows(facts_dir / "compounds.csv"),
    )


def split_multi(cell: str) -> list[str]:
    """Split a ';'-separated facts cell into its non-blank values."""
    return [part.strip() for part in cell.split(";") if part.strip()]


def json_text(value: Any) -> str:
    """Deterministic JSON: sorted keys, indent 2, UTF-8 text, trailing newline."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def csv_text(columns: Iterable[str], rows: Iterable[Mapping[str, str]]) -> str:
    """Deterministic CSV text with '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text with '\\n' line ends, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def is_ctgov(row: Mapping[str, str]) -> bool:
    """Whether a facts study row is a ClinicalTrials.gov registration."""
    return row["registry"] == CTGOV


def registry_of(row: Mapping[str, str]) -> Registry:
    """The non-API registry a facts study row belongs to."""
    for label, registry in REGISTRIES.items():
        if row["registry"].startswith(label):
            return registry
    raise ValueError(f"facts row {row['registry_id']!r}: unknown registry {row['registry']!r}")


def local_id(row: Mapping[str, str], registry: Registry) -> str:
    """The registry's own id of a row ('withpower:71101' and '71101' both give '71101')."""
    return row["registry_id"].removeprefix(f"{registry.prefix}:")


def study_id_of(row: Mapping[str, str]) -> str:
    """Study id in the snapshot: the NCT id, or `<prefix>:<local id>` for other registries."""
    if is_ctgov(row):
        return row["registry_id"]
    registry = registry_of(row)
    return f"{registry.prefix}:{local_id(row, registry)}"


# --- ClinicalTrials.gov: API v2 single-study bodies -------------------------------------------


def parse_other_id(text: str) -> list[dict[str, str]]:
    """One facts id -> v2 id infos: a type label in parentheses types it, any other value there
    is a second id (type OTHER); an NIH grant number is typed NIH."""
    match = ID_WITH_NOTE.match(text)
    if match is None:
        return [id_info(text)]
    ident, note = match["id"], match["note"].strip()
    if note in SECONDARY_ID_TYPES:
        return [{"id": ident, "type": SECONDARY_ID_TYPES[note]}]
    return [id_info(ident), {"id": note, "type": ALIAS_ID_TYPE}]


def id_info(ident: str) -> dict[str, str]:
    """A bare id as a v2 id info; typed only when it is an NIH grant number."""
    return {"id": ident, "type": "NIH"} if NIH_GRANT.match(ident) else {"id": ident}


def identification_module(row: Mapping[str, str]) -> dict[str, Any]:
    """nctId, titles and ids; the first facts id is the org study id, the rest secondary."""
    module: dict[str, Any] = {"nctId": row["registry_id"]}
    infos = [info for part in split_multi(row["other_ids"]) for info in parse_other_id(part)]
    if infos:
        module["orgStudyIdInfo"] = infos[0]
    if infos[1:]:
        module["secondaryIdInfos"] = infos[1:]
    if row["brief_title"]:
        module["briefTitle"] = row["brief_title"]
    if row["official_title"]:
        module["officialTitle"] = row["official_title"]
    return module


DATE_STRUCTS: dict[str, str] = {
    "startDateStruct": "start_date",
    "primaryCompletionDateStruct": "primary_completion_date",
    "completionDateStruct": "completion_date",
    "studyFirstPostDateStruct": "first_posted",
    "lastUpdatePostDateStruct": "last_update_posted",
}


def status_module(row: Mapping[str, str]) -> dict[str, Any]:
    """Status and dates; dates keep their precision ("2028-02") and carry no ACTUAL/ESTIMATED."""
    module: dict[str, Any] = {}
    if row["overall_status"]:
        module["overallStatus"] = row["overall_status"]
    for key, column in DATE_STRUCTS.items():
        if row[column]:
            module[key] = {"date": row[column]}
    return module


def sponsor_module(row: Mapping[str, str]) -> dict[str, Any]:
    """Lead sponsor name and class, when given."""
    if not row["sponsor"]:
        return {}
    sponsor = {"name": row["sponsor"]}
    if row["sponsor_class"]:
        sponsor["class"] = row["sponsor_class"]
    return {"leadSponsor": sponsor}


def conditions_module(row: Mapping[str, str]) -> dict[str, Any]:
    """Conditions as listed."""
    conditions = split_multi(row["conditions"])
    return {"conditions": conditions} if conditions else {}


def parse_masking(text: str) -> dict[str, Any]:
    """'QUADRUPLE (Participant, Care Provider)' -> {masking, whoMasked: [PARTICIPANT, ...]}."""
    match = MASKING.match(text)
    if match is None:
        raise ValueError(f"masking not understood: {text!r}")
    info: dict[str, Any] = {"masking": match["masking"]}
    who = [w.strip().upper().replace(" ", "_") for w in (match["who"] or "").split(",")]
    if any(who):
        info["whoMasked"] = [w for w in who if w]
    return info


def design_module(row: Mapping[str, str]) -> dict[str, Any]:
    """Study type, phases, allocation/purpose/masking and enrollment, as given."""
    module: dict[str, Any] = {}
    if row["study_type"]:
        module["studyType"] = row["study_type"]
    phases = split_multi(row["phase"])
    if phases:
        module["phases"] = phases
    design: dict[str, Any] = {}
    if row["allocation"]:
        design["allocation"] = row["allocation"]
    if row["primary_purpose"]:
        design["primaryPurpose"] = row["primary_purpose"]
    if row["masking"]:
        design["maskingInfo"] = parse_masking(row["masking"])
    if design:
        module["designInfo"] = design
    if row["enrollment"]:
        enrollment: dict[str, Any] = {"count": int(row["enrollment"])}
        if row["enrollment_type"]:
            enrollment["type"] = row["enrollment_type"]
        module["enrollmentInfo"] = enrollment
    return module


def parse_intervention(text: str) -> dict[str, str]:
    """'Drug: Kratom' -> {type: DRUG, name: Kratom}; an unknown or absent label gives no type.

    An unknown label ("Dietary Supplement/Other") is dropped from the name: it is a type, not
    part of the intervention's name, and v2 has no field for a type that is not one value.
    """
    label, sep, name = text.partition(":")
    if not sep:
        return {"name": text.strip()}
    label = label.strip()
    if label in INTERVENTION_TYPES:
        return {"type": INTERVENTION_TYPES[label], "name": name.strip()}
    return {"name": name.strip()}


def interventions_module(row: Mapping[str, str]) -> dict[str, Any]:
    """Interventions by type and name (no arms: arm labels are not in the facts)."""
    interventions = [parse_intervention(part) for part in split_multi(row["interventions"])]
    return {"interventions": interventions} if interventions else {}


@cache
def time_frames() -> dict[tuple[str, str], str]:
    """(registry id, outcome measure) -> time frame, as data/reference/registry_time_frames.csv
    gives the few the facts state (each row says where in the facts and on which page)."""
    rows = read_csv_rows(TIME_FRAMES_FILE)
    return {(r["registry_id"], r["measure"]): r["time_frame"] for r in rows}


def outcome_info(registry_id: str, title: str) -> dict[str, str]:
    """A v2 outcome: its measure, and its time frame where the facts state one."""
    frame = time_frames().get((registry_id, title))
    return {"measure": title, "timeFrame": frame} if frame else {"measure": title}


def outcomes_module(row: Mapping[str, str]) -> dict[str, Any]:
    """Primary and secondary outcome titles, with the time frames the facts state."""
    module: dict[str, Any] = {}
    for key, column in (
        ("primaryOutcomes", "primary_outcomes"),
        ("secondaryOutcomes", "secondary_outcomes"),
    ):
        titles = split_multi(row[column])
        if titles:
            module[key] = [outcome_info(row["registry_id"], title) for title in titles]
    return module


def locations_module(row: Mapping[str, str]) -> dict[str, Any]:
    """One location per country; facility and city are not in the facts."""
    countries = split_multi(row["countries"])
    return {"locations": [{"country": c} for c in countries]} if countries else {}


def ctgov_study(row: Mapping[str, str]) -> dict[str, Any]:
    """A facts row as a v2 `GET /api/v2/studies/{nctId}` body, with only the modules it fills."""
    modules: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
        "identificationModule": identification_module,
        "statusModule": status_module,
        "sponsorCollaboratorsModule": sponsor_module,
        "conditionsModule": conditions_module,
        "designModule": design_module,
        "armsInterventionsModule": interventions_module,
        "outcomesModule": outcomes_module,
        "contactsLocationsModule": locations_module,
    }
    protocol = {name: body for name, build in modules.items() if (body := build(row))}
    study: dict[str, Any] = {"protocolSection": protocol}
    if row["has_results"]:
        study["hasResults"] = {"true": True, "false": False}[row["has_results"].lower()]
    return study


def write_clinicaltrials(facts: Facts, out: Path) -> list[Path]:
    """One `clinicaltrials/<NCT id>.json` per ClinicalTrials.gov row of the facts."""
    folder = out / "snapshot" / "clinicaltrials"
    return [
        write_text(folder / f"{row['registry_id']}.json", json_text(ctgov_study(row)))
        for row in facts.studies
        if is_ctgov(row)
    ]


# --- Registries without an API: one CSV ------------------------------------------------------


def registry_flags(row: Mapping[str, str]) -> list[str]:
    """`unconfirmed_match:<NCT>` for each registration the notes call a possible, unconfirmed
    match: the row is kept and flagged, never merged (only the NCT id is read from the prose)."""
    return [f"unconfirmed_match:{nct.upper()}" for nct in UNCONFIRMED_MATCH.findall(row["notes"])]


def registry_record(row: Mapping[str, str]) -> dict[str, str]:
    """A non-ClinicalTrials.gov facts row as a `registries.csv` row; blanks stay blank."""
    filled = [column for column in REGISTRY_UNCARRIED if row[column]]
    if filled:
        raise ValueError(f"facts row {row['registry_id']!r}: no registry column for {filled}")
    registry = registry_of(row)
    study_id = study_id_of(row)
    record = {column: row[fact] for column, fact in REGISTRY_FROM_FACTS.items()}
    for column in REGISTRY_MULTI:
        record[column] = ";".join(split_multi(record[column]))
    record.update(
        registry=registry.name,
        registry_id=local_id(row, registry),
        study_id=study_id,
        id_type=registry.id_type,
        flags=";".join(registry_flags(row)),
    )
    return record


def write_registries(facts: Facts, out: Path) -> list[Path]:
    """`registries/registries.csv`: every facts row not from ClinicalTrials.gov, by study id."""
    records = sorted(
        (registry_record(row) for row in facts.studies if not is_ctgov(row)),
        key=lambda record: record["study_id"],
    )
    path = out / "snapshot" / "registries" / "registries.csv"
    return [write_text(path, csv_text(REGISTRY_COLUMNS, records))]


# --- Curated study <-> publication links --------------------------------------------------------


def curated_links(facts: Facts) -> list[dict[str, str]]:
    """Links the facts infer by matching design (`linked_pmids`): inferences, not references."""
    return [
        {
            "study_id": study_id_of(row),
            "pmid": pmid,
            "link_type": "report",
            "link_source": CURATED_LINK_SOURCE,
            "basis": "matched_by_design",
            "source_url": row["source_url"],
        }
        for row in facts.studies
        for pmid in split_multi(row["linked_pmids"])
    ]


def mention_links(facts: Facts) -> list[dict[str, str]]:
    """Links from publications the facts say name a snapshot study's registry id.

    A curator read the id, the pipeline did not find it: link_source curated_inference
    (text_mention is kept for ids the pipeline itself finds in titles and abstracts).
    """
    study_ids = {study_id_of(row) for row in facts.studies}
    return [
        {
            "study_id": study_id,
            "pmid": pub["pmid"],
            "link_type": "report",
            "link_source": CURATED_LINK_SOURCE,
            "basis": "registry_id_in_publication",
            "source_url": pub["source_url"],
        }
        for pub in facts.publications
        if pub["pmid"]
        for study_id in split_multi(pub["registry_ids_mentioned"])
        if study_id in study_ids
    ]


def merge_links(*link_sets: list[dict[str, str]]) -> list[dict[str, str]]:
    """One link per (study, pmid), later sets winning, sorted by study then pmid.

    Pass the study rows' own `linked_pmids` last: the facts state those pairs on the study, so
    their basis and source page are kept when a publication row also names the registry id.
    """
    merged: dict[tuple[str, str], dict[str, str]] = {}
    for links in link_sets:
        for link in links:
            merged[(link["study_id"], link["pmid"])] = link
    return [merged[key] for key in sorted(merged, key=lambda k: (k[0], int(k[1])))]


def write_study_publication_links(facts: Facts, out: Path) -> list[Path]:
    """`reference/study_publication_links.csv`: curated links that no registry record holds."""
    links = merge_links(mention_links(facts), curated_links(facts))
    path = out / "reference" / "study_publication_links.csv"
    return [write_text(path, csv_text(LINK_COLUMNS, links))]


# --- Entry point ------------------------------------------------------------------------------


def write_snapshot_info(facts: Facts, out: Path) -> list[Path]:
    """`snapshot/SNAPSHOT.json`, saying the snapshot was reconstructed."""
    return [write_text(out / "snapshot" / "SNAPSHOT.json", json_text(SNAPSHOT_INFO))]


WRITERS: tuple[Callable[[Facts, Path], list[Path]], ...] = (
    write_snapshot_info,
    write_clinicaltrials,
    write_registries,
    write_study_publication_links,
)
"""Every writer, each owning its own files under the data folder."""


def reconstruct(facts_dir: Path, out: Path) -> list[Path]:
    """Run every writer on the facts; return the files written."""
    facts = load_facts(facts_dir)
    return [path for writer in WRITERS for path in writer(facts, out)]


def main(argv: list[str] | None = None) -> int:
    """Command line: rebuild the snapshot files from the facts folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=Path, default=DEFAULT_FACTS, help="facts folder")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="data folder receiving snapshot/ and reference/ (default: data/)",
    )
    args = parser.parse_args(argv)
    if not args.facts.is_dir():
        parser.error(f"facts folder not found: {args.facts}")
    written = reconstruct(args.facts, args.out)
    print(f"wrote {len(written)} files under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

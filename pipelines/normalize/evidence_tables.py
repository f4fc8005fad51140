"""The three curated evidence tables, from the facts copied into data/reference/.

`product_composition.csv`, `interaction_effects.csv` and `safety_signals.csv` are
../shared/facts files with a leading row id; every row keeps its page (`source_url`) and the words
it was read from (`quote`). This module types them: compounds are matched with the registry-text
vocabulary (`pipelines.normalize.compounds`), wording is mapped to closed vocabularies by
`evidence_vocabulary.csv`, units by `evidence_units.csv`, and the strength of each page and the
facts README's warnings by `evidence_sources.csv`. A row that cannot be typed comes back as a
`Reject` with its reason, never dropped. Pure: no I/O beyond reading the reference files.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.normalize.compounds import KRATOM_ROLES, CompoundLexicon, load_compound_lexicon
from pipelines.normalize.dates import parse_partial_date
from pipelines.normalize.dedup import normalize_doi, normalize_pmid
from pipelines.normalize.lexicon import read_reference_csv, split_terms

COMPOSITION_FILE = "product_composition.csv"
INTERACTIONS_FILE = "interaction_effects.csv"
SAFETY_FILE = "safety_signals.csv"
VOCABULARY_FILE = "evidence_vocabulary.csv"
UNITS_FILE = "evidence_units.csv"
SOURCES_FILE = "evidence_sources.csv"
DEFAULT_SAFETY_COMPOUND = "kratom"
"""safety_signals.csv holds kratom safety figures: a row naming no compound is about kratom."""

OPEN_END = "to date"
"""A period note meaning the count ran up to its report, so the period's end is unknown."""

Row = dict[str, Any]
_NUMBER = re.compile(r"^\s*([<>]?)\s*(\d+(?:\.\d+)?)\s*$")
_LEADING_INT = re.compile(r"^\s*(\d[\d,]*)")
_CI_LEVEL = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*CI")
_DISPERSION_NOTE = re.compile(r"\s*\([^()]*(?:±|\bmean\b)[^()]*\)")


class Rejected(ValueError):
    """A facts row that cannot be typed; the message is the quarantine reason."""


@dataclass(frozen=True)
class Reject:
    """A row of a reference file that did not make it into its table, and why."""

    record_key: str
    reason: str
    raw: Row


@dataclass(frozen=True)
class Built:
    """Typed rows of one evidence table and the rows refused, in file order."""

    rows: list[Row]
    rejects: list[Reject]


@dataclass(frozen=True)
class Unit:
    """A printed unit's normalised form and its factors to mg/g and µM (None: not convertible)."""

    unit: str
    dimension: str
    to_mg_per_g: float | None
    to_um: float | None


@dataclass(frozen=True)
class SourceRule:
    """How strong a page is and what to warn about, for the rows of `table` read on it."""

    table: str
    source_url: str
    where: tuple[tuple[str, str], ...]
    source_kind: str | None
    caveat: str | None

    def applies(self, table: str, raw: Mapping[str, str]) -> bool:
        """True for a row of `table` read on this page that meets every `where` condition."""
        return (
            table == self.table
            and raw.get("source_url") == self.source_url
            and all(raw.get(column) == value for column, value in self.where)
        )


@dataclass(frozen=True)
class EvidenceVocabulary:
    """Everything that turns a facts row into a typed row."""

    compounds: CompoundLexicon
    terms: dict[str, dict[str, str]]
    units: dict[str, Unit]
    sources: tuple[SourceRule, ...]

    def term(self, kind: str, printed: str) -> str:
        """The vocabulary value of a printed wording; Rejected when the CSV does not list it."""
        value = self.terms.get(kind, {}).get(_fold(printed))
        if value is None:
            raise Rejected(f"{kind} {printed!r} is not mapped in data/reference/{VOCABULARY_FILE}")
        return value

    def unit(self, printed: str) -> Unit | None:
        """The normalised unit of a printed one (None for a blank unit); Rejected if unknown."""
        if not printed:
            return None
        head = unit_head(printed)
        found = self.units.get(head)
        if found is None:
            raise Rejected(f"unit {head!r} is not mapped in data/reference/{UNITS_FILE}")
        return found

    def source(self, table: str, raw: Mapping[str, str]) -> tuple[str, list[str]]:
        """(source_kind, caveats) of a row.

        Rules with a kind compete: the most specific (most `where` conditions) gives the kind
        and its caveat. Rules without a kind add their caveat to every row they apply to.
        """
        rules = [r for r in self.sources if r.applies(table, raw)]
        kinds = sorted((r for r in rules if r.source_kind), key=lambda r: -len(r.where))
        if not kinds:
            raise Rejected(
                f"source_url {raw.get('source_url')!r} has no source_kind in "
                f"data/reference/{SOURCES_FILE}"
            )
        extra = [r.caveat for r in rules if r.caveat and not r.source_kind]
        return str(kinds[0].source_kind), [c for c in (kinds[0].caveat, *extra) if c]

    def compound(self, printed: str, what: str) -> str | None:
        """The one compound a name (before any parenthesis) names; None when it names none.

        Rejected when it names more than one: a pair is not one analyte or one drug.
        """
        found = self.compounds.match(name_head(printed))
        if len(found) > 1:
            raise Rejected(f"{what} {printed!r} names more than one compound: {found}")
        return found[0] if found else None


def _fold(text: str) -> str:
    """Printed wording compared exactly, but for Unicode forms (µ/μ) and runs of spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def unit_head(printed: str) -> str:
    """A printed unit without its dispersion note and assay context.

    "μM (± 5.95), rat liver microsomes" -> "μM"; "mg per g dried leaf powder (mean ± SD)" ->
    "mg per g dried leaf powder"; a parenthesis that changes the meaning stays ("% (of product
    alkaloid content, as stated)").
    """
    text = _DISPERSION_NOTE.sub("", printed)
    depth = 0
    for index, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            text = text[:index]
            break
    return _fold(text)


def name_head(printed: str) -> str:
    """A printed name before any parenthesis: "kratom tea (leaf powder K51)" -> "kratom tea"."""
    return printed.split("(", 1)[0].strip()


def load_vocabulary(reference_dir: Path) -> EvidenceVocabulary:
    """Read the compound lexicon and the three evidence mapping files."""
    terms: dict[str, dict[str, str]] = {}
    for raw in read_reference_csv(reference_dir / VOCABULARY_FILE):
        terms.setdefault(raw["field"], {})[_fold(raw["printed"])] = raw["value"]
    units = {
        _fold(raw["printed"]): Unit(
            raw["unit"],
            raw["dimension"],
            float(raw["to_mg_per_g"]) if raw["to_mg_per_g"] else None,
            float(raw["to_um"]) if raw["to_um"] else None,
        )
        for raw in read_reference_csv(reference_dir / UNITS_FILE)
    }
    sources = tuple(
        SourceRule(
            raw["table"],
            raw["source_url"],
            tuple(
                (column.strip(), value.strip())
                for column, _, value in (c.partition("=") for c in split_terms(raw["where"]))
            ),
            raw["source_kind"] or None,
            raw["caveat"] or None,
        )
        for raw in read_reference_csv(reference_dir / SOURCES_FILE)
    )
    return EvidenceVocabulary(load_compound_lexicon(reference_dir), terms, units, sources)


def publication_forms(raw: Mapping[str, str]) -> list[str]:
    """The identifier forms a facts row gives its paper: PMID:<n> first, then DOI:<doi>."""
    pmid = normalize_pmid(raw.get("study_pmid") or None)
    doi = normalize_doi(raw.get("study_doi") or None)
    return [form for form in (f"PMID:{pmid}" if pmid else "", f"DOI:{doi}" if doi else "") if form]


def resolve_publication(raw: Mapping[str, str], id_map: Mapping[str, str]) -> str | None:
    """The publication_id of a row's paper: the work any form maps to, else its first form."""
    forms = publication_forms(raw)
    for form in forms:
        if form in id_map:
            return id_map[form]
    return forms[0] if forms else None


def _number(cell: str, what: str) -> float | None:
    if not cell.strip():
        return None
    match = _NUMBER.match(cell)
    if match is None or match.group(1):
        raise Rejected(f"{what} {cell!r} is not a number")
    return float(match.group(2))


def _bounded(cell: str, what: str) -> tuple[str | None, float | None]:
    """('<' / '>' / '=', number) of a cell such as '<0.124' or '>45'; (None, None) when blank."""
    if not cell.strip():
        return None, None
    match = _NUMBER.match(cell)
    if match is None:
        raise Rejected(f"{what} {cell!r} is not a number")
    return match.group(1) or "=", float(match.group(2))


def _leading_int(cell: str) -> int | None:
    match = _LEADING_INT.match(cell)
    return int(match.group(1).replace(",", "")) if match else None


def _int(cell: str, what: str) -> int | None:
    if not cell.strip():
        return None
    if not cell.strip().isdigit():
        raise Rejected(f"{what} {cell!r} is not a whole number")
    return int(cell)


def _text(cell: str) -> str | None:
    return cell.strip() or None


def _scaled(value: float | None, factor: float | None) -> float | None:
    return None if value is None or factor is None else round(value * factor, 10)


def _detection(vocabulary: EvidenceVocabulary, printed: str) -> bool | None:
    """True / False for a printed detection result ('not detected', 'detected in 14 of 15')."""
    terms = vocabulary.terms.get("detection", {})
    folded = _fold(printed).lower()
    for term in sorted(terms, key=len, reverse=True):
        if folded.startswith(term.lower()):
            return terms[term] == "true"
    raise Rejected(f"value {printed!r} is neither a number nor a detection result")


def _provenance(table: str, raw: Mapping[str, str], vocabulary: EvidenceVocabulary) -> Row:
    kind, caveats = vocabulary.source(table, raw)
    return {
        "study_first_author": _text(raw["study_first_author"]),
        "study_year": _int(raw["study_year"], "study_year"),
        "source_kind": kind,
        "caveats": caveats,
        "source_url": _text(raw["source_url"]),
        "quote": _text(raw["quote"]),
    }


def composition_row(
    raw: Mapping[str, str], vocabulary: EvidenceVocabulary, id_map: Mapping[str, str]
) -> Row:
    """One product_composition row (schemas.evidence_tables.ProductComposition)."""
    compound = vocabulary.compound(raw["analyte"], "analyte")
    if compound is None:
        raise Rejected(
            f"analyte {raw['analyte']!r} names no single compound of data/reference/compounds.csv"
        )
    relation, value, detected = None, None, None
    if _NUMBER.match(raw["value"]):
        relation, value = _bounded(raw["value"], "value")
    elif raw["value"].strip():
        detected = _detection(vocabulary, raw["value"])
    low = _number(raw["value_low"], "value_low")
    high = _number(raw["value_high"], "value_high")
    unit = vocabulary.unit(raw["unit"])
    factor = unit.to_mg_per_g if unit else None
    return {
        "composition_id": raw["composition_id"],
        "compound_id": compound,
        "analyte": raw["analyte"],
        "publication_id": resolve_publication(raw, id_map),
        "material": raw["material"],
        "material_class": vocabulary.term("material_class", raw["material"]),
        "product_label": _text(raw["product_label"]),
        "sample_count": _leading_int(raw["sample_count"]),
        "sample_count_printed": _text(raw["sample_count"]),
        "relation": relation,
        "value": value,
        "value_low": low,
        "value_high": high,
        "value_printed": _text(raw["value"]),
        "detected": detected,
        "unit": _text(raw["unit"]),
        "unit_normalised": unit.unit if unit else None,
        "value_mg_per_g": _scaled(value, factor),
        "value_low_mg_per_g": _scaled(low, factor),
        "value_high_mg_per_g": _scaled(high, factor),
        "method": _text(raw["method"]),
        "market": _text(raw["country_or_market"]),
        **_provenance("product_composition", raw, vocabulary),
    }


def interaction_row(
    raw: Mapping[str, str], vocabulary: EvidenceVocabulary, id_map: Mapping[str, str]
) -> Row:
    """One interaction_effects row (schemas.evidence_tables.InteractionEffect)."""
    perpetrator = vocabulary.compound(raw["perpetrator"], "perpetrator")
    if perpetrator is None:
        raise Rejected(
            f"perpetrator {raw['perpetrator']!r} names no compound of data/reference/compounds.csv"
        )
    relation, value = _bounded(raw["value"], "value")
    if value is None:
        raise Rejected("value is blank")
    unit = vocabulary.unit(raw["unit"])
    level = _CI_LEVEL.search(raw["unit"])
    return {
        "interaction_id": raw["interaction_id"],
        "setting": vocabulary.term("setting", raw["setting"]),
        "setting_printed": raw["setting"],
        "perpetrator": raw["perpetrator"],
        "perpetrator_compound_id": perpetrator,
        "perpetrator_dose": _text(raw["perpetrator_dose"]),
        "victim": _text(raw["victim"]),
        "victim_compound_id": vocabulary.compound(raw["victim"], "victim"),
        "enzyme": _text(raw["enzyme"]),
        "parameter": vocabulary.term("parameter", raw["parameter"]),
        "parameter_printed": raw["parameter"],
        "relation": relation,
        "value": value,
        "ci_low": _number(raw["ci_low"], "ci_low"),
        "ci_high": _number(raw["ci_high"], "ci_high"),
        "ci_level": float(level.group(1)) if level else None,
        "unit": _text(raw["unit"]),
        "unit_normalised": unit.unit if unit else None,
        "value_um": _scaled(value, unit.to_um if unit else None),
        "n_participants": _int(raw["n_participants"], "n_participants"),
        "study_id": _text(raw["registry_id"]),
        "publication_id": resolve_publication(raw, id_map),
        **_provenance("interaction_effects", raw, vocabulary),
    }


def period_bounds(printed: str) -> tuple[date | None, date | None]:
    """First and last day of a printed period: "2016-07 to 2017-12", "2020", "2015 (vs ...)".

    A period written in words ("five-year period") has no dates: (None, None); one counted
    "to date" ("2025 (year to date at report)") has a start but no known end.
    """
    text, _, note = printed.partition("(")
    text = text.strip()
    parts = [p.strip() for p in text.split(" to ")]
    try:
        start, _ = parse_partial_date(parts[0])
        end, end_precision = parse_partial_date(parts[-1])
    except ValueError:
        return None, None
    if start is None or end is None:
        return None, None
    if OPEN_END in note:
        return start, None
    return start, _period_end(end, end_precision)


def _period_end(first: date, precision: str | None) -> date:
    if precision == "year":
        return date(first.year, 12, 31)
    if precision == "month":
        return date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])
    return first


def _safety_compound(raw: Mapping[str, str], vocabulary: EvidenceVocabulary) -> str:
    """The first kratom product or alkaloid the outcome, then the data source, names."""
    for cell in (raw["outcome"], raw["data_source"]):
        for compound in vocabulary.compounds.match(cell):
            if vocabulary.compounds.roles.get(compound) in KRATOM_ROLES:
                return compound
    return DEFAULT_SAFETY_COMPOUND


def safety_row(
    raw: Mapping[str, str], vocabulary: EvidenceVocabulary, id_map: Mapping[str, str]
) -> Row:
    """One safety_signals row (schemas.evidence_tables.SafetySignal)."""
    count = _int(raw["count"], "count")
    if count is None:
        raise Rejected("count is blank")
    start, end = period_bounds(raw["period"])
    return {
        "signal_id": raw["signal_id"],
        "data_source": raw["data_source"],
        "period_start": start,
        "period_end": end,
        "period": _text(raw["period"]),
        "outcome": raw["outcome"],
        "outcome_class": vocabulary.term("outcome_class", raw["outcome"]),
        "count": count,
        "denominator": _leading_int(raw["denominator"]),
        "denominator_printed": _text(raw["denominator"]),
        "population": _text(raw["population"]),
        "co_exposures_note": _text(raw["co_exposures_note"]),
        "compound_id": _safety_compound(raw, vocabulary),
        "publication_id": resolve_publication(raw, id_map),
        **_provenance("safety_signals", raw, vocabulary),
    }


RowBuilder = Callable[[Mapping[str, str], EvidenceVocabulary, Mapping[str, str]], Row]


@dataclass(frozen=True)
class EvidenceTable:
    """A published evidence table: its reference file, key column and row builder."""

    name: str
    file: str
    key: str
    build_row: RowBuilder


EVIDENCE_TABLES = (
    EvidenceTable("product_composition", COMPOSITION_FILE, "composition_id", composition_row),
    EvidenceTable("interaction_effects", INTERACTIONS_FILE, "interaction_id", interaction_row),
    EvidenceTable("safety_signals", SAFETY_FILE, "signal_id", safety_row),
)
EVIDENCE_BY_NAME = {t.name: t for t in EVIDENCE_TABLES}


def read_rows(reference_dir: Path, table: EvidenceTable) -> list[dict[str, str]]:
    """The rows of a table's reference file, cells stripped."""
    return read_reference_csv(reference_dir / table.file)


def build_table(
    table: EvidenceTable,
    raws: list[dict[str, str]],
    vocabulary: EvidenceVocabulary,
    id_map: Mapping[str, str],
) -> Built:
    """Type every row; a row that cannot be typed is a Reject with its reason."""
    rows: list[Row] = []
    rejects: list[Reject] = []
    for raw in raws:
        try:
            rows.append(table.build_row(raw, vocabulary, id_map))
        except Rejected as reason:
            rejects.append(Reject(raw.get(table.key, ""), str(reason), dict(raw)))
    return Built(rows, rejects)


@dataclass(frozen=True)
class PaperReference:
    """A paper an evidence file names: its identifier forms (PMID first) and the file."""

    forms: tuple[str, ...]
    file: str


def publication_references(reference_dir: Path) -> list[PaperReference]:
    """Every distinct paper the evidence files name, by id, with the first file naming it."""
    seen: dict[str, PaperReference] = {}
    for table in EVIDENCE_TABLES:
        for raw in read_rows(reference_dir, table):
            forms = tuple(publication_forms(raw))
            if forms and forms[0] not in seen:
                seen[forms[0]] = PaperReference(forms, table.file)
    return [seen[k] for k in sorted(seen)]


def publication_stub(forms: tuple[str, ...]) -> Row:
    """A stub publication for a paper no literature source returned (its PMID and/or DOI)."""
    ids = {form.partition(":")[0]: form.partition(":")[2] for form in forms}
    return {
        "publication_id": forms[0],
        "pmid": ids.get("PMID"),
        "doi": ids.get("DOI"),
        "sources": [],
        "is_stub": True,
        "is_retracted": False,
    }

"""Compounds: the reference vocabulary, free-text matching, and the product form of an intervention.

`data/reference/compounds.csv` holds one row per compound or product. Its identifier columns
(PubChem CID, InChIKey, formula, weight, SMILES, ChEMBL id, CAS, UNII) and `synonyms` are copied
from the shared facts file and nothing else; names a curator added (brand names, spellings met
in registrations, vernacular kratom names) sit in `curated_synonyms`, with their own source in
`curated_synonyms_source`. Rows the facts do not cover (the kratom product, extra opioid
medications) carry a name, a role and curated synonyms only.

Kratom products are one compound, `kratom` (role kratom_product): leaf, powder, tea and extract
are the same plant material in different preparations, so they are told apart by
`interventions.product_form`, not by splitting the compound and thinning every evidence-map cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipelines.normalize.lexicon import Lexicon, normalize, read_reference_csv, split_terms
from pipelines.paths import REFERENCE_DIR

COMPOUNDS_FILE = "compounds.csv"
TARGETS_FILE = "compound_targets.csv"
TARGET_IDS_FILE = "target_ids.csv"
PRODUCT_FORMS_FILE = "product_forms.csv"
STUDY_COMPOUNDS_FILE = "study_compounds.csv"
KRATOM_ROLES = ("kratom_product", "kratom_alkaloid")
IDENTIFIER_COLUMNS = (
    "pubchem_cid",
    "inchikey",
    "molecular_formula",
    "molecular_weight",
    "smiles",
    "chembl_id",
    "cas",
    "unii",
)
TARGET_COLUMNS = (
    "compound_id",
    "activity_type",
    "source_id",
    "target_name",
    "relation",
    "value",
    "unit",
    "pchembl_value",
    "assay_organism",
    "assay_chembl_id",
    "document_chembl_id",
    "flag",
    "source_url",
)
"""Columns of compound_targets.csv; the ChEMBL target id comes from target_ids.csv."""


def _blank_to_none(value: str) -> str | None:
    return value or None


def _curated(raw: dict[str, str]) -> list[str]:
    return split_terms(raw.get("curated_synonyms"))


def reference_compound_rows(reference_dir: Path) -> list[dict[str, Any]]:
    """Rows for the `compounds` table (schemas.compounds.Compound), in file order.

    Blank identifier cells stay null; `synonyms` joins the facts' and the curated synonyms
    (split on ';'), and `curated_synonyms` keeps the curated ones apart with their source.
    Refused match terms such as "MG" are still synonyms a searcher meets, they just never match
    alone.
    """
    rows = []
    for raw in read_reference_csv(reference_dir / COMPOUNDS_FILE):
        cid = raw["pubchem_cid"]
        weight = raw["molecular_weight"]
        rows.append(
            {
                "compound_id": raw["compound_id"],
                "name": raw["name"],
                "role": raw["role"],
                "alkaloid_class": _blank_to_none(raw["alkaloid_class"]),
                "pubchem_cid": int(cid) if cid else None,
                "inchikey": _blank_to_none(raw["inchikey"]),
                "molecular_formula": _blank_to_none(raw["molecular_formula"]),
                "molecular_weight": float(weight) if weight else None,
                "smiles": _blank_to_none(raw["smiles"]),
                "chembl_id": _blank_to_none(raw["chembl_id"]),
                "cas": _blank_to_none(raw["cas"]),
                "unii": _blank_to_none(raw["unii"]),
                "synonyms": split_terms(raw["synonyms"]) + _curated(raw),
                "curated_synonyms": _curated(raw),
                "curated_synonyms_source": _blank_to_none(raw.get("curated_synonyms_source", "")),
            }
        )
    return rows


def load_target_ids(reference_dir: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(target name, assay organism or "") -> (ChEMBL target id, how the id was assigned).

    A ChEMBL target is one protein of one species, while a literature value often names only
    the receptor: target_ids.csv says which id such a value is filed under, and whether that id
    is the assay's own target (curated_exact) or a stand-in for an unstated species.
    """
    return {
        (raw["target_name"], raw["assay_organism"]): (
            raw["target_chembl_id"],
            raw["target_id_source"],
        )
        for raw in read_reference_csv(reference_dir / TARGET_IDS_FILE)
    }


def reference_target_rows(reference_dir: Path) -> list[dict[str, Any]]:
    """Curated `compound_targets` rows (values read from literature, not ChEMBL activities).

    The `source_id` names the citation and `source_url` the page; values a source prints in a
    conflicting order carry "as printed" in it and a `flag`. The organism stays what the source
    says (empty when it says none). A target with no row in target_ids.csv is an error.
    """
    target_ids = load_target_ids(reference_dir)
    rows = []
    for raw in read_reference_csv(reference_dir / TARGETS_FILE):
        row: dict[str, Any] = {c: _blank_to_none(raw.get(c, "")) for c in TARGET_COLUMNS}
        for number in ("value", "pchembl_value"):
            row[number] = float(row[number]) if row[number] is not None else None
        key = (raw["target_name"], raw["assay_organism"])
        if key not in target_ids:
            raise ValueError(f"{TARGETS_FILE}: no ChEMBL target id in {TARGET_IDS_FILE} for {key}")
        row["target_chembl_id"], row["target_id_source"] = target_ids[key]
        rows.append(row)
    return rows


def curated_study_compounds(reference_dir: Path) -> list[tuple[str, str]]:
    """(study_id, compound_id) links that no registry text gives, from study_compounds.csv.

    Some registered studies are known only by their id and how they were found (the facts list
    NCT05812001 and NCT07218549 as hits of the ClinicalTrials.gov intervention search for
    'kratom', with no title or intervention); a curated row puts them on the evidence map. A row
    without a source is an error; the evidence map's foreign keys check the compound.
    """
    links = []
    for raw in read_reference_csv(reference_dir / STUDY_COMPOUNDS_FILE):
        if not raw["source"]:
            raise ValueError(f"{STUDY_COMPOUNDS_FILE}: a link without a source: {raw}")
        links.append((raw["study_id"], raw["compound_id"]))
    return links


@dataclass(frozen=True)
class ProductFormRule:
    """Keywords that mark a product form, for the compound roles the form applies to."""

    product_form: str
    lexicon: Lexicon
    applies_to: tuple[str, ...]
    priority: int

    def fires(self, text: str, role: str | None) -> bool:
        """True when the rule applies to `role` and one of its keywords is in `text`."""
        applies = "any" in self.applies_to or (role is not None and role in self.applies_to)
        return applies and bool(self.lexicon.find(text))


@dataclass(frozen=True)
class CompoundLexicon:
    """Compound names and synonyms compiled for matching, with the product-form keyword rules."""

    lexicon: Lexicon
    roles: dict[str, str]
    chembl_ids: dict[str, str]
    pubchem_cids: dict[int, str]
    form_rules: tuple[ProductFormRule, ...] = ()

    def match(self, text: str) -> list[str]:
        """Compound ids named in `text`, each once, in order of first appearance."""
        return self.lexicon.keys(text)

    def kratom_compounds(self, text: str) -> list[str]:
        """Kratom products and alkaloids named in `text` (a study title, a condition).

        Comparators named in a title are left out: "... Using Clonidine" names the treatment
        arm, which the interventions already link, while kratom there is the studied exposure.
        """
        return [c for c in self.match(text) if self.roles.get(c) in KRATOM_ROLES]

    def primary(self, text: str) -> str | None:
        """The main compound of an intervention name.

        The first kratom product or alkaloid named wins ("kratom tea + oxycodone" -> kratom):
        a kratom arm that adds a comparator is still about kratom. Without kratom, the first
        compound named wins ("Clonidine + Buprenorphine" -> clonidine). None when nothing
        matches, and None for a placebo that names what it mimics ("oral placebo naltrexone"):
        a placebo arm gives no compound, so it never counts as one in the evidence map.
        """
        if any(r.fires(text, None) for r in self.form_rules if r.product_form == "placebo"):
            return None
        found = self.match(text)
        kratom = [c for c in found if self.roles.get(c) in KRATOM_ROLES]
        if kratom:
            return kratom[0]
        return found[0] if found else None

    def by_chembl_id(self, chembl_id: str) -> str | None:
        """Compound id of a ChEMBL molecule id, when the reference knows it."""
        return self.chembl_ids.get(chembl_id.upper())

    def by_pubchem_cid(self, cid: int) -> str | None:
        """Compound id of a PubChem CID, when the reference knows it."""
        return self.pubchem_cids.get(cid)

    def product_form(
        self, intervention_name: str, intervention_type: str | None, compound_id: str | None
    ) -> str:
        """Leaf / tea / powder / extract / purified_alkaloid / placebo / comparator / other.

        Placebo words win ("Placebo tea" is the control arm); then a non-kratom compound is a
        comparator; a kratom product or alkaloid takes the first keyword form (by priority) that
        applies to its role; an alkaloid without one is a purified alkaloid; anything else
        (kratom of unstated form, behavioural arms) is `other`. `intervention_type` does not
        decide: registry types (DRUG, DIETARY_SUPPLEMENT) do not tell a tea from a powder.
        """
        del intervention_type
        role = self.roles.get(compound_id) if compound_id else None
        placebo = [r for r in self.form_rules if r.product_form == "placebo"]
        if any(r.fires(intervention_name, role) for r in placebo):
            return "placebo"
        if role is None:
            return "other"
        if role not in KRATOM_ROLES:
            return "comparator"
        for rule in self.form_rules:
            if rule.product_form != "placebo" and rule.fires(intervention_name, role):
                return rule.product_form
        return "purified_alkaloid" if role == "kratom_alkaloid" else "other"


def load_product_form_rules(reference_dir: Path) -> tuple[ProductFormRule, ...]:
    """Keyword rules from product_forms.csv, most decisive (lowest priority number) first."""
    rules = [
        ProductFormRule(
            product_form=raw["product_form"],
            lexicon=Lexicon.build((raw["product_form"], k) for k in split_terms(raw["keywords"])),
            applies_to=tuple(split_terms(raw["applies_to"])),
            priority=int(raw["priority"]),
        )
        for raw in read_reference_csv(reference_dir / PRODUCT_FORMS_FILE)
    ]
    return tuple(sorted(rules, key=lambda r: r.priority))


SHORT_TERM_MAX = 4
"""Synonyms of at most this many letters and digits ("7-OH", "7-HMG", "biak") match only as a
whole hyphen-joined word: "7-OH" alone is 7-hydroxymitragynine, "7-OH-DPAT" is another drug."""


def load_compound_lexicon(reference_dir: Path) -> CompoundLexicon:
    """Build the matcher from compounds.csv (name, facts' and curated synonyms, minus refused).

    Terms in a row's `needs_context` (vernacular names that are also common words or places,
    such as "thang") match only when one of the row's `context_terms` is in the same text.
    """
    raws = read_reference_csv(reference_dir / COMPOUNDS_FILE)
    terms: list[tuple[str, str]] = []
    contexts: dict[str, list[str]] = {}
    for raw in raws:
        refused = {normalize(t) for t in split_terms(raw["refused_terms"])}
        names = [raw["compound_id"], raw["name"], *split_terms(raw["synonyms"]), *_curated(raw)]
        for term in names:
            if normalize(term) not in refused:
                terms.append((raw["compound_id"], term))
        for term in split_terms(raw.get("needs_context")):
            contexts[term] = split_terms(raw.get("context_terms"))
    return CompoundLexicon(
        lexicon=Lexicon.build(terms, whole_word_max=SHORT_TERM_MAX, contexts=contexts),
        roles={r["compound_id"]: r["role"] for r in raws},
        chembl_ids={r["chembl_id"]: r["compound_id"] for r in raws if r["chembl_id"]},
        pubchem_cids={int(r["pubchem_cid"]): r["compound_id"] for r in raws if r["pubchem_cid"]},
        form_rules=load_product_form_rules(reference_dir),
    )


@lru_cache(maxsize=4)
def _lexicon_for(reference_dir: Path) -> CompoundLexicon:
    return load_compound_lexicon(reference_dir)


def product_form(
    intervention_name: str,
    intervention_type: str | None,
    compound_id: str | None,
    reference_dir: Path = REFERENCE_DIR,
) -> str:
    """`CompoundLexicon.product_form` with the project's reference vocabulary (loaded once)."""
    return _lexicon_for(reference_dir).product_form(
        intervention_name, intervention_type, compound_id
    )

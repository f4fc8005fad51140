"""Write the bundled PubChem snapshot files from the public facts in `shared/facts/compounds.csv`.

Reconstructed, not captured: for every compound of the facts file with a PubChem CID, the
property table carries only the values the facts give (formula, weight, SMILES, InChIKey; a
blank cell is left out, never looked up) and the synonym list carries the facts' name and
synonyms (a trailing parenthetical comment such as "(isomer)" is cut off). Bodies have the
PUG REST shapes `{"PropertyTable": {"Properties": [...]}}` and `{"InformationList": ...}`.

No ChEMBL file is written: the facts give no ChEMBL activity (their mu-opioid Ki values come
from papers and web pages, without activity ids), so those values live in the curated
`data/reference/compound_targets.csv` instead of a made-up activity page.

Deterministic: compounds sorted by CID, fixed key order, UTF-8, trailing newline.

Usage: python scripts/snapshot_compounds.py [--facts FILE] [--out SNAPSHOT_DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FACTS = REPO_ROOT.parent / "shared" / "facts" / "compounds.csv"
DEFAULT_OUT = REPO_ROOT / "data" / "snapshot"
PROPERTY_COLUMNS = (
    ("MolecularFormula", "molecular_formula"),
    ("MolecularWeight", "molecular_weight"),
    ("SMILES", "canonical_smiles"),
    ("InChIKey", "inchikey"),
)
"""PUG REST property name <- facts column. PubChem returns MolecularWeight as a string."""


def read_facts(path: Path) -> list[dict[str, str]]:
    """Facts rows with a PubChem CID, sorted by CID."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [{k: (v or "").strip() for k, v in r.items()} for r in csv.DictReader(handle)]
    return sorted((r for r in rows if r["pubchem_cid"]), key=lambda r: int(r["pubchem_cid"]))


def clean_synonym(text: str) -> str:
    """Drop a trailing parenthetical comment the facts add to a synonym ("X (isomer)" -> "X")."""
    text = text.strip()
    return text.split(" (")[0].strip() if text.endswith(")") and " (" in text else text


def property_table(facts: list[dict[str, str]]) -> dict[str, Any]:
    """`{"PropertyTable": {"Properties": [...]}}` with only the values the facts give."""
    properties = []
    for row in facts:
        entry: dict[str, Any] = {"CID": int(row["pubchem_cid"])}
        entry.update({name: row[column] for name, column in PROPERTY_COLUMNS if row[column]})
        properties.append(entry)
    return {"PropertyTable": {"Properties": properties}}


def synonym_list(facts: list[dict[str, str]]) -> dict[str, Any]:
    """`{"InformationList": {"Information": [...]}}`: the name, then the facts' synonyms."""
    information = []
    for row in facts:
        names = [row["name"], *(clean_synonym(s) for s in row["synonyms"].split(";"))]
        unique = list(dict.fromkeys(n for n in names if n))
        information.append({"CID": int(row["pubchem_cid"]), "Synonym": unique})
    return {"InformationList": {"Information": information}}


def write_json(path: Path, body: dict[str, Any]) -> None:
    """Write `body` as indented UTF-8 JSON with a trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Write pubchem/properties.json and pubchem/synonyms.json under the snapshot folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=Path, default=DEFAULT_FACTS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    facts = read_facts(args.facts)
    write_json(args.out / "pubchem" / "properties.json", property_table(facts))
    write_json(args.out / "pubchem" / "synonyms.json", synonym_list(facts))


if __name__ == "__main__":
    main()

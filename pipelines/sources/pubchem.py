"""PubChem PUG REST: compound property tables and synonyms by CID, and parsing them.

PubChem is where a compound's structure identifiers live (formula, weight, SMILES, InChIKey).
Snapshot files are PUG REST bodies: a property table (`{"PropertyTable": {"Properties": [...]}}`),
a synonym list (`{"InformationList": {"Information": [...]}}`) or a full compound record
(`{"PC_Compounds": [...]}`). Each compound inside is one record; parsing gives pseudo-rows keyed
by `pubchem_cid` that the pipeline joins to the compound reference.

Politeness (docs/refresh-and-politeness.md): at most 5 requests/s, batched CIDs, slower when a
503 comes back or the `X-Throttling-Control` header reports Yellow, Red or Black.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from pipelines.http import RETRY_STATUSES, RateLimit
from pipelines.sources import serving
from pipelines.sources.base import (
    LiveRun,
    LiveSource,
    RecordError,
    SnapshotFormatError,
    SourceUnit,
    TableRows,
    count_items,
    load_json_file,
)

SOURCE = "pubchem"
TABLES = ("compound_properties", "compound_synonyms")
"""Every staged table `parse_record` can return rows for."""
RATE_LIMIT = RateLimit(5, 1.05)
"""PubChem asks for no more than 5 requests per second; the window is a little over one second
because at exactly 1 s network jitter lets the server count 6."""
MIN_INTERVAL = 0.5 / RATE_LIMIT.requests
"""Spacing of half 1/5 s, so the client catches up after a slow answer or a busy moment; the
window still caps every second at 5."""
BATCH_SIZE = 100
PROPERTIES = ("MolecularFormula", "MolecularWeight", "IsomericSMILES", "InChIKey", "IUPACName")
SMILES_KEYS = ("IsomericSMILES", "SMILES", "CanonicalSMILES", "ConnectivitySMILES")
"""PubChem renamed its SMILES properties in 2025; older bodies use the first, newer the second."""
THROTTLE_HEADER = "X-Throttling-Control"
THROTTLE_DELAYS = {"green": 0.0, "yellow": 1.0, "red": 5.0, "black": 30.0}
"""Extra seconds before the next request, by the worst status the header reports."""
_STATUS = re.compile(r"([A-Za-z ]+?) status:\s*([A-Za-z]+)\s*(?:\((\d+)%\))?")


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """One single-compound body per compound in the file, in the file's own envelope.

    Raises:
        SnapshotFormatError: not JSON, or not a property table, synonym list or compound record.
    """
    body = load_json_file(path)
    if not isinstance(body, dict):
        raise SnapshotFormatError(path, "not a JSON object")
    table = body.get("PropertyTable")
    info = body.get("InformationList")
    if isinstance(table, dict) and isinstance(table.get("Properties"), list):
        for item in table["Properties"]:
            yield {"PropertyTable": {"Properties": [item]}}
    elif isinstance(info, dict) and isinstance(info.get("Information"), list):
        for item in info["Information"]:
            yield {"InformationList": {"Information": [item]}}
    elif isinstance(body.get("PC_Compounds"), list):
        for item in body["PC_Compounds"]:
            yield {"PC_Compounds": [item]}
    else:
        raise SnapshotFormatError(path, "not a PubChem property table, synonym list or record")


def _kind_and_item(record: dict[str, Any]) -> tuple[str, Any]:
    if "PropertyTable" in record:
        return "properties", record["PropertyTable"]["Properties"][0]
    if "InformationList" in record:
        return "synonyms", record["InformationList"]["Information"][0]
    return "record", record["PC_Compounds"][0]


def _cid(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError(f"CID {value!r} is not a number")
    try:
        cid = int(value)
    except ValueError as exc:
        raise RecordError(f"CID {value!r} is not a number") from exc
    if cid < 1:
        raise RecordError(f"CID {cid} is not positive")
    return cid


def _record_cid(item: Any) -> Any:
    try:
        return item["id"]["id"]["cid"]
    except (KeyError, TypeError):
        return None


def record_key(record: dict[str, Any]) -> str | None:
    """`CID:<n>:properties`, `CID:<n>:synonyms` or `CID:<n>:record`."""
    kind, item = _kind_and_item(record)
    if not isinstance(item, dict):
        return None
    cid = _record_cid(item) if kind == "record" else item.get("CID")
    return f"CID:{cid}:{kind}" if cid is not None else None


def _weight(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"MolecularWeight {value!r} is not a number") from exc


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def properties_row(item: dict[str, Any]) -> dict[str, Any]:
    """A property-table entry -> a `compound_properties` pseudo-row."""
    smiles = next((item[k] for k in SMILES_KEYS if item.get(k)), None)
    return {
        "pubchem_cid": _cid(item.get("CID")),
        "molecular_formula": _text(item.get("MolecularFormula")),
        "molecular_weight": _weight(item.get("MolecularWeight")),
        "smiles": _text(smiles),
        "inchikey": _text(item.get("InChIKey")),
        "iupac_name": _text(item.get("IUPACName")),
    }


def _prop(props: list[dict[str, Any]], label: str, name: str | None) -> Any:
    for prop in props:
        urn = prop.get("urn") or {}
        if urn.get("label") == label and urn.get("name") == name:
            value = prop.get("value") or {}
            return next((value[k] for k in ("sval", "fval", "ival") if k in value), None)
    return None


def record_properties_row(item: dict[str, Any]) -> dict[str, Any]:
    """A full compound record (`PC_Compounds[i]`) -> the same pseudo-row as a property table."""
    props = item.get("props")
    if not isinstance(props, list):
        raise RecordError("compound record has no props")
    smiles = _prop(props, "SMILES", "Isomeric") or _prop(props, "SMILES", "Absolute")
    return {
        "pubchem_cid": _cid(_record_cid(item)),
        "molecular_formula": _text(_prop(props, "Molecular Formula", None)),
        "molecular_weight": _weight(_prop(props, "Molecular Weight", None)),
        "smiles": _text(smiles),
        "inchikey": _text(_prop(props, "InChIKey", "Standard")),
        "iupac_name": _text(_prop(props, "IUPAC Name", "Preferred")),
    }


def synonym_rows(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A synonym-list entry -> one `compound_synonyms` row per synonym, with PubChem's rank."""
    cid = _cid(item.get("CID"))
    synonyms = item.get("Synonym") or []
    if not isinstance(synonyms, list):
        raise RecordError(f"CID {cid}: Synonym is not a list")
    return [
        {"pubchem_cid": cid, "synonym": s.strip(), "rank": rank}
        for rank, s in enumerate(synonyms, start=1)
        if isinstance(s, str) and s.strip()
    ]


def parse_record(record: dict[str, Any]) -> TableRows:
    """One compound body -> `compound_properties` or `compound_synonyms` pseudo-rows.

    Raises:
        RecordError: no usable CID, or a value of the wrong type.
    """
    kind, item = _kind_and_item(record)
    if not isinstance(item, dict):
        raise RecordError("compound entry is not a JSON object")
    if kind == "properties":
        return {"compound_properties": [properties_row(item)]}
    if kind == "synonyms":
        return {"compound_synonyms": synonym_rows(item)}
    return {"compound_properties": [record_properties_row(item)]}


def throttle_status(header: str | None) -> dict[str, tuple[str, int | None]]:
    """Parse `X-Throttling-Control` into {"request count": ("yellow", 60), ...}."""
    if not header:
        return {}
    return {
        name.strip().lower(): (colour.lower(), int(pct) if pct else None)
        for name, colour, pct in _STATUS.findall(header)
    }


def throttle_delay(header: str | None, delays: Mapping[str, float] = THROTTLE_DELAYS) -> float:
    """Extra pause the header asks for: by the worst colour it reports (unknown counts as 0)."""
    colours = [colour for colour, _ in throttle_status(header).values()]
    return max((delays.get(c, 0.0) for c in colours), default=0.0)


def batches(cids: Sequence[int], size: int = BATCH_SIZE) -> list[list[int]]:
    """Sorted, de-duplicated CIDs cut into batches for comma-joined look-ups."""
    unique = sorted(set(cids))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def property_path(cids: Sequence[int]) -> str:
    """PUG REST path of the property table for `cids`."""
    return f"/rest/pug/compound/cid/{','.join(map(str, cids))}/property/{','.join(PROPERTIES)}/JSON"


def synonyms_path(cids: Sequence[int]) -> str:
    """PUG REST path of the synonym lists for `cids`."""
    return f"/rest/pug/compound/cid/{','.join(map(str, cids))}/synonyms/JSON"


class JsonClient(Protocol):
    """The part of the shared client (`pipelines.http.SourceHttp`) the live look-ups use."""

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any: ...


@dataclass
class ThrottlePacer:
    """Extra pauses PubChem asks for, on top of the client's 5-per-second minimum interval.

    Give `on_response` to the client as its response hook; `wait` sleeps before the next
    request for as long as the last `X-Throttling-Control` header (or a 503) asked. A
    response the client will retry pays its pause at once, so the retry itself waits too.
    """

    sleep: Callable[[float], None] = time.sleep
    delays: Mapping[str, float] = field(default_factory=lambda: dict(THROTTLE_DELAYS))
    pending: float = 0.0
    waited: list[float] = field(default_factory=list)

    def on_response(self, response: httpx.Response) -> None:
        """Read the throttling header; a 503 asks for at least the Red pause."""
        delay = throttle_delay(response.headers.get(THROTTLE_HEADER), self.delays)
        if response.status_code == 503:
            delay = max(delay, self.delays["red"])
        self.pending = max(self.pending, delay)
        if response.status_code in RETRY_STATUSES:
            self.wait()

    def wait(self) -> None:
        """Sleep the pending pause, if any, and clear it."""
        if self.pending > 0:
            self.sleep(self.pending)
            self.waited.append(self.pending)
        self.pending = 0.0


def fetch_compounds(
    http: JsonClient, cids: Sequence[int], pacer: ThrottlePacer, batch_size: int = BATCH_SIZE
) -> Iterator[Any]:
    """Property tables then synonym lists for `cids`, one batched request each, recorded."""
    for kind, path_of in (("properties", property_path), ("synonyms", synonyms_path)):
        for batch in batches(cids, batch_size):
            pacer.wait()
            yield http.get_json(
                path_of(batch), None, record_as=f"{kind}_{batch[0]}-{batch[-1]}.json"
            )


BASE_URL = "https://pubchem.ncbi.nlm.nih.gov"


def compound_ids(rows: Sequence[Mapping[str, str]]) -> list[int]:
    """The curated compounds' PubChem CIDs (compounds.csv `pubchem_cid`; blanks skipped)."""
    return sorted({int(r["pubchem_cid"]) for r in rows if r["pubchem_cid"].strip().isdigit()})


def fetch(run: LiveRun) -> dict[str, int]:
    """Property tables and synonym lists of the run's CIDs, batched; entries of the last
    batch of each kind."""
    client = run.client()
    hits: dict[str, int] = {}
    for body in fetch_compounds(client, run.work, run.pacer, run.page_size or BATCH_SIZE):
        hits["properties" if "PropertyTable" in body else "synonyms"] = count_items(
            body, "PropertyTable", "Properties"
        ) or count_items(body, "InformationList", "Information")
        run.advance(1)
    return hits


# --- served by the emulator -------------------------------------------------------------------

_PUG_PATH = re.compile(r"/rest/pug/compound/cid/([\d,]+)/(property/[A-Za-z,]+|synonyms)/JSON")


@dataclass
class Served:
    """Property rows and synonym lists of a snapshot, as the emulator serves them."""

    properties: list[dict[str, Any]] = field(default_factory=list)
    synonyms: list[dict[str, Any]] = field(default_factory=list)


def load_served(files: Sequence[tuple[Path, serving.Keep]]) -> Served:
    """Every kept property row and synonym list of the files, in file order."""
    served = Served()
    for path, keep in files:
        doc = json.loads(path.read_bytes())
        for key, items, target in (
            ("PropertyTable", "Properties", served.properties),
            ("InformationList", "Information", served.synonyms),
        ):
            target.extend(i for i in doc.get(key, {}).get(items, []) if keep({key: {items: [i]}}))
    return served


def _by_cid(entries: list[dict[str, Any]], cids: Sequence[int]) -> list[dict[str, Any]]:
    """The entries of the asked CIDs, in the order asked (each CID once, as PUG REST answers)."""
    held: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        cid = entry.get("CID") if isinstance(entry, dict) else None
        if isinstance(cid, int | str) and str(cid).isdigit():
            held.setdefault(int(cid), []).append(entry)
    return [entry for cid in dict.fromkeys(cids) for entry in held.get(cid, [])]


def _not_found() -> serving.Reply:
    """PUG REST's answer when none of the asked CIDs exists."""
    fault = {"Code": "PUGREST.NotFound", "Message": "No records found for the given CID(s)"}
    return serving.Reply(404, orjson.dumps({"Fault": fault}))


def answer(served: Served, request: serving.Request) -> serving.Reply:
    """PUG REST /rest/pug/compound/cid/<cids>/property/<names>/JSON and /synonyms/JSON.

    Like PUG REST, only the asked CIDs come back, in the order asked; a CID the snapshot
    does not hold is left out, and when none is held the answer is a 404 PUGREST.NotFound.
    """
    match = _PUG_PATH.fullmatch(request.path)
    if match is None:
        return serving.error_reply(400, f"unsupported PUG REST path {request.path}")
    asked = [int(c) for c in match.group(1).split(",") if c]
    if match.group(2) == "synonyms":
        found = _by_cid(served.synonyms, asked)
        doc: dict[str, Any] = {"InformationList": {"Information": found}}
    else:
        found = _by_cid(served.properties, asked)
        doc = {"PropertyTable": {"Properties": found}}
    return serving.json_reply(doc) if found else _not_found()


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".json",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_record,
    primary_table="compounds",
    tables=TABLES,
    live=LiveSource(
        base_url=BASE_URL,
        fetch=fetch,
        emulator_path="/pubchem",
        min_interval=lambda creds: MIN_INTERVAL,
        rate_limit=lambda creds: RATE_LIMIT,
        pacer=ThrottlePacer,
        compound_ids=compound_ids,
    ),
    emulation=serving.Emulation(load_served, answer),
)
"""PubChem PUG REST properties and synonyms of the curated compounds, as the pipeline sees them."""

"""ChEMBL web services: bioactivities by molecule id, paged by `page_meta.next`, and parsing.

ChEMBL is where measured target activities live (Ki at the mu-opioid receptor, IC50 at CYP
enzymes, ...). Snapshot files are activity pages (`{"activities": [...], "page_meta": {...}}`);
each activity is one record and becomes one `compound_targets` row, its compound resolved from
`molecule_chembl_id` through the compound reference.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from pipelines.http import PagingError, page_url
from pipelines.normalize.compounds import load_compound_lexicon
from pipelines.paths import REFERENCE_DIR
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

SOURCE = "chembl"
TABLES = ("compound_targets",)
"""Every staged table `parse_record` can return rows for."""
ACTIVITY_PATH = "/api/data/activity.json"
PAGE_LIMIT = 1000
ITEM_KEYS = ("activities", "molecules", "drug_indications", "mechanisms", "targets", "assays")
"""List keys of ChEMBL pages the pager understands; snapshots hold activity pages only."""


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Activities of one activity page.

    Raises:
        SnapshotFormatError: not JSON, or not an activity page with page_meta.
    """
    body = load_json_file(path)
    if not (
        isinstance(body, dict)
        and isinstance(body.get("activities"), list)
        and isinstance(body.get("page_meta"), dict)
    ):
        raise SnapshotFormatError(path, "not a ChEMBL activity page (activities + page_meta)")
    yield from body["activities"]


def record_key(record: dict[str, Any]) -> str | None:
    """`activity:<activity_id>`."""
    activity_id = record.get("activity_id") if isinstance(record, dict) else None
    return f"activity:{activity_id}" if activity_id is not None else None


@lru_cache(maxsize=4)
def _compound_resolver(reference_dir: Path) -> Callable[[str], str | None]:
    return load_compound_lexicon(reference_dir).by_chembl_id


def _float(record: dict[str, Any], key: str) -> float | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{key} {value!r} is not a number") from exc


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def parse_record(record: dict[str, Any], reference_dir: Path = REFERENCE_DIR) -> TableRows:
    """One activity -> a `compound_targets` row (plus the `molecule_chembl_id` it came from).

    Raises:
        RecordError: no activity id, molecule, target or type; an activity id or a value that
            is not a number; a molecule the compound reference does not know.
    """
    if not isinstance(record, dict):
        raise RecordError("activity is not a JSON object")
    activity_id = _text(record.get("activity_id"))
    target = _text(record.get("target_chembl_id"))
    activity_type = _text(record.get("standard_type"))
    molecule = _text(record.get("molecule_chembl_id"))
    missing = [
        name
        for name, value in (
            ("activity_id", activity_id),
            ("molecule_chembl_id", molecule),
            ("target_chembl_id", target),
            ("standard_type", activity_type),
        )
        if value is None
    ]
    if missing or molecule is None or activity_id is None:
        raise RecordError(f"activity has no {', '.join(missing)}")
    if not activity_id.isdigit():
        raise RecordError(f"activity_id {record['activity_id']!r} is not a number")
    compound_id = _compound_resolver(reference_dir)(molecule)
    if compound_id is None:
        raise RecordError(f"molecule {molecule} is not in the compound reference")
    row = {
        "compound_id": compound_id,
        "molecule_chembl_id": molecule,
        "target_chembl_id": target,
        "activity_type": activity_type,
        "source_id": activity_id,
        "target_name": _text(record.get("target_pref_name")),
        "relation": _text(record.get("standard_relation")),
        "value": _float(record, "standard_value"),
        "unit": _text(record.get("standard_units")),
        "pchembl_value": _float(record, "pchembl_value"),
        "assay_organism": _text(record.get("target_organism")),
        "assay_chembl_id": _text(record.get("assay_chembl_id")),
        "document_chembl_id": _text(record.get("document_chembl_id")),
    }
    return {"compound_targets": [row]}


def page_items(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """(items, next link) of any ChEMBL list page; `next` is None on the last page.

    Raises:
        ValueError: no page_meta or no known list key.
    """
    meta = body.get("page_meta")
    if not isinstance(meta, dict):
        raise ValueError("ChEMBL page has no page_meta")
    for key in ITEM_KEYS:
        if isinstance(body.get(key), list):
            return body[key], meta.get("next") or None
    raise ValueError(f"ChEMBL page has none of {ITEM_KEYS}")


def next_request(next_link: str, base_url: str) -> tuple[str, dict[str, str]]:
    """Path (relative to `base_url`) and query parameters of a `page_meta.next` link.

    ChEMBL gives `next` from the host root ("/chembl/api/data/activity.json?offset=..."), so the
    base URL's own path is taken off to call the same client again.
    """
    parts = urlsplit(next_link)
    base_path = urlsplit(base_url).path.rstrip("/")
    path = parts.path
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path) :]
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


def activity_params(chembl_ids: Sequence[str], limit: int = PAGE_LIMIT) -> dict[str, str]:
    """First-page query for the activities of `chembl_ids` (sorted, de-duplicated)."""
    return {
        "molecule_chembl_id__in": ",".join(sorted(set(chembl_ids))),
        "limit": str(limit),
        "offset": "0",
    }


class JsonClient(Protocol):
    """The part of the shared client (`pipelines.http.SourceHttp`) the live pager uses."""

    base_url: str

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any: ...


def iter_activity_pages(
    http: JsonClient, chembl_ids: Sequence[str], limit: int = PAGE_LIMIT
) -> Iterator[dict[str, Any]]:
    """Activity pages for `chembl_ids`, following `page_meta.next` until it is null.

    An empty page with a next link is followed; a link already followed is a loop: an error
    naming the source and URL.
    """
    path, params = ACTIVITY_PATH, activity_params(chembl_ids, limit)
    followed: set[str] = set()
    for number in itertools.count(1):
        body = http.get_json(path, params, record_as=f"activity_{number:05d}.json")
        yield body
        _, next_link = page_items(body)
        if next_link is None:
            return
        if next_link in followed:
            raise PagingError(
                f"{SOURCE}: page {number} ({page_url(http.base_url, path, params)}): "
                f"page_meta.next {next_link!r} goes back to a page already fetched"
            )
        followed.add(next_link)
        path, params = next_request(next_link, http.base_url)


BASE_URL = "https://www.ebi.ac.uk/chembl"
MIN_INTERVAL = 0.1


def compound_ids(rows: Sequence[Mapping[str, str]]) -> list[str]:
    """The curated compounds' ChEMBL ids (compounds.csv `chembl_id`; blanks skipped)."""
    return sorted({r["chembl_id"].strip() for r in rows if r["chembl_id"].strip()})


def fetch(run: LiveRun) -> dict[str, int]:
    """Activity pages of the run's molecules, following page_meta.next; activities in all."""
    client = run.client()
    hits = 0
    for body in iter_activity_pages(client, run.work, run.page_size or PAGE_LIMIT):
        hits += count_items(body, "activities")
        run.advance(1)
    return {"molecule_chembl_id__in": hits}


# --- served by the emulator -------------------------------------------------------------------


def _served_activities(doc: Any) -> list[Any]:
    return list(doc.get("activities", [])) if isinstance(doc, dict) else []


def answer(activities: list[dict[str, Any]], request: serving.Request) -> serving.Reply:
    """/api/data/activity.json with limit/offset and page_meta.next from the host root.

    `molecule_chembl_id__in` keeps the activities of the listed molecules only (Django-style
    `__in` filter, https://chembl.gitbook.io/chembl-interface-documentation/web-services/chembl-data-web-services);
    the next link carries the filter on, as ChEMBL's does.
    """
    params = request.params
    if request.path != ACTIVITY_PATH:
        return serving.error_reply(404, f"unknown path {request.path}")
    asked = params.get("molecule_chembl_id__in")
    if asked is not None:
        molecules = {m.strip() for m in asked.split(",") if m.strip()}
        activities = [a for a in activities if a.get("molecule_chembl_id") in molecules]
    limit = serving.int_param(params, "limit", 20) or 20
    start = serving.int_param(params, "offset", 0)
    items, nxt = serving.page(activities, start, limit)
    next_link = None
    if nxt is not None:
        query = urlencode({**params, "limit": limit, "offset": nxt})
        next_link = f"{request.mount}{ACTIVITY_PATH}?{query}"
    meta = {
        "limit": limit,
        "offset": start,
        "next": next_link,
        "previous": None,
        "total_count": len(activities),
    }
    return serving.json_reply({"activities": items, "page_meta": meta})


UNIT = SourceUnit(
    name=SOURCE,
    suffix=".json",
    iter_records=iter_records,
    record_key=record_key,
    parse=parse_record,
    primary_table="compound_targets",
    tables=TABLES,
    live=LiveSource(
        base_url=BASE_URL,
        fetch=fetch,
        emulator_path="/chembl",
        min_interval=lambda creds: MIN_INTERVAL,
        compound_ids=compound_ids,
    ),
    emulation=serving.Emulation(serving.json_records(_served_activities), answer),
)
"""ChEMBL activities of the curated compounds, as the pipeline sees them."""

"""The snapshot folder a refresh writes: started with `"complete": false`, resumed by the next
run of the same kind when a refresh stopped half-way, finished by rewriting SNAPSHOT.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines import snapshot

TOPIC = "kratom"
INCREMENTAL_FROM = "incremental_from"
"""SNAPSHOT.json key of a --since-last snapshot: the stamp (folder name) of its base."""


def snapshot_stamp(now: datetime) -> str:
    """Folder name of a recorded snapshot: UTC, sortable, no colons."""
    return now.strftime("%Y%m%dT%H%M%SZ")


def free_stamp_time(snapshots_dir: Path, now: datetime) -> datetime:
    """`now`, or the first second after it whose stamp names no snapshot yet: a refresh started
    within the second its base snapshot was stamped (a fast machine) records in the next one,
    and the stamps still sort in the order the snapshots were taken."""
    while (snapshots_dir / snapshot_stamp(now)).exists():
        now += timedelta(seconds=1)
    return now


def write_info(
    folder: Path,
    captured_at: str,
    *,
    complete: bool,
    notes: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """SNAPSHOT.json; `complete: false` makes `snapshot.read_info` refuse the folder.

    `extra` adds keys beyond the contract's (captured_at_utc, incremental_from, compound_ids).
    """
    info = {
        **(extra or {}),
        "captured_at": captured_at,
        "topic": TOPIC,
        "method": "recorded",
        "complete": complete,
        "notes": notes,
    }
    path = folder / snapshot.INFO_FILE
    temp = path.with_suffix(".json.part")
    temp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temp.replace(path)


def unfinished_snapshot(snapshots_dir: Path) -> Path | None:
    """The newest recorded snapshot when a refresh left it incomplete: the one to resume."""
    if not snapshots_dir.is_dir():
        return None
    folders = sorted(p for p in snapshots_dir.iterdir() if (p / snapshot.INFO_FILE).is_file())
    if not folders:
        return None
    info = json.loads((folders[-1] / snapshot.INFO_FILE).read_text(encoding="utf-8"))
    return folders[-1] if info.get("complete") is False else None


def open_snapshot(
    data_dir: Path, now: datetime, base: Path | None
) -> tuple[Path, str, dict[str, Any]]:
    """(folder, captured_at, extra SNAPSHOT.json keys): resume or start a snapshot.

    An unfinished snapshot is resumed only by a run of the same kind (full, or incremental from
    the same base): a full run never mixes its pages with a delta's.
    """
    incremental_from = base.name if base is not None else None
    folder = unfinished_snapshot(data_dir / "snapshots")
    if folder is not None:
        info = json.loads((folder / snapshot.INFO_FILE).read_text(encoding="utf-8"))
        if info.get(INCREMENTAL_FROM) == incremental_from:
            for temp in folder.glob("*/.*.part"):
                temp.unlink()
            extra = {k: info[k] for k in ("captured_at_utc", INCREMENTAL_FROM) if k in info}
            return folder, str(info["captured_at"]), extra
    now = free_stamp_time(data_dir / "snapshots", now)
    folder = data_dir / "snapshots" / snapshot_stamp(now)
    folder.mkdir(parents=True, exist_ok=False)
    captured_at = now.date().isoformat()
    extra = {"captured_at_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if incremental_from is not None:
        extra[INCREMENTAL_FROM] = incremental_from
    write_info(folder, captured_at, complete=False, notes="refresh in progress", extra=extra)
    return folder, captured_at, extra

"""pipelines.bulkzip against archives written by Python's zipfile: the same members and bytes,
ZIP64 and prepended bytes included; damaged members and archives refused with a reason; memory
flat in the member count."""

from __future__ import annotations

import tracemalloc
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from pipelines import bulkzip


def write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            if name.endswith("/"):
                archive.mkdir(name.rstrip("/"))
            elif name.startswith("stored/"):
                archive.writestr(name, body, compress_type=zipfile.ZIP_STORED)
            else:
                archive.writestr(name, body)
    return path


MEMBERS = {
    "35/": b"",
    "35/NCT02252835.json": b'{"protocolSection": {}}' * 50,
    "stored/NCT00000001.json": b"stored as is",
    "empty.json": b"",
    "über/naïve.json": "unicode name, ü".encode(),
    "35/NCT02252835.json.bak": bytes(range(256)) * 40,
}


def read_all(path: Path) -> dict[str, bytes]:
    with bulkzip.Archive(path) as archive:
        return {m.name: archive.read(m) for m in archive.members() if not m.name.endswith("/")}


def expected(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}


def test_members_and_bytes_are_zipfiles(tmp_path: Path) -> None:
    path = write(tmp_path / "a.zip", MEMBERS)
    with bulkzip.Archive(path) as archive:
        names = [m.name for m in archive.members()]
    with zipfile.ZipFile(path) as archive:
        assert names == archive.namelist()
    assert (
        read_all(path)
        == expected(path)
        == {k: v for k, v in MEMBERS.items() if not k.endswith("/")}
    )


def test_an_archive_comment_and_bytes_before_the_archive(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.zip", MEMBERS)
    with zipfile.ZipFile(plain, "a") as archive:
        archive.comment = b"x" * 1000 + b"PK"
    prefixed = tmp_path / "sfx.zip"
    prefixed.write_bytes(b"#!/bin/sh\nexit 0\n" * 100 + plain.read_bytes())
    assert read_all(prefixed) == expected(prefixed) == read_all(plain)


def test_zip64_end_record_and_extra_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """zipfile writes ZIP64 records past its limits; lowered, they appear in a small archive:
    the ZIP64 end record (member count) and 64-bit local header offsets in extra fields."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 200)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 3)
    path = write(tmp_path / "z64.zip", MEMBERS)
    monkeypatch.undo()
    assert b"PK\x06\x06" in path.read_bytes()
    assert (
        read_all(path)
        == expected(path)
        == {k: v for k, v in MEMBERS.items() if not k.endswith("/")}
    )


def test_damaged_members_are_refused_one_by_one(tmp_path: Path) -> None:
    path = write(tmp_path / "a.zip", MEMBERS)
    data = bytearray(path.read_bytes())
    body = MEMBERS["stored/NCT00000001.json"]
    data[data.index(body)] ^= 0xFF  # a stored member's first byte
    with zipfile.ZipFile(path) as archive:
        deflated = archive.getinfo("35/NCT02252835.json")
        start = deflated.header_offset + 30 + len(deflated.filename)
    data[start : start + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    problems = {}
    with bulkzip.Archive(path) as archive:
        for member in archive.members():
            try:
                archive.read(member)
            except bulkzip.MemberError as exc:
                problems[member.name] = str(exc)
    assert problems.keys() == {"stored/NCT00000001.json", "35/NCT02252835.json"}
    assert "CRC-32" in problems["stored/NCT00000001.json"]
    assert problems["35/NCT02252835.json"]


def test_encrypted_and_unsupported_members_say_so(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.json", b"{}", compress_type=zipfile.ZIP_BZIP2)
    data = path.read_bytes()
    with bulkzip.Archive(path) as archive:
        (member,) = archive.members()
        with pytest.raises(bulkzip.MemberError, match="compression method 12"):
            archive.read(member)
    central = data.rindex(b"PK\x01\x02")
    flags = central + 8
    patched = bytearray(data)
    patched[flags] |= 0x1
    path.write_bytes(bytes(patched))
    with bulkzip.Archive(path) as archive:
        (member,) = archive.members()
        with pytest.raises(bulkzip.MemberError, match="encrypted"):
            archive.read(member)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"not a zip at all" * 10,
        lambda data: data[:-30],  # cut off: the end record is gone
        lambda data: data.replace(b"PK\x01\x02", b"PK\x01\x03", 1),  # bad directory entry
    ],
    ids=["not-a-zip", "cut-off", "damaged-directory"],
)
def test_a_damaged_archive_is_refused(tmp_path: Path, damage: object) -> None:
    path = write(tmp_path / "a.zip", MEMBERS)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(bulkzip.ZipFormatError):
        read_all(path)


def traced_peak(run: Callable[[], object]) -> int:
    """Peak bytes Python allocated while `run` ran."""
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def walk(path: Path) -> None:
    with bulkzip.Archive(path) as archive:
        assert sum(1 for _ in archive.members()) > 0


def test_walking_the_directory_holds_one_slice_whatever_the_member_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulkzip, "SLICE", 64 * 1024)
    bound = 2 * bulkzip.SLICE + 100_000  # a slice, the next one, overhead
    peaks = {}
    for count in (5_000, 20_000):
        names = {f"{i % 100:02d}/NCT{i:08d}.json": b"" for i in range(count)}
        path = write(tmp_path / f"{count}.zip", names)
        peaks[count] = traced_peak(partial(walk, path))
        assert peaks[count] < bound
    zipfile_peak = traced_peak(partial(zipfile.ZipFile, path))
    assert zipfile_peak > 20 * peaks[20_000]  # a ZipInfo per member: about 13 MB here

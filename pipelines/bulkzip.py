"""Reading a ZIP archive of many small members in place, with memory flat in the member count.

Python's `zipfile` builds a `ZipInfo` for every member when it opens an archive (about 670 bytes
each: 375 MiB for the registry's 560 000 members, held again by every process that stages a
part of it). Here the central directory is walked in slices of `SLICE` bytes, one entry at a
time, and each member is read with two positioned reads (`os.pread`), so memory holds one slice
and one member whatever the archive's size. Stored and deflated members are read (what the
registry serves and what `zipfile` writes by default); ZIP64 archives (more than 65 535 members,
or past 4 GiB) too. Format: PKWARE's APPNOTE.TXT, sections 4.3.6 to 4.3.16.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from isal import isal_zlib

SLICE = 1 << 20
"""Bytes of the central directory read at a time."""

_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record
_ENTRY = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header
_END_SIG, _END64_LOCATOR_SIG, _END64_SIG = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_ENTRY_SIG, _LOCAL_SIG = b"PK\x01\x02", b"PK\x03\x04"
_MAX_COMMENT = 0xFFFF
_UTF8_NAME = 0x800  # general purpose flag bit 11
_ENCRYPTED = 0x1
_ZIP64_EXTRA = 0x0001
_STORED, _DEFLATED = 0, 8
_InflateError: type[Exception] = isal_zlib.error  # type: ignore[assignment]  # stub: an instance


class ZipFormatError(ValueError):
    """The archive as a whole cannot be read: no end record, or a damaged central directory."""


class MemberError(ValueError):
    """One member cannot be read (damaged, encrypted or compressed in an unsupported way)."""


class Member(NamedTuple):
    """One central directory entry: what reading its member needs, nothing else."""

    name: str
    offset: int
    """Where its local header starts in the file."""
    method: int
    flags: int
    crc: int
    compressed: int
    size: int
    entry: int
    """Where its entry starts in the central directory (bytes from the directory's start)."""


class Archive:
    """An archive opened for reading: its entries streamed, its members read one at a time."""

    def __init__(self, path: Path) -> None:
        """Find the central directory from the end record.

        Raises:
            ZipFormatError: no end of central directory record (not a ZIP, or cut off), or
                one that places the central directory outside the file.
        """
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self._start, self._length, self._shift = _central_directory(self._fd)
        except BaseException:
            os.close(self._fd)
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self._fd)

    @property
    def directory_bytes(self) -> int:
        """The central directory's length: what `Member.entry` counts up to."""
        return self._length

    def members(self) -> Iterator[Member]:
        """Every entry in central directory order (directories included), streamed.

        Raises:
            ZipFormatError: the central directory is damaged (when the walk reaches it).
        """
        return _walk(self._fd, self._start, self._start + self._length, self._shift)

    def read(self, member: Member) -> bytes:
        """The member's bytes, inflated and checked against the directory's size and CRC-32.

        Raises:
            MemberError: why the member cannot be read.
        """
        header = os.pread(self._fd, _LOCAL.size, member.offset)
        if len(header) < _LOCAL.size or header[:4] != _LOCAL_SIG:
            raise MemberError("no local header where the central directory points")
        name_len, extra_len = _LOCAL.unpack(header)[10:]
        data_at = name_len + extra_len
        stored = os.pread(self._fd, data_at + member.compressed, member.offset + _LOCAL.size)
        view = memoryview(stored)
        encoding = "utf-8" if member.flags & _UTF8_NAME else "cp437"
        if bytes(view[:name_len]).decode(encoding, errors="replace") != member.name:
            raise MemberError("its local header names another member")
        if member.flags & _ENCRYPTED:
            raise MemberError("encrypted")
        if len(stored) < data_at + member.compressed:
            raise MemberError("cut off")
        return _inflated(member, view[data_at:])


def _inflated(member: Member, data: memoryview) -> bytes:
    """A member's data decompressed and checked, by ISA-L (the same deflate as zlib's, inflated
    in about half zlib's CPU time: bench/README.md, session 8)."""
    if member.method == _STORED:
        body = bytes(data)
    elif member.method == _DEFLATED:
        try:
            body = isal_zlib.decompress(data, -isal_zlib.MAX_WBITS, member.size or 1)
        except _InflateError as exc:
            raise MemberError(f"damaged deflate data: {exc}") from exc
    else:
        raise MemberError(f"compression method {member.method} (only stored and deflated)")
    if len(body) != member.size:
        raise MemberError(f"{len(body)} bytes, the central directory says {member.size}")
    if isal_zlib.crc32(body) != member.crc:
        raise MemberError("CRC-32 differs from the central directory's (damaged)")
    return body


def _central_directory(fd: int) -> tuple[int, int, int]:
    """Where the central directory starts, its length, and the bytes found before the archive
    (the amount by which its recorded offsets are shifted; `zipfile` allows for them too), from
    the end record and its ZIP64 twin."""
    size = os.fstat(fd).st_size
    tail_start = max(size - _END.size - _MAX_COMMENT, 0)
    tail = os.pread(fd, size - tail_start, tail_start)
    found = tail.rfind(_END_SIG)
    if found < 0 or found + _END.size > len(tail):
        raise ZipFormatError("no end of central directory record (not a ZIP, or cut off)")
    end_at = tail_start + found
    _, disk, _, _, _, length, offset, _ = _END.unpack_from(tail, found)
    zip64_at = end_at - _END64_LOCATOR.size - _END64.size
    if zip64_at >= 0:
        locator = os.pread(fd, _END64_LOCATOR.size, end_at - _END64_LOCATOR.size)
        if _END64_LOCATOR.unpack(locator)[0] == _END64_LOCATOR_SIG:
            record = _END64.unpack(os.pread(fd, _END64.size, zip64_at))
            if record[0] != _END64_SIG:
                raise ZipFormatError("damaged ZIP64 end of central directory record")
            disk, length, offset = record[4], record[8], record[9]
            end_at = zip64_at
    if disk != 0:
        raise ZipFormatError("archives spanning several disks are not supported")
    start = end_at - length
    if start < 0 or offset > start:
        raise ZipFormatError("the end record places the central directory outside the file")
    return start, length, start - offset


def _walk(fd: int, start: int, end: int, shift: int) -> Iterator[Member]:
    """Central directory entries between `start` and `end`, read `SLICE` bytes at a time (more
    when one entry is longer); what is held is one slice and the entry it cuts in two."""
    buffer, at, read_to = b"", 0, start
    while at < len(buffer) or read_to < end:
        left = len(buffer) - at
        fields = _ENTRY.unpack_from(buffer, at) if left >= _ENTRY.size else None
        if fields is not None and fields[0] != _ENTRY_SIG:
            raise ZipFormatError("damaged central directory (bad entry signature)")
        length = _ENTRY.size + sum(fields[12:15]) if fields else _ENTRY.size
        if left < length:
            if read_to >= end:
                raise ZipFormatError("the central directory is cut off")
            chunk = os.pread(fd, min(max(SLICE, length), end - read_to), read_to)
            if not chunk:
                raise ZipFormatError("the central directory is cut off")
            buffer, at, read_to = buffer[at:] + chunk, 0, read_to + len(chunk)
            continue
        assert fields is not None
        (_, _, _, _, _, flags, method, _, _, crc, compressed, size, name_len, extra_len,
         _, _, _, _, offset) = fields  # fmt: skip
        name_at = at + _ENTRY.size
        extra_at = name_at + name_len
        entry = read_to - len(buffer) + at - start
        at += length
        encoding = "utf-8" if flags & _UTF8_NAME else "cp437"
        name = buffer[name_at:extra_at].decode(encoding, errors="replace")
        if 0xFFFFFFFF in (compressed, size, offset):
            size, compressed, offset = _zip64_sizes(
                buffer[extra_at : extra_at + extra_len], size, compressed, offset
            )
        yield Member(name, offset + shift, method, flags, crc, compressed, size, entry)


def _zip64_sizes(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """The 64-bit values of the ZIP64 extra field, for each field saturated at 0xFFFFFFFF (a
    field without one keeps its value: a member can be exactly 4 GiB - 1 bytes long)."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        data = extra[at + 4 : at + 4 + length]
        at += 4 + length
        if kind != _ZIP64_EXTRA:
            continue
        values = [v for (v,) in struct.iter_unpack("<Q", data[: len(data) // 8 * 8])]
        try:
            if size == 0xFFFFFFFF:
                size = values.pop(0)
            if compressed == 0xFFFFFFFF:
                compressed = values.pop(0)
            if offset == 0xFFFFFFFF:
                offset = values.pop(0)
        except IndexError:
            raise ZipFormatError("damaged ZIP64 extra field") from None
        break
    return size, compressed, offset

"""Files' SHA-256, each file read once within a build.

A build hashes its snapshot three times over: its inputs' fingerprint (pipelines/build_inputs.py),
the raw inventories (pipelines/assets/raw.py) and the release's snapshot hash
(`snapshot.snapshot_sha256`): at 20 000 studies 571 MB, 0.3 CPU s and up to 0.6 s of wall time
a pass. Inside `read_once` (the build service holds it while it holds the data dir's lock, so
the snapshot does not change under it) each file's digest is computed once and remembered;
outside it every call reads the file. Nothing here loads more than the standard library: the
CLI warms the digests on a second thread while it imports the build (`warm`). The release's
checksums hash its files with `file_sha256` too.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

_lock = threading.Lock()
"""Guards `_memo` only: a file is read outside it, so a block opened, or another file asked
for, does not wait while a gigabyte archive is read (the build's start waited 2 s for the
warming thread's archive at 560 000 studies)."""
_memo: dict[str, Future[bytes]] | None = None
"""Each digest asked for (read, or being read) by absolute path while a `read_once` block is
open, else None."""


CHUNK_BYTES = 16 * 2**20
"""What a file is read and hashed in at a time. hashlib lets go of the GIL while it digests a
chunk, and the thread must take it back after each read and each digest: beside a thread
that holds the GIL (the build's imports), each take waits out the switch interval (5 ms).
800 MB took 31-34 s in hashlib.file_digest's chunks of 256 KiB beside a busy thread (0.74-1.8
s alone), 9.0-9.3 s in chunks of 1 MiB, 1.37-1.40 s in 16 MiB (0.81 s alone; 32 MiB: 1.15-1.20
and 0.89-0.91; bench/README.md, session 17)."""


def file_sha256(path: Path) -> bytes:
    """A file's SHA-256, read in chunks of CHUNK_BYTES (a bulk archive is gigabytes: never
    read whole) into an anonymous mapping, unmapped at the end: a chunk from malloc stays in
    the heap of the thread that freed it (a bytearray of 16 MiB raised a bundled build's peak
    RSS by 75 MiB), and a mapping's pages are made only as the file fills them."""
    digest = hashlib.sha256()
    with (
        path.open("rb") as handle,
        mmap.mmap(-1, CHUNK_BYTES) as chunk,
        memoryview(chunk) as view,
    ):
        while size := handle.readinto(view):
            digest.update(view[:size])
    return digest.digest()


def sha256(path: Path) -> bytes:
    """The file's SHA-256 digest; inside `read_once`, read once however often asked.

    The first thread to ask for a file reads it; another asking meanwhile waits for that
    digest rather than reading the file again. A read that failed is not remembered: whoever
    asks next reads the file and meets the error itself.
    """
    key = os.path.abspath(path)
    mine: Future[bytes] | None = None
    with _lock:
        memo = _memo
        known = memo.get(key) if memo is not None else None
        if memo is not None and known is None:
            memo[key] = mine = Future()
    if known is not None:
        try:
            return known.result()
        except OSError:
            return file_sha256(path)
    if memo is None or mine is None:
        return file_sha256(path)
    return _read_for(memo, key, mine, path)


def _read_for(memo: dict[str, Future[bytes]], key: str, mine: Future[bytes], path: Path) -> bytes:
    """Read the file whose digest `mine` promises to the threads that wait for it."""
    try:
        digest = file_sha256(path)
    except BaseException as error:
        with _lock:
            memo.pop(key, None)
        mine.set_exception(error)
        raise
    mine.set_result(digest)
    return digest


@contextmanager
def read_once() -> Iterator[None]:
    """Remember every digest asked for until the block ends (nested blocks share the outer one).

    For a build: its inputs do not change while it runs, and a file changed after the block is
    read again by the next one.
    """
    global _memo
    with _lock:
        outer = _memo is not None
        if not outer:
            _memo = {}
    try:
        yield
    finally:
        if not outer:
            with _lock:
                _memo = None


def warm(paths: Iterable[Path]) -> threading.Thread:
    """Hash `paths` into the open `read_once` block on a daemon thread, and return it.

    `hashlib` lets go of the GIL while it digests, so this runs on a second core beside work
    that holds it (the build's imports).
    """
    files = list(paths)

    def run() -> None:
        for path in files:
            if _memo is None:
                return  # the block ended: nobody will ask for these digests
            try:
                sha256(path)
            except OSError:
                return  # whoever needs the digest reads the file itself and meets the error

    thread = threading.Thread(target=run, name="digests-warm", daemon=True)
    thread.start()
    return thread

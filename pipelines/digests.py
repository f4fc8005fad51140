"""Files' SHA-256, each file read once within a build.

A build hashes its snapshot three times over: its inputs' fingerprint (pipelines/build_inputs.py),
the raw inventories (pipelines/assets/raw.py) and the release's snapshot hash
(`snapshot.snapshot_sha256`): at 20 000 studies 571 MB, 0.3 CPU s and up to 0.6 s of wall time
a pass. Inside `read_once` (the build service holds it while it holds the data dir's lock, so
the snapshot does not change under it) each file's digest is computed once and remembered;
outside it every call reads the file. Nothing here loads more than the standard library: the
CLI warms the digests on a second thread while it imports the build (`warm`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_lock = threading.Lock()
_memo: dict[str, bytes] | None = None
"""Digests by absolute path while a `read_once` block is open, else None."""


def _read(path: Path) -> bytes:
    """A file's SHA-256, read in chunks (a bulk archive is gigabytes: never read whole)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def sha256(path: Path) -> bytes:
    """The file's SHA-256 digest; inside `read_once`, read once however often asked.

    The lock is held while a file is read, so a second thread asking for the same file waits
    for the first's digest rather than reading the file again.
    """
    if _memo is None:
        return _read(path)
    key = os.path.abspath(path)
    with _lock:
        memo = _memo
        if memo is None:
            return _read(path)
        found = memo.get(key)
        if found is None:
            found = memo[key] = _read(path)
        return found


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

"""Streams read a step ahead on a thread of their own."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")


def read_ahead(items: Iterator[_T], thread_name: str) -> Generator[_T, None, None]:
    """`items`, each next one read by a thread of its own while the caller works on the one
    before: at most two are held. Worth it where reading waits on DuckDB, which lets go of the
    GIL, and the caller's work (parsing, Parquet encoding) does too. An error raised reading
    is raised here; closing the generator waits for the read under way."""
    with ThreadPoolExecutor(1, thread_name_prefix=thread_name) as pool:
        ahead = pool.submit(next, items, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, items, None)
            yield item

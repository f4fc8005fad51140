"""A plain httpx stand-in for the shared client's `get_bytes` / `get_json`, for pager tests.

It sends real requests to the loopback server and records bodies like the shared client, but
does no retrying or pacing: those belong to `pipelines.http` and are tested there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson


class Loopback:
    """Requests to `base_url` with `default_params`, bodies recorded under `record_dir`."""

    def __init__(self, base_url: str, default_params: dict[str, str], record_dir: Path) -> None:
        self.base_url = base_url
        self.default_params = default_params
        self.record_dir = record_dir
        self.recorded: list[str] = []

    def get_bytes(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> bytes:
        query = {
            **self.default_params,
            **{k: v for k, v in (params or {}).items() if v is not None},
        }
        response = httpx.get(self.base_url + path, params=query, timeout=10)
        response.raise_for_status()
        if record_as:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            (self.record_dir / record_as).write_bytes(response.content)
            self.recorded.append(record_as)
        return response.content

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, record_as: str | None = None
    ) -> Any:
        return orjson.loads(self.get_bytes(path, params, record_as=record_as))

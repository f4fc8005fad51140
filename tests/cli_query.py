"""Running `kratom-evidence query` in-process, as the tests of published releases do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main


def query_json(data_dir: Path, sql: str, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    """Rows the CLI prints for `sql` with `--format json`; a failing query fails the test
    with the CLI's own error line."""
    capsys.readouterr()
    code = main(["query", sql, "--data-dir", str(data_dir), "--format", "json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)

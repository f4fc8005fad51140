"""The README's first queries, run as written against the bundled release.

The README is where a newcomer copies from first: each command of its "A first query" block
must run and answer with rows, and the design counts it prints must be the studies table's.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.cli import main
from tests.cli_query import query_json

pytestmark = pytest.mark.slow

PROGRAM = ".venv/bin/kratom-evidence"


def first_query_commands() -> list[list[str]]:
    """Arguments of each line of the README's first shell block under "A first query"."""
    readme = (paths.PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("\n## A first query\n", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert all(words[0] == PROGRAM for words in commands), commands
    return [words[1:] for words in commands]


def test_readme_first_queries_run_and_answer(
    bundled_release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = first_query_commands()
    assert [c[0] for c in commands] == ["query", "query", "releases"]
    by_design = query_json(bundled_release, commands[0][1], capsys)
    (total,) = query_json(bundled_release, "select count(*) as n from studies", capsys)
    assert sum(row["studies"] for row in by_design) == total["n"] > 0  # every study has a design
    kratom = query_json(bundled_release, commands[1][1], capsys)
    assert kratom and {row["compound_id"] for row in kratom} == {"kratom"}
    capsys.readouterr()
    assert main([*commands[2], "--data-dir", str(bundled_release)]) == 0
    assert "2026.11.25" in capsys.readouterr().out

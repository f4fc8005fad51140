"""The "Checking a download" commands of docs/releases-and-time-travel.md, run as written
against two real releases.

Like `_sql_statements()` in test_moved_data_dir.py for the SQL block: the docs are the interface
a reader copies from, so their commands must run and their promised output must be what they print.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pytest

from pipelines import paths
from pipelines.cli import main
from tests.release.conftest import DELETED_STUDY, FIRST_VERSION, SECOND_VERSION, TwoReleases

PAGE = paths.PROJECT_ROOT / "docs" / "releases-and-time-travel.md"
BLOCK_INTRO = "## Checking a download and seeing what changed"
PROGRAM = ".venv/bin/kratom-evidence"


@dataclass(frozen=True)
class DocsCommand:
    """One line of a documented shell block: the CLI arguments and the output its comment shows."""

    args: list[str]
    promised: str | None


def parse_command(line: str) -> DocsCommand:
    """`.venv/bin/kratom-evidence ARGS  # output` as arguments and promised output."""
    words = shlex.split(line, comments=True)
    assert words[0] == PROGRAM, line
    commented = words != shlex.split(line)
    return DocsCommand(words[1:], line.rpartition("# ")[2].strip() if commented else None)


def docs_commands(page: str) -> list[DocsCommand]:
    """The commands of the shell block that follows BLOCK_INTRO, in order."""
    block = page.split(BLOCK_INTRO, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [parse_command(line) for line in block.splitlines() if line.strip()]


def test_parse_command_splits_arguments_from_the_promised_output() -> None:
    line = f'{PROGRAM} query "select 1  # not a comment"   # prints 1'
    assert parse_command(line) == DocsCommand(["query", "select 1  # not a comment"], "prints 1")
    assert parse_command(f"{PROGRAM} releases") == DocsCommand(["releases"], None)


def test_docs_checking_a_download_runs_as_written(
    two_releases: TwoReleases, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = docs_commands(PAGE.read_text(encoding="utf-8"))
    assert [c.args[0] for c in commands] == ["validate", "diff", "query"]
    # The docs run from the project root, where the data dir is `data/`.
    monkeypatch.chdir(two_releases.data_dir.parent)
    assert two_releases.data_dir.name == "data"
    printed: dict[str, str] = {}
    for command in commands:
        args = (
            command.args if command.args[0] == "validate" else [*command.args, "--data-dir", "data"]
        )
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        assert (code, err) == (0, ""), args
        if command.promised is not None:
            assert out.strip() == command.promised
        printed[command.args[0]] = out

    assert printed["validate"].startswith("ok: ")
    diff = json.loads(printed["diff"])
    assert (diff["old_version"], diff["new_version"]) == (FIRST_VERSION, SECOND_VERSION)
    assert diff["tables"]["studies"]["removed_keys"] == [{"study_id": DELETED_STUDY}]
    manifest = json.loads((two_releases.first / "manifest.json").read_text(encoding="utf-8"))
    assert f" {manifest['tables']['studies']['rows']} " in printed["query"]

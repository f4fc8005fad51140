"""Where docs/refresh-and-politeness.md tells people to put their keys, git never picks them up."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.refresh import EMAIL_ENV, api_key_envs

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_dot_env_is_ignored_and_the_example_holds_no_value() -> None:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "--quiet", ".env"], cwd=REPO_ROOT, check=False)
    assert ignored.returncode == 0, ".env (keys, e-mail) must be git-ignored"
    settings = [
        line.split("=", 1)
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert settings and all(value == "" for _, value in settings)


def test_the_example_lists_the_contact_and_every_source_units_key_variable() -> None:
    """`make dev` copies .env.example to .env and Dagster's `EnvVar`s fail on an unset name, so
    a source unit naming an API key variable needs its line here."""
    names = {
        line.split("=", 1)[0]
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names == {EMAIL_ENV, *api_key_envs().values()}

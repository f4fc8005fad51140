"""README.md stays a newcomer's five minutes, and what it and docs/ show is what the code has.

The detail lives in docs/; the README keeps the layout, the two commands, a first query and the
command line. These tests hold it to its length, its links to files, its layout to the
folders and modules that exist, its command table to the parser of `kratom-evidence`, and the
tables page to the table registry of `schemas/`.
"""

from __future__ import annotations

import argparse
import re

from pipelines import paths
from pipelines.cli import parser
from pipelines.sources import SOURCES
from schemas import RELEASED

README = paths.PROJECT_ROOT / "README.md"
MAX_LINES = 200
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")
LAYOUT = "## Layout: sources → staging → curated → release"
PATH_NAME = re.compile(r"^[\w.-]+(/|\.py|\.yaml)$")


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _block_after(heading: str, text: str) -> str:
    """The first fenced block under `heading`."""
    section = text.split(f"\n{heading}\n", 1)[1]
    return section.split("```", 2)[1].split("\n", 1)[1]


def layout_paths(block: str) -> list[str]:
    """Paths the layout block names: top-level lines from the root, indented ones inside the
    last top-level folder. A line's names are its leading words that look like files or folders;
    a line that starts with a description continues the line above."""
    named: list[str] = []
    folder = ""
    for line in block.splitlines():
        names = []
        for word in line.split():
            if not PATH_NAME.match(word):
                break
            names.append(word)
        indented = line.startswith(" ")
        for name in names:
            named.append(f"{folder}{name}" if indented else name)
        if names and not indented:
            folder = names[-1] if names[-1].endswith("/") else ""
    return named


def test_layout_paths_reads_names_nesting_and_continuations() -> None:
    block = (
        "top/          a folder\n"
        "  a.py b/     two names\n"
        "              a continuation: not/ a name\n"
        "x.yaml y/     two at the top\n"
        "  c.py        inside y/\n"
    )
    assert layout_paths(block) == ["top/", "top/a.py", "top/b/", "x.yaml", "y/", "y/c.py"]


def test_readme_is_at_most_two_hundred_lines() -> None:
    assert len(_readme().splitlines()) <= MAX_LINES


def test_every_relative_link_of_the_readme_resolves_to_a_file() -> None:
    targets = [t for t in LINK.findall(_readme()) if "://" not in t]
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if not (paths.PROJECT_ROOT / t).is_file()]
    assert missing == []


def test_every_relative_link_of_the_docs_resolves_to_a_file() -> None:
    missing = []
    for page in sorted((paths.PROJECT_ROOT / "docs").glob("*.md")):
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).is_file():
                missing.append(f"{page.name}: {target}")
    assert missing == []


def test_layout_names_only_what_exists() -> None:
    named = layout_paths(_block_after(LAYOUT, _readme()))
    assert "pipelines/cli.py" in named
    missing = [name for name in named if not (paths.PROJECT_ROOT / name).exists()]
    assert missing == []


def test_layout_names_every_module_and_package_of_pipelines() -> None:
    """A module added to pipelines/ (or moved) must show in the README's layout too."""
    named = set(layout_paths(_block_after(LAYOUT, _readme())))
    pipelines_dir = paths.PROJECT_ROOT / "pipelines"
    present = {
        f"pipelines/{p.name}/" if p.is_dir() else f"pipelines/{p.name}"
        for p in pipelines_dir.iterdir()
        if (p.is_dir() and (p / "__init__.py").is_file())
        or (p.suffix == ".py" and p.name != "__init__.py")
    }
    assert sorted(present - named) == []


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_command_table_lists_every_command_with_options_it_really_takes() -> None:
    table = _readme().split("\n## The command line\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `kratom-evidence (\S+)([^`]*)` \|", table, re.MULTILINE)
    commands = _subcommands()
    assert sorted(name for name, _ in rows) == sorted(commands)
    for name, usage in rows:
        flags = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage))
        known = {s for a in commands[name]._actions for s in a.option_strings}
        assert flags <= known, (name, sorted(flags - known))


def test_tables_page_lists_every_released_table_with_its_primary_key() -> None:
    page = (paths.PROJECT_ROOT / "docs" / "tables.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", page, re.MULTILINE))
    expected = {spec.name: ", ".join(spec.primary_key) or "none" for spec in RELEASED}
    assert {name: key.strip() for name, key in listed.items()} == expected


REPO_PATH = re.compile(
    r"`((?:pipelines|schemas|scripts|tests|bench|data/reference|data/snapshot)/[^`\s<>{}*]*)`"
)


def test_every_repository_path_the_readme_and_docs_quote_exists() -> None:
    """A module moved or renamed must not leave its old path in the prose."""
    pages = [README, *sorted((paths.PROJECT_ROOT / "docs").glob("*.md"))]
    quoted = [
        (page.name, path)
        for page in pages
        for path in REPO_PATH.findall(page.read_text(encoding="utf-8"))
    ]
    assert ("refresh-and-politeness.md", "pipelines/http.py") in quoted
    assert [q for q in quoted if not (paths.PROJECT_ROOT / q[1]).exists()] == []


def test_refresh_page_counts_the_clinicaltrials_topic_queries() -> None:
    """ClinicalTrials.gov costs at least one request per topic query; the page says how many."""
    page = (paths.PROJECT_ROOT / "docs" / "refresh-and-politeness.md").read_text(encoding="utf-8")
    (said,) = re.findall(r"at least one request per query \((\d+) today\)", page)
    queries = (paths.REFERENCE_DIR / "topic_queries.csv").read_text(encoding="utf-8")
    assert int(said) == sum(line.startswith("clinicaltrials,") for line in queries.splitlines())


def test_snapshot_page_names_the_sources_the_bundled_snapshot_lacks() -> None:
    page = (paths.PROJECT_ROOT / "docs" / "snapshot.md").read_text(encoding="utf-8")
    (sentence,) = re.findall(r"It holds no ([^.]+) folder", " ".join(page.split()))
    said = set(re.findall(r"`(\w+)/`", sentence))
    lacking = {name for name in SOURCES if not (paths.BUNDLED_SNAPSHOT / name).is_dir()}
    assert said == lacking != set()

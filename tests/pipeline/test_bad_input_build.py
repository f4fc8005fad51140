"""The bad-input corpus through a whole build: quarantine cases reach the release's
quarantine.parquet with their reasons and the manifest's books balance; a broken file stops the
build with one line naming it."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from pipelines import paths
from pipelines.cli import main
from tests.unit.bad_input_corpus import CASES, CORPUS

pytestmark = pytest.mark.slow


def _snapshot_with(tmp_path: Path, names: list[str]) -> Path:
    """The bundled snapshot plus corpus files, copied into a temp folder."""
    snapshot = tmp_path / "snap"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, snapshot)
    for name in names:
        target = snapshot / name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(CORPUS / name, target)
    return snapshot


def test_quarantine_cases_reach_the_release_with_their_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staged = [c for c in CASES if c.outcome in ("quarantine", "ok")]
    snapshot = _snapshot_with(tmp_path, [c.path for c in staged])
    data_dir = tmp_path / "out"

    assert main(["build", "--snapshot", str(snapshot), "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()

    (release,) = (data_dir / "releases").iterdir()
    quarantine = duckdb.sql(
        f"SELECT source, source_file, reason FROM '{release / 'quarantine.parquet'}'"
    ).fetchall()
    for case in staged:
        reasons = [reason for _, file, reason in quarantine if file == case.path]
        if case.outcome == "ok":
            assert reasons == [], case.path
        else:
            assert len(reasons) == 1 and case.reason in reasons[0], (case.path, reasons)
    books = json.loads((release / "manifest.json").read_text())["accounting"]["sources"]
    expected = Counter(c.source for c in staged if c.outcome == "quarantine")
    for source, counts in books.items():
        assert counts["records_read"] == (
            counts["records_staged"] + counts["records_quarantined"] + counts["exact_duplicates"]
        ), source
        assert counts["records_quarantined"] == expected[source], source
    assert set(expected) <= set(books)
    assert books["clinicaltrials"]["exact_duplicates"] == 1  # page 1 repeats the bundled study


def test_broken_file_fails_the_build_with_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = _snapshot_with(tmp_path, ["pubmed/entity_bomb.xml"])

    code = main(["build", "--snapshot", str(snapshot), "--data-dir", str(tmp_path / "out")])

    error = capsys.readouterr().err
    assert code == 1
    assert len(error.strip().splitlines()) == 1
    assert str(snapshot / "pubmed" / "entity_bomb.xml") in error
    assert "unsafe XML refused" in error and "Traceback" not in error
    assert not (tmp_path / "out" / "releases").exists() or not any(
        (tmp_path / "out" / "releases").iterdir()
    )

"""Staging under a DuckDB `memory_limit` too low to parse a page of real-shape studies whole
(pipelines/setwise.py, `_Reader._pages`): the page is read record by record instead, staging
says so, and the staged tables are those staged at the warehouse's limit. Real DuckDB files,
real-shape studies from ../shared/samples/ctgov (skipped when absent). A limit too low for
staging at all fails the build with a line that names the setting to raise."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import orjson
import pytest

from pipelines import paths, setwise
from pipelines.build import BuildError, build
from pipelines.deployment import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV
from pipelines.release.publish import DataDir
from pipelines.staging import stage_source
from pipelines.warehouse import ensure_schemas
from tests.conftest import CREATED_AT
from tests.pipeline.test_parallel_staging import SAMPLES, _generator, staged_tables

STUDIES = 1000
LOW_LIMIT = "192MB"
"""A page of 1 000 real-shape studies (about 19 MB) parsed whole needs more than 256MB; its
records, a vector at a time, less than 160MB (bench/README.md, Session 25)."""


def one_page(out: Path) -> Path:
    generator = _generator()
    stream = generator.iter_studies(STUDIES, generator.load_templates(SAMPLES))
    folder = out / "clinicaltrials"
    folder.mkdir(parents=True)
    studies = [orjson.loads(next(stream)) for _ in range(STUDIES)]
    (folder / "page-00001.json").write_bytes(orjson.dumps({"studies": studies}))
    generator.write_info(out, STUDIES, SAMPLES, "one list page")
    return out


def staged_at(limit: str, snap: Path, database: Path) -> tuple[int, dict]:
    con = duckdb.connect(str(database), config={"memory_limit": limit})
    try:
        ensure_schemas(con)
        stats = stage_source(con, snap, "clinicaltrials")
        return stats.staged, staged_tables(con)
    finally:
        con.close()


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples absent")
def test_a_page_too_large_to_parse_whole_is_staged_record_by_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snap = one_page(tmp_path / "snap")
    said = "clinicaltrials/page-00001.json parsed whole did not fit DuckDB's memory_limit"
    with caplog.at_level(logging.WARNING, logger=setwise.__name__):
        expected = staged_at(DEFAULT_MEMORY_LIMIT, snap, tmp_path / "default.duckdb")
        assert said not in caplog.text
        low = staged_at(LOW_LIMIT, snap, tmp_path / "low.duckdb")
    assert f"{said}; reading its records one by one" in caplog.text
    assert expected[0] == STUDIES
    assert low == expected


def test_a_limit_too_low_to_stage_fails_the_build_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundled snapshot builds at 96MB and not at 64MB (bench/README.md, Session 25)."""
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "32MB")
    with pytest.raises(BuildError) as failed:
        build(paths.BUNDLED_SNAPSHOT, DataDir(tmp_path / "data"), created_at=CREATED_AT)
    message = str(failed.value)
    assert message.startswith("build failed in staging_clinicaltrials")
    assert "OutOfMemoryException" in message
    assert message.endswith(
        f"(the warehouse's DuckDB memory_limit is 32MB; set {MEMORY_LIMIT_ENV} higher)"
    )
    assert not (tmp_path / "data" / "releases").exists()

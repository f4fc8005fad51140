"""A work Crossref returns for one word of a query is dropped, counted and quarantined, not lost;
and a refresh without OPENALEX_API_KEY finishes, saying so in one line.

The emulator serves the bundled snapshot plus one orchid paper that shares only "speciosa" with
the query "Mitragyna speciosa" (Crossref matches any word). The real CLI refresh records the
page as returned, the screen drops the orchid (search_strategy.json counts it, SNAPSHOT.json
lists it under `off_topic`), and the published release has it in quarantine with that reason,
not in publications.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines import paths, snapshot
from pipelines.cli import main
from pipelines.devtools.emulator import make_server, running
from pipelines.sources.relevance import OFF_TOPIC_REASON
from tests.conftest import EMULATOR_RATE_SCALE

pytestmark = pytest.mark.slow

ORCHID = {
    "DOI": "10.5555/orchid.speciosa.1",
    "type": "journal-article",
    "title": ["Flowering of Dendrobium speciosa in cultivation"],
    "short-container-title": ["Synthetic Orchid J"],
}
"""Test data: Crossref's test prefix 10.5555, no real work."""
FAST = ["--pace", "0", "--timeout", "2", "--backoff", "0.02", "--no-progress"]


def test_off_topic_work_is_counted_listed_and_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    served = tmp_path / "served"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, served)
    page = served / "crossref" / "works-0001.json"
    body = json.loads(page.read_bytes())
    body["message"]["items"].append(ORCHID)
    page.write_text(json.dumps(body), encoding="utf-8")
    data_dir = tmp_path / "data"

    with running(make_server(served, rate_scale=EMULATOR_RATE_SCALE)) as server:
        assert (
            main(
                [
                    "refresh",
                    "--data-dir",
                    str(data_dir),
                    *FAST,
                    "--base-url",
                    f"all={server.base_url}",
                ]
            )
            == 0
        )

    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if line.startswith("kratom-evidence: openalex")]
    assert len(said) == 1 and said[0].startswith("kratom-evidence: openalex: no OPENALEX_API_KEY")
    (folder,) = sorted((data_dir / "snapshots").iterdir())
    strategy = json.loads((folder / "search_strategy.json").read_text())
    queries = {q["query"]: q for q in strategy["sources"]["crossref"]["queries"]}
    assert (queries["Mitragyna speciosa"]["dropped"], queries["kratom"]["dropped"]) == (1, 0)
    assert queries["Mitragyna speciosa"]["kept"] + 1 == queries["Mitragyna speciosa"]["hits"]
    listed = snapshot.off_topic_records(folder)["crossref"]
    assert list(listed) == [f"DOI:{ORCHID['DOI']}"]

    (release,) = sorted((data_dir / "releases").iterdir())
    quarantined = duckdb.sql(
        f"select reason from '{release / 'quarantine.parquet'}' where record_key = ?",
        params=[f"DOI:{ORCHID['DOI']}"],
    ).fetchall()
    assert quarantined == [(OFF_TOPIC_REASON,)]
    published = duckdb.sql(
        f"select count(*) from '{release / 'publications.parquet'}' where doi = ?",
        params=[ORCHID["DOI"]],
    ).fetchone()
    assert published == (0,)

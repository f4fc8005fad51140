"""Pure parts of the refresh: base URLs, reference inputs, the registries carried over."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines import paths
from pipelines.automation import recording_folder
from pipelines.refresh import (
    Credentials,
    RefreshError,
    busiest_window,
    credentials_from,
    live_base_urls,
    load_compound_ids,
    load_queries,
    parse_base_urls,
    previous_folder,
    write_info,
)
from pipelines.refresh.resume import open_snapshot
from pipelines.release.datadir import DataDir


def test_all_points_every_source_under_its_emulator_path() -> None:
    urls = parse_base_urls(["all=http://127.0.0.1:9/", "chembl=http://127.0.0.1:10/x"])
    assert urls["europepmc"] == "http://127.0.0.1:9/europepmc/rest"
    assert urls["pubmed"] == "http://127.0.0.1:9/pubmed"
    assert urls["chembl"] == "http://127.0.0.1:10/x"


def test_no_override_keeps_live_urls_and_one_source_points_one() -> None:
    assert parse_base_urls([]) == live_base_urls()
    urls = parse_base_urls(["crossref=http://127.0.0.1:9"])
    assert urls["crossref"] == "http://127.0.0.1:9"
    assert urls["pubmed"] == live_base_urls()["pubmed"]


@pytest.mark.parametrize("value", ["all", "pubmed=ftp://x", "nowhere=http://127.0.0.1:9"])
def test_bad_base_url_is_refused(value: str) -> None:
    with pytest.raises(RefreshError, match="--base-url"):
        parse_base_urls([value])


def test_reference_gives_queries_for_every_search_source_and_compound_ids() -> None:
    queries = load_queries(paths.REFERENCE_DIR)
    for source in ("clinicaltrials", "pubmed", "europepmc", "openalex", "crossref"):
        assert "kratom" in queries[source]
    ids = load_compound_ids(paths.REFERENCE_DIR)
    cids, chembl_ids = ids["pubchem"], ids["chembl"]
    assert 3034396 in cids and "CHEMBL299031" in chembl_ids
    assert cids == sorted(set(cids))


def test_registries_come_from_newest_complete_recorded_snapshot(tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    for stamp, complete in (("20260101T000000Z", True), ("20260201T000000Z", False)):
        folder = snapshots / stamp
        (folder / "registries").mkdir(parents=True)
        write_info(folder, "2026-01-01", complete=complete, notes="")
    current = snapshots / "20260301T000000Z"
    assert (
        previous_folder(snapshots, current, "registries")
        == snapshots / "20260101T000000Z" / "registries"
    )


def test_registries_fall_back_to_the_bundled_snapshot(tmp_path: Path) -> None:
    found = previous_folder(tmp_path / "snapshots", tmp_path / "snapshots" / "x", "registries")
    assert found == paths.BUNDLED_SNAPSHOT / "registries"


def test_credentials_come_from_the_variables_the_source_units_name() -> None:
    environ = {
        "KRATOM_EVIDENCE_EMAIL": " me@example.org ",
        "NCBI_API_KEY": "ncbi-key",
        "OPENALEX_API_KEY": "",
        "UNRELATED": "x",
    }
    creds = credentials_from(environ)
    assert creds.email == "me@example.org" and dict(creds.api_keys) == {"pubmed": "ncbi-key"}
    assert creds.key("pubmed") == "ncbi-key" and creds.key("openalex") is None
    assert credentials_from({}) == Credentials()


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("me@example.org", {"pubmed": "ncbi-key", "openalex": "oa-key"})
    assert "ncbi-key" not in repr(creds) and "me@example.org" not in repr(creds)
    assert sorted(creds.secrets()) == ["me@example.org", "ncbi-key", "oa-key"]


def test_busiest_window_counts_starts_inside_one_second() -> None:
    assert busiest_window([]) == 0
    assert busiest_window([0.0, 0.34, 0.67, 1.0, 1.34]) == 3
    assert busiest_window([0.0, 0.1, 0.2, 0.3, 5.0]) == 4
    assert busiest_window([2.0, 0.0, 1.5, 1.9]) == 3


def test_a_refresh_within_its_base_snapshots_second_records_in_the_next(tmp_path: Path) -> None:
    """A refresh started in the second its base snapshot was stamped (a fast machine: the
    since-last test met it) records in the next free second, and a scheduled run asks for
    that folder too, instead of failing on a folder that exists."""
    now = datetime(2026, 12, 6, 19, 1, 18, 250_000, tzinfo=UTC)
    base, _, _ = open_snapshot(tmp_path, now, None)
    write_info(base, "2026-12-06", complete=True, notes="base")
    delta, captured_at, extra = open_snapshot(tmp_path, now, base)
    assert [base.name, delta.name] == ["20261206T190118Z", "20261206T190119Z"]
    assert (captured_at, extra["captured_at_utc"]) == ("2026-12-06", "2026-12-06T19:01:19Z")
    write_info(delta, captured_at, complete=True, notes="delta")
    assert recording_folder(DataDir(tmp_path), now).name == "20261206T190120Z"

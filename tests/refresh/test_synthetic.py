"""The synthetic snapshot, the request minimum and the throughput figures of the politeness test."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.devtools.emulator import load_snapshot
from pipelines.refresh import live_sources, load_compound_ids, load_queries
from tests.refresh import request_audit, synthetic


def _counts(**changes: int) -> synthetic.Counts:
    base = dict(clinicaltrials=0, pubmed=0, europepmc=0, openalex=0, crossref=0, chembl=0, cids=0)
    return synthetic.Counts(**{**base, **changes})


def test_minimum_requests_one_page_per_page_size_and_one_for_no_hits() -> None:
    counts = _counts(clinicaltrials=3500, europepmc=1000, openalex=101, chembl=1001, pubmed=1)
    assert synthetic.minimum_requests(counts) == {
        "clinicaltrials": 4,
        "pubmed": 2,
        "europepmc": 1,
        "openalex": 3,
        "crossref": 1,
        "pubchem": 0,
        "chembl": 2,
    }


def test_minimum_requests_pubmed_esearch_alone_when_nothing_matches() -> None:
    assert synthetic.minimum_requests(_counts())["pubmed"] == 1


def test_minimum_requests_crossref_pays_the_empty_page_that_ends_it() -> None:
    assert synthetic.minimum_requests(_counts(crossref=2000))["crossref"] == 3


def test_minimum_requests_pubchem_asks_properties_and_synonyms_per_batch() -> None:
    assert synthetic.minimum_requests(_counts(cids=201))["pubchem"] == 6


def test_minimum_requests_scale_with_queries_except_compound_lookups() -> None:
    one = synthetic.minimum_requests(_counts(pubmed=600, cids=5, chembl=5))
    four = synthetic.minimum_requests(_counts(pubmed=600, cids=5, chembl=5), queries=4)
    assert four["pubmed"] == 4 * one["pubmed"] == 12
    assert (four["pubchem"], four["chembl"]) == (one["pubchem"], one["chembl"]) == (2, 1)


def test_synthetic_snapshot_serves_every_record_and_ids_are_synthetic(tmp_path: Path) -> None:
    counts = synthetic.Counts(
        clinicaltrials=12, pubmed=7, europepmc=5, openalex=3, crossref=4, chembl=6, cids=9
    )
    loaded = load_snapshot(synthetic.write_snapshot(tmp_path / "snap", counts))

    served = {s: len(loaded.of(s)) for s in ("clinicaltrials", "europepmc")}
    served |= {s: len(loaded.of(s).works) for s in ("openalex", "crossref")}
    assert served == {"clinicaltrials": 12, "europepmc": 5, "openalex": 3, "crossref": 4}
    assert len(loaded.of("pubmed").articles) == 7 and len(loaded.of("chembl")) == 6
    assert len(loaded.of("pubchem").properties) == len(loaded.of("pubchem").synonyms) == 9
    first = loaded.of("clinicaltrials")[0].record["protocolSection"]["identificationModule"]
    assert first["nctId"] == "NCT90000001"
    assert loaded.of("crossref").works[0]["DOI"].startswith("10.5555/")
    assert b'<PMID Version="1">99000001</PMID>' in loaded.of("pubmed").articles[0]


def test_synthetic_reference_has_one_query_per_source_and_the_synthetic_compounds(
    tmp_path: Path,
) -> None:
    counts = _counts(cids=250, molecules=2)
    reference = synthetic.write_reference(tmp_path / "reference", counts)

    queries = load_queries(reference)
    assert set(queries) <= set(live_sources()) and all(len(q) == 1 for q in queries.values())
    ids = load_compound_ids(reference)
    cids, chembl_ids = ids["pubchem"], ids["chembl"]
    assert cids == [990_000_001 + i for i in range(250)]
    assert chembl_ids == ["CHEMBL99000001", "CHEMBL99000002"]


def _log(*entries: tuple[float, float, float]) -> list[dict[str, float]]:
    """Request log entries from (started_at, elapsed, paced)."""
    return [{"started_at": t, "elapsed": e, "paced": paced} for t, e, paced in entries]


def test_throughput_counts_gaps_between_starts() -> None:
    assert request_audit.throughput(_log((0.0, 0.01, 0), (0.5, 0.01, 0), (1.0, 0.01, 0))) == 2.0


def test_instant_throughput_takes_off_only_an_answer_slower_than_the_interval() -> None:
    # the second answer took 0.9 s; start-paced, the third request went out right after it
    log = _log((0.0, 0.01, 0.0), (0.5, 0.9, 0.49), (1.4, 0.01, 0.0))
    assert request_audit.throughput(log) == pytest.approx(2 / 1.4)
    assert request_audit.instant_throughput(log, 0.5) == pytest.approx(2 / 1.0)


def test_instant_throughput_takes_off_the_clients_own_late_work_too() -> None:
    # answers are quick, but the client (a loaded machine) asked again only 0.8 s after a start
    log = _log((0.0, 0.01, 0.0), (0.5, 0.01, 0.45), (1.3, 0.01, 0.0))
    assert request_audit.throughput(log) == pytest.approx(2 / 1.3)
    assert request_audit.instant_throughput(log, 0.5) == pytest.approx(2 / 1.0)


def test_instant_throughput_takes_off_a_sleep_that_woke_late_but_not_the_hold() -> None:
    # a 0.5 s interval kept by sleeps that each returned 0.1 s late (a loaded machine)
    log = [
        {"started_at": 0.0, "elapsed": 0.01, "paced": 0.0, "overslept": 0.0},
        {"started_at": 0.6, "elapsed": 0.01, "paced": 0.59, "overslept": 0.1},
        {"started_at": 1.2, "elapsed": 0.01, "paced": 0.59, "overslept": 0.1},
    ]
    assert request_audit.throughput(log) == pytest.approx(2 / 1.2)
    assert request_audit.instant_throughput(log, 0.5) == pytest.approx(2 / 1.0)


def test_instant_throughput_still_shows_pacing_from_the_end_of_each_answer() -> None:
    # a client that holds each request the 0.5 s interval after each 0.4 s answer: 0.9 s each
    log = _log((0.0, 0.4, 0.0), (0.9, 0.4, 0.5), (1.8, 0.4, 0.5))
    assert request_audit.instant_throughput(log, 0.5) == pytest.approx(2 / 1.8)

"""Server-side state expires: a refresh paused longer than the emulator's cursor and WebEnv
lifetime resumes by re-running esearch and restarting cursor-paged queries, and records exactly
what a clean refresh records.

Real HTTP over loopback against `serve-snapshot`. The first run is stopped half-way through
every cursor-paged source (a final 400 on a later page), which leaves the snapshot incomplete;
after a pause longer than the state's lifetime, the cursors and the WebEnv that run was given
are dead (the test shows the emulator's documented errors for them), and the resumed run must
still finish. The pause is the server's clock moved on, not a sleep: the lifetime can then be
long enough that no cursor dies between two pages of one run however late a loaded machine
sends the next request (with 2 s, a Crossref page paced 1.1 s apart had 0.9 s to spare).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pipelines.devtools.emulator import EmulatorServer, Reply, make_server, running
from pipelines.refresh import REQUEST_LOG, Credentials, live_sources
from pipelines.sources.serving import Expiry
from tests.conftest import EMULATOR_RATE_SCALE
from tests.refresh import synthetic

pytestmark = pytest.mark.slow

TTL = 60.0
"""Seconds the emulator keeps a cursor or WebEnv alive after handing it out, on its clock."""
KEYED = Credentials(api_keys={"openalex": "synthetic-openalex-key"})
"""Three refreshes share one emulator: with a key OpenAlex's keyless daily budget is not theirs."""
PAGE = 3
COUNTS = synthetic.Counts(
    clinicaltrials=4, pubmed=7, europepmc=7, openalex=7, crossref=7, chembl=3, cids=2
)
CURSORED = ("europepmc", "crossref", "openalex")
STOPPED = (*CURSORED, "pubmed")


class _StopLater:
    """The emulator's router, answering a final 400 to the third page of every cursor-paged
    source and PubMed while `on`: the first two pages of each are recorded, the rest not."""

    def __init__(self, answer: Callable[[str], Reply]) -> None:
        self.answer = answer
        self.on = True

    def __call__(self, target: str) -> Reply:
        query = parse_qs(urlsplit(target).query)
        third = {
            "cursorMark": f"o{2 * PAGE}",
            "cursor": f"o{2 * PAGE}",
            "retstart": str(2 * PAGE),
        }
        if self.on and any(query.get(k) == [v] for k, v in third.items()):
            return Reply(400, b'{"error": "stopped by the test"}')
        return self.answer(target)


class _Clock:
    """The emulator's clock: monotonic time plus the pauses the test skipped."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EmulatorServer, _StopLater, Path, _Clock]]:
    snapshot = synthetic.write_snapshot(tmp_path / "served", COUNTS)
    reference = synthetic.write_reference(tmp_path / "reference", COUNTS)
    server = make_server(
        snapshot, state_ttl=TTL, reference_dir=reference, rate_scale=EMULATOR_RATE_SCALE
    )
    clock = _Clock()
    server.api.state = Expiry(TTL, clock=clock)
    stopper = _StopLater(server.api.answer)
    server.api.answer = stopper  # type: ignore[method-assign]
    with running(server):
        yield server, stopper, reference, clock


def _pages(folder: Path) -> dict[str, bytes]:
    """Every recorded page of every source, by `source/name`."""
    return {
        f"{source}/{path.name}": path.read_bytes()
        for source in live_sources()
        for path in sorted((folder / source).glob("*"))
        if not path.name.startswith(".")
    }


def _first_run_urls(folder: Path, source: str, path: str) -> list[str]:
    log = [json.loads(line) for line in (folder / REQUEST_LOG).read_text().splitlines()]
    return [e["url"] for e in log if e["source"] == source and path in e["url"]]


def test_paused_refresh_resumes_past_expired_cursors_and_equals_a_clean_one(
    tmp_path: Path, served: tuple[EmulatorServer, _StopLater, Path, _Clock]
) -> None:
    server, stopper, reference, clock = served
    resumed_dir, clean_dir = tmp_path / "resumed", tmp_path / "clean"

    first = synthetic.quick_refresh(
        resumed_dir, server.base_url, reference, page_size=PAGE, credentials=KEYED
    )
    assert not first.complete and set(first.failed) == set(STOPPED)
    folder = first.snapshot_dir
    recorded = _pages(folder)
    for source in CURSORED:
        assert sum(name.startswith(f"{source}/") for name in recorded) == 2
    clock.skipped += TTL + 0.5  # the pause, as the server sees it

    # What the first run was given is dead now: asking its second pages again (their cursor,
    # its WebEnv) gets each service's error instead of the page.
    stopper.on = False
    (epmc_url,) = _first_run_urls(folder, "europepmc", f"cursorMark=o{PAGE}")
    expired = httpx.get(epmc_url)
    assert expired.status_code == 400 and "cursorMark" in expired.json()["error"]
    (crossref_url,) = _first_run_urls(folder, "crossref", f"cursor=o{PAGE}")
    gone = httpx.get(crossref_url)
    assert gone.status_code == 404 and gone.json()["message-type"] == "resource-failure"
    assert gone.json()["message"][0]["type"] == "cursor-invalid"
    (openalex_url,) = _first_run_urls(folder, "openalex", f"cursor=o{PAGE}")
    assert httpx.get(openalex_url).status_code == 400
    efetch_url = _first_run_urls(folder, "pubmed", "/efetch.fcgi?")[1]
    history = httpx.get(efetch_url)
    assert history.status_code == 400 and b"Unable to obtain query" in history.content

    asked_before = len(server.requests)
    second = synthetic.quick_refresh(
        resumed_dir, server.base_url, reference, page_size=PAGE, credentials=KEYED
    )
    assert second.complete and second.failed == {}
    assert second.snapshot_dir == folder
    resumed_asks = server.requests[asked_before:]

    clean = synthetic.quick_refresh(
        clean_dir, server.base_url, reference, page_size=PAGE, credentials=KEYED
    )
    assert clean.complete
    assert _pages(folder) == _pages(clean.snapshot_dir)

    # Cursor-paged queries started over from their first page; PubMed opened a new history
    # and read its two recorded efetch pages back instead of asking them again.
    for source, first_page in (
        ("europepmc", "cursorMark=%2A"),
        ("crossref", "cursor=%2A"),
        ("openalex", "cursor=%2A"),
    ):
        asked = [t for t in resumed_asks if t.startswith(f"/{source}/")]
        assert first_page in asked[0], (source, asked)
    pubmed_asks = [t for t in resumed_asks if t.startswith("/pubmed/")]
    assert "/esearch.fcgi?" in pubmed_asks[0]
    assert [parse_qs(urlsplit(t).query)["retstart"] for t in pubmed_asks[1:]] == [["6"]]
    # ClinicalTrials.gov, PubChem and ChEMBL had finished: nothing of theirs was asked again.
    assert not [
        t for t in resumed_asks if t.startswith(("/clinicaltrials/", "/pubchem/", "/chembl/"))
    ]
    hits = {s: o.hits for s, o in second.outcomes.items()}
    assert hits == {s: o.hits for s, o in clean.outcomes.items()}

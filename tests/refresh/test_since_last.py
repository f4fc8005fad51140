"""`refresh --since-last`: one change-filtered request per source, merged into a whole snapshot.

The slow tests run the real CLI over loopback against the emulator: a full refresh of
data/snapshot is the base; the emulator then serves a copy in which a few records changed, and the
incremental refresh must publish exactly the tables a full refresh of that copy publishes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pyarrow.parquet as pq
import pytest

from pipelines import paths
from pipelines.cli import main
from pipelines.devtools.emulator import (
    EmulatorServer,
    Reply,
    SnapshotApi,
    load_snapshot,
    make_server,
    running,
    topic_queries,
)
from pipelines.http import redact_url
from pipelines.refresh import (
    Credentials,
    HttpSettings,
    combined_query,
    delta_request,
    parse_base_urls,
    refresh,
)
from pipelines.refresh.settings import live_units
from pipelines.snapshot import source_files, superseded_records
from pipelines.sources import SOURCES
from pipelines.sources.openalex import OPENALEX_UNFILTERED
from tests.conftest import EMULATOR_RATE_SCALE
from tests.refresh import synthetic

FAST = ["--pace", "0", "--timeout", "30", "--backoff", "0.02", "--max-tries", "4", "--no-progress"]
"""No pace, short back-offs; a timeout no answer of the in-process emulator reaches even at load
(with 2 s, an answer late at load 20 was asked again, and Crossref counted 3 requests for 2)."""
TODAY = datetime.now(UTC).date()
SEARCHED = ("clinicaltrials", "pubmed", "europepmc", "openalex", "crossref")


class _HeldAnswers:
    """The emulator's router, holding answers under `prefix` for `seconds`; counts those begun."""

    def __init__(self, answer: Callable[[str], Reply], prefix: str, seconds: float) -> None:
        self.answer, self.prefix, self.seconds = answer, prefix, seconds
        self.begun = 0

    def __call__(self, target: str) -> Reply:
        if target.startswith(self.prefix):
            self.begun += 1
            time.sleep(self.seconds)
        return self.answer(target)


def _serve(snapshot_dir: Path) -> Iterator[EmulatorServer]:
    server = make_server(snapshot_dir, rate_scale=EMULATOR_RATE_SCALE)
    with running(server):
        yield server


def _refresh(data_dir: Path, server: EmulatorServer, *extra: str) -> int:
    args = ["refresh", "--data-dir", str(data_dir), "--base-url", f"all={server.base_url}"]
    return main([*args, *FAST, *extra])


def _manifests(data_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (data_dir / "releases").glob("*/manifest.json")]


def _latest(data_dir: Path) -> dict:
    """Manifest of the newest release (the one no other release names as previous)."""
    manifests = _manifests(data_dir)
    previous = {m["previous_version"] for m in manifests}
    (latest,) = [m for m in manifests if m["version"] not in previous]
    return latest


def _latest_tables(data_dir: Path) -> dict[str, str]:
    """sha256 per table of the newest release."""
    return {name: entry["sha256"] for name, entry in _latest(data_dir)["tables"].items()}


def _snapshots(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "snapshots").iterdir())


def _assert_base_carried_byte_for_byte(new: Path, base: Path) -> None:
    """Every source file of the base sits in the new snapshot unchanged, under the same name."""
    carried = [p for source in SOURCES for p in source_files(base, source)]
    assert carried
    for path in carried:
        assert (new / path.relative_to(base)).read_bytes() == path.read_bytes(), path


def _live_keys(folder: Path, source: str) -> set[str | None]:
    """Record keys the build stages from `source`: every file's, minus the superseded ones."""
    parser, superseded = SOURCES[source], superseded_records(folder)
    return {
        key
        for path in source_files(folder, source)
        for record in parser.iter_records(path)
        if (key := parser.record_key(record)) not in superseded.get(f"{source}/{path.name}", ())
    }


def _by_source(requests: list[str]) -> Counter[str]:
    return Counter(path.split("/")[1] for path in requests)


def _params(requests: list[str], source: str) -> list[dict[str, str]]:
    return [
        {k: v[-1] for k, v in parse_qs(urlsplit(p).query).items()}
        for p in requests
        if p.startswith(f"/{source}/")
    ]


@pytest.fixture(scope="module")
def base_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete snapshot recorded by a full refresh of the emulator serving data/snapshot."""
    data_dir = tmp_path_factory.mktemp("base")
    for server in _serve(paths.BUNDLED_SNAPSHOT):
        result = refresh(
            data_dir,
            parse_base_urls([f"all={server.base_url}"]),
            Credentials(),
            datetime.now(UTC),
            settings=HttpSettings(timeout=30.0, backoff_base=0.02, pace=0.0),
            show_progress=False,
        )
    assert result.complete
    return result.snapshot_dir


def _data_dir_on(base_snapshot: Path, root: Path) -> Path:
    """A fresh data dir whose only recorded snapshot is a copy of the base."""
    shutil.copytree(base_snapshot, root / "snapshots" / base_snapshot.name)
    return root


def _served_copy(root: Path) -> Path:
    served = root / "served"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, served)
    return served


def _edit_study(served: Path, nct: str, **status: object) -> dict:
    path = served / "clinicaltrials" / f"{nct}.json"
    study = json.loads(path.read_text())
    study["protocolSection"]["statusModule"].update(status)
    path.write_text(json.dumps(study, indent=1))
    return study


def _updated_today() -> dict[str, object]:
    return {"lastUpdatePostDateStruct": {"date": TODAY.isoformat(), "type": "ACTUAL"}}


# --- pure parts ---------------------------------------------------------------------------------


def test_combined_query_ors_groups_except_crossref_words() -> None:
    queries = ["kratom", "Mitragyna speciosa"]
    assert combined_query("pubmed", queries) == "(kratom) OR (Mitragyna speciosa)"
    assert combined_query("crossref", queries) == "kratom Mitragyna speciosa"


def test_delta_request_puts_each_change_filter_where_its_api_reads_it() -> None:
    since, until = date(2026, 1, 2), date(2026, 1, 5)
    assert delta_request("clinicaltrials", "q", since, until)[1] == {
        "/api/v2/studies": {"filter.advanced": "AREA[LastUpdatePostDate]RANGE[2026-01-02,MAX]"}
    }
    assert delta_request("pubmed", "q", since, until)[1] == {
        "/esearch.fcgi": {"datetype": "mdat", "mindate": "2026/01/02", "maxdate": "2026/01/05"}
    }
    assert delta_request("europepmc", "(a) OR (b)", since, until) == (
        "((a) OR (b)) AND (UPDATE_DATE:[2026-01-02 TO 2026-01-05])",
        {},
    )
    assert delta_request("openalex", "q", since, until)[1] == {
        "/works": {"filter": "from_updated_date:2026-01-02"}
    }
    assert delta_request("crossref", "q", since, until)[1] == {
        "/works": {"filter": "from-update-date:2026-01-02"}
    }


def _api(tmp_path: Path) -> SnapshotApi:
    served = _served_copy(tmp_path)
    path = served / "crossref" / "works-0001.json"
    doc = json.loads(path.read_text())
    doc["message"]["items"][0]["deposited"] = {"date-time": "2026-03-04T05:06:07Z"}
    path.write_text(json.dumps(doc))
    path = served / "europepmc" / "search-0001.json"
    doc = json.loads(path.read_text())
    doc["resultList"]["result"][0]["firstIndexDate"] = "2026-03-04"
    path.write_text(json.dumps(doc))
    pubmed = served / "pubmed" / "efetch-0001.xml"
    text = pubmed.read_text()
    first_pmid = text.split("<PMID", 1)[1].split("</PMID>", 1)[0]
    revised = "<DateRevised><Year>2026</Year><Month>03</Month><Day>04</Day></DateRevised>"
    pubmed.write_text(text.replace(f"{first_pmid}</PMID>", f"{first_pmid}</PMID>{revised}", 1))
    return SnapshotApi(load_snapshot(served), topics=topic_queries(paths.REFERENCE_DIR))


def test_emulator_narrows_each_source_to_its_change_window(tmp_path: Path) -> None:
    api = _api(tmp_path)
    crossref = json.loads(api.answer("/crossref/works?filter=from-update-date:2026-03-01").body)
    assert len(crossref["message"]["items"]) == 1
    late = json.loads(api.answer("/crossref/works?filter=from-update-date:2026-03-05").body)
    assert late["message"]["items"] == []
    everything = json.loads(api.answer("/crossref/works?rows=1000").body)
    assert len(everything["message"]["items"]) == 43

    search = api.answer(
        "/pubmed/esearch.fcgi?term=&datetype=mdat&mindate=2026/03/01&maxdate=2026/03/31"
    )
    result = json.loads(search.body)["esearchresult"]
    assert result["count"] == "1"
    fetched = api.answer(
        f"/pubmed/efetch.fcgi?query_key=1&WebEnv={result['webenv']}&retstart=0&retmax=20"
    )
    assert fetched.body.count(b"<PubmedArticle>") == 1 and b"<DateRevised>" in fetched.body
    assert json.loads(api.answer("/pubmed/esearch.fcgi?term=").body)["esearchresult"][
        "count"
    ] == str(len(api.data.of("pubmed").articles))

    window = quote("(kratom) AND (UPDATE_DATE:[2026-03-01 TO 2026-03-31])")
    epmc = json.loads(api.answer(f"/europepmc/rest/search?query={window}").body)
    assert epmc["hitCount"] == 1 and epmc["resultList"]["result"][0]["firstIndexDate"]
    window = quote("(kratom) AND (UPDATE_DATE:[2026-04-01 TO 2026-04-30])")
    assert json.loads(api.answer(f"/europepmc/rest/search?query={window}").body)["hitCount"] == 0
    assert api.answer("/openalex/works?filter=from_updated_date:2026-01-01&api_key=k").status == 200
    assert api.answer("/openalex/works?filter=publication_year:2020").status == 400


def test_emulator_refuses_openalex_change_filter_without_an_api_key(tmp_path: Path) -> None:
    api = _api(tmp_path)

    refused = api.answer("/openalex/works?search=kratom&filter=from_updated_date:2026-01-01")

    assert refused.status == 403
    body = json.loads(refused.body)
    assert body["error"] == "Forbidden" and "API key" in body["message"]
    assert api.answer("/openalex/works?search=kratom").status == 200


# --- end to end over loopback -------------------------------------------------------------------


@pytest.mark.slow
def test_since_last_with_nothing_changed_asks_each_source_once_and_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENALEX_API_KEY", "oa-key-for-the-filter")
    for server in _serve(paths.BUNDLED_SNAPSHOT):
        assert _refresh(tmp_path, server) == 0
        first = len(server.requests)
        capsys.readouterr()
        assert _refresh(tmp_path, server, "--since-last") == 0
        asked = server.requests[first:]

    assert _by_source(asked) == {source: 1 for source in SEARCHED}
    assert _params(asked, "clinicaltrials")[0]["filter.advanced"].startswith(
        "AREA[LastUpdatePostDate]RANGE["
    )
    assert _params(asked, "pubmed")[0]["datetype"] == "mdat"
    assert "UPDATE_DATE:[" in _params(asked, "europepmc")[0]["query"]
    assert _params(asked, "openalex")[0]["filter"].startswith("from_updated_date:")
    assert _params(asked, "openalex")[0]["api_key"] == "oa-key-for-the-filter"
    assert _params(asked, "crossref")[0]["filter"].startswith("from-update-date:")
    assert " OR " in _params(asked, "clinicaltrials")[0]["query.term"]
    assert "nothing changed since release" in capsys.readouterr().out
    assert len(_manifests(tmp_path)) == 1
    base, new = _snapshots(tmp_path)
    info = json.loads((new / "SNAPSHOT.json").read_text())
    assert info["incremental_from"] == base.name and info["method"] == "recorded"
    assert info["complete"] is True and info["notes"].startswith(f"Incremental from {base.name}")


@pytest.mark.slow
def test_since_last_fetches_only_the_delta_and_publishes_what_a_full_refresh_would(
    tmp_path: Path, base_snapshot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = _served_copy(tmp_path)
    _edit_study(served, "NCT05846451", overallStatus="ACTIVE_NOT_RECRUITING", **_updated_today())
    pubmed = served / "pubmed" / "efetch-0001.xml"
    day = TODAY
    revised = (
        f"<DateRevised><Year>{day.year}</Year><Month>{day.month:02d}</Month>"
        f"<Day>{day.day:02d}</Day></DateRevised>"
    )
    pubmed.write_text(pubmed.read_text().replace("3072396</PMID>", f"3072396</PMID>{revised}", 1))
    works = served / "crossref" / "works-0001.json"
    page = json.loads(works.read_text())
    page["message"]["items"][5]["deposited"] = {"date-time": f"{TODAY.isoformat()}T01:02:03Z"}
    works.write_text(json.dumps(page))
    incremental = _data_dir_on(base_snapshot, tmp_path / "incremental")
    full = tmp_path / "full"

    for server in _serve(served):
        assert _refresh(incremental, server, "--since-last") == 0
        asked = list(server.requests)
        assert _refresh(full, server) == 0

    # a non-empty page costs one more request where the pager stops on an empty page or count
    assert _by_source(asked) == {**{s: 1 for s in SEARCHED}, "pubmed": 2, "crossref": 2}
    assert _latest_tables(incremental) == _latest_tables(full)
    new = _snapshots(incremental)[-1]
    _assert_base_carried_byte_for_byte(new, _snapshots(incremental)[0])
    info = json.loads((new / "SNAPSHOT.json").read_text())
    by_source: dict[str, set[str]] = {}
    for name, keys in info["supersedes"].items():
        assert (new / name).is_file() and not Path(name).name.startswith("delta-"), name
        by_source.setdefault(name.split("/")[0], set()).update(keys)
    changed_doi = page["message"]["items"][5]["DOI"].lower()
    assert by_source == {
        "clinicaltrials": {"NCT05846451"},
        "pubmed": {"PMID:3072396"},
        "crossref": {f"DOI:{changed_doi}"},
    }
    books = _latest(incremental)["accounting"]["sources"]
    listed = Counter(name.split("/")[0] for name in info["supersedes"])
    for source, counts in books.items():
        assert counts["records_superseded"] == listed[source], source
        assert counts["records_read"] == (
            counts["records_staged"]
            + counts["records_quarantined"]
            + counts["exact_duplicates"]
            + counts["records_superseded"]
        ), source
    (delta,) = sorted((new / "clinicaltrials").glob("delta-*.json"))
    studies = json.loads(delta.read_text())["studies"]
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in studies] == [
        "NCT05846451"
    ]
    (xml,) = sorted((new / "pubmed").glob("delta-*.xml"))
    assert xml.read_text().count("<PubmedArticle>") == 1
    (crossref, _) = sorted((new / "crossref").glob("delta-*.json"))
    assert len(json.loads(crossref.read_text())["message"]["items"]) == 1
    capsys.readouterr()
    sql = "select overall_status from studies where study_id = 'NCT05846451'"
    assert main(["query", sql, "--data-dir", str(incremental), "--format", "csv"]) == 0
    assert "ACTIVE_NOT_RECRUITING" in capsys.readouterr().out


@pytest.mark.slow
def test_since_last_drops_the_record_a_changed_study_lists_as_its_nct_alias(
    tmp_path: Path, base_snapshot: Path
) -> None:
    served = _served_copy(tmp_path)
    (served / "clinicaltrials" / "NCT04392011.json").unlink()
    study = _edit_study(served, "NCT06089980", **_updated_today())
    study["protocolSection"]["identificationModule"]["nctIdAliases"] = ["NCT04392011"]
    (served / "clinicaltrials" / "NCT06089980.json").write_text(json.dumps(study, indent=1))
    incremental = _data_dir_on(base_snapshot, tmp_path / "incremental")
    full = tmp_path / "full"

    for server in _serve(served):
        assert _refresh(incremental, server, "--since-last") == 0
        assert _refresh(full, server) == 0

    assert _latest_tables(incremental) == _latest_tables(full)
    new = _snapshots(incremental)[-1]
    _assert_base_carried_byte_for_byte(new, _snapshots(incremental)[0])
    ids = _live_keys(new, "clinicaltrials")
    assert "NCT06089980" in ids and "NCT04392011" not in ids
    info = json.loads((new / "SNAPSHOT.json").read_text())
    superseded = {key for keys in info["supersedes"].values() for key in keys}
    assert superseded == {"NCT04392011", "NCT06089980"}
    assert "carried over byte for byte" in info["notes"]


def test_since_last_without_a_recorded_snapshot_stops_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "refresh",
            "--data-dir",
            str(tmp_path),
            "--since-last",
            "--base-url",
            "all=http://127.0.0.1:9",
        ]
    )

    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--since-last: no complete recorded snapshot" in err[0]
    assert err[0].endswith("run a full refresh first")
    assert not (tmp_path / "snapshots").exists()


@pytest.mark.slow
def test_interrupted_since_last_resumes_its_own_snapshot_and_chains_on_an_incremental_base(
    tmp_path: Path, base_snapshot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = _served_copy(tmp_path)
    _edit_study(served, "NCT05883358", overallStatus="COMPLETED", **_updated_today())
    data_dir = _data_dir_on(base_snapshot, tmp_path / "data")
    # A failed source is carried from the base, so only a killed process leaves a --since-last
    # snapshot unfinished: SIGKILL lands while Crossref's page is held in the emulator.
    for server in _serve(served):
        held = _HeldAnswers(server.api.answer, "/crossref/", seconds=5.0)
        server.api.answer = held  # type: ignore[method-assign]
        command = [sys.executable, "-m", "pipelines.cli", "refresh", "--data-dir", str(data_dir)]
        command += ["--base-url", f"all={server.base_url}", "--since-last", *FAST]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (held.begun and list(data_dir.glob("snapshots/*/clinicaltrials/delta-*"))):
            assert time.monotonic() < deadline and process.poll() is None, "no page in flight"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        first_base = server.base_url
    unfinished = _snapshots(data_dir)[-1]
    info = json.loads((unfinished / "SNAPSHOT.json").read_text())
    assert info["complete"] is False and info["incremental_from"] == base_snapshot.name
    # What the kill left recorded: the pages whose answer the unfinished snapshot holds (a page
    # the emulator answered but the killed client never wrote, as on a loaded machine, is not
    # kept, so the resume rightly asks it again). Crossref's page was asked, never answered.
    first = _recorded_pages(unfinished, first_base)
    assert any(p.startswith("/clinicaltrials/") for p in first)
    assert not any(p.startswith("/crossref/") for p in first)

    for server in _serve(served):
        assert _refresh(data_dir, server, "--since-last") == 0
        again = {
            redact_url(server.base_url + p).removeprefix(server.base_url) for p in server.requests
        }
        assert _refresh(data_dir, server, "--since-last") == 0

    assert _snapshots(data_dir)[-2] == unfinished
    # Asked again only: esearch (it opens a new WebEnv) and the pages of a cursor query the kill
    # left half-way, restarted because its cursor may have expired (LiveSource.state_expires).
    restarts = {name for name, live in live_units().items() if live.state_expires}
    assert {
        p
        for p in first & again
        if "/esearch.fcgi?" not in p and p.lstrip("/").split("/")[0] not in restarts
    } == set()
    chained = json.loads((_snapshots(data_dir)[-1] / "SNAPSHOT.json").read_text())
    assert chained["incremental_from"] == unfinished.name
    _assert_base_carried_byte_for_byte(_snapshots(data_dir)[-1], unfinished)
    first_delta = json.loads((unfinished / "SNAPSHOT.json").read_text())["supersedes"]
    later = {f: keys for f, keys in chained["supersedes"].items() if f not in first_delta}
    assert first_delta and chained["supersedes"] == {**first_delta, **later}
    # the study changed today, so today's second run fetches it again: it replaces the first's
    assert later == {f"clinicaltrials/delta-{unfinished.name}-0001.json": ["NCT05883358"]}
    assert "nothing changed since release" in capsys.readouterr().out
    sql = "select overall_status from studies where study_id = 'NCT05883358'"
    assert main(["query", sql, "--data-dir", str(data_dir), "--format", "csv"]) == 0
    assert "COMPLETED" in capsys.readouterr().out
    assert len(_manifests(data_dir)) == 1


def _recorded_pages(snapshot_dir: Path, base_url: str) -> set[str]:
    """Path and query (secrets redacted) of each request whose accepted answer the snapshot
    holds: its requests.jsonl entry without a problem, with the sha256 of a recorded file."""
    held = {
        hashlib.sha256(path.read_bytes()).hexdigest()
        for path in snapshot_dir.glob("*/*")
        if path.is_file()
    }
    log = [json.loads(line) for line in (snapshot_dir / "requests.jsonl").open()]
    return {
        entry["url"].removeprefix(base_url)
        for entry in log
        if entry["problem"] is None and entry["sha256"] in held
    }


def _openalex_since_last(data_dir: Path, served: Path, reference: Path, key: str | None) -> Path:
    """A --since-last refresh of `served` on top of `data_dir`'s snapshot, with or without key."""
    for server in _serve(served):
        result = synthetic.quick_refresh(
            data_dir,
            server.base_url,
            reference,
            page_size=3,
            credentials=Credentials(api_keys={"openalex": key} if key else {}),
            now=datetime.now(UTC) + timedelta(seconds=5),
            since_last=True,
        )
        asked = _params(list(server.requests), "openalex")
    assert result.complete, result.first_error
    assert all(p.get("api_key") == key for p in asked)
    filters = {p.get("filter") for p in asked}
    assert filters == ({None} if key is None else {f"from_updated_date:{TODAY.isoformat()}"})
    return result.snapshot_dir


def test_openalex_since_last_asks_in_full_without_a_key_and_by_change_date_with_one(
    tmp_path: Path,
) -> None:
    counts = synthetic.Counts(
        clinicaltrials=2, pubmed=2, europepmc=2, openalex=7, crossref=2, chembl=0, cids=1
    )
    served = synthetic.write_snapshot(tmp_path / "served", counts)
    reference = synthetic.write_reference(tmp_path / "reference", counts)
    for server in _serve(served):
        base = synthetic.quick_refresh(tmp_path / "base", server.base_url, reference, page_size=3)
    assert base.complete
    works = served / "openalex" / "works-0001.json"
    page = json.loads(works.read_text())
    page["results"][4]["updated_date"] = f"{TODAY.isoformat()}T01:02:03"
    works.write_text(json.dumps(page))
    every = {f"OPENALEX:{w['id'].rsplit('/', 1)[1]}" for w in page["results"]}

    for key in (None, "oa-key"):
        data_dir = _data_dir_on(base.snapshot_dir, tmp_path / f"key-{key}")
        new = _openalex_since_last(data_dir, served, reference, key)

        strategy = json.loads((new / "search_strategy.json").read_text())["sources"]
        info = json.loads((new / "SNAPSHOT.json").read_text())
        superseded = {
            k
            for name, keys in info["supersedes"].items()
            if name.startswith("openalex/")
            for k in keys
        }
        assert _live_keys(new, "openalex") == every
        assert all(strategy[s]["note"] is None for s in SEARCHED if s != "openalex")
        if key is None:
            # the unfiltered note, then the keyless budget's
            note = strategy["openalex"]["note"]
            assert note.startswith(f"{OPENALEX_UNFILTERED}; no OPENALEX_API_KEY: ")
            assert strategy["openalex"]["queries"][0]["hits"] == len(every)
            assert superseded == every
        else:
            assert strategy["openalex"]["note"] is None
            assert strategy["openalex"]["queries"][0]["hits"] == 1
            assert superseded == {f"OPENALEX:{page['results'][4]['id'].rsplit('/', 1)[1]}"}


@pytest.mark.slow
def test_full_refresh_leaves_a_tombstone_for_a_vanished_study_and_merged_into_for_an_alias(
    tmp_path: Path, base_snapshot: Path
) -> None:
    data_dir = _data_dir_on(base_snapshot, tmp_path / "data")
    recorded = data_dir / "snapshots" / base_snapshot.name
    # the full refresh that recorded the base ends with this build: the first release
    assert main(["build", "--snapshot", str(recorded), "--data-dir", str(data_dir)]) == 0
    first = _latest(data_dir)["version"]
    served = _served_copy(tmp_path)
    (served / "clinicaltrials" / "NCT05457803.json").unlink()
    (served / "clinicaltrials" / "NCT04392011.json").unlink()
    study = _edit_study(served, "NCT06089980", **_updated_today())
    study["protocolSection"]["identificationModule"]["nctIdAliases"] = ["NCT04392011"]
    (served / "clinicaltrials" / "NCT06089980.json").write_text(json.dumps(study, indent=1))

    for server in _serve(served):
        assert _refresh(data_dir, server) == 0

    latest = _latest(data_dir)
    assert latest["previous_version"] == first
    release = data_dir / "releases" / latest["version"]
    removed = pq.read_table(release / latest["tables"]["removed_records"]["file"]).to_pylist()
    assert {r["record_id"]: r for r in removed if r["record_type"] == "study"} == {
        "NCT05457803": {
            "record_type": "study",
            "record_id": "NCT05457803",
            "sources": ["clinicaltrials.gov"],
            "last_version_seen": first,
            "removed_in_version": latest["version"],
            "merged_into": None,
        },
        "NCT04392011": {
            "record_type": "study",
            "record_id": "NCT04392011",
            "sources": ["clinicaltrials.gov"],
            "last_version_seen": first,
            "removed_in_version": latest["version"],
            "merged_into": "NCT06089980",
        },
    }
    # the vanished trial's interaction rows lose their study: quarantined, and tombstoned
    evidence = {r["record_id"] for r in removed if r["record_type"] == "interaction"}
    quarantine = pq.read_table(release / latest["tables"]["quarantine"]["file"]).to_pylist()
    assert evidence == {
        r["record_key"]
        for r in quarantine
        if r["table_name"] == "interaction_effects"
        and r["reason"] == "study_id 'NCT04392011' not found in studies"
    }
    assert evidence
    versions = pq.read_table(release / latest["tables"]["record_versions"]["file"]).to_pylist()
    now = {(r["record_id"], r["change"]) for r in versions if r["version"] == latest["version"]}
    assert {("NCT05457803", "removed"), ("NCT04392011", "removed")} <= now

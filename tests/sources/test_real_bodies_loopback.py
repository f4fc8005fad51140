"""Every live client against the real recorded bodies of ../shared/samples, over loopback HTTP.

A local server replays the exact bytes of the real responses (read in place, never copied into
the repository), error bodies with their real status, in the order a script gives; each test
checks what the client does with them: pages followed and recorded byte for byte, counts
checked, retries, or one clear error. Skipped when the samples folder is absent.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.http import ResponseRecorder, SourceError, SourceHttp
from pipelines.refresh.record import RecordingClient
from pipelines.sources import SOURCES, chembl, crossref, europepmc, openalex, pubchem, pubmed
from pipelines.sources import clinicaltrials as ct
from pipelines.sources.base import LiveRun, RecordError, SnapshotFormatError

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"no samples in {SAMPLES}")

Answer = tuple[int, str]
"""(HTTP status, sample file below SAMPLES) the server answers with."""


def _sample(name: str) -> Path:
    return SAMPLES / name


def _files(folder: str, pattern: str = "*") -> list[str]:
    root = SAMPLES / folder
    return sorted(f"{folder}/{p.name}" for p in root.glob(pattern)) if root.is_dir() else []


class Replay:
    """Answers each request with the next scripted real body, and keeps the requests."""

    def __init__(self, script: list[Answer]) -> None:
        self.script = list(script)
        self.asked: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: Request) -> Response:
        self.asked.append((request.path, dict(request.args)))
        status, name = self.script.pop(0)
        body = _sample(name).read_bytes()
        kind = "text/plain" if name.endswith(".txt") else "application/xml"
        if name.endswith(".json"):
            kind = "application/json"
        return Response(body, status=status, content_type=kind)


def _serve(httpserver: HTTPServer, script: list[Answer]) -> Replay:
    replay = Replay(script)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(replay)
    return replay


def _http(source: str, server: HTTPServer, snapshot: Path, tries: int = 3) -> SourceHttp:
    return SourceHttp(
        source,
        server.url_for("").rstrip("/"),
        max_tries=tries,
        backoff_base=0.01,
        recorder=ResponseRecorder(snapshot),
        rng=random.Random(5),
    )


def _run(http: SourceHttp, work: list[Any], warnings: list[str], pacer: Any = None) -> LiveRun:
    live = SOURCES[http.source].live
    assert live is not None

    def client(
        prefix: str = "", fixed: Mapping[str, Mapping[str, Any]] | None = None
    ) -> RecordingClient:
        return RecordingClient(http, prefix, live.check_body, None, fixed, live.state_expires)

    return LiveRun(client, work, None, lambda n: None, pacer, warnings.append)


def _recorded(snapshot: Path, source: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((snapshot / source).glob("*"))]


def _bytes(*names: str) -> list[bytes]:
    return [_sample(n).read_bytes() for n in names]


# --- ClinicalTrials.gov ----------------------------------------------------------------------

CT_PAGE1 = "ctgov/v2_studies_page1_fields_totalCount_nextPageToken_biomcp.json"
CT_PAGE2 = "ctgov/v2_studies_page2_pageToken_no_totalCount_biomcp.json"
CT_LAST = "ctgov/v2_studies_page_NCT06388018_single_no_token.json"
CT_KEYTRUDA = "ctgov/v2_studies_query_intr_keytruda_pageSize3_biomcp.json"


@pytest.mark.parametrize(
    ("pages", "announced"),
    [([CT_PAGE1, CT_PAGE2, CT_LAST], 21), ([CT_KEYTRUDA, CT_LAST], 2924), ([CT_LAST], None)],
)
def test_clinicaltrials_follows_real_tokens_and_checks_total_count(
    httpserver: HTTPServer, tmp_path: Path, pages: list[str], announced: int | None
) -> None:
    replay = _serve(httpserver, [(200, p) for p in pages])
    warnings: list[str] = []
    with _http(ct.SOURCE, httpserver, tmp_path) as http:
        hits = ct.fetch(_run(http, ["kratom"], warnings))
    bodies = [json.loads(b) for b in _bytes(*pages)]
    studies = sum(len(b["studies"]) for b in bodies)
    assert hits == {"kratom": studies}
    assert _recorded(tmp_path, ct.SOURCE) == _bytes(*pages)
    tokens = [args.get("pageToken") for _, args in replay.asked]
    assert tokens == [None, *(b["nextPageToken"] for b in bodies[:-1])]
    assert [args.get("countTotal") for _, args in replay.asked] == ["true"] + [None] * (
        len(pages) - 1
    )
    expected = [f"query 'kratom': totalCount announced {announced}, {studies} recorded"]
    assert warnings == (expected if announced is not None else [])


@pytest.mark.parametrize("legacy", _files("ctgov_legacy"))
def test_clinicaltrials_legacy_xml_is_refused_as_not_json(
    httpserver: HTTPServer, tmp_path: Path, legacy: str
) -> None:
    replay = _serve(httpserver, [(200, legacy)] * 3)
    with _http(ct.SOURCE, httpserver, tmp_path) as http, pytest.raises(SourceError) as caught:
        ct.fetch(_run(http, ["kratom"], []))
    assert "after 3 tries: invalid body: body is not JSON" in str(caught.value)
    assert len(replay.asked) == 3 and not (tmp_path / ct.SOURCE).exists()


# --- PubMed ----------------------------------------------------------------------------------

PM_HISTORY = "pubmed/esearch_pubmed_webenv_translationstack.json"
PM_THROTTLED = "pubmed/esummary_json_error_api_rate_limit_exceeded_biomcp.json"
PM_EFETCH = _files("pubmed", "efetch_*.xml")


def test_pubmed_history_then_every_real_efetch_body(httpserver: HTTPServer, tmp_path: Path) -> None:
    """The real esearch (Count 15169, a WebEnv) and the three real efetch bodies as its pages;
    the cap is raised so the real count is paged as one search."""
    replay = _serve(httpserver, [(200, PM_HISTORY), *((200, e) for e in PM_EFETCH)])
    history = json.loads(_sample(PM_HISTORY).read_bytes())["esearchresult"]
    batch = -(-int(history["count"]) // len(PM_EFETCH))
    with _http(pubmed.SOURCE, httpserver, tmp_path) as http:
        client = _run(http, [], []).client("kratom__")
        bodies = list(pubmed.iter_efetch_pages(client, "kratom", batch=batch, cap=20_000))
    assert bodies == _bytes(*PM_EFETCH) == _recorded(tmp_path, pubmed.SOURCE)
    efetches = [args for path, args in replay.asked if path.endswith(pubmed.EFETCH_PATH)]
    assert {a["WebEnv"] for a in efetches} == {history["webenv"]}
    assert [int(a["retstart"]) for a in efetches] == [0, batch, 2 * batch]
    for path in sorted((tmp_path / pubmed.SOURCE).iterdir()):
        rows = [pubmed.parse_record(r) for r in pubmed.iter_records(path)]
        assert len(rows) == pubmed.count_records(path.read_bytes()) >= 1


def test_pubmed_real_count_over_the_cap_is_split_not_paged_past_it(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Count 15169 is over 9,999: the client asks for publication-date ranges instead of
    paging; the next (replayed) answer has no WebEnv, which is a clear error."""
    replay = _serve(
        httpserver, [(200, PM_HISTORY), (200, "pubmed/esearch_json_count3_no_warnings_biomcp.json")]
    )
    with _http(pubmed.SOURCE, httpserver, tmp_path) as http, pytest.raises(pubmed.SearchError):
        list(pubmed.iter_efetch_pages(_run(http, [], []).client(), "cancer"))
    assert "[dp]" in replay.asked[1][1]["term"]
    assert not any(path.endswith(pubmed.EFETCH_PATH) for path, _ in replay.asked)


def test_pubmed_real_rate_limit_body_is_retried(httpserver: HTTPServer, tmp_path: Path) -> None:
    script = [(200, PM_THROTTLED), (429, PM_THROTTLED), (200, PM_HISTORY), (200, PM_EFETCH[0])]
    _serve(httpserver, script)
    with _http(pubmed.SOURCE, httpserver, tmp_path, tries=4) as http:
        client = _run(http, [], []).client()
        bodies = list(pubmed.iter_efetch_pages(client, "cancer", batch=20_000, cap=20_000))
        problems = [e.problem for e in http.log]
    assert bodies == _bytes(PM_EFETCH[0])
    assert problems == [
        "invalid body: E-utilities: API rate limit exceeded",
        "HTTP 429",
        None,
        None,
    ]


@pytest.mark.parametrize(
    "body",
    [
        "pubmed/esearch_json_count3_no_warnings_biomcp.json",
        "pubmed/esearch_json_errorlist_phrasesnotfound_translationset_biomcp.json",
    ],
)
def test_pubmed_real_esearch_without_history_is_a_clear_error(
    httpserver: HTTPServer, tmp_path: Path, body: str
) -> None:
    _serve(httpserver, [(200, body)])
    with (
        _http(pubmed.SOURCE, httpserver, tmp_path) as http,
        pytest.raises(pubmed.SearchError) as caught,
    ):
        list(pubmed.iter_efetch_pages(_run(http, [], []).client(), "kratom", cap=50_000))
    assert str(caught.value) == "PubMed esearch for 'kratom' failed: no WebEnv"


@pytest.mark.parametrize("body", _files("pubmed", "esearch_*.xml"))
def test_pubmed_real_xml_esearch_is_refused_as_not_json(
    httpserver: HTTPServer, tmp_path: Path, body: str
) -> None:
    _serve(httpserver, [(200, body)] * 2)
    with (
        _http(pubmed.SOURCE, httpserver, tmp_path, tries=2) as http,
        pytest.raises(SourceError) as caught,
    ):
        list(pubmed.iter_efetch_pages(_run(http, [], []).client(), "kratom"))
    assert "after 2 tries: invalid body: body is not JSON" in str(caught.value)


# --- Europe PMC ------------------------------------------------------------------------------

EPMC_EMPTY = "europepmc/search_no_results.json"


@pytest.mark.parametrize("page", _files("europepmc"))
def test_europepmc_follows_real_cursors_and_checks_hit_count(
    httpserver: HTTPServer, tmp_path: Path, page: str
) -> None:
    body = json.loads(_sample(page).read_bytes())
    results = len(body["resultList"]["result"])
    follows = bool(results) and bool(body.get("nextCursorMark")) and results < body["hitCount"]
    script = [(200, page), (200, EPMC_EMPTY)] if follows else [(200, page)]
    replay = _serve(httpserver, script)
    warnings: list[str] = []
    live = europepmc.UNIT.live
    assert live is not None
    with _http(europepmc.SOURCE, httpserver, tmp_path) as http:
        hits = live.fetch(_run(http, ["cancer"], warnings))
    assert hits == {"cancer": results}
    assert _recorded(tmp_path, europepmc.SOURCE) == _bytes(*(n for _, n in script))
    cursors = [args["cursorMark"] for _, args in replay.asked]
    assert cursors == (["*", body["nextCursorMark"]] if follows else ["*"])
    announced = body["hitCount"]
    expected = [f"query 'cancer': hitCount announced {announced}, {results} recorded"]
    assert warnings == ([] if announced == results else expected)


# --- OpenAlex --------------------------------------------------------------------------------

OA_END = "openalex/works_page_cursor_end_empty_next_cursor_null_openalexPro.json"


@pytest.mark.parametrize("page", _files("openalex", "works_page_*.json"))
def test_openalex_follows_real_cursors_to_the_empty_end(
    httpserver: HTTPServer, tmp_path: Path, page: str
) -> None:
    body = json.loads(_sample(page).read_bytes())
    script = [(200, page)] if page == OA_END else [(200, page), (200, OA_END)]
    replay = _serve(httpserver, script)
    with _http(openalex.SOURCE, httpserver, tmp_path) as http:
        pages = list(openalex.iter_works_pages(http, "kratom"))
    assert len(pages) == len(script)
    assert _recorded(tmp_path, openalex.SOURCE) == _bytes(*(n for _, n in script))
    cursors = [args["cursor"] for _, args in replay.asked]
    assert cursors == (["*"] if page == OA_END else ["*", body["meta"]["next_cursor"]])
    for path in (tmp_path / openalex.SOURCE).iterdir():
        for record in openalex.iter_records(path):
            assert openalex.parse_record(record)["publications"][0]["openalex_id"]


@pytest.mark.parametrize("error", _files("openalex", "error_*.json"))
def test_openalex_real_error_bodies_end_the_source_naming_the_status(
    httpserver: HTTPServer, tmp_path: Path, error: str
) -> None:
    status = int(Path(error).name.split("_")[1])
    replay = _serve(httpserver, [(status, error)])
    with _http(openalex.SOURCE, httpserver, tmp_path) as http, pytest.raises(SourceError) as caught:
        list(openalex.iter_works_pages(http, "kratom"))
    assert f"HTTP {status} from " in str(caught.value) and len(replay.asked) == 1


# --- Crossref --------------------------------------------------------------------------------

CR_CURSOR = "crossref/works_list_query_widget_cursor_star_next_cursor_20_items.json"
CR_SELECT = "crossref/works_list_query_ecology_select_DOI_title.json"
CR_WORK = "crossref/works_doi_10.1371_journal.pone.0033693.json"


@pytest.mark.parametrize("script", [[CR_CURSOR, CR_SELECT], [CR_SELECT], [CR_WORK]])
def test_crossref_follows_the_real_next_cursor(
    httpserver: HTTPServer, tmp_path: Path, script: list[str]
) -> None:
    replay = _serve(httpserver, [(200, name) for name in script])
    with _http(crossref.SOURCE, httpserver, tmp_path) as http:
        pages = list(crossref.iter_works_pages(http, "widget"))
    assert len(pages) == len(script)
    assert _recorded(tmp_path, crossref.SOURCE) == _bytes(*script)
    cursors = [args["cursor"] for _, args in replay.asked]
    first = json.loads(_sample(script[0]).read_bytes())["message"]
    assert cursors == ["*", first.get("next-cursor")][: len(script)]


@pytest.mark.parametrize(
    "error", [*_files("crossref", "error_*.json"), *_files("crossref", "error_*.txt")]
)
def test_crossref_real_error_bodies_end_the_source_naming_the_status(
    httpserver: HTTPServer, tmp_path: Path, error: str
) -> None:
    status = int(Path(error).name.split("_")[1])
    replay = _serve(httpserver, [(status, error)])
    with _http(crossref.SOURCE, httpserver, tmp_path) as http, pytest.raises(SourceError) as caught:
        list(crossref.iter_works_pages(http, "widget"))
    assert f"HTTP {status} from " in str(caught.value) and len(replay.asked) == 1


# --- PubChem ---------------------------------------------------------------------------------

PC_COMPOUND = "pubchem/pug_rest_compound_cid2244_record_2d.json"
PC_SUBSTANCE = "pubchem/pug_rest_substance_sid348356775_record_2d.json"


def test_pubchem_records_real_bodies_and_the_reader_tells_them_apart(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    replay = _serve(httpserver, [(200, PC_COMPOUND), (200, PC_SUBSTANCE)])
    with _http(pubchem.SOURCE, httpserver, tmp_path) as http:
        bodies = list(pubchem.fetch_compounds(http, [2244], pubchem.ThrottlePacer()))
    assert [path for path, _ in replay.asked] == [
        pubchem.property_path([2244]),
        pubchem.synonyms_path([2244]),
    ]
    assert [json.dumps(b, sort_keys=True) for b in bodies] == [
        json.dumps(json.loads(b), sort_keys=True) for b in _bytes(PC_COMPOUND, PC_SUBSTANCE)
    ]
    recorded = sorted((tmp_path / pubchem.SOURCE).iterdir())
    assert [p.read_bytes() for p in recorded] == _bytes(PC_COMPOUND, PC_SUBSTANCE)
    (compound,) = list(pubchem.iter_records(recorded[0]))
    assert pubchem.parse_record(compound)["compound_properties"][0]["pubchem_cid"] == 2244
    with pytest.raises(SnapshotFormatError):
        list(pubchem.iter_records(recorded[1]))


# --- ChEMBL ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", _files("chembl"))
def test_chembl_reads_page_meta_of_every_real_body(
    httpserver: HTTPServer, tmp_path: Path, page: str
) -> None:
    body = json.loads(_sample(page).read_bytes())
    replay = _serve(httpserver, [(200, page)])
    listed = [key for key in chembl.ITEM_KEYS if isinstance(body.get(key), list)]
    with _http(chembl.SOURCE, httpserver, tmp_path) as http:
        if "page_meta" not in body:
            with pytest.raises(ValueError, match="ChEMBL page has no page_meta"):
                list(chembl.iter_activity_pages(http, ["CHEMBL25"]))
        elif not listed:  # e.g. the ATC classification list: a list the pager does not read
            with pytest.raises(ValueError, match="ChEMBL page has none of"):
                list(chembl.iter_activity_pages(http, ["CHEMBL25"]))
        else:
            pages = list(chembl.iter_activity_pages(http, ["CHEMBL25"]))
            assert len(pages) == 1 and body["page_meta"]["next"] is None
            assert _recorded(tmp_path, chembl.SOURCE) == _bytes(page)
    assert replay.asked[0][1]["molecule_chembl_id__in"] == "CHEMBL25"


# --- every body through its source's reader ---------------------------------------------------

READERS = {
    "ctgov": ct.UNIT,
    "pubmed": pubmed.UNIT,
    "europepmc": europepmc.UNIT,
    "openalex": openalex.UNIT,
    "crossref": crossref.UNIT,
    "pubchem": pubchem.UNIT,
    "chembl": chembl.UNIT,
}


@pytest.mark.parametrize("name", [name for folder in READERS for name in _files(folder)])
def test_every_real_body_is_read_or_refused_with_a_reason(name: str) -> None:
    """What the build does with each real body as a snapshot file: its records parse (or each
    bad one raises RecordError, a quarantine reason), or the file is refused as not the
    source's format; nothing else escapes."""
    unit = READERS[name.split("/", 1)[0]]
    path = _sample(name)
    try:
        records = list(unit.iter_records(path))
    except SnapshotFormatError as exc:
        assert exc.path == path and exc.problem
        return
    for record in records:
        try:
            rows = unit.parse(record)
        except RecordError as exc:
            assert str(exc)
            continue
        assert any(rows.values())

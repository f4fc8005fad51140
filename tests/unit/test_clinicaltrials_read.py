"""Studies read from a snapshot file equal those built event by event in Python, value and type,
whether the file is parsed whole by orjson or streamed by ijson's C backend (every test runs both
ways), and both ways refuse a bad file with the same message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ijson
import pytest

from pipelines.paths import BUNDLED_SNAPSHOT
from pipelines.sources import clinicaltrials as ct
from pipelines.sources.base import SnapshotFormatError

REPO_ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    [
        *(BUNDLED_SNAPSHOT / "clinicaltrials").glob("*.json"),
        *(REPO_ROOT.parent / "shared" / "samples" / "ctgov").glob("*.json"),
    ]
)


@pytest.fixture(autouse=True, params=["whole", "streamed"])
def read_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """`whole`: files parsed whole (the default for files this small); `streamed`: every file
    streamed study by study, as files above WHOLE_FILE_BYTES are."""
    if request.param == "streamed":
        monkeypatch.setattr(ct, "WHOLE_FILE_BYTES", -1)
    return str(request.param)


def _typed(value: Any) -> Any:
    """A JSON value with each leaf's type beside it, so 1, 1.0 and True differ."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return type(value).__name__, value


def _built_event_by_event(path: Path) -> list[Any]:
    """The file's studies from ijson's events, each fed to a Python ObjectBuilder."""
    builder = ijson.ObjectBuilder()
    with path.open("rb") as f:
        for _, event, value in ijson.parse(f, use_float=True):
            builder.event(event, value)
    document = builder.value
    return list(document.get("studies", [document]))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_files_read_to_the_same_values(path: Path) -> None:
    studies = [_typed(s) for s in ct.iter_records(path)]
    assert studies == [_typed(s) for s in _built_event_by_event(path)]
    assert studies


def test_numbers_keep_their_json_type(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_text(
        '{"studies": [{"protocolSection": {"n": 1, "x": 1.0, "e": 1e3, "b": true, "z": null}}]}'
    )
    [study] = ct.iter_records(path)
    assert _typed(study["protocolSection"]) == {
        "n": ("int", 1),
        "x": ("float", 1.0),
        "e": ("float", 1000.0),
        "b": ("bool", True),
        "z": ("NoneType", None),
    }


@pytest.mark.parametrize(
    ("item", "event"),
    [("null", "null"), ("[1]", "start_array"), ("false", "boolean"), ('"s"', "string")],
)
def test_a_bad_item_stops_the_page_after_the_studies_before_it(
    tmp_path: Path, item: str, event: str
) -> None:
    path = tmp_path / "page.json"
    path.write_text(f'{{"studies": [{{"hasResults": false}}, {item}, {{"hasResults": true}}]}}')
    read = []
    with pytest.raises(SnapshotFormatError, match=rf"studies\[\] holds a {event}, not a study"):
        for study in ct.iter_records(path):
            read.append(study)
    assert read == [{"hasResults": False}]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"studies": [{"hasResults": false}], "x": ', "malformed JSON"),
        ('{"protocolSection": {"big": 123456789012345678901234567890}}', "integer overflow"),
        ('{"totalCount": 0, "studies": null}', "'studies' is not a list"),
        ('{"totalCount": 0}', "without a 'studies' list"),
    ],
)
def test_shape_and_syntax_errors_name_the_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "page.json"
    path.write_text(body)
    with pytest.raises(SnapshotFormatError, match=problem):
        list(ct.iter_records(path))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("", "malformed JSON: parse error: premature EOF"),
        ("null", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "empty JSON object"),
        ('{"apiVersion": "2.0.3"}', "unknown top-level key 'apiVersion'"),
        ('{"nextPageToken": "x"}', "without a 'studies' list"),
        ('{"studies": {"a": 1}}', "'studies' is not a list"),
        ('{"studies": [7]}', r"studies\[\] holds a number, not a study object"),
        ('{"studies": []} trailing', "malformed JSON"),
    ],
)
def test_every_shape_check_names_the_same_problem_both_ways(
    tmp_path: Path, body: str, problem: str
) -> None:
    path = tmp_path / "page.json"
    path.write_text(body)
    with pytest.raises(SnapshotFormatError, match=problem):
        list(ct.iter_records(path))


def test_a_long_digit_run_is_read_by_ijson_which_keeps_big_integers_apart(tmp_path: Path) -> None:
    """orjson would turn 2**64 into a float; such files go to ijson, which refuses them."""
    path = tmp_path / "page.json"
    path.write_text('{"studies": [{"protocolSection": {"n": 18446744073709551616}}]}')
    with pytest.raises(SnapshotFormatError, match="integer overflow"):
        list(ct.iter_records(path))
    path.write_text('{"studies": [{"protocolSection": {"id": "1234567890123456789012"}}]}')
    [study] = ct.iter_records(path)
    assert study["protocolSection"]["id"] == "1234567890123456789012"

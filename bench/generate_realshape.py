"""Real-shape ClinicalTrials.gov studies for the benchmark: copies of real v2 bodies, new ids.

The studies are the real API v2 responses kept in `../shared/samples/ctgov/` (read there, in
place; nothing of them is copied into the repository): every study of every sample file, pages
and single studies alike. Synthetic study i is a byte copy of one of them in which the sample's
NCT id is replaced everywhere by `NCT9` + seven digits (a range the registry has not issued, so
no synthetic id names a real registration). Every third study is a copy of a sample with posted
results (`resultsSection`), the others cycle through the rest, so about a third of the studies
carry results, as among completed trials. Pages hold PAGE_SIZE studies, with a `nextPageToken`
on every page but the last, as `GET /api/v2/studies` returns them. Deterministic: the same N
gives the same bytes.

Run `python bench/generate_realshape.py OUT --studies N [--samples DIR] [--archive]`; OUT gets a
SNAPSHOT.json (method "reconstructed") and `clinicaltrials/page-00001.json` ..., or with
`--archive` the registry's bulk-download shape: `clinicaltrials/ctg-studies.json.zip`, one
study per member named `NN/NCT9xxxxxxx.json` (NN: the id's last two digits), as
https://clinicaltrials.gov/data-api/how-download-study-records serves the whole registry.
Never commit the output.
"""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import orjson

from pipelines.sources import clinicaltrials

PAGE_SIZE = 1000
"""Studies per page: the API's largest pageSize."""

RESULTS_EVERY = 3
"""Every RESULTS_EVERY-th study copies a sample with posted results."""

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "ctgov"
"""The real v2 bodies, beside the repository (never inside it)."""


class Template(NamedTuple):
    """One real study, serialised once: its bytes and the NCT id to replace in them."""

    nct_id: bytes
    body: bytes
    has_results: bool


def load_templates(samples: Path = SAMPLES) -> list[Template]:
    """Every study of every sample file, in file order; an empty folder is an error."""
    templates = []
    for path in sorted(samples.glob("*.json")):
        for study in clinicaltrials.iter_records(path):
            nct = clinicaltrials.record_key(study)
            if nct is None:
                raise ValueError(f"{path}: a sample study without an nctId")
            body = orjson.dumps(study)
            templates.append(Template(nct.encode(), body, "resultsSection" in study))
    if not any(t.has_results for t in templates) or all(t.has_results for t in templates):
        raise ValueError(f"{samples}: need samples both with and without posted results")
    return templates


def synthetic_nct(index: int) -> str:
    """`NCT9` + seven digits: a range ClinicalTrials.gov has not issued, so never a real id."""
    if not 0 <= index < 10_000_000:
        raise ValueError(f"study index {index} does not fit NCT9 + seven digits")
    return f"NCT9{index:07d}"


def iter_studies(studies: int, templates: list[Template]) -> Iterator[bytes]:
    """N study bodies (compact JSON) in id order, one at a time."""
    with_results = [t for t in templates if t.has_results]
    without = [t for t in templates if not t.has_results]
    for index in range(studies):
        turn, rest = divmod(index, RESULTS_EVERY)
        if rest == 0:
            template = with_results[turn % len(with_results)]
        else:
            template = without[(turn * (RESULTS_EVERY - 1) + rest - 1) % len(without)]
        yield template.body.replace(template.nct_id, synthetic_nct(index).encode())


ARCHIVE = "ctg-studies.json.zip"
"""The file name the registry's bulk JSON download carries."""


def _fresh_folder(out: Path) -> Path:
    """The snapshot's clinicaltrials folder, emptied of earlier pages and archives."""
    folder = out / clinicaltrials.SOURCE
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("page-*.json"), *folder.glob("*.zip")]:
        stale.unlink()
    return folder


def write_archive(out: Path, studies: int, samples: Path = SAMPLES) -> Path:
    """Write N real-shape studies as the registry's bulk ZIP plus SNAPSHOT.json; its path.

    One member per study, `NN/NCT9xxxxxxx.json`, deflated (level 1: the generator's time, not
    the reader's, is what a higher level would add), one study in memory at a time.
    """
    templates = load_templates(samples)
    path = _fresh_folder(out) / ARCHIVE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for index, body in enumerate(iter_studies(studies, templates)):
            nct = synthetic_nct(index)
            archive.writestr(f"{nct[-2:]}/{nct}.json", body)
    write_info(out, studies, samples, "one bulk ZIP")
    return path


def write_snapshot(out: Path, studies: int, samples: Path = SAMPLES) -> list[Path]:
    """Write N real-shape studies as v2 list pages plus SNAPSHOT.json; return the page paths.

    Holds one page in memory at a time.
    """
    templates = load_templates(samples)
    folder = _fresh_folder(out)
    pages = -(-studies // PAGE_SIZE)
    paths = []
    stream = iter_studies(studies, templates)
    for number in range(1, pages + 1):
        count = min(PAGE_SIZE, studies - (number - 1) * PAGE_SIZE)
        body = b'{"studies":[' + b",".join(next(stream) for _ in range(count)) + b"]"
        if number < pages:
            body += b',"nextPageToken":' + orjson.dumps(f"realshape-{number + 1}")
        path = folder / f"page-{number:05d}.json"
        path.write_bytes(body + b"}")
        paths.append(path)
    write_info(out, studies, samples, f"{pages} list pages")
    return paths


def write_info(out: Path, studies: int, samples: Path, layout: str) -> None:
    """SNAPSHOT.json of a generated snapshot: reconstructed, and what its studies are."""
    info = {
        "captured_at": "2026-11-25",
        "topic": "kratom",
        "method": "reconstructed",
        "notes": (
            f"Benchmark data: {studies} copies of the real ClinicalTrials.gov v2 studies in "
            f"{samples.name}/ made by bench/generate_realshape.py, each under a new NCT9xxxxxxx "
            f"id, as {layout}. The ids are not real registrations; the copies describe the "
            "sampled studies, not the ids they carry."
        ),
    }
    (out / "SNAPSHOT.json").write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--studies", type=int, default=20_000)
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--archive", action="store_true", help="one bulk ZIP, not pages")
    args = parser.parse_args()
    if args.archive:
        path = write_archive(args.out, args.studies, args.samples)
        print(f"{args.studies} real-shape studies in {path}")
        return
    paths = write_snapshot(args.out, args.studies, args.samples)
    print(f"{args.studies} real-shape studies in {len(paths)} pages under {args.out}")


if __name__ == "__main__":
    main()

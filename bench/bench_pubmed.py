"""PubMed parse rate: our streaming parser against Biopython's `Entrez.read` on the same files.

Two corpora, each replicated (PMIDs kept; only the article count grows) into a temporary folder
of efetch-sized files that each parser then reads in full:
- `bundled`: the articles of data/snapshot/pubmed (reconstructed: ids, titles, types only);
- `samples`: the real efetch records of ../shared/samples/pubmed (abstracts, MeSH, grants,
  databanks), read from there and never copied into the project; skipped when absent.
Prints articles per second and RSS growth. Not a test:
`python bench/bench_pubmed.py [--articles N] [--corpus bundled|samples]`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from Bio import Entrez

from pipelines.paths import BUNDLED_SNAPSHOT, PROJECT_ROOT
from pipelines.snapshot import source_files
from pipelines.sources import pubmed

FILE_ARTICLES = 10_000
"""Articles per generated file (efetch's retmax ceiling)."""

SAMPLES = PROJECT_ROOT.parent / "shared" / "samples" / "pubmed"
"""Real efetch responses (other topics) kept outside the project."""

_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)


def corpus_files(corpus: str) -> list[Path]:
    """The efetch files a corpus replicates (empty when the samples folder is absent)."""
    if corpus == "bundled":
        return source_files(BUNDLED_SNAPSHOT, "pubmed")
    return sorted(SAMPLES.glob("efetch_*.xml")) if SAMPLES.is_dir() else []


def make_files(folder: Path, articles: int, sources: list[Path]) -> list[Path]:
    """Efetch files of FILE_ARTICLES articles each, cycling through the sources' articles.

    The DOCTYPE head is the first source's: each parser reads the same bytes.
    """
    head = sources[0].read_bytes().split(b"<PubmedArticleSet>")[0]
    pool = [m.group(0) for path in sources for m in _ARTICLE.finditer(path.read_bytes())]
    paths = []
    for number, start in enumerate(range(0, articles, FILE_ARTICLES), start=1):
        count = min(FILE_ARTICLES, articles - start)
        body = b"\n".join(pool[(start + i) % len(pool)] for i in range(count))
        path = folder / f"efetch-{number:04d}.xml"
        path.write_bytes(head + b"<PubmedArticleSet>\n" + body + b"\n</PubmedArticleSet>\n")
        paths.append(path)
    return paths


def ours(paths: list[Path]) -> int:
    count = 0
    for path in paths:
        for record in pubmed.iter_records(path):
            pubmed.parse_record(record)
            count += 1
    return count


def biopython(paths: list[Path]) -> int:
    count = 0
    for path in paths:
        with path.open("rb") as handle:
            count += len(Entrez.read(handle, validate=False)["PubmedArticle"])
    return count


def measure(name: str, run: Callable[[list[Path]], int], paths: list[Path]) -> tuple:
    """(name, articles, wall s, CPU s, articles per CPU s, RSS growth MiB).

    CPU seconds are the fair rate on a shared machine: wall time counts other jobs' turns too.
    """
    process = psutil.Process()
    before = process.memory_info().rss
    started, cpu = time.perf_counter(), time.process_time()
    count = run(paths)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    grown = max(0, process.memory_info().rss - before) / 2**20
    return name, count, seconds, cpu, count / cpu, grown


def run_corpus(corpus: str, articles: int) -> None:
    """Replicate one corpus to `articles` articles and time both parsers on it."""
    sources = corpus_files(corpus)
    if not sources:
        print(f"{corpus}: skipped ({SAMPLES} is absent)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), articles, sources)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{corpus}: {articles} articles in {len(paths)} files, {size:.1f} MiB")
        print(
            f"{'parser':<28}{'articles':>10}{'wall s':>9}{'CPU s':>9}{'articles/CPU s':>16}"
            f"{'RSS +MiB':>10}"
        )
        for name, run in (
            ("kratom pubmed", ours),
            ("Biopython Entrez.read", biopython),
        ):
            row = measure(name, run, paths)
            print(
                f"{row[0]:<28}{row[1]:>10}{row[2]:>9.2f}{row[3]:>9.2f}{row[4]:>16.0f}"
                f"{row[5]:>10.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--corpus", choices=("bundled", "samples"), action="append")
    args = parser.parse_args()
    Entrez.email = "bench@example.org"
    for corpus in args.corpus or ["bundled", "samples"]:
        run_corpus(corpus, args.articles)


if __name__ == "__main__":
    main()

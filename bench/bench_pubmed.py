"""PubMed parse rate: our streaming parser against Biopython's `Entrez.read` on the same files.

The bundled efetch files are replicated (PMIDs kept; only the article count grows) into a
temporary folder of efetch-sized files, then each parser reads all of them. Prints articles
per second and peak RSS growth. Not a test: run `python bench/bench_pubmed.py [--articles N]`.
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

from pipelines.paths import BUNDLED_SNAPSHOT
from pipelines.snapshot import source_files
from pipelines.sources import pubmed

FILE_ARTICLES = 10_000
"""Articles per generated file (efetch's retmax ceiling)."""

_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)


def make_files(folder: Path, articles: int) -> list[Path]:
    """Efetch files of FILE_ARTICLES articles each, cycling through the bundled articles."""
    bundled = source_files(BUNDLED_SNAPSHOT, "pubmed")
    head = bundled[0].read_bytes().split(b"<PubmedArticleSet>")[0]
    pool = [m.group(0) for path in bundled for m in _ARTICLE.finditer(path.read_bytes())]
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
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    count = run(paths)
    seconds = time.perf_counter() - started
    grown = max(0, process.memory_info().rss - before) / 2**20
    return name, count, seconds, count / seconds, grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=50_000)
    args = parser.parse_args()
    Entrez.email = "bench@example.org"
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.articles)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{args.articles} articles in {len(paths)} files, {size:.1f} MiB")
        print(f"{'parser':<28}{'articles':>10}{'seconds':>10}{'articles/s':>12}{'RSS +MiB':>10}")
        for name, run in (
            ("kratom pubmed (defusedxml)", ours),
            ("Biopython Entrez.read", biopython),
        ):
            row = measure(name, run, paths)
            print(f"{row[0]:<28}{row[1]:>10}{row[2]:>10.2f}{row[3]:>12.0f}{row[4]:>10.1f}")


if __name__ == "__main__":
    main()

"""Publication merge at scale: `merge_publications` on N synthetic source records with duplicates.

For each N a child process generates N publications rows as the literature sources emit them
(`generate`, seeded: the same N and seed give the same rows), then times `merge_publications`
alone (wall and CPU seconds of the merge, `time.process_time`) and reports the peak RSS of the
process (`ru_maxrss`: the generated rows included; the RSS before the merge is reported too).
The exponent of the merge's CPU time in N is fitted by least squares on log-log. `--check N`
also merges N records with the all-pairs fuzzy step the merge had before blocking (every pair
of titles in a year, in the same order) and says whether both give the same publications and
id map. Not a test: `python bench/bench_merge.py [--sizes 50000 100000] [--check 20000]`.

The records: works spread over 1980-2025 (more in recent years), each with a title of 5 to 16
words drawn from a seeded vocabulary of made-up words (syllables; no real prose) and common
English function words, and reported by one to four sources (PubMed, Europe PMC, OpenAlex,
Crossref) with the identifiers each gives. Duplicates of a work share identifiers (a PMID, a
DOI as a resolver URL, a PMCID), except that about one work in twelve has a record without
any identifier the others carry, whose title is a variant (case, punctuation, a spelling
change in one or two words, a dropped or added word, a changed first and last word): only the
fuzzy title step can merge it. About one work in fifty has a near-twin: another work of the
same year, with its own DOI, whose title is a variant of its title (a conflicting DOI must
keep them apart).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

SIZES = (50_000, 100_000, 200_000, 500_000)
SEED = 15
FUNCTION_WORDS = [
    "of",
    "the",
    "in",
    "and",
    "a",
    "with",
    "among",
    "for",
    "on",
    "to",
    "by",
    "from",
    "after",
    "during",
    "versus",
    "at",
]
SYLLABLES = [
    "ka",
    "ra",
    "tom",
    "mi",
    "tra",
    "gy",
    "na",
    "spe",
    "ci",
    "o",
    "sa",
    "lo",
    "pe",
    "xi",
    "ne",
    "dol",
    "vu",
    "zen",
    "ta",
    "qui",
    "lin",
    "mor",
    "pha",
    "ter",
    "bu",
    "sel",
    "ad",
    "ro",
    "ex",
    "um",
    "ve",
    "chi",
    "lu",
    "pro",
    "gen",
    "tha",
    "ris",
    "ol",
    "am",
    "cor",
    "dex",
    "fen",
    "ny",
]


# --- the records ------------------------------------------------------------------------------


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    """Made-up words of two to four syllables; shuffled so that rank does not follow length."""
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered


def title(rng: random.Random, words: Sequence[str], weights: Sequence[float]) -> str:
    """5-16 words; content words by a Zipf-like weight (some words are common), function words
    between them."""
    out: list[str] = []
    for _ in range(rng.randint(5, 16)):
        if out and rng.random() < 0.3:
            out.append(rng.choice(FUNCTION_WORDS))
        else:
            out.append(rng.choices(words, weights)[0])
    text = " ".join(out)
    return text[0].upper() + text[1:]


def respell(rng: random.Random, word: str) -> str:
    """One spelling change: a letter doubled, dropped or replaced."""
    if len(word) < 3:
        return word + "s"
    at = rng.randrange(1, len(word) - 1)
    change = rng.choice(("double", "drop", "replace"))
    if change == "double":
        return word[:at] + word[at] + word[at:]
    if change == "drop":
        return word[:at] + word[at + 1 :]
    return word[:at] + rng.choice("aeiouy") + word[at + 1 :]


def variant(rng: random.Random, text: str) -> str:
    """The same title as another source might give it: one of the forms real duplicates take."""
    words = text.split()
    kind = rng.choice(("case", "respell", "respell2", "drop", "add", "ends"))
    if kind == "case":
        return text.upper() if rng.random() < 0.3 else text.rstrip(".") + "."
    if kind == "respell":
        at = rng.randrange(len(words))
        words[at] = respell(rng, words[at])
    elif kind == "respell2":
        for at in rng.sample(range(len(words)), 2):
            words[at] = respell(rng, words[at])
    elif kind == "drop" and len(words) > 6:
        del words[rng.randrange(len(words))]
    elif kind == "add":
        words.insert(rng.randrange(len(words) + 1), rng.choice(FUNCTION_WORDS))
    elif kind == "ends":
        words[0] = respell(rng, words[0])
        words[-1] = respell(rng, words[-1])
    return " ".join(words) + rng.choice(("", ".", " :"))


def generate(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """N publications rows (as the sources emit them) of works with duplicates; seeded."""
    rng = random.Random(seed)
    words = vocabulary(rng)
    weights = [1 / (rank + 10) for rank in range(len(words))]
    years = list(range(1980, 2026))
    year_weights = [1.08 ** (year - 1980) for year in years]
    rows: list[dict[str, Any]] = []
    work = 0
    while len(rows) < n:
        work += 1
        year = rng.choices(years, year_weights)[0]
        text = title(rng, words, weights)
        rows.extend(_records(rng, work, year, text))
        if rng.random() < 0.02:  # a near-twin: another work, its own DOI, a title variant
            work += 1
            rows.append(_row("crossref", year, variant(rng, text), doi=f"10.9{work}/twin"))
    return rows[:n]


def _records(rng: random.Random, work: int, year: int, text: str) -> list[dict[str, Any]]:
    """The records one to four sources give for one work."""
    pmid = str(10_000_000 + work) if rng.random() < 0.7 else None
    doi = f"10.{1000 + work % 9000}/w{work}" if rng.random() < 0.85 else None
    pmcid = f"PMC{5_000_000 + work}" if pmid and rng.random() < 0.3 else None
    out: list[dict[str, Any]] = []
    if pmid:
        out.append(_row("pubmed", year, text, pmid=pmid, pmcid=pmcid, doi=doi))
    if pmid and rng.random() < 0.5:
        out.append(_row("europepmc", year, text, pmid=pmid, pmcid=pmcid, doi=doi))
    if rng.random() < 0.8:
        alex = f"W{3_000_000_000 + work}"
        resolver = f"https://doi.org/{doi.upper()}" if doi else None
        out.append(_row("openalex", year, text, openalex_id=alex, doi=resolver, pmid=pmid))
    if doi and rng.random() < 0.6:
        out.append(_row("crossref", year, text, doi=doi))
    if not out:
        out.append(_row("crossref", year, text, doi=f"10.8{work}/only"))
    if rng.random() < 0.08:  # a record sharing no identifier: only its title can merge it
        out.append(
            _row("openalex", year, variant(rng, text), openalex_id=f"W{9_000_000_000 + work}")
        )
    return out


def _row(source: str, year: int, text: str, **ids: str | None) -> dict[str, Any]:
    """One source's publications row."""
    pmid, doi, alex = ids.get("pmid"), ids.get("doi"), ids.get("openalex_id")
    if pmid:
        provisional = f"PMID:{pmid}"
    elif doi:
        provisional = f"DOI:{doi.lower().removeprefix('https://doi.org/')}"
    else:
        provisional = f"OPENALEX:{alex}"
    return {
        "publication_id": provisional,
        "pmid": pmid,
        "pmcid": ids.get("pmcid"),
        "doi": doi,
        "openalex_id": alex,
        "title": text,
        "journal": None,
        "year": year,
        "publication_date": None,
        "publication_date_precision": None,
        "first_author": None,
        "publication_types": [],
        "mesh_terms": [],
        "keywords": [],
        "language": "eng",
        "is_open_access": None,
        "cited_by_count": None,
        "is_retracted": False,
        "sources": [source],
        "retracts": [],
        "retracted_by": [],
        "corrects": [],
        "corrected_by": [],
    }


# --- child side: one measured merge per process -----------------------------------------------


def all_pairs(titles: Sequence[str]) -> list[tuple[int, int]]:
    """Every pair of a year's titles in the all-pairs loop's order: the merge before blocking."""
    return list(itertools.combinations(range(len(titles)), 2))


def run_merge(n: int, seed: int, pairs: str) -> dict[str, Any]:
    """Generate N rows, merge them (blocked, or with every pair of a year compared)."""
    from pipelines.normalize import dedup
    from pipelines.sources import publication_precedence

    rows = generate(n, seed)
    compared = 0
    blocked: Callable[[Sequence[str]], list[tuple[int, int]]] = (
        all_pairs if pairs == "all" else dedup.candidate_pairs
    )

    def counted(titles: Sequence[str]) -> list[tuple[int, int]]:
        nonlocal compared
        found = blocked(titles)
        compared += len(found)
        return found

    dedup.candidate_pairs = counted  # type: ignore[assignment]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    result = dedup.merge_publications(rows, publication_precedence())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "records": len(rows),
        "clusters": result.stats.clusters,
        "fuzzy_merges": result.stats.fuzzy_merges,
        "pairs_compared": compared,
        "wall_s": seconds,
        "cpu_s": cpu,
        "rss_before_mib": rss_before,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "digest": hash_result(result),
    }


def hash_result(result: Any) -> str:
    """A digest of the merged publications and the id map, to compare two merges."""
    import hashlib

    text = repr((result.publications, sorted(result.id_map.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- parent side ------------------------------------------------------------------------------


def measured(n: int, seed: int, pairs: str) -> dict[str, Any]:
    """One merge in a fresh interpreter, so its peak RSS is its own."""
    argv = [sys.executable, __file__, "--child", str(n), "--seed", str(seed), "--pairs", pairs]
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, check=False)
        if done.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{argv[2:]} failed:\n{err.read().decode()[-2000:]}")
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def exponent(points: Sequence[tuple[int, float]]) -> float:
    """Slope of log(seconds) on log(N), least squares: 1 is linear, 2 quadratic."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(s) for _, s in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", type=int, nargs="*", default=[], metavar="N")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", choices=("blocked", "all"), default="blocked")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_merge(args.child, args.seed, args.pairs)))
        return
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, seed {args.seed}")
    header = (
        f"{'pairs':<8}{'records':>9}{'clusters':>9}{'fuzzy':>7}{'compared':>11}{'wall s':>9}"
        f"{'CPU s':>8}{'RSS in MiB':>11}{'peak MiB':>10}  digest"
    )
    print(header)
    points = []
    runs = [(n, "blocked") for n in args.sizes]
    runs += [(n, kind) for n in args.check for kind in ("all", "blocked")]
    digests: dict[int, dict[str, str]] = {}
    for n, kind in runs:
        row = measured(n, args.seed, kind)
        digests.setdefault(n, {})[kind] = row["digest"]
        if kind == "blocked" and n in args.sizes and n not in dict(points):
            points.append((n, row["cpu_s"]))
        print(
            f"{kind:<8}{row['records']:>9}{row['clusters']:>9}{row['fuzzy_merges']:>7}"
            f"{row['pairs_compared']:>11}{row['wall_s']:>9.2f}{row['cpu_s']:>8.2f}"
            f"{row['rss_before_mib']:>11.0f}{row['peak_rss_mib']:>10.0f}  {row['digest']}",
            flush=True,
        )
    if len(points) > 1:
        print(f"fitted exponent of the merge's CPU seconds in N: {exponent(points):.2f}")
    for n in args.check:
        same = digests[n]["all"] == digests[n]["blocked"]
        print(f"N={n}: blocked merge {'==' if same else '!='} all-pairs merge")


if __name__ == "__main__":
    main()

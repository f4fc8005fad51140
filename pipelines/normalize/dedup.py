"""One publications row per work: merge the sources' records on shared identifiers.

Records are clustered with union-find over every identifier they carry (PMID, PMCID, DOI,
OpenAlex id); records that share none are merged only when their titles match closely in the
same year. Each cluster becomes one row whose fields come from the most trusted source that
knows them. The result does not depend on input order: clusters, their ids and their fields
are chosen by content, never by position.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FUZZY_TITLE_THRESHOLD = 0.93
"""difflib ratio two normalised titles (same year, no shared or conflicting identifier) need to
count as one work. 0.93 absorbs punctuation, a trailing period, British/US spelling and a
dropped word in a 15-word title, but not a different compound or population in the title."""

MIN_FUZZY_TITLE_LENGTH = 20
"""Shorter normalised titles ("Kratom", "Letter to the editor") never fuzzy-match: too generic."""

NEIGHBOURS = 4
"""How many following titles each title is compared with in the year's titles sorted by their
text and sorted by their reversed text (sorted neighbourhood)."""

KEY_LETTERS = 2
"""A word stands in the blocking keys by its first letters only, so spelling variants past them
("behaviour" / "behavior", "randomised" / "randomized", "rat" / "rats", a dropped or doubled
letter) leave the keys alike."""

MIN_KEY_WORDS = 3
"""Words a key needs: fewer would be shared by too many titles of a year to block anything."""

MARKUP_WORDS = frozenset({"sub", "sup"})
"""What inline markup leaves in a normalised title ("<i>Mitragyna</i>" -> "i mitragyna i",
"CO<sub>2</sub>" -> "co sub 2 sub"); with one-letter words, left out of the word keys, so that
a source that keeps markup and one that drops it still share keys."""


@dataclass(frozen=True)
class Precedence:
    """Literature sources in the order a merged work takes its fields from them; the sources'
    units rank themselves (`pipelines.sources.publication_precedence`)."""

    bibliographic: tuple[str, ...]
    """Identifiers, title, journal, dates and term lists come from the first that knows them."""
    metrics: tuple[str, ...]
    """cited_by_count and is_open_access come from the first of these that knows them."""


ID_FIELDS: tuple[str, ...] = ("pmid", "pmcid", "doi", "openalex_id")
ID_PREFIX: dict[str, str] = {
    "pmid": "PMID",
    "pmcid": "PMCID",
    "doi": "DOI",
    "openalex_id": "OPENALEX",
}
BIBLIOGRAPHIC_FIELDS: tuple[str, ...] = (
    "title",
    "journal",
    "language",
    "first_author",
    "abstract",
)
LIST_FIELDS: tuple[str, ...] = ("publication_types", "mesh_terms", "keywords")
LINK_FIELDS: tuple[str, ...] = ("retracts", "retracted_by", "corrects", "corrected_by")
METRIC_FIELDS: tuple[str, ...] = ("cited_by_count", "is_open_access")

_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.|www\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_PMCID = re.compile(r"(?:PMC)?(\d+)$", re.IGNORECASE)
_OPENALEX = re.compile(r"(W\d+)$", re.IGNORECASE)
_PMID = re.compile(r"(\d+)$")


def normalize_doi(value: str | None) -> str | None:
    """DOI in lower case without resolver prefix (doi.org, dx.doi.org, www.doi.org, `doi:`).

    None when it is not a DOI (or not text).
    """
    if not value or not isinstance(value, str):
        return None
    doi = _DOI_PREFIX.sub("", value.strip()).strip().lower()
    return doi if doi.startswith("10.") and "/" in doi else None


def normalize_pmcid(value: str | None) -> str | None:
    """`PMC<n>` from `PMC123`, `123` or a PMC article URL."""
    if not value:
        return None
    match = _PMCID.search(value.strip().rstrip("/"))
    return f"PMC{match.group(1)}" if match else None


def normalize_pmid(value: str | int | None) -> str | None:
    """PMID digits from `123`, `PMID:123` or a pubmed.ncbi.nlm.nih.gov URL."""
    if value is None or value == "":
        return None
    match = _PMID.search(str(value).strip().rstrip("/"))
    if not match:
        return None
    return match.group(1).lstrip("0") or None


def normalize_openalex_id(value: str | None) -> str | None:
    """`W<n>` from `W123` or `https://openalex.org/W123`; None when not text."""
    if not value or not isinstance(value, str):
        return None
    match = _OPENALEX.search(value.strip().rstrip("/"))
    return match.group(1).upper() if match else None


def provisional_id(pmid: str | None, doi: str | None, openalex_id: str | None) -> str | None:
    """The id a source gives its record before merging: PMID, else DOI, else OpenAlex."""
    if pmid:
        return f"PMID:{pmid}"
    if doi:
        return f"DOI:{doi}"
    if openalex_id:
        return f"OPENALEX:{openalex_id}"
    return None


def normalize_title(title: str | None) -> str:
    """Title folded for comparison: accents, case, punctuation and spacing removed."""
    if not title:
        return ""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class MergeStats:
    """How many records came in and how they collapsed into works."""

    records_in: int
    clusters: int
    merged: int
    fuzzy_merges: int
    records_by_source: dict[str, int]
    conflicting_ids: int


@dataclass(frozen=True)
class MergeResult:
    """Merged publications rows, the map from every identifier form to the final id, stats."""

    publications: list[dict[str, Any]]
    id_map: dict[str, str]
    stats: MergeStats
    unidentified: list[dict[str, Any]] = field(default_factory=list)


class _UnionFind:
    """Union-find over record indices; the root is always the smallest index of its set."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        low, high = min(ra, rb), max(ra, rb)
        self.parent[high] = low
        return True


def _identifiers(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) pairs a row can be matched on."""
    found: list[tuple[str, str]] = []
    for name, normalise in (
        ("pmid", normalize_pmid),
        ("pmcid", normalize_pmcid),
        ("doi", normalize_doi),
        ("openalex_id", normalize_openalex_id),
    ):
        value = normalise(row.get(name))
        if value:
            found.append((name, value))
    return found


def _source_rank(row: Mapping[str, Any], order: tuple[str, ...]) -> int:
    sources = row.get("sources") or []
    ranks = [order.index(s) for s in sources if s in order]
    return min(ranks, default=len(order))


def _sort_key(row: Mapping[str, Any], order: tuple[str, ...]) -> tuple[Any, ...]:
    """A total order on records by content, so sorting removes any dependence on input order."""
    return (
        _source_rank(row, order),
        str(row.get("publication_id") or ""),
        repr(sorted((k, repr(v)) for k, v in row.items())),
    )


def _canonical(rows: Iterable[Mapping[str, Any]], order: tuple[str, ...]) -> list[dict[str, Any]]:
    """Records with normalised identifiers, in content order."""
    out = []
    for row in rows:
        found = dict(_identifiers(row))
        clean = dict(row)
        for kind in ID_FIELDS:
            clean[kind] = found.get(kind)
        out.append(clean)
    return sorted(out, key=lambda row: _sort_key(row, order))


def _conflicts(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    """True when two clusters carry different values of the same identifier kind."""
    return any(a.get(kind) and b.get(kind) and a[kind] != b[kind] for kind in ID_FIELDS)


def _fuzzy_pairs(
    rows: list[dict[str, Any]], uf: _UnionFind, ids: dict[int, dict[str, set[str]]]
) -> int:
    """Merge clusters sharing no identifier whose titles match closely in the same year.

    Within a year only candidate pairs are compared (`candidate_pairs`: a blocking finer than
    the year, so a harvest of 500,000 records does not compare every pair of a year's thousands
    of titles), in the order the all-pairs loop met them, so the greedy merge decides the same
    way. difflib (standard library) makes the decision: quick_ratio() rejects most candidates
    before the full ratio is computed.
    """
    by_year: dict[int, list[tuple[str, int]]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for index, row in enumerate(rows):
        title = normalize_title(row.get("title"))
        year = row.get("year")
        root = uf.find(index)
        if not year or len(title) < MIN_FUZZY_TITLE_LENGTH or (title, root) in seen:
            continue
        seen.add((title, root))
        by_year[int(year)].append((title, root))
    merges = 0
    for year in sorted(by_year):
        block = sorted(by_year[year])
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        for i, j in candidate_pairs([title for title, _ in block]):
            (title_a, root_a), (title_b, root_b) = block[i], block[j]
            shorter, length = min(len(title_a), len(title_b)), len(title_a) + len(title_b)
            if 2.0 * shorter / length < FUZZY_TITLE_THRESHOLD:
                continue  # real_quick_ratio() without building a matcher
            ra, rb = uf.find(root_a), uf.find(root_b)
            if ra == rb or _conflicts(ids[ra], ids[rb]):
                continue
            matcher.set_seqs(title_a, title_b)
            if (
                matcher.real_quick_ratio() >= FUZZY_TITLE_THRESHOLD
                and matcher.quick_ratio() >= FUZZY_TITLE_THRESHOLD
                and matcher.ratio() >= FUZZY_TITLE_THRESHOLD
            ):
                uf.union(ra, rb)
                root = uf.find(ra)
                merged = ids[ra] if root == ra else ids[rb]
                other = ids[rb] if root == ra else ids[ra]
                for kind, values in other.items():
                    merged.setdefault(kind, set()).update(values)
                merges += 1
    return merges


def candidate_pairs(titles: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs (i < j, ascending) of normalised titles that may be one work.

    A pair is a candidate when the titles share a word key (`title_keys` on each word's first
    KEY_LETTERS letters, markup and one-letter words left out: besides spelling variants past
    those letters, they differ in at most one word, or only in their first and last word and
    one word between), or when they are within NEIGHBOURS of each other sorted by text or by
    reversed text (they differ only after a long common beginning or before a long common end).
    Each title costs a fixed number of keys and neighbours, so the work grows with the number
    of titles, not with its square.
    """
    pairs: set[tuple[int, int]] = set()
    groups: dict[int, list[int]] = defaultdict(list)
    for index, title in enumerate(titles):
        words = [w[:KEY_LETTERS] for w in title.split() if len(w) > 1 and w not in MARKUP_WORDS]
        for key in title_keys(words):
            groups[hash(key)].append(index)
    for members in groups.values():
        pairs.update(itertools.combinations(sorted(set(members)), 2))
    for order in (
        sorted(range(len(titles)), key=titles.__getitem__),
        sorted(range(len(titles)), key=lambda index: titles[index][::-1]),
    ):
        for position, index in enumerate(order):
            for other in order[position + 1 : position + 1 + NEIGHBOURS]:
                pairs.add((min(index, other), max(index, other)))
    return sorted(pairs)


def title_keys(words: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Blocking keys of one title's words: all of them, every way to leave one out, the words
    between the first and the last, and every way to leave one of those out; only keys of at
    least MIN_KEY_WORDS words."""
    whole, between = tuple(words), tuple(words[1:-1])
    keys = [whole, between]
    for part in (whole, between):
        keys.extend(part[:skip] + part[skip + 1 :] for skip in range(len(part)))
    return (key for key in keys if len(key) >= MIN_KEY_WORDS)


def _first(ranked: list[dict[str, Any]], name: str) -> Any:
    """The value of `name` from the highest-ranked member that has one."""
    for row in ranked:
        value = row.get(name)
        if value not in (None, "", []):
            return value
    return None


def _pick_id(ranked: list[dict[str, Any]], kind: str) -> str | None:
    """One identifier of a kind for the cluster: the top source's, ties broken by value."""
    value = _first(ranked, kind)
    return str(value) if value else None


def _final_id(row: Mapping[str, Any]) -> str:
    return provisional_id(row.get("pmid"), row.get("doi"), row.get("openalex_id")) or ""


def _merge_cluster(members: list[dict[str, Any]], precedence: Precedence) -> dict[str, Any]:
    """One publications row from the records of one work.

    The members are ranked once per precedence (a sort key costs a repr of the whole record),
    not once per field.
    """
    ranked = sorted(members, key=lambda r: _sort_key(r, precedence.bibliographic))
    merged: dict[str, Any] = {kind: _pick_id(ranked, kind) for kind in ID_FIELDS}
    merged["publication_id"] = _final_id(merged)
    for name in BIBLIOGRAPHIC_FIELDS:
        merged[name] = _first(ranked, name)
    dated = _first_dated(ranked)
    merged["publication_date"] = dated.get("publication_date")
    merged["publication_date_precision"] = dated.get("publication_date_precision")
    merged["year"] = dated.get("year") or _first(ranked, "year")
    for name in LIST_FIELDS:
        merged[name] = list(_first(ranked, name) or [])
    by_metrics = sorted(members, key=lambda r: _sort_key(r, precedence.metrics))
    for name in METRIC_FIELDS:
        merged[name] = _first(by_metrics, name)
    for name in LINK_FIELDS:
        merged[name] = sorted({v for row in members for v in row.get(name) or []})
    merged["is_retracted"] = any(
        bool(row.get("is_retracted")) or bool(row.get("retracted_by")) for row in members
    )
    merged["sources"] = sorted({s for row in members for s in row.get("sources") or []})
    return merged


def _first_dated(ranked: list[dict[str, Any]]) -> dict[str, Any]:
    """Date, precision and year travel together, from the best source that has a date."""
    for row in ranked:
        if row.get("publication_date") is not None:
            return row
    return {}


def _id_forms(row: Mapping[str, Any]) -> list[str]:
    """Every `PREFIX:value` form a row's identifiers can be referred to by."""
    forms = [f"{ID_PREFIX[kind]}:{value}" for kind, value in _identifiers(row)]
    if row.get("publication_id"):
        forms.append(str(row["publication_id"]))
    return forms


def merge_publications(rows: Iterable[Mapping[str, Any]], precedence: Precedence) -> MergeResult:
    """Merge per-source publications rows into one row per work.

    Args:
        rows: publications rows as the sources emit them (provisional `publication_id`,
            identifiers, `sources=[source]`, optional `abstract`, `retracts`, `retracted_by`).
        precedence: which source a merged field comes from first.

    Returns:
        Merged rows sorted by publication_id, the id map (every provisional id and identifier
        form -> final publication_id; retraction links are rewritten through it) and stats.
    """
    records = _canonical(rows, precedence.bibliographic)
    identified = [r for r in records if _identifiers(r)]
    unidentified = [r for r in records if not _identifiers(r)]
    uf = _UnionFind(len(identified))
    owner: dict[tuple[str, str], int] = {}
    for index, row in enumerate(identified):
        for key in _identifiers(row):
            if key in owner:
                uf.union(owner[key], index)
            else:
                owner[key] = index
    ids: dict[int, dict[str, set[str]]] = defaultdict(dict)
    for index, row in enumerate(identified):
        for kind, value in _identifiers(row):
            ids[uf.find(index)].setdefault(kind, set()).add(value)
    conflicting = sum(1 for kinds in ids.values() if any(len(v) > 1 for v in kinds.values()))
    fuzzy = _fuzzy_pairs(identified, uf, ids)

    clusters: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for index, row in enumerate(identified):
        clusters[uf.find(index)].append(row)
    merged_rows: list[dict[str, Any]] = []
    id_map: dict[str, str] = {}
    for members in clusters.values():
        merged = _merge_cluster(members, precedence)
        merged_rows.append(merged)
        for row in members:
            for form in _id_forms(row):
                id_map[form] = merged["publication_id"]
        for form in _id_forms(merged):
            id_map[form] = merged["publication_id"]
    _apply_retractions(merged_rows, id_map)
    merged_rows.sort(key=lambda r: r["publication_id"])
    by_source: dict[str, int] = defaultdict(int)
    for row in records:
        for source in row.get("sources") or []:
            by_source[source] += 1
    stats = MergeStats(
        records_in=len(records),
        clusters=len(merged_rows),
        merged=len(identified) - len(merged_rows),
        fuzzy_merges=fuzzy,
        records_by_source=dict(sorted(by_source.items())),
        conflicting_ids=conflicting,
    )
    return MergeResult(merged_rows, dict(sorted(id_map.items())), stats, unidentified)


def _apply_retractions(rows: list[dict[str, Any]], id_map: Mapping[str, str]) -> None:
    """Point retraction and erratum links at final ids; a retraction notice retracts its target."""
    for row in rows:
        for name in LINK_FIELDS:
            targets = {_resolve(v, id_map) for v in row[name]}
            row[name] = sorted(targets - {row["publication_id"]})
    retracted = {target for row in rows for target in row["retracts"]}
    for row in rows:
        if row["publication_id"] in retracted:
            row["is_retracted"] = True


def _resolve(reference: str, id_map: Mapping[str, str]) -> str:
    """A `PREFIX:value` reference in normal form, then through the id map when it is known."""
    prefix, _, value = reference.partition(":")
    normalise = {
        "PMID": normalize_pmid,
        "PMCID": normalize_pmcid,
        "DOI": normalize_doi,
        "OPENALEX": normalize_openalex_id,
    }.get(prefix.upper())
    clean = normalise(value) if normalise else None
    form = f"{prefix.upper()}:{clean}" if clean else reference
    return id_map.get(form, form)

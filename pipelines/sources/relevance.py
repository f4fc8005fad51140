"""Which searched works are on topic, and when a search has gone far enough.

Crossref's `query.bibliographic` matches any word of the query ("Mitragyna speciosa" finds every
work with "speciosa"; https://community.crossref.org/t/ticket-of-the-month-march-2022-getting-started-with-rest-api-queries/2587)
and OpenAlex's `search` matches full text (https://developers.openalex.org/guides/searching), so
their hits are screened: a work is kept when its own title, abstract, subject or container names
a topic term (the queries of topic_queries.csv) or its DOI is already known, and paging stops at a
page cap, below a share of the query's best relevance score, or after a page that kept nothing.
Every work seen is counted as kept or dropped; a dropped one is listed by key and content hash,
so the build quarantines it with a reason instead of losing it. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.sources.base import count_mismatch

_NOT_WORD = re.compile(r"[^0-9a-z]+")

OFF_TOPIC_REASON = (
    "off topic: the refresh's relevance rule dropped this work (no topic term in its title, "
    "abstract, subject or container, and its DOI was not already known); see "
    "search_strategy.json"
)
"""The quarantine reason of a work the screen dropped."""


def words(text: str) -> str:
    """Lower-case words joined by single spaces, padded with one space at each end, so a term
    matches whole words only ("mitragynine" is not found in "7-hydroxymitragynine")."""
    return f" {' '.join(_NOT_WORD.sub(' ', text.casefold()).split())} "


def topic_terms(queries: Iterable[str]) -> tuple[str, ...]:
    """The distinct topic terms of the given queries, in word form, in first-seen order."""
    terms = (words(q) for q in queries)
    return tuple(dict.fromkeys(t for t in terms if t.strip()))


def term_in(texts: Iterable[str | None], terms: Sequence[str]) -> str | None:
    """The first topic term any of `texts` contains as whole words; None when none does."""
    joined = " ".join(words(t) for t in texts if t)
    return next((t.strip() for t in terms if t in joined), None)


@dataclass(frozen=True)
class Bounds:
    """How far one query is paged (data/reference/search_bounds.csv)."""

    max_pages: int
    """Pages asked per query at most (0: no cap)."""
    min_score_share: float = 0.0
    """Stop once a page's lowest relevance score is below this share of the query's best (0:
    no score cut; pages are in relevance order)."""
    keyless_searches: int | None = None
    """Search requests a run may make without an API key (None: no keyless budget)."""


@dataclass(frozen=True)
class Relevance:
    """The screen's rule for one source: topic terms, DOIs already known, paging bounds."""

    terms: tuple[str, ...]
    known_dois: frozenset[str]
    bounds: Bounds
    lookup: tuple[str, ...] = ()
    """DOIs this source held before, asked by DOI when no search returns them again."""
    budget: int | None = None
    """Search requests this run may make (a source asked without its API key); None: no cap."""


END_OF_RESULTS = "end of results"
"""Why paging a query stopped when no bound stopped it: the source had nothing more."""


@dataclass
class Tally:
    """One query's counts for search_strategy.json."""

    seen: int = 0
    kept: int = 0
    dropped: int = 0
    pages: int = 0
    stopped: str = END_OF_RESULTS
    best_score: float | None = None
    announced: int | None = None
    """The hit count the source announced for the query (Crossref `total-results`, OpenAlex
    `meta.count`); None when it announced none."""

    @property
    def unseen(self) -> int:
        """Announced hits a bound left unasked (the reason is `stopped`); 0 when paged to the
        end or nothing was announced."""
        if self.announced is None or self.stopped == END_OF_RESULTS:
            return 0
        return max(self.announced - self.seen, 0)


@dataclass
class Screen:
    """The relevance rule applied during one source's fetch, with what it kept and dropped."""

    relevance: Relevance
    tallies: dict[str, Tally] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    """Record key -> sha256 of the dropped record as recorded (its staging fingerprint)."""
    kept: dict[str, str] = field(default_factory=dict)
    """Record key -> sha256 of every kept record."""
    seen_dois: set[str] = field(default_factory=set)
    budget: int | None = None
    """Search requests left of the run's keyless budget (None: no budget)."""
    note: str | None = None
    """One line on how the source was asked when that differs from the usual (keyless)."""

    def __post_init__(self) -> None:
        self.budget = self.relevance.budget

    @classmethod
    def keep_all(cls) -> Screen:
        """A screen with no topic terms and no bounds: every work kept, paging to the end."""
        return cls(Relevance((), frozenset(), Bounds(max_pages=0)))

    def restart(self, query: str) -> None:
        """Forget `query`'s counts: its pages are asked again from the first (an expired
        cursor); what it kept or dropped is judged again as the pages come."""
        self.tallies.pop(query, None)

    def spend(self, query: str) -> bool:
        """Take one search request of the keyless budget for `query`; False, with the reason in
        its tally, when none is left."""
        if self.budget is None:
            return True
        if self.budget <= 0:
            self.tally(query).stopped = "keyless budget spent"
            return False
        self.budget -= 1
        return True

    def tally(self, query: str) -> Tally:
        """The counts of `query`, started on first use."""
        return self.tallies.setdefault(query, Tally())

    def announce(self, query: str, count: Any) -> None:
        """Add a hit count the source announced for `query` (once per search; once per batch of
        a look-up by id); a count that is not a whole number is ignored."""
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            tally = self.tally(query)
            tally.announced = (tally.announced or 0) + count

    def shortfall(self, query: str, field_name: str) -> str | None:
        """The completeness warning of `query`: the hits announced (`field_name`) against those
        seen and recorded, when paging ran to the end of the results and they differ, or when
        more were seen than announced. A query a bound stopped early (page cap, score share, an
        off-topic page, the keyless budget) sees fewer on purpose: no warning, its `unseen`
        count and `stopped` reason go to search_strategy.json instead. None when nothing was
        announced."""
        tally = self.tallies.get(query)
        if tally is None or tally.announced is None:
            return None
        if tally.stopped != END_OF_RESULTS and tally.seen <= tally.announced:
            return None
        return count_mismatch(query, tally.announced, tally.seen, field_name)

    def judge(
        self,
        query: str,
        key: str | None,
        doi: str | None,
        raw: str,
        texts: Iterable[str | None],
    ) -> bool:
        """Count a record under `query` and say whether it is kept (always, without terms).

        `raw` is the record as its unit's `raw` writes it: the build fingerprints that text.
        """
        tally = self.tally(query)
        tally.seen += 1
        if doi:
            self.seen_dois.add(doi)
        terms = self.relevance.terms
        on_topic = not terms or term_in(texts, terms) is not None
        keep = on_topic or (doi is not None and doi in self.relevance.known_dois)
        fingerprint = hashlib.sha256(raw.encode()).hexdigest()
        if keep:
            tally.kept += 1
            if key is not None:
                self.kept[key] = fingerprint
        else:
            tally.dropped += 1
            if key is not None:
                self.dropped[key] = fingerprint
        return keep

    def page_done(self, query: str, kept: int, items: int, scores: Sequence[float]) -> bool:
        """Count a page of `items` (`kept` of them kept); True when paging `query` should stop
        here, with the reason in its tally."""
        tally = self.tally(query)
        tally.pages += 1
        bounds = self.relevance.bounds
        if scores:
            tally.best_score = max([*scores, *([tally.best_score] if tally.best_score else [])])
        floor = bounds.min_score_share * (tally.best_score or 0.0)
        if items and kept == 0:
            tally.stopped = "a whole page was off topic"
        elif scores and floor > 0 and min(scores) < floor:
            tally.stopped = f"relevance score below {bounds.min_score_share:g} of the best"
        elif items and 0 < bounds.max_pages <= tally.pages:
            tally.stopped = f"page cap ({bounds.max_pages} pages)"
        else:
            return False
        return True

    def off_topic(self) -> dict[str, str]:
        """Dropped records (key -> fingerprint) no other page kept in the same version."""
        return {k: v for k, v in sorted(self.dropped.items()) if self.kept.get(k) != v}

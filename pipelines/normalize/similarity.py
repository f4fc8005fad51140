"""Word overlap of short registry texts (group titles, arm labels, outcome titles, time frames).

Registry titles differ by a word or two ("Single-vial Presentation ID93 + GLA-SE" for the arm
"Single-vial ID93 + GLA-SE"), rarely by spelling, so the overlap of word sets says more than a
character edit distance and is easy to explain in one sentence of the docs.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str | None) -> frozenset[str]:
    """The lower-case words (runs of letters and digits) of a text; empty for None."""
    return frozenset(_WORD.findall((text or "").casefold()))


def dice(a: frozenset[str], b: frozenset[str]) -> float:
    """Dice coefficient of two word sets, 2|a∩b| / (|a|+|b|); 1.0 for two empty sets."""
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))

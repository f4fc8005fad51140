"""The design class of a registered study, from what the registry says about it.

Registries describe design in their own terms (study type, allocation, phases); the evidence map
needs one class from the contract vocabulary (`schemas.vocab.DESIGNS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TRIAL_PHASES = frozenset({"EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"})


def registered_design(
    study_type: str | None, allocation: str | None, phases: Iterable[str] | None
) -> str:
    """Map a registration to rct / non_randomised_trial / observational / other.

    Values are compared in upper snake case, so `Randomized` and `RANDOMIZED` agree. A record
    without a study type but with a trial phase (PHASE1 ... PHASE4) is an interventional trial:
    only trials have phases, and some non-API registries leave the type blank.
    """
    kind = _code(study_type)
    if kind is None and any(_code(p) in _TRIAL_PHASES for p in phases or ()):
        kind = "INTERVENTIONAL"
    if kind == "INTERVENTIONAL":
        return "rct" if _code(allocation) == "RANDOMIZED" else "non_randomised_trial"
    if kind == "OBSERVATIONAL":
        return "observational"
    return "other"


def _code(value: str | None) -> str | None:
    """`Early Phase 1` -> `EARLY_PHASE1`, `Non-Randomized` -> `NON_RANDOMIZED`; blank -> None."""
    if value is None or not value.strip():
        return None
    code = re.sub(r"[^A-Z0-9]+", "_", value.strip().upper()).strip("_")
    return re.sub(r"PHASE_(\d)", r"PHASE\1", code)

"""ClinicalTrials.gov v2 results modules -> rows: arms, result groups, adverse events, baseline,
participant flow and statistical analyses.

Pure (no I/O, no clock), like `pipelines.sources.clinicaltrials`, which calls `parse_results` for
every study. Every cell of a results module becomes one row: a count the registry printed as
text ("NA", "≥5", "-1") keeps its text in the `*_text` column beside a null number, so nothing is
dropped; a row whose key is incomplete is turned away by the publish gate with a reason.

Results groups (`FG000` in the participant flow, `BG000` in the baseline, `OG000` per outcome
measure, `EG000` in the adverse events) are registered by title only; `result_groups` ties each
to the protocol arm it stands for where the titles allow (`tie_group`), and says `none` where
they do not.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines.normalize.similarity import dice, words
from pipelines.sources.base import RecordError, TableRows
from pipelines.sources.clinicaltrials_values import (
    as_count,
    as_number,
    as_text,
    denominators,
    dig,
    str_list,
)

TABLES = (
    "arms",
    "result_groups",
    "adverse_events",
    "adverse_event_totals",
    "baseline_measures",
    "participant_flow",
    "outcome_analyses",
)
"""Every table `parse_results` returns (each present, possibly empty)."""

TIE_MIN_SIMILARITY = 0.6
"""Word overlap (Dice) a group title needs with an arm label to be tied to it."""
TIE_MIN_MARGIN = 0.1
"""How far the best arm must lead the next one: a near tie between two arms ties to neither."""

_TOTAL_TITLES = frozenset({"total", "overall", "all participants", "all subjects"})
_AE_TOTALS = (
    ("all_cause_mortality", "deaths"),
    ("serious", "serious"),
    ("other", "other"),
)
"""(total_type, prefix of the eventGroups fields `<prefix>NumAffected` / `<prefix>NumAtRisk`)."""
_P_VALUE = re.compile(r"^\s*(<=|>=|≤|≥|<|>|=)?\s*(\d*\.?\d+(?:[eE][-+]?\d+)?)\s*$")
_RELATION = {"≤": "<=", "≥": ">=", None: "="}
_WORD = re.compile(r"[a-z0-9]+")
"""A word of a title, for comparing titles ignoring case, spacing and punctuation."""


def results_outcome_id(nct: str, number: int) -> str:
    """The outcome id of the n-th (from 1) measure of a study's outcomeMeasuresModule."""
    return f"{nct}:R{number}"


def parse_results(nct: str, study: dict[str, Any]) -> TableRows:
    """One v2 study -> rows of every results table (arms come from the protocol).

    Raises:
        RecordError: a cell names a group its module does not define.
    """
    arms = _arms(nct, dig(study, "protocolSection", "armsInterventionsModule") or {})
    results = study.get("resultsSection") or {}
    flow = results.get("participantFlowModule") or {}
    baseline = results.get("baselineCharacteristicsModule") or {}
    adverse = results.get("adverseEventsModule") or {}
    measures = dig(results, "outcomeMeasuresModule", "outcomeMeasures") or []
    labels = ArmLabels([a["arm_label"] for a in arms if a["arm_label"] is not None])
    groups = _groups(nct, "participant_flow", flow.get("groups"), labels)
    groups += _groups(nct, "baseline", baseline.get("groups"), labels)
    groups += _groups(nct, "adverse_events", adverse.get("eventGroups"), labels)
    analyses: list[dict[str, Any]] = []
    for number, measure in enumerate(measures, start=1):
        outcome_id = results_outcome_id(nct, number)
        groups += _groups(nct, outcome_id, measure.get("groups"), labels)
        analyses += _analyses(outcome_id, measure)
    events, totals = _adverse_events(nct, adverse)
    return {
        "arms": arms,
        "result_groups": groups,
        "adverse_events": events,
        "adverse_event_totals": totals,
        "baseline_measures": _baseline(nct, baseline),
        "participant_flow": _flow(nct, flow),
        "outcome_analyses": analyses,
    }


# --- arms and results groups ------------------------------------------------------------------


def _arms(nct: str, module: dict[str, Any]) -> list[dict[str, Any]]:
    """Registered arms with the interventions each receives, read from both sides of the link.

    armGroups name interventions as "Type: Name"; the prefix is dropped where the rest is a
    registered intervention's name. An intervention's `armGroupLabels` add it to those arms.
    """
    interventions = module.get("interventions") or []
    known = {name for i in interventions if (name := as_text(i.get("name")))}
    rows: dict[str | None, dict[str, Any]] = {}
    for arm in module.get("armGroups") or []:
        label = as_text(arm.get("label"))
        row = rows.setdefault(
            label,
            {
                "study_id": nct,
                "arm_label": label,
                "arm_type": as_text(arm.get("type")),
                "description": as_text(arm.get("description")),
                "intervention_names": [],
            },
        )
        row["intervention_names"] += [
            _intervention_name(n, known) for n in str_list(arm.get("interventionNames"))
        ]
    for intervention in interventions:
        name = as_text(intervention.get("name"))
        for label in str_list(intervention.get("armGroupLabels")):
            if name is not None and label in rows:
                rows[label]["intervention_names"].append(name)
    for row in rows.values():
        row["intervention_names"] = sorted(set(row["intervention_names"]))
    return list(rows.values())


def _intervention_name(listed: str, known: set[str]) -> str:
    kind, sep, rest = listed.partition(":")
    return rest.strip() if sep and kind.strip() and rest.strip() in known else listed


def _groups(nct: str, scope: str, groups: Any, arms: ArmLabels) -> list[dict[str, Any]]:
    """One row per results group of a module (or of one outcome measure), tied to an arm."""
    rows = []
    for group in groups or []:
        title = as_text(group.get("title"))
        arm, tie, similarity = arms.tie(title)
        rows.append(
            {
                "study_id": nct,
                "group_scope": scope,
                "group_id": as_text(group.get("id")),
                "group_title": title,
                "group_description": as_text(group.get("description")),
                "arm_label": arm,
                "arm_tie": tie,
                "tie_similarity": similarity,
            }
        )
    return rows


class ArmLabels:
    """A study's arm labels with their comparison keys and word sets, worked out once per study
    rather than once per results group compared with them (a study has tens of groups)."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self._exact: dict[str, str] = {}
        for label in labels:
            self._exact.setdefault(_key(label), label)
        self._words = [(words(label), label) for label in labels]

    def tie(self, title: str | None) -> tuple[str | None, str, float | None]:
        """`tie_group` of one title against these arms."""
        if title is None or not self.labels:
            return None, "none", None
        key = _key(title)
        if key in self._exact:
            return self._exact[key], "title", 1.0
        if key in _TOTAL_TITLES:
            return None, "total", None
        title_words = words(title)
        if not title_words:
            return None, "none", None
        scored = sorted(((dice(title_words, w), a) for w, a in self._words), reverse=True)
        best, arm = scored[0]
        if len(self.labels) == 1:
            return arm, "single_arm", round(best, 3)
        if best >= TIE_MIN_SIMILARITY and best - scored[1][0] >= TIE_MIN_MARGIN:
            return arm, "similar_title", round(best, 3)
        return None, "none", round(best, 3)


def tie_group(title: str | None, arm_labels: list[str]) -> tuple[str | None, str, float | None]:
    """(arm label, how it was tied, word similarity) for one results group title.

    The rule, in order: a title equal to an arm label (ignoring case, spacing and punctuation)
    is `title`; a "Total" column is `total` (no arm); the only arm of a one-arm study is
    `single_arm`; else the arm whose label shares most words with the title (Dice coefficient
    of word sets) is `similar_title` when it reaches TIE_MIN_SIMILARITY and leads the next arm
    by TIE_MIN_MARGIN. Anything else is `none`: the group is not tied to an arm.
    """
    return ArmLabels(arm_labels).tie(title)


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


# --- adverse events ---------------------------------------------------------------------------


def _adverse_events(
    nct: str, module: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per term x group counts of serious and other events, and each group's totals."""
    titles = _titles(module.get("eventGroups"))
    events = []
    for event_type, key in (("serious", "seriousEvents"), ("other", "otherEvents")):
        for event in module.get(key) or []:
            term = as_text(event.get("term"))
            for stat in event.get("stats") or []:
                group_id = _known_group(nct, f"adverse event {term!r}", stat, titles)
                events.append(
                    {
                        "study_id": nct,
                        "event_group_id": group_id,
                        "event_type": event_type,
                        "term": term,
                        "organ_system": as_text(event.get("organSystem")),
                        "group_title": titles[group_id],
                        **_count_cell("affected", stat.get("numAffected")),
                        **_count_cell("at_risk", stat.get("numAtRisk")),
                        **_count_cell("events", stat.get("numEvents")),
                        "assessment": as_text(event.get("assessmentType")),
                        "source_vocabulary": as_text(event.get("sourceVocabulary")),
                    }
                )
    totals = []
    for group in module.get("eventGroups") or []:
        for total_type, prefix in _AE_TOTALS:
            affected = group.get(f"{prefix}NumAffected")
            at_risk = group.get(f"{prefix}NumAtRisk")
            if affected is None and at_risk is None:
                continue
            totals.append(
                {
                    "study_id": nct,
                    "event_group_id": as_text(group.get("id")),
                    "total_type": total_type,
                    "group_title": as_text(group.get("title")),
                    **_count_cell("affected", affected),
                    **_count_cell("at_risk", at_risk),
                    "time_frame": as_text(module.get("timeFrame")),
                    "frequency_threshold": as_number(module.get("frequencyThreshold")),
                }
            )
    return events, totals


# --- baseline and participant flow ------------------------------------------------------------


def _baseline(nct: str, module: dict[str, Any]) -> list[dict[str, Any]]:
    """Every baseline cell: measure x class/category x group, with its denominator."""
    titles = _titles(module.get("groups"))
    module_denoms = denominators(module.get("denoms"))
    rows = []
    for measure in module.get("measures") or []:
        title = as_text(measure.get("title"))
        measure_denoms = denominators(measure.get("denoms")) or module_denoms
        for klass in measure.get("classes") or []:
            denoms = denominators(klass.get("denoms")) or measure_denoms
            class_title = as_text(klass.get("title"))
            for category in klass.get("categories") or []:
                label = " / ".join(t for t in (class_title, as_text(category.get("title"))) if t)
                for cell in category.get("measurements") or []:
                    group_id = _known_group(nct, f"baseline measure {title!r}", cell, titles)
                    rows.append(
                        {
                            "study_id": nct,
                            "title": title,
                            "group_title": titles[group_id],
                            "category": label,
                            "param_type": as_text(measure.get("paramType")),
                            "group_id": group_id,
                            **_number_cell("value", cell.get("value")),
                            "dispersion_type": as_text(measure.get("dispersionType")),
                            "dispersion_value": as_number(cell.get("spread")),
                            "lower_limit": as_number(cell.get("lowerLimit")),
                            "upper_limit": as_number(cell.get("upperLimit")),
                            "unit": as_text(measure.get("unitOfMeasure")),
                            "participants": denoms.get(group_id),
                        }
                    )
    return rows


def _flow(nct: str, module: dict[str, Any]) -> list[dict[str, Any]]:
    """Participants per period x milestone (STARTED, COMPLETED, ...) or drop-out reason x group."""
    titles = _titles(module.get("groups"))
    rows = []
    for period in module.get("periods") or []:
        period_title = as_text(period.get("title")) or ""
        for kind, key, cells in (
            ("milestone", "milestones", "achievements"),
            ("drop_withdraw", "dropWithdraws", "reasons"),
        ):
            for item in period.get(key) or []:
                name = as_text(item.get("type"))
                for cell in item.get(cells) or []:
                    group_id = _known_group(nct, f"participant flow {name!r}", cell, titles)
                    rows.append(
                        {
                            "study_id": nct,
                            "period": period_title,
                            "milestone_or_reason": name,
                            "kind": kind,
                            "group_title": titles[group_id],
                            "group_id": group_id,
                            **_count_cell("participants", cell.get("numSubjects")),
                        }
                    )
    return rows


# --- statistical analyses ---------------------------------------------------------------------


def _analyses(outcome_id: str, measure: dict[str, Any]) -> list[dict[str, Any]]:
    """The measure's statistical analyses: groups compared, estimate, CI and p-value."""
    titles = _titles(measure.get("groups"))
    rows = []
    for number, analysis in enumerate(measure.get("analyses") or [], start=1):
        group_ids = str_list(analysis.get("groupIds"))
        unknown = [g for g in group_ids if g not in titles]
        if unknown:
            raise RecordError(f"{outcome_id}: analysis {number} compares unknown groups {unknown}")
        p_text = as_text(analysis.get("pValue"))
        p_value, relation = parse_p_value(p_text)
        rows.append(
            {
                "analysis_id": f"{outcome_id}:A{number}",
                "outcome_id": outcome_id,
                "group_titles": [titles[g] for g in group_ids],
                "group_ids": group_ids,
                "method": as_text(analysis.get("statisticalMethod")),
                "param_type": as_text(analysis.get("paramType")),
                **_number_cell("estimate", analysis.get("paramValue")),
                "dispersion_type": as_text(analysis.get("dispersionType")),
                "dispersion_value": as_number(analysis.get("dispersionValue")),
                **_number_cell("ci_low", analysis.get("ciLowerLimit")),
                **_number_cell("ci_high", analysis.get("ciUpperLimit")),
                "ci_pct": as_number(analysis.get("ciPctValue")),
                "ci_sides": as_text(analysis.get("ciNumSides")),
                "p_value": p_value,
                "p_value_relation": relation,
                "p_value_text": p_text,
                "non_inferiority": as_text(analysis.get("nonInferiorityType")),
            }
        )
    return rows


def parse_p_value(printed: str | None) -> tuple[float | None, str | None]:
    """(number, relation) of a p-value as printed: "<0.001" -> (0.001, "<"), "0.03" -> (0.03, "=").

    A value outside [0, 1] or text that is no number ("NS", "see comment") gives (None, None);
    the printed text is kept by the caller either way.
    """
    match = _P_VALUE.match(printed or "")
    if match is None:
        return None, None
    value = float(match.group(2))
    if not 0 <= value <= 1:
        return None, None
    sign = match.group(1)
    return value, _RELATION.get(sign, sign)


# --- shared cells -----------------------------------------------------------------------------


def _titles(groups: Any) -> dict[str, str]:
    """Group id -> title (the id itself when the group has no title)."""
    return {
        gid: as_text(g.get("title")) or gid
        for g in groups or []
        if (gid := as_text(g.get("id"))) is not None
    }


def _known_group(nct: str, where: str, cell: dict[str, Any], titles: dict[str, str]) -> str:
    group_id = as_text(cell.get("groupId"))
    if group_id is None or group_id not in titles:
        raise RecordError(f"{nct}: {where} for group {group_id!r}, not one of the module's groups")
    return group_id


def _count_cell(column: str, value: Any) -> dict[str, Any]:
    """`column` as a count and `column_text` holding the value as printed when it is not one."""
    count = as_count(value)
    return {column: count, f"{column}_text": as_text(value) if count is None else None}


def _number_cell(column: str, value: Any) -> dict[str, Any]:
    """`column` as a number and `column_text` holding the value as printed when it is not one."""
    number = as_number(value)
    return {column: number, f"{column}_text": as_text(value) if number is None else None}

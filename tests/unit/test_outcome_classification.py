"""Outcome titles to (domain, instrument)."""

from __future__ import annotations

import csv

import pytest

from pipelines.normalize.outcomes import InstrumentLexicon, load_instrument_lexicon
from pipelines.paths import REFERENCE_DIR


@pytest.fixture(scope="module")
def lexicon() -> InstrumentLexicon:
    return load_instrument_lexicon(REFERENCE_DIR)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("COWS (Clinical Opiate Withdrawal Scale) score", ("withdrawal", "COWS")),
        ("Short Opiate Withdrawal Scale (SOWS-Gossop)", ("withdrawal", "SOWS-Gossop")),
        ("SOWS score", ("withdrawal", "SOWS")),
        ("Opioid craving on a visual analogue scale", ("craving", "craving VAS")),
        ("Drug Liking VAS Emax", ("abuse_liability", "drug liking VAS")),
        ("Midazolam and dextromethorphan half-life", ("pharmacokinetics", "half-life")),
        ("AUC0-inf of oxycodone", ("pharmacokinetics", "AUC")),
        ("Pain tolerance (cold pressor task)", ("pain", "cold pressor")),
        ("Pupil diameter (pharmacodynamic interaction)", ("physiology", "pupil diameter")),
        ("Heart rate variability", ("physiology", "heart rate variability")),
        ("Heart rate", ("safety", "vital signs")),
        # titles an audit saw go to "other" before the vocabulary learned them
        ("Area Under Curve", ("pharmacokinetics", "AUC")),
        ("Plasma mitragynine", ("pharmacokinetics", None)),
        ("Pupil constriction", ("physiology", "pupil diameter")),
        ("MMSE", ("cognition", "MMSE")),
        ("Montreal Cognitive Assessment (MoCA)", ("cognition", "MoCA")),
        ("Stanford Sleepiness Scale", ("sleep", "Stanford Sleepiness Scale")),
        ("Liver enzymes (ALT, AST)", ("safety", "clinical laboratory tests")),
        ("Seizures", ("safety", None)),
        ("Deaths", ("safety", None)),
        ("Record self-report of MOUD prevalence and adherence", ("substance_use", None)),
    ],
)
def test_instrument_and_domain(
    lexicon: InstrumentLexicon, title: str, expected: tuple[str, str]
) -> None:
    assert lexicon.classify(title) == expected


def test_instrument_beats_domain_keyword(lexicon: InstrumentLexicon) -> None:
    assert lexicon.classify("Kratom withdrawal symptoms (SOWS)") == ("withdrawal", "SOWS")


def test_domain_keyword_without_instrument(lexicon: InstrumentLexicon) -> None:
    assert lexicon.classify("Severity of opioid withdrawal") == ("withdrawal", None)


def test_time_frame_is_read_only_when_title_names_nothing(lexicon: InstrumentLexicon) -> None:
    assert lexicon.classify("Midazolam", "Pharmacokinetic sampling 0-144 h") == (
        "pharmacokinetics",
        None,
    )
    assert lexicon.classify("COWS", "Pharmacokinetic sampling")[0] == "withdrawal"


def test_nothing_matching_is_other(lexicon: InstrumentLexicon) -> None:
    assert lexicon.classify("Patient satisfaction", None) == ("other", None)


def test_unknown_domain_in_reference_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "outcome_instruments.csv").write_text(
        "instrument,domain,patterns,priority,source\nX,feelings,x scale,2,test\n"
    )
    with pytest.raises(ValueError, match="unknown domain"):
        load_instrument_lexicon(tmp_path)


def test_plasma_alone_or_another_analyte_is_not_pharmacokinetics(
    lexicon: InstrumentLexicon,
) -> None:
    assert lexicon.classify("Serum cortisol") == ("physiology", None)
    assert lexicon.classify("Plasma volume") == ("other", None)


def test_adverse_events_named_with_withdrawal_stay_safety(lexicon: InstrumentLexicon) -> None:
    title = "Occurrence of Adverse Events (AEs) Not Related to Opioid Withdrawal"
    assert lexicon.classify(title) == ("safety", "adverse events")


STANDARD_INSTRUMENTS = {
    # alcohol and drug use
    "AUDIT": "substance_use",
    "AUDIT-C": "substance_use",
    "DAST-10": "substance_use",
    "ASI": "substance_use",
    "TLFB": "substance_use",
    "SDS": "substance_use",
    "Kratom Dependence Scale": "substance_use",
    # mood and anxiety
    "HADS": "mood",
    "PHQ-9": "mood",
    "BDI-II": "mood",
    "GAD-7": "mood",
    "HAM-A": "mood",
    "HAM-D": "mood",
    "STAI": "mood",
    # cognition
    "HVLT-R": "cognition",
    "MoCA": "cognition",
    "MMSE": "cognition",
    "DSST": "cognition",
    "CANTAB": "cognition",
    # sleep
    "PSQI": "sleep",
    "ISI": "sleep",
    "ESS": "sleep",
    # craving (a craving VAS is the visual analogue scale rated for craving)
    "OCDS": "craving",
    "Desires for Drug Questionnaire": "craving",
    "craving VAS": "craving",
    # withdrawal
    "COWS": "withdrawal",
    "SOWS": "withdrawal",
    "OOWS": "withdrawal",
    "CINA": "withdrawal",
    "SOWS-Gossop": "withdrawal",
}
"""The instruments addiction research uses (issue 11), with the domain each measures."""


def test_every_standard_instrument_has_a_row_and_its_defining_page() -> None:
    with open(REFERENCE_DIR / "outcome_instruments.csv", newline="", encoding="utf-8") as handle:
        rows = {r["instrument"]: r for r in csv.DictReader(handle) if r["instrument"]}
    for instrument, domain in STANDARD_INSTRUMENTS.items():
        assert rows[instrument]["domain"] == domain, instrument
        assert rows[instrument]["defined_at"].startswith("https://"), instrument


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("AUDIT total score", ("substance_use", "AUDIT")),
        ("AUDIT-C score", ("substance_use", "AUDIT-C")),
        ("Drug Abuse Screening Test (DAST-10)", ("substance_use", "DAST-10")),
        ("Severity of Dependence Scale (SDS) score", ("substance_use", "SDS")),
        ("SDS score for kratom dependence", ("substance_use", "SDS")),
        ("Ketum Dependence Scale (KDS)", ("substance_use", "Kratom Dependence Scale")),
        ("Hospital Anxiety and Depression Scale (HADS)", ("mood", "HADS")),
        ("Beck Depression Inventory-II", ("mood", "BDI-II")),
        ("Hopkins Verbal Learning Test-Revised (HVLT-R)", ("cognition", "HVLT-R")),
        ("Obsessive Compulsive Drinking Scale", ("craving", "OCDS")),
        ("Obsessive Compulsive Drug Use Scale (OCDUS)", ("craving", "OCDUS")),
        ("Epworth Sleepiness Scale (ESS)", ("sleep", "ESS")),
        ("ESS daytime sleepiness", ("sleep", "ESS")),
    ],
)
def test_standard_instruments_are_recognised(
    lexicon: InstrumentLexicon, title: str, expected: tuple[str, str]
) -> None:
    assert lexicon.classify(title) == expected


@pytest.mark.parametrize(
    "title",
    [
        "Audit of data completeness",  # 'audit' is also an ordinary word
        "SDS-PAGE band intensity",  # sodium dodecyl sulfate
        "ISI of the sample",  # no sleep word
        "ESS",  # no sleep word
        "ASI",  # no addiction word
    ],
)
def test_short_acronyms_need_their_context(lexicon: InstrumentLexicon, title: str) -> None:
    assert lexicon.classify(title)[1] is None

"""Allowed values of categorical columns (schema_version 1). Changing one is a schema change."""

from __future__ import annotations

EVIDENCE_SOURCES = ("registry", "literature")
POPULATIONS = ("human", "animal", "in_vitro", "unknown")
DESIGNS = (
    "rct",
    "non_randomised_trial",
    "observational",
    "case_report",
    "survey",
    "qualitative",
    "preclinical",
    "other",
)
DATE_PRECISIONS = ("day", "month", "year")
ID_TYPES = (
    "nct",
    "isrctn",
    "euctr",
    "ctis",
    "nl_omon",
    "tctr",
    "anzctr",
    "org_study_id",
    "secondary",
)
CONDITION_CATEGORIES = (
    "opioid_use_disorder",
    "opioid_withdrawal",
    "alcohol_use_disorder",
    "other_substance_use",
    "pain",
    "kratom_use",
    "healthy_volunteers",
    "other",
)
PRODUCT_FORMS = (
    "leaf",
    "tea",
    "powder",
    "extract",
    "purified_alkaloid",
    "placebo",
    "comparator",
    "other",
)
OUTCOME_KINDS = ("primary", "secondary", "other", "adverse_events")
OUTCOME_DOMAINS = (
    "withdrawal",
    "craving",
    "abuse_liability",
    "pain",
    "pharmacokinetics",
    "safety",
    "cognition",
    "mood",
    "sleep",
    "substance_use",
    "physiology",
    "other",
)
OUTCOME_SOURCES = ("registry_protocol", "registry_results", "literature")
LINK_TYPES = ("result", "background", "derived", "report")
LINK_SOURCES = (
    "registry_reference",
    "pubmed_databank",
    "text_mention",
    "curated_inference",
)
COMPOUND_ROLES = ("kratom_alkaloid", "kratom_product", "comparator", "other")
MATCHED_IN = ("title", "abstract", "mesh", "keywords")
INTERACTION_SETTINGS = ("clinical", "in_vitro", "animal")
ADVERSE_EVENT_TYPES = ("serious", "other")
FLOW_KINDS = ("milestone", "drop_withdraw")
OUTCOME_CHANGE_STATUSES = (
    "matched",
    "registered_not_reported",
    "reported_not_registered",
    "primary_demoted",
    "secondary_promoted",
    "time_frame_changed",
)
LITERATURE_FIELDS = ("title", "keywords", "mesh", "publication_type")
"""Fields of a paper's record a literature outcome domain is read from, in reading order."""
ARM_TIES = ("title", "similar_title", "single_arm", "total", "none")
AE_TOTAL_TYPES = ("all_cause_mortality", "serious", "other")
P_VALUE_RELATIONS = ("<", "<=", "=", ">=", ">")
SOURCE_KINDS = ("peer_reviewed", "regulator", "secondary_summary", "news")
RATIO_PARAMETERS = ("auc_ratio", "cmax_ratio", "half_life_ratio", "predicted_auc_ratio")
INTERACTION_PARAMETERS = (*RATIO_PARAMETERS, "ic50", "ki", "ki_inactivation", "kinact")
MATERIAL_CLASSES = ("leaf", "powder", "extract", "7oh_product", "commercial_product", "mixed")
SAFETY_OUTCOMES = (
    "exposure",
    "death",
    "liver_injury",
    "neonatal_withdrawal",
    "prenatal_exposure",
    "adverse_event",
)
RELATIONS = ("=", "<", ">")

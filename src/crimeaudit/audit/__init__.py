"""The audit: sample designs, review sheets, decisions, the oracle auditor and estimators.

The public API, in the order of an audit::

    from crimeaudit.audit import (draw_sample, plan_sample_size, export_review,
                                  import_review, oracle_review, estimate)
    sample = draw_sample(project, kind="stratified", size=1200, seed=7, strata_by=("strand",))
    paths = export_review(project)                 # review-<sample_id>.csv / .xlsx
    import_review(project, "completed.xlsx")       # or oracle_review(project, error_rate=0.02)
    results = estimate(project, by=["strand"])     # AuditEstimates; results.summary()

See ``docs/audit.md`` for the designs, the decision vocabulary and every estimator's formula.
"""

from crimeaudit.audit.decisions import (
    DECISION_COLUMNS,
    VOCABULARY,
    all_decisions,
    history,
    latest_decisions,
)
from crimeaudit.audit.design import (
    Sample,
    SampleDesign,
    draw_sample,
    load_sample,
    sampling_frame,
)
from crimeaudit.audit.errors import AuditError
from crimeaudit.audit.estimators import RatioResult, ht_ratio, srs_ratio, stratified_ratio
from crimeaudit.audit.figures_store import stored_runs
from crimeaudit.audit.measures import MEASURES, estimate
from crimeaudit.audit.oracle import oracle_review
from crimeaudit.audit.plan import SampleSizePlan, plan_for_project, plan_sample_size
from crimeaudit.audit.results import AuditEstimates
from crimeaudit.audit.review import (
    ImportResult,
    ReviewSheetError,
    export_review,
    import_review,
    record_decision,
)
from crimeaudit.uncertainty import clopper_pearson, proportion_interval, wilson

__all__ = [
    "DECISION_COLUMNS", "MEASURES", "VOCABULARY", "AuditError",
    "AuditEstimates", "ImportResult", "RatioResult", "ReviewSheetError", "Sample",
    "SampleDesign", "SampleSizePlan", "all_decisions", "clopper_pearson", "draw_sample",
    "estimate", "export_review", "history", "ht_ratio", "import_review", "latest_decisions",
    "load_sample", "oracle_review", "plan_for_project", "plan_sample_size",
    "proportion_interval", "record_decision", "sampling_frame", "srs_ratio", "stored_runs",
    "stratified_ratio",
    "wilson",
]

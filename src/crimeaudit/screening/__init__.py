"""Screen every incident: P(a crime should have been recorded), the likely class, and why.

Public API: :func:`screen` (writes ``screen_scores``), :func:`train` (retrain on the project's
own decisions or a labelled CSV of narratives), :func:`evaluate` (cross-validated against a
plain baseline), :func:`next_for_review` (active learning list), :func:`unrecorded_candidates`
and :func:`downgrade_candidates` (findings lists). The PPI++ estimator that uses the scores is
an audit estimator: :func:`crimeaudit.audit.ppi_project.estimate_ppi`.
"""

from __future__ import annotations

from crimeaudit.screening.findings import downgrade_candidates, unrecorded_candidates
from crimeaudit.screening.scoring import (
    evaluate,
    load_model,
    next_for_review,
    screen,
    train,
)

__all__ = ["downgrade_candidates", "evaluate", "load_model", "next_for_review", "screen",
           "train", "unrecorded_candidates"]

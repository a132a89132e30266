"""Screen every incident: P(a crime should have been recorded), the likely class, and why.

Public API: :func:`screen` (writes ``screen_scores``), :func:`train` (retrain on the project's
own decisions), :func:`next_for_review` (active learning list), :func:`unrecorded_candidates`
and :func:`downgrade_candidates` (findings lists), :func:`crimeaudit.screen.ppi.estimate_ppi`.
"""

from __future__ import annotations

from crimeaudit.screen.findings import downgrade_candidates, unrecorded_candidates
from crimeaudit.screen.scoring import load_model, next_for_review, screen, train

__all__ = ["downgrade_candidates", "load_model", "next_for_review", "screen", "train",
           "unrecorded_candidates"]

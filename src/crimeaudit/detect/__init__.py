"""Detect target-chasing: period-end effects, deferral, downgrading, cancellation patterns,
threshold bunching, displacement, recording-practice breaks and release differences.

Every detector reads the canonical tables (``crimes``, ``incidents``,
``classification_changes``, ``counts``) so the same tests run on a force's records, on the
simulator's output and on public aggregate data. :func:`run_detection` runs every test the
data supports and sets Benjamini-Hochberg q-values across all units and tests;
:func:`detect_project` is ``crimeaudit detect DIR``. See ``docs/detect.md``.
"""

from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.multiplicity import bh_adjust
from crimeaudit.detect.runner import (
    DetectionRun,
    detect_project,
    findings_table,
    project_input,
    run_detection,
)
from crimeaudit.detect.targets import Target, Targets, TargetsError, load_targets

__all__ = [
    "DetectInput",
    "DetectionRun",
    "Target",
    "Targets",
    "TargetsError",
    "bh_adjust",
    "detect_project",
    "findings_table",
    "load_targets",
    "project_input",
    "run_detection",
]

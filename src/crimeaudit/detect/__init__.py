"""Detect target-chasing: period-end effects, deferral, downgrading, cancellation patterns,
threshold bunching, displacement, recording-practice breaks, release differences and
calls-for-service clearances.

Every detector meets one contract (:class:`Detector`: a question, the inputs it needs, named
settings with defaults, ``run``) and reads the canonical tables (``crimes``, ``incidents``,
``classification_changes``, ``counts``) through :class:`DetectInput`, which asks the engine
for the summaries each test needs. :func:`run_detection` runs every detector the data
supports (:data:`DETECTORS`) and sets Benjamini-Hochberg q-values across all units and tests;
:func:`detect_project` is ``crimeaudit detect DIR``. Findings are ranked by evidence and
effect together, each says its area, measure and date (:mod:`crimeaudit.detect.reading`),
and ``DetectionRun.for_area`` gives one area's. See ``docs/detect.md``.
"""

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.errors import DetectError
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.runner import (
    DETECTORS,
    DetectionRun,
    detect_project,
    detector_settings,
    findings_table,
    project_input,
    run_detection,
)
from crimeaudit.detect.targets import Target, Targets, TargetsError, load_targets
from crimeaudit.uncertainty import bh_adjust

__all__ = [
    "DETECTORS",
    "DetectError",
    "DetectInput",
    "DetectionRun",
    "Detector",
    "DetectorSettings",
    "Skips",
    "Target",
    "Targets",
    "TargetsError",
    "bh_adjust",
    "detect_project",
    "detector_settings",
    "findings_table",
    "load_targets",
    "project_input",
    "run_detection",
]

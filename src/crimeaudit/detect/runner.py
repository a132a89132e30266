"""Run every test the data supports, adjust for multiplicity, store the findings.

>>> from crimeaudit.detect.calibration import calibration_force
>>> t = calibration_force(n_crimes=3000, seed=2)
>>> data = DetectInput.from_frames(crimes=t["crimes"], changes=t["classification_changes"])
>>> run = run_detection(data)
>>> sorted(run.tests_run)[:3], all(0 <= f.q_value <= 1 for f in run.findings)
(['bunching', 'cancellations', 'deferral'], True)
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
from threadpoolctl import threadpool_limits

from crimeaudit.detect import (
    breaks,
    bunching,
    cancellations,
    deferral,
    displacement,
    downgrading,
    period_end,
    releases,
)
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.multiplicity import bh_adjust
from crimeaudit.detect.targets import Targets, load_targets
from crimeaudit.model.figures import Finding
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.project import project_verb

FINDINGS_TABLE = "findings"
ALPHA = 0.05


@dataclass
class DetectionRun:
    """The findings of one run (q-values set across all of them) and what was run or skipped."""

    findings: list[Finding]
    tests_run: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def significant(self, alpha: float = ALPHA) -> list[Finding]:
        return [f for f in self.findings if f.q_value < alpha]

    def summary(self) -> dict:
        return {
            "tests_run": self.tests_run,
            "skipped": self.skipped,
            "findings": len(self.findings),
            "significant_q<0.05": len(self.significant()),
        }


def _plan(data: DetectInput) -> list[tuple[str, str | None, Callable[[], list[Finding]]]]:
    """(test, reason it cannot run or None, function) for every test."""
    rec, cnt = data.has_records, data.counts is not None
    has_reported = rec and "reported_at" in data.crimes and data.crimes["reported_at"].notna().any()
    has_values = rec and "property_value" in data.crimes and data.crimes[
        "property_value"].notna().any()
    monthly = cnt and (data.counts["period_type"] == "month").any()
    return [
        ("period_end", None if rec or monthly else "needs crime records or monthly counts",
         lambda: period_end.period_end_records(data, data.targets.last_days)
         + period_end.period_end_counts(data)),
        ("deferral", None if has_reported else "needs crimes with reported_at and recorded_at",
         lambda: deferral.deferral_tests(data, data.targets.last_days)),
        ("downgrading", None if rec or cnt else "needs crime records or counts",
         lambda: downgrading.reclassification_tests(data) + downgrading.pair_ratio_tests(data)),
        ("cancellations", None if rec and data.crimes["status"].eq("cancelled").any()
         else "needs crime records with cancellations",
         lambda: cancellations.cancellation_tests(data)),
        ("bunching", None if has_values else "needs crimes with property values",
         lambda: bunching.bunching_tests(data, bunching.thresholds_from(data))),
        ("displacement", None if cnt or (rec and data.incidents is not None)
         else "needs counts, or crimes and incidents",
         lambda: displacement.displacement_tests(data)),
        ("breaks", None if cnt else "needs aggregate counts (monthly or rolling 12-month)",
         lambda: breaks.break_tests(data)),
        ("releases", None if rec and data.previous_crimes is not None
         else "needs a previous release (--previous-release)",
         lambda: releases.release_tests(data)),
    ]


def run_detection(data: DetectInput, progress: Progress | None = None) -> DetectionRun:
    """Run every applicable test; q-values are BH-adjusted across all units and tests."""
    # The tests fit hundreds of small regressions (a few hundred rows, a few dozen columns):
    # multi-threaded BLAS only adds overhead there, and on a busy machine its threads thrash
    # (measured: period-end tests 6x slower under load). One BLAS thread for the run.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(data, progress)


def _run(data: DetectInput, progress: Progress | None) -> DetectionRun:
    progress = resolve(progress)
    found: list[Finding] = []
    run = DetectionRun([])
    for test, reason, fn in _plan(data):
        if reason is not None:
            run.skipped[test] = reason
            continue
        with warnings.catch_warnings():
            # Near-separable calendar cells make statsmodels warn; estimates are still checked.
            warnings.simplefilter("ignore")
            got = fn()
        if got:
            run.tests_run.append(test)
            found += got
        else:
            run.skipped[test] = "data present but too few events for the test"
        progress.note(f"{test}: {len(got)} unit{'' if len(got) == 1 else 's'} tested")
    qs = bh_adjust([f.p_value for f in found])
    findings = [replace(f, q_value=q, extra={**f.extra, "significant": q < ALPHA})
                for f, q in zip(found, qs, strict=True)]
    findings.sort(key=lambda f: (f.q_value if not math.isnan(f.q_value) else 2, f.p_value))
    run.findings = findings
    return run


def findings_table(findings: list[Finding]) -> pa.Table:
    """Findings as an Arrow table for the store (extra, chart included, as JSON text)."""
    cols = ["test", "unit", "effect", "lower", "upper", "effect_name", "p_value", "q_value",
            "sentence", "level", "method", "n"]
    df = pd.DataFrame([{c: getattr(f, c) for c in cols} for f in findings], columns=cols)
    df["extra"] = [json.dumps(f.extra, default=str, allow_nan=False) for f in findings]
    schema = pa.schema([
        ("test", pa.string()), ("unit", pa.string()), ("effect", pa.float64()),
        ("lower", pa.float64()), ("upper", pa.float64()), ("effect_name", pa.string()),
        ("p_value", pa.float64()), ("q_value", pa.float64()), ("sentence", pa.string()),
        ("level", pa.float64()), ("method", pa.string()), ("n", pa.int64()),
        ("extra", pa.string()),
    ])
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def project_input(project, targets: Targets | None = None, previous_dir=None) -> DetectInput:
    """The detect input of an open project (tables that exist and have rows)."""
    from crimeaudit.store.project import Project

    eng = project.engine

    def table(name):
        return eng.table(name) if eng.has_table(name) and eng.count(name) else None

    prev = None
    if previous_dir is not None:
        with Project.open(previous_dir) as other:
            if other.engine.has_table("crimes") and other.engine.count("crimes"):
                prev = DetectInput.from_frames(crimes=other.engine.table("crimes")).crimes
    if targets is None:
        tfile = project.config.targets
        if tfile and not Path(tfile).is_absolute():
            tfile = str(project.path / tfile)
        targets = load_targets(tfile)
    data = DetectInput.from_frames(
        crimes=table("crimes"), incidents=table("incidents"),
        changes=table("classification_changes"), counts=table("counts"),
        codes=project.codes, targets=targets, level=project.config.confidence_level,
        timeliness_hours=project.config.timeliness_hours,
    )
    data.previous_crimes = prev
    return data


@project_verb
def detect_project(
    project,
    targets_file: str | Path | None = None,
    previous_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> DetectionRun:
    """``crimeaudit detect DIR``: run, store table ``findings`` and ``reports/findings.json``.

    ``project`` is an open :class:`~crimeaudit.store.Project` or a project folder's path.
    """
    targets = load_targets(targets_file) if targets_file else None
    data = project_input(project, targets, previous_dir)
    run = run_detection(data, progress)
    project.engine.write(FINDINGS_TABLE, findings_table(run.findings))
    out = project.folder("reports") / "findings.json"
    payload = {"summary": run.summary(),
               "findings": [_finite(f.to_dict()) for f in run.findings]}
    out.write_text(json.dumps(payload, indent=1, sort_keys=True, allow_nan=False),
                   encoding="utf-8")
    project.log_run("detect", inputs=[targets_file] if targets_file else [],
                    counts={"findings": len(run.findings),
                            "significant": len(run.significant())},
                    params={"previous_release": str(previous_dir) if previous_dir else None})
    return run

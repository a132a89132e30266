"""Run every detector the data supports, adjust for multiplicity, store the findings.

The detectors are one list (:data:`DETECTORS`, each a :class:`~crimeaudit.detect.base.Detector`)
and the run loops over it: a detector whose inputs are missing is skipped with the reason in
words; one that runs gets its named settings (defaults, or the caller's overrides, validated
first) and reports the units a minimum-data setting left out.

>>> from crimeaudit.detect.calibration import calibration_force
>>> t = calibration_force(n_crimes=3000, seed=2)
>>> data = DetectInput.from_frames(crimes=t["crimes"], changes=t["classification_changes"])
>>> run = run_detection(data)
>>> sorted(run.tests_run)[:3], all(0 <= f.q_value <= 1 for f in run.findings)
(['bunching', 'cancellations', 'deferral'], True)
>>> run.skipped["breaks"]
'needs aggregate counts (monthly, quarterly or rolling 12-month)'
>>> strict = run_detection(data, settings={"bunching": {"min_values_near_threshold": 10**6}})
>>> strict.skipped["bunching"][:68]
'offence=46: fewer than min_values_near_threshold=1000000 crimes with'
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
from threadpoolctl import threadpool_limits

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.breaks import Breaks
from crimeaudit.detect.bunching import Bunching
from crimeaudit.detect.calls import Calls
from crimeaudit.detect.cancellations import Cancellations
from crimeaudit.detect.deferral import Deferral
from crimeaudit.detect.displacement import Displacement
from crimeaudit.detect.downgrading import Downgrading
from crimeaudit.detect.errors import DetectError
from crimeaudit.detect.findings_file import (
    CHARTS_FILE,
    chart_id,
    chart_ids,
    write_charts,
    write_findings,
)
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.detect.near_duplicates import NearDuplicates
from crimeaudit.detect.period_end import PeriodEnd
from crimeaudit.detect.property_digits import PropertyDigits
from crimeaudit.detect.reading import (
    RANKING_RULE,
    groups,
    matches_area,
    rank_findings,
    select_area,
    verdict,
)
from crimeaudit.detect.references import References
from crimeaudit.detect.releases import Releases
from crimeaudit.detect.targets import Targets, load_targets
from crimeaudit.model.figures import Finding
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.project import project_verb
from crimeaudit.uncertainty import bh_adjust

FINDINGS_TABLE = "findings"
ALPHA = 0.05

#: Every detector, in the order they run (and their findings are listed before sorting).
DETECTORS: tuple[Detector, ...] = (
    PeriodEnd(), Deferral(), Downgrading(), Cancellations(), Bunching(), Displacement(),
    Breaks(), Releases(), Calls(), References(), NearDuplicates(), PropertyDigits(),
)


@dataclass
class DetectionRun:
    """The findings of one run (q-values set across all of them) and what was run or skipped.

    ``skipped`` names each test that did not run and why (missing inputs, or the named
    setting whose threshold no unit met); ``units_skipped`` lists, per test that ran, the
    units left out and the setting that left them out; ``settings`` holds every detector's
    settings as used.
    """

    findings: list[Finding]
    tests_run: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    units_skipped: dict[str, list[str]] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Units left out of a comparison they cannot take part in: test, unit, area, reason.
    excluded: list[dict[str, str]] = field(default_factory=list)
    #: What a test measured that is not a finding (release counts, zeros included), by test.
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def significant(self, alpha: float = ALPHA) -> list[Finding]:
        return [f for f in self.findings if f.q_value < alpha]

    def for_area(self, name: str) -> list[Finding]:
        """The findings about one area (force, borough, division), in rank order."""
        return select_area(self.findings, name)

    def summary(self) -> dict:
        return {
            "tests_run": self.tests_run,
            "skipped": self.skipped,
            "units_skipped": self.units_skipped,
            "settings": self.settings,
            "findings": len(self.findings),
            "significant_q<0.05": len(self.significant()),
            "excluded": self.excluded,
            "facts": self.facts,
            "ranking": RANKING_RULE,
        }


def detector_settings(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    detectors: tuple[Detector, ...] = DETECTORS,
) -> dict[str, DetectorSettings]:
    """Every detector's settings: defaults with ``overrides`` applied, validated.

    >>> detector_settings({"bunching": {"min_values_near_threshold": 150}})[
    ...     "bunching"].min_values_near_threshold
    150
    >>> detector_settings({"bunchng": {}})
    Traceback (most recent call last):
    ...
    crimeaudit.detect.errors.DetectError: settings: unknown detector 'bunchng' (detectors: \
period_end, deferral, downgrading, cancellations, bunching, displacement, breaks, releases, \
calls, references, near_duplicates, property_digits)
    """
    overrides = dict(overrides or {})
    names = [d.name for d in detectors]
    for name, values in overrides.items():
        if name not in names:
            raise DetectError(f"settings: unknown detector {name!r} "
                              f"(detectors: {', '.join(names)})")
        if not isinstance(values, Mapping):
            raise DetectError(f"settings: {name} must map setting names to values, "
                              f"not {values!r}")
    return {d.name: d.settings(overrides.get(d.name)) for d in detectors}


def parse_setting(text: str) -> tuple[str, str, Any]:
    """``detector.setting=value`` (the command line's ``--set``) as (detector, setting, value).

    The value is read as YAML, so numbers, lists and quoted strings work; the detector's
    settings model validates it.

    >>> parse_setting("bunching.min_values_near_threshold=150")
    ('bunching', 'min_values_near_threshold', 150)
    >>> parse_setting('bunching.thresholds=[["46", 250]]')
    ('bunching', 'thresholds', [['46', 250]])
    """
    import yaml

    name, eq, value = text.partition("=")
    detector, dot, setting = name.strip().partition(".")
    if not (eq and dot and detector and setting):
        raise DetectError(f"setting {text!r}: write it as detector.setting=value, e.g. "
                          "bunching.min_values_near_threshold=150")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return detector, setting.strip(), parsed


def run_detection(
    data: DetectInput,
    progress: Progress | None = None,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    detectors: tuple[Detector, ...] = DETECTORS,
) -> DetectionRun:
    """Run every applicable detector; q-values are BH-adjusted across all units and tests.

    ``settings`` overrides detectors' named settings, e.g.
    ``{"bunching": {"min_values_near_threshold": 150}}`` (see ``docs/detect.md``); an unknown
    name or a bad value raises :class:`~crimeaudit.detect.errors.DetectError` before anything
    runs.
    """
    chosen = detector_settings(settings, detectors)
    # The tests fit hundreds of small regressions (a few hundred rows, a few dozen columns):
    # multi-threaded BLAS only adds overhead there, and on a busy machine its threads thrash
    # (measured: period-end tests 6x slower under load). One BLAS thread for the run.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(data, progress, detectors, chosen)


def _run(data: DetectInput, progress: Progress | None, detectors: tuple[Detector, ...],
         chosen: dict[str, DetectorSettings]) -> DetectionRun:
    progress = resolve(progress)
    found: list[Finding] = []
    run = DetectionRun([], settings={k: v.model_dump(mode="json") for k, v in chosen.items()})
    for detector in detectors:
        reason = detector.missing(data)
        if reason is not None:
            run.skipped[detector.name] = reason
            continue
        skips = Skips()
        with warnings.catch_warnings():
            # Near-separable calendar cells make statsmodels warn; estimates are still checked.
            warnings.simplefilter("ignore")
            got = detector.run(data, chosen[detector.name], skips)
        if got:
            run.tests_run.append(detector.name)
            found += got
            if skips.notes:
                run.units_skipped[detector.name] = skips.notes
        else:
            run.skipped[detector.name] = _why_nothing(skips.notes)
        run.excluded += [{"test": detector.name, **e} for e in skips.excluded]
        if skips.facts:
            run.facts[detector.name] = skips.facts
        progress.note(f"{detector.name}: {len(got)} unit{'' if len(got) == 1 else 's'} tested")
    qs = bh_adjust([f.p_value for f in found])
    findings = [replace(f, q_value=q, extra={**f.extra, "significant": q < ALPHA})
                for f, q in zip(found, qs, strict=True)]
    # Ranked by evidence and effect together (reading.RANKING_RULE); then each sentence says
    # whether it survives the run's multiplicity, so no interval reads as evidence alone.
    findings = [replace(f, sentence=f.sentence + verdict(f, len(findings)))
                for f in rank_findings(findings)]
    run.findings = findings
    return run


def _why_nothing(notes: list[str], shown: int = 3) -> str:
    """A detector with data but no unit tested: the thresholds that stopped it, in words."""
    if not notes:
        return "data present but no unit could be tested (the models did not fit)"
    more = f"; and {len(notes) - shown} more" if len(notes) > shown else ""
    return "; ".join(notes[:shown]) + more


_FINDING_FIELDS = tuple(f.name for f in fields(Finding))
_FINDINGS_SCHEMA = pa.schema([
    ("test", pa.string()), ("unit", pa.string()), ("effect", pa.float64()),
    ("lower", pa.float64()), ("upper", pa.float64()), ("effect_name", pa.string()),
    ("p_value", pa.float64()), ("q_value", pa.float64()), ("sentence", pa.string()),
    ("level", pa.float64()), ("method", pa.string()), ("n", pa.int64()),
    ("extra", pa.string()),
])


def findings_table(findings: list[Finding], batch_size: int = 500,
                   ids: dict[int, str] | None = None) -> pa.Table:
    """Findings as an Arrow table for the store (``extra`` as JSON text, the chart by its
    id in ``reports/charts.json``: charts are kept once, not per finding).

    >>> findings_table([]).num_rows
    0
    """
    ids = ids if ids is not None else chart_ids(findings)
    cols = [f.name for f in _FINDINGS_SCHEMA][:-1]
    batches = []

    def extra_json(f: Finding) -> str:
        extra = dict(f.extra)
        if isinstance(extra.get("chart"), dict):
            extra["chart"] = ids.get(id(extra["chart"])) or chart_id(extra["chart"])
        return json.dumps(_finite(extra), default=str, allow_nan=False)

    for i in range(0, len(findings), batch_size):
        part = findings[i:i + batch_size]
        arrays = [pa.array([getattr(f, c) for f in part], type=_FINDINGS_SCHEMA.field(c).type,
                           from_pandas=True) for c in cols]
        arrays.append(pa.array([extra_json(f) for f in part], type=pa.string()))
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=_FINDINGS_SCHEMA))
    return pa.Table.from_batches(batches, schema=_FINDINGS_SCHEMA)


def write_findings_json(run: DetectionRun, fp: IO[str], *, strict: bool = True,
                        area: str | None = None, ids: dict[int, str] | None = None) -> None:
    """``{"findings": [...], "summary": {...}, "groups": [...]}``, one finding a line.

    Each finding in the reader's form (:mod:`crimeaudit.detect.findings_file`: test, area,
    measure, date, effect with its interval, p, q, rank; its chart by id, the charts being
    in ``charts.json``), in rank order; ``area`` keeps one area's findings (q-values are
    the whole run's). ``strict``: non-finite numbers become ``null``, standard JSON
    (``reports/findings.json``); otherwise they are written as ``NaN`` (``--json``).

    >>> import io
    >>> buf = io.StringIO()
    >>> write_findings_json(DetectionRun([]), buf)
    >>> json.loads(buf.getvalue())["findings"]
    []
    """
    findings = run.findings if area is None else run.for_area(area)
    excluded = run.excluded if area is None else [
        e for e in run.excluded if matches_area(e["area"], area)]
    head = {"summary": {**run.summary(), "excluded": excluded},
            "groups": groups(findings), "charts": CHARTS_FILE}
    if area is not None:
        head["area"] = area
    write_findings(findings, head, fp, strict=strict, ids=ids)


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def project_input(project, targets: Targets | None = None, previous_dir=None) -> DetectInput:
    """The detect input of an open project (tables that exist and have rows).

    The crime, incident and classification-change tables stay in the project's engine: the
    detectors ask it for the summaries they need while the project is open. A previous
    release is read now, crime by crime (only the columns compared), since its project is
    closed again.
    """
    from crimeaudit.store.project import Project

    eng = project.engine

    def table(name):
        return eng.table(name) if eng.has_table(name) else None

    releases = None
    if previous_dir is not None:
        from crimeaudit.releases import project_release

        with Project.open(previous_dir) as other:
            old = project_release(other, f"earlier release ({Path(previous_dir).name})")
        releases = (old, project_release(project, f"this release ({project.path.name})"))
    if targets is None:
        tfile = project.config.targets
        if tfile and not Path(tfile).is_absolute():
            tfile = str(project.path / tfile)
        targets = load_targets(tfile)
    return DetectInput.from_frames(
        crimes=table("crimes"), incidents=table("incidents"),
        changes=table("classification_changes"), counts=table("counts"),
        codes=project.codes, targets=targets, releases=releases,
        level=project.config.confidence_level,
        timeliness_hours=project.config.timeliness_hours,
    )


@project_verb
def detect_project(
    project,
    targets_file: str | Path | None = None,
    previous_dir: str | Path | None = None,
    progress: Progress | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> DetectionRun:
    """``crimeaudit detect DIR``: run, store table ``findings``, ``reports/findings.json``
    and ``reports/charts.json``.

    ``project`` is an open :class:`~crimeaudit.store.Project` or a project folder's path;
    ``settings`` overrides detectors' named settings (:func:`run_detection`).
    """
    detector_settings(settings)  # a bad setting fails before any table is read
    targets = load_targets(targets_file) if targets_file else None
    data = project_input(project, targets, previous_dir)
    run = run_detection(data, progress, settings=settings)
    ids = chart_ids(run.findings)
    project.engine.write(FINDINGS_TABLE, findings_table(run.findings, ids=ids))
    reports = project.folder("reports")
    from crimeaudit.store.files import open_for_write  # never through a link, never torn

    with open_for_write(reports / "findings.json") as fp:
        write_findings_json(run, fp, ids=ids)
    with open_for_write(reports / CHARTS_FILE) as fp:
        write_charts(run.findings, fp, ids)
    project.log_run("detect", inputs=[targets_file] if targets_file else [],
                    counts={"findings": len(run.findings),
                            "significant": len(run.significant())},
                    params={"previous_release": str(previous_dir) if previous_dir else None,
                            "settings": {k: dict(v) for k, v in (settings or {}).items()}})
    return run

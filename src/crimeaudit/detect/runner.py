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
from crimeaudit.detect.cancellations import Cancellations
from crimeaudit.detect.deferral import Deferral
from crimeaudit.detect.displacement import Displacement
from crimeaudit.detect.downgrading import Downgrading
from crimeaudit.detect.errors import DetectError
from crimeaudit.detect.inputs import DetectInput, release_frame
from crimeaudit.detect.period_end import PeriodEnd
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
    Breaks(), Releases(),
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

    def significant(self, alpha: float = ALPHA) -> list[Finding]:
        return [f for f in self.findings if f.q_value < alpha]

    def summary(self) -> dict:
        return {
            "tests_run": self.tests_run,
            "skipped": self.skipped,
            "units_skipped": self.units_skipped,
            "settings": self.settings,
            "findings": len(self.findings),
            "significant_q<0.05": len(self.significant()),
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
period_end, deferral, downgrading, cancellations, bunching, displacement, breaks, releases)
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
        progress.note(f"{detector.name}: {len(got)} unit{'' if len(got) == 1 else 's'} tested")
    qs = bh_adjust([f.p_value for f in found])
    findings = [replace(f, q_value=q, extra={**f.extra, "significant": q < ALPHA})
                for f, q in zip(found, qs, strict=True)]
    findings.sort(key=lambda f: (f.q_value if not math.isnan(f.q_value) else 2, f.p_value))
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


def findings_table(findings: list[Finding], batch_size: int = 500) -> pa.Table:
    """Findings as an Arrow table for the store (extra, chart included, as JSON text).

    Built a batch at a time: the charts of a large force's findings are hundreds of
    megabytes as JSON, and only the Arrow copy should hold them all.

    >>> findings_table([]).num_rows
    0
    """
    cols = [f.name for f in _FINDINGS_SCHEMA][:-1]
    batches = []
    for i in range(0, len(findings), batch_size):
        part = findings[i:i + batch_size]
        arrays = [pa.array([getattr(f, c) for f in part], type=_FINDINGS_SCHEMA.field(c).type,
                           from_pandas=True) for c in cols]
        arrays.append(pa.array([json.dumps(f.extra, default=str, allow_nan=False)
                                for f in part], type=pa.string()))
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=_FINDINGS_SCHEMA))
    return pa.Table.from_batches(batches, schema=_FINDINGS_SCHEMA)


def write_findings_json(run: DetectionRun, fp: IO[str], *, strict: bool = True) -> None:
    """``{"findings": [...], "summary": {...}}``, one finding a line, written as it goes.

    At a million incidents the findings' charts are about 180 MB of JSON: building them all
    as Python objects and one string (as ``json.dumps(payload, indent=1)`` did) took over a
    gigabyte and a minute. Each finding is encoded on its own (compact, keys sorted: the C
    encoder) and written; the summary, small, is indented for people. ``strict``: non-finite
    numbers become ``null``, standard JSON (``reports/findings.json``); otherwise they are
    written as ``NaN`` and other values as text (the command line's ``--json``, as before).

    >>> import io
    >>> buf = io.StringIO()
    >>> write_findings_json(DetectionRun([]), buf)
    >>> json.loads(buf.getvalue())["findings"]
    []
    """
    options = {"allow_nan": False} if strict else {"default": str}
    fp.write('{"findings": [')
    for i, f in enumerate(run.findings):
        # A shallow dict: Finding.to_dict (dataclasses.asdict) deep-copies every chart.
        d = {name: getattr(f, name) for name in _FINDING_FIELDS}
        fp.write(("," if i else "") + "\n"
                 + json.dumps(_finite(d) if strict else d, sort_keys=True, **options))
    summary = _finite(run.summary()) if strict else run.summary()
    fp.write("\n],\n\"summary\": " + json.dumps(summary, indent=1, sort_keys=True, **options)
             + "}\n")


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

    prev = None
    if previous_dir is not None:
        with Project.open(previous_dir) as other:
            if other.engine.has_table("crimes"):
                prev = release_frame(other.engine.table("crimes"))
    if targets is None:
        tfile = project.config.targets
        if tfile and not Path(tfile).is_absolute():
            tfile = str(project.path / tfile)
        targets = load_targets(tfile)
    return DetectInput.from_frames(
        crimes=table("crimes"), incidents=table("incidents"),
        changes=table("classification_changes"), counts=table("counts"),
        previous_crimes=prev, codes=project.codes, targets=targets,
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
    """``crimeaudit detect DIR``: run, store table ``findings`` and ``reports/findings.json``.

    ``project`` is an open :class:`~crimeaudit.store.Project` or a project folder's path;
    ``settings`` overrides detectors' named settings (:func:`run_detection`).
    """
    detector_settings(settings)  # a bad setting fails before any table is read
    targets = load_targets(targets_file) if targets_file else None
    data = project_input(project, targets, previous_dir)
    run = run_detection(data, progress, settings=settings)
    project.engine.write(FINDINGS_TABLE, findings_table(run.findings))
    out = project.folder("reports") / "findings.json"
    with out.open("w", encoding="utf-8") as fp:
        write_findings_json(run, fp)
    project.log_run("detect", inputs=[targets_file] if targets_file else [],
                    counts={"findings": len(run.findings),
                            "significant": len(run.significant())},
                    params={"previous_release": str(previous_dir) if previous_dir else None,
                            "settings": {k: dict(v) for k, v in (settings or {}).items()}})
    return run

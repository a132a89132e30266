"""Collect a project's published figures into one versioned JSON document (``report.json``).

The document is the report's only input: the audit's estimates (``reports/estimates*.json``),
detection findings (``reports/findings.json``), the project's settings and its run log. The
HTML is rendered from it, so the two can never disagree.

>>> from crimeaudit.model.figures import Estimate
>>> e = Estimate("recording_rate", "all", 0.896, 0.877, 0.913, 0.95, "wilson", 1500, 1344, 1500)
>>> doc = figures_document(project={"name": "Kent"}, audits=[{"estimates": [e.to_dict()],
...                        "design": {"kind": "srs", "frame": "incidents"}}])
>>> doc["figures_version"], doc["headline"]["rate"]["estimate"]
(2, 0.896)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crimeaudit import __version__
from crimeaudit.errors import CrimeauditError
from crimeaudit.model.figures import FIGURES_VERSION, Estimate, Finding
from crimeaudit.report.headline import headline
from crimeaudit.store.project import project_verb

REPORTS = "reports"
# Measures of a cancellations sample replace those a sample of incidents happens to contain.
CANCELLATION_MEASURES = ("cancellation_wrong", "victim_told")


class ReportError(CrimeauditError, RuntimeError):
    """The project has nothing to report yet, or its figures files are damaged."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def estimate_of(d: dict[str, Any]) -> Estimate:
    """An Estimate from its JSON form (an unbounded endpoint is stored as null)."""
    d = dict(d)
    for k in ("lower", "upper", "estimate"):
        if d.get(k) is None:
            d[k] = float("inf") if k == "upper" else float("nan")
    return Estimate.from_dict(d)


def figures_document(project: dict[str, Any], audits: list[dict[str, Any]],
                     findings: dict[str, Any] | None = None,
                     runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Assemble the document from already-read parts (``audits``: AuditEstimates dicts)."""
    # The incidents sample leads: it carries the recording rate and the headline.
    audits = sorted(audits, key=lambda a: a.get("design", {}).get("frame", "incidents")
                    != "incidents")
    main = next((a for a in audits if a.get("design", {}).get("frame", "incidents")
                 == "incidents"), audits[0] if audits else None)
    if main is None:
        raise ReportError("no estimates to report: run crimeaudit estimate first")
    estimates = [dict(e) for e in main["estimates"]]
    canc = next((a for a in audits if a.get("design", {}).get("frame") == "cancellations"),
                None)
    if canc is not None:
        estimates = [e for e in estimates if e["measure"] not in CANCELLATION_MEASURES]
        estimates += [dict(e, extra=dict(e.get("extra") or {}, sample_id=canc.get("sample_id")))
                      for e in canc["estimates"] if e["measure"] in CANCELLATION_MEASURES]
    by_key = {(e["measure"], e["scope"]): e for e in estimates}
    rate = by_key.get(("recording_rate", "all"))
    unrec = by_key.get(("unrecorded_per_year", "all"))
    return {
        "figures_version": FIGURES_VERSION,
        "crimeaudit_version": __version__,
        "project": project,
        "level": main.get("level", rate["level"] if rate else 0.95),
        "audits": [{k: a.get(k) for k in ("sample_id", "design", "level", "method", "sample",
                                          "decisions")} for a in audits],
        "estimates": estimates,
        "headline": headline(rate, unrec),
        "detection": findings,
        "runs": runs or [],
    }


@project_verb
def collect(p) -> dict[str, Any]:
    """Read an open project's figures into the document (see :func:`figures_document`)."""
    project_dir = p.path
    project = {"name": p.config.name,
               "timeliness_hours": p.config.timeliness_hours,
               "confidence_level": p.config.confidence_level,
               "audit_period_start": _iso(p.config.audit_period_start),
               "audit_period_end": _iso(p.config.audit_period_end)}
    runs = p.runs()
    folder = p.path / REPORTS
    files = sorted(folder.glob("estimates*.json")) if folder.is_dir() else []
    if not files:
        raise ReportError(f"{folder}: no estimates.json; run crimeaudit estimate "
                          f"{project_dir} first")
    audits = [_read_json(f) for f in files]
    findings_file = folder / "findings.json"
    findings = _read_json(findings_file) if findings_file.exists() else None
    meta = _simulation_manifest(runs)
    if meta:
        project["simulation"] = meta
    return figures_document(project, audits, findings, runs)


def _iso(d) -> str | None:
    return d.isoformat() if d else None


def _simulation_manifest(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Scenario and seed of a simulated force, when a run logged its manifest."""
    for r in runs:
        m = (r.get("params") or {}).get("simulation")
        if m:
            return m
    return None


def findings_of(doc: dict[str, Any]) -> list[Finding]:
    det = doc.get("detection") or {}
    return [Finding.from_dict(f) for f in det.get("findings", [])]

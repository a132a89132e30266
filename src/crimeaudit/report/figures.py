"""Collect a project's published figures into one versioned JSON document (``report.json``).

The document is the report's only input: the audit's estimates (the store's ``estimates``
table: every sample and method estimated), how crimes were linked to incidents, detection
findings (``reports/findings.json``), the project's settings and its run log. The HTML is
rendered from it, so the two can never disagree.

>>> from crimeaudit.model.figures import Estimate
>>> e = Estimate("recording_rate", "all", 0.896, 0.877, 0.913, 0.95, "wilson", 1500, 1344, 1500)
>>> doc = figures_document(project={"name": "Kent"}, audits=[{"estimates": [e.to_dict()],
...                        "design": {"kind": "srs", "frame": "incidents"}}])
>>> doc["figures_version"], doc["headline"]["rate"]["estimate"]
(2, 0.896)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crimeaudit import __version__
from crimeaudit.audit.figures_store import stored_runs
from crimeaudit.comparison.section import report_section
from crimeaudit.detect.findings_file import read_findings
from crimeaudit.errors import CrimeauditError
from crimeaudit.linkage.pairs import link_counts
from crimeaudit.model.figures import FIGURES_VERSION, Finding
from crimeaudit.report.census import census_timeliness, n100_check
from crimeaudit.report.data_quality import ingest_summary
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


def _frame(a: dict[str, Any]) -> str:
    return a.get("frame") or a.get("design", {}).get("frame", "incidents")


def _measures(a: dict[str, Any], measures: tuple[str, ...] | None = None) -> list[dict]:
    return [dict(e, extra=dict(e.get("extra") or {}, sample_id=a.get("sample_id")))
            for e in a["estimates"] if measures is None or e["measure"] in measures]


def figures_document(project: dict[str, Any], audits: list[dict[str, Any]],
                     findings: dict[str, Any] | None = None,
                     runs: list[dict[str, Any]] | None = None,
                     linkage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the document from already-read parts (``audits``: AuditEstimates dicts,
    oldest first).

    The latest estimate of a sample of incidents leads: it carries the recording rate and the
    headline. The cancellation figures come from the latest sample of cancellations when there
    is one (a sample of incidents holds few cancelled crimes). Every run stays listed in
    ``audits``, with its own figures, so nothing estimated is hidden.
    """
    incidents = [a for a in audits if _frame(a) == "incidents"]
    cancels = [a for a in audits if _frame(a) == "cancellations"]
    main = incidents[-1] if incidents else None
    canc = cancels[-1] if cancels else None
    if main is None and canc is None:
        raise ReportError("no estimates to report: run crimeaudit estimate first")
    estimates = _measures(main) if main else []
    if canc is not None:
        estimates = [e for e in estimates if e["measure"] not in CANCELLATION_MEASURES]
        estimates += _measures(canc, CANCELLATION_MEASURES)
    by_key = {(e["measure"], e["scope"]): e for e in estimates}
    rate = by_key.get(("recording_rate", "all"))
    unrec = by_key.get(("unrecorded_per_year", "all"))
    lead = main or canc
    keys = ("run_id", "sample_id", "frame", "design", "level", "method", "sample", "decisions",
            "estimated_at")
    return {
        "figures_version": FIGURES_VERSION,
        "crimeaudit_version": __version__,
        "project": project,
        "level": lead.get("level", rate["level"] if rate else 0.95),
        "audits": [dict({k: a.get(k) for k in keys},
                        figures=[e for e in a["estimates"] if e.get("scope") == "all"],
                        shown=a is main or a is canc)
                   for a in audits],
        "estimates": estimates,
        "headline": headline(rate, unrec, by_key.get(("recording_rate_adjusted", "all"))),
        "linkage": linkage,
        "detection": findings,
        "runs": runs or [],
    }


@project_verb
def collect(p, compare: Sequence[str | Path] = (), area: str | None = None) -> dict[str, Any]:
    """Read an open project's figures into the document (see :func:`figures_document`);
    ``compare`` names other audits' project folders for the comparison section; ``area``
    keeps one area's findings.

    A project with no audit estimates (public data, perhaps with detection run) gives the
    public-data document (``"kind": "public"``): what was loaded, findings by area, release
    differences and methods, and no audit sections.
    """
    project = {"name": p.config.name,
               "timeliness_hours": p.config.timeliness_hours,
               "confidence_level": p.config.confidence_level,
               "audit_period_start": _iso(p.config.audit_period_start),
               "audit_period_end": _iso(p.config.audit_period_end)}
    runs = p.runs()
    audits = [a.to_dict() for a in stored_runs(p)]
    findings = _findings(p, area)
    meta = _simulation_manifest(runs)
    if meta:
        project["simulation"] = meta
    quality = ingest_summary(p)
    if not audits:
        return public_document(p, project, findings, runs, quality, area)
    linkage = link_counts(p) if p.engine.has_table("crimes") else None
    doc = figures_document(project, audits, findings, runs, linkage)
    doc["kind"] = "audit"
    doc["area"] = area
    doc["comparison"] = comparison_of(p, compare)
    doc["data_quality"] = quality
    doc["census_timeliness"] = census_timeliness(p)
    doc["n100"] = n100_check(p)
    return doc


def _findings(p, area: str | None) -> dict[str, Any] | None:
    """The head of ``findings.json`` (summary, groups, exclusions) as written, and each
    finding as a Finding dict with its chart joined back from charts.json; ``area`` keeps that
    area's findings (an unknown area is an error naming the closest)."""
    from crimeaudit.detect.reading import matches_area, select_area

    findings_file = p.path / REPORTS / "findings.json"
    if not findings_file.exists():
        if area is not None:
            raise ReportError(f"--area {area!r}: no findings in {p.path}; run crimeaudit "
                              f"detect {p.path} first")
        return None
    findings = _read_json(findings_file)
    found = read_findings(findings_file)
    findings["tests"] = len(found)
    if area is not None:
        try:
            found = select_area(found, area)
        except CrimeauditError as exc:
            raise ReportError(str(exc)) from None
        summary = findings.get("summary") or {}
        findings["summary"] = dict(summary, excluded=[
            e for e in summary.get("excluded") or [] if matches_area(str(e.get("area")), area)])
        findings["area"] = area
    findings["findings"] = [f.to_dict() for f in found]
    return findings


def _table_rows(p) -> dict[str, int]:
    eng = p.engine
    return {t: n for t in ("incidents", "crimes", "counts", "classification_changes")
            if eng.has_table(t) and (n := eng.count(t))}


def public_document(p, project: dict[str, Any], findings: dict[str, Any] | None,
                    runs: list[dict[str, Any]], quality: dict[str, Any] | None,
                    area: str | None = None) -> dict[str, Any]:
    """The public-data report's document: no audit, so no audit figures at all."""
    tables = _table_rows(p)
    if not tables and findings is None and quality is None:
        raise ReportError(f"{p.path}: nothing to report yet: load data with crimeaudit ingest "
                          f"{p.path} --profile PROFILE FILE... (then crimeaudit detect)")
    facts = ((findings or {}).get("summary") or {}).get("facts") or {}
    samples = p.engine.count("audit_samples") if p.engine.has_table("audit_samples") else 0
    return {
        "figures_version": FIGURES_VERSION,
        "crimeaudit_version": __version__,
        "kind": "public",
        "project": project,
        "area": area,
        "level": project["confidence_level"],
        "tables": tables,
        "data_quality": quality,
        "detection": findings,
        "releases": facts.get("releases"),
        "audit_in_progress": bool(samples),
        "runs": runs or [],
    }


def comparison_of(p, others: Sequence[str | Path] = ()) -> dict[str, Any] | None:
    """The comparison section: this audit against ``others``, or the project's own audits of
    several samples over time (None when there is nothing to compare)."""
    return report_section(p, others, p.config.confidence_level)


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

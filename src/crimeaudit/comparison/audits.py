"""The sides of a comparison: an audit's figures with the definitions they rest on.

An :class:`Audit` is what a comparison reads from a project: the figures of one sample (the
store's ``estimates``), its design, its period, the project's timeliness limit and a
fingerprint of its code lists, so that two audits measured differently can be told apart.

A project is read in one of two ways:

* :func:`lead_audit` - the project's audit as its report shows it: the latest estimate of a
  sample of incidents, with the cancellation figures of the latest sample of cancellations;
* :func:`sample_audits` - one audit per sample of incidents (a re-inspection or a monthly
  programme within one project), ordered by audit period, then by when it was estimated.

>>> from crimeaudit.model import Estimate
>>> e = Estimate("recording_rate", "all", 0.9, 0.88, 0.92, 0.95, "wilson", 1000, 900, 1000)
>>> a = Audit("Kent", (e,), level=0.95, design={"kind": "srs"}, period_start="2017-01-01",
...           period_end="2017-06-30")
>>> a.get("recording_rate").estimate, a.period_label, a.design_kind(e)
(0.9, '2017-01-01 to 2017-06-30', 'srs')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crimeaudit.audit.figures_store import stored_runs
from crimeaudit.audit.results import AuditEstimates
from crimeaudit.comparison.errors import CompareError
from crimeaudit.model.figures import Estimate
from crimeaudit.store.project import Project

CANCELLATION_MEASURES = ("cancellation_wrong", "victim_told")


def _date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


@dataclass
class Audit:
    """One audit's figures and what they mean.

    ``estimates`` are :class:`~crimeaudit.model.Estimate` objects; ``design`` the lead
    sample's design (``kind`` srs / stratified / pps); ``designs`` the design kind of every
    sample an estimate comes from (a cancellation sample's figures may sit beside an incident
    sample's). ``code_lists`` is a fingerprint of the code lists the audit classified with.
    """

    label: str
    estimates: tuple[Estimate, ...]
    level: float = 0.95
    design: dict[str, Any] = field(default_factory=dict)
    method: str = "auto"
    force: str | None = None
    source: str | None = None
    period_start: dt.date | str | None = None
    period_end: dt.date | str | None = None
    timeliness_hours: float | None = None
    code_lists: str | None = None
    frame: str = "incidents"
    sample_id: str | None = None
    run_id: str | None = None
    estimated_at: str | None = None
    designs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.estimates = tuple(self.estimates)
        self.period_start = _date(self.period_start)
        self.period_end = _date(self.period_end)

    def get(self, measure: str, scope: str = "all") -> Estimate | None:
        """The figure of ``measure`` for ``scope``, or None when the audit has none."""
        for e in self.estimates:
            if e.measure == measure and e.scope == scope:
                return e
        return None

    def design_kind(self, e: Estimate) -> str:
        """The design of the sample ``e`` was estimated from (``srs``, ``stratified``, ...)."""
        kind = self.designs.get(e.sample_id or "") or (e.extra or {}).get("design")
        return str(kind or self.design.get("kind") or "unknown")

    @property
    def period_label(self) -> str:
        if self.period_start is None and self.period_end is None:
            return "period not stated"
        return f"{self.period_start or 'start of the data'} to {self.period_end or 'end of data'}"

    @property
    def period_days(self) -> int | None:
        if self.period_start is None or self.period_end is None:
            return None
        return (self.period_end - self.period_start).days + 1

    def sort_key(self) -> tuple:
        """Order of audits over time: by period end, then start, then time of estimation."""
        return (self.period_end or dt.date.max, self.period_start or dt.date.max,
                self.estimated_at or "")

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "force": self.force, "source": self.source,
                "sample_id": self.sample_id, "run_id": self.run_id, "frame": self.frame,
                "design": self.design.get("kind"), "method": self.method, "level": self.level,
                "period_start": _iso(self.period_start), "period_end": _iso(self.period_end),
                "timeliness_hours": self.timeliness_hours, "estimated_at": self.estimated_at}


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def code_list_fingerprint(codes) -> str:
    """A short hash of a project's code lists: two audits that classified with different
    lists have different fingerprints.

    >>> from crimeaudit.model import load_code_lists
    >>> len(code_list_fingerprint(load_code_lists()))
    12
    """
    text = json.dumps(dataclasses.asdict(codes), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def audit_from_run(run: AuditEstimates, project: Project | None = None,
                   label: str | None = None, extra_runs: tuple[AuditEstimates, ...] = ()
                   ) -> Audit:
    """An :class:`Audit` from one stored estimation run (and, optionally, other runs whose
    cancellation figures replace the run's own), with the project's settings when given."""
    design = dict(run.design or {})
    cfg = project.config if project is not None else None
    start = design.get("period_start") or (cfg.audit_period_start if cfg else None)
    end = design.get("period_end") or (cfg.audit_period_end if cfg else None)
    estimates = list(run.estimates)
    designs = {run.sample_id or "": str(design.get("kind", "unknown"))}
    for other in extra_runs:
        estimates = [e for e in estimates if e.measure not in CANCELLATION_MEASURES]
        estimates += [e for e in other.estimates if e.measure in CANCELLATION_MEASURES]
        designs[other.sample_id or ""] = str((other.design or {}).get("kind", "unknown"))
    name = cfg.name if cfg else None
    return Audit(
        label=label or name or f"sample {run.sample_id}", estimates=tuple(estimates),
        level=run.level, design=design, method=run.method, force=name,
        source=str(project.path) if project is not None else None,
        period_start=start, period_end=end,
        timeliness_hours=cfg.timeliness_hours if cfg else None,
        code_lists=code_list_fingerprint(project.codes) if project is not None else None,
        frame=run.frame, sample_id=run.sample_id, run_id=run.run_id,
        estimated_at=run.estimated_at, designs=designs)


def _preferred(runs: list[AuditEstimates], method: str | None) -> AuditEstimates:
    """One run per sample: the requested method, else ``auto``, else the latest estimated."""
    for want in ([method] if method else ["auto"]):
        chosen = [r for r in runs if r.method == want]
        if chosen:
            return chosen[-1]
    if method:
        raise CompareError(f"sample {runs[-1].sample_id} was never estimated with method "
                           f"{method!r}; estimated with: "
                           f"{', '.join(sorted({r.method for r in runs}))}")
    return runs[-1]


def _by_sample(project: Project, frame: str) -> dict[str, list[AuditEstimates]]:
    out: dict[str, list[AuditEstimates]] = {}
    for r in stored_runs(project, frame=frame):
        out.setdefault(r.sample_id or "?", []).append(r)
    return out


def lead_audit(project: Project, method: str | None = None, label: str | None = None
               ) -> Audit:
    """The project's audit as its report leads with it (see the module docstring)."""
    incidents = _by_sample(project, "incidents")
    cancels = _by_sample(project, "cancellations")
    if not incidents and not cancels:
        raise CompareError(f"{project.path}: no estimates in the project; run crimeaudit "
                           f"estimate {project.path} first")
    latest = [_preferred(v, method) for v in incidents.values()]
    latest_c = [_preferred(v, method) for v in cancels.values()]
    key = lambda r: r.estimated_at or ""  # noqa: E731 - a sort key, named for reading
    if latest:
        main = max(latest, key=key)
        extra = (max(latest_c, key=key),) if latest_c else ()
        return audit_from_run(main, project, label, extra)
    return audit_from_run(max(latest_c, key=key), project, label)


def sample_audits(project: Project, samples: list[str] | tuple[str, ...] | None = None,
                  method: str | None = None, frame: str = "incidents") -> list[Audit]:
    """One audit per sample of ``frame`` in the project (or the ``samples`` named), in time
    order (audit period, then time of estimation). Labels name the period where there is one,
    else the sample."""
    runs = _by_sample(project, frame)
    if samples:
        missing = [s for s in samples if s not in runs]
        if missing:
            have = ", ".join(sorted(runs)) or "none"
            raise CompareError(f"{project.path}: sample {missing[0]} has no stored estimates "
                               f"of its {frame} (estimated samples: {have})")
        runs = {s: runs[s] for s in samples}
    audits = [audit_from_run(_preferred(v, method), project) for v in runs.values()]
    if not samples:
        audits.sort(key=Audit.sort_key)
    name = project.config.name
    for a in audits:
        a.label = (f"{name} {a.period_label}" if a.period_start or a.period_end
                   else f"{name} sample {a.sample_id}")
    labels = [a.label for a in audits]
    for a in audits:
        if labels.count(a.label) > 1:
            a.label = f"{a.label} (sample {a.sample_id})"
    return audits


def split_spec(spec: str | os.PathLike) -> tuple[Path, str | None]:
    """``DIR`` or ``DIR@SAMPLE``: a project folder and, optionally, one of its samples.

    >>> split_spec("kent@S0123456789")
    (PosixPath('kent'), 'S0123456789')
    >>> split_spec("kent")
    (PosixPath('kent'), None)
    """
    text = os.fspath(spec)
    if "@" in text and not Path(text).exists():
        folder, sample = text.rsplit("@", 1)
        return Path(folder), sample or None
    return Path(text), None


__all__ = ["Audit", "audit_from_run", "code_list_fingerprint", "lead_audit", "sample_audits",
           "split_spec"]

"""The results object of an estimation: figures, design, level and method, statsmodels-style.

>>> import json
>>> from crimeaudit.model import Estimate
>>> e = Estimate("recording_rate", "all", 0.9, 0.88, 0.92, 0.95, "wilson", 1000, 720, 800,
...              se=0.0106, n_effective=800, sample_id="S1")
>>> res = AuditEstimates([e], design={"kind": "srs"}, level=0.95, method="auto",
...                      sample_id="S1")
>>> res.get("recording_rate").se
0.0106
>>> res.to_frame()[["measure", "scope", "estimate", "se", "lower", "upper", "n"]].values.tolist()
[['recording_rate', 'all', 0.9, 0.0106, 0.88, 0.92, 1000]]
>>> AuditEstimates.from_dict(json.loads(res.to_json())).get("recording_rate") == e
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crimeaudit.model.figures import FIGURES_VERSION, Estimate, dumps

FRAME_COLUMNS = ("measure", "scope", "estimate", "se", "lower", "upper", "level", "method",
                 "n", "n_effective", "numerator", "denominator", "unit", "sample_id", "notes",
                 "warnings")


@dataclass
class AuditEstimates:
    """The figures of one estimation run: one sample, one method, one level.

    ``frame`` is the sample's frame (``incidents`` for a recording audit, ``cancellations``
    for a cancellation audit); ``run_id`` is its key in the store (see
    :mod:`crimeaudit.audit.figures_store`).
    """

    estimates: list[Estimate]
    design: dict[str, Any]
    level: float
    method: str
    sample_id: str | None = None
    sample: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    frame: str = "incidents"
    by: tuple[str, ...] = ()
    run_id: str | None = None
    estimated_at: str | None = None

    def get(self, measure: str, scope: str = "all") -> Estimate:
        for e in self.estimates:
            if e.measure == measure and e.scope == scope:
                return e
        raise KeyError(f"no estimate of {measure} for {scope}")

    def summary(self) -> str:
        """Every figure on its own line, with its interval, standard error and warnings."""
        head = (f"Audit estimates, sample {self.sample_id} ({self.design.get('kind', '?')} "
                f"design, frame {self.frame}), {100 * self.level:.0f}% intervals, "
                f"method {self.method}")
        return "\n".join([head, *(e.summary() for e in self.estimates)])

    def to_frame(self) -> pd.DataFrame:
        """One row per figure, as a pandas DataFrame (warnings joined by '; ')."""
        rows = []
        for e in self.estimates:
            d = e.to_dict()
            d["warnings"] = "; ".join(e.warnings)
            rows.append({c: d.get(c) for c in FRAME_COLUMNS})
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        return {
            "figures_version": FIGURES_VERSION,
            "run_id": self.run_id,
            "sample_id": self.sample_id,
            "frame": self.frame,
            "design": self.design,
            "level": self.level,
            "method": self.method,
            "by": list(self.by),
            "estimated_at": self.estimated_at,
            "sample": self.sample,
            "decisions": self.decisions,
            "estimates": [e.to_dict() for e in self.estimates],
        }

    def to_json(self) -> str:
        """Strict JSON (unbounded endpoints as null), the form ``--json`` prints."""
        return dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditEstimates:
        return cls(
            estimates=[Estimate.from_dict(e) for e in d.get("estimates", [])],
            design=d.get("design") or {}, level=float(d.get("level", 0.95)),
            method=d.get("method", "auto"), sample_id=d.get("sample_id"),
            sample=d.get("sample") or {}, decisions=d.get("decisions") or {},
            frame=d.get("frame") or (d.get("design") or {}).get("frame", "incidents"),
            by=tuple(d.get("by") or ()), run_id=d.get("run_id"),
            estimated_at=d.get("estimated_at"))

"""The figures contract: every number crimeaudit publishes, with its uncertainty.

An :class:`Estimate` is what estimators return, what ``--json`` prints and what the report
renders. Its JSON form is stable: later tools (comparison, re-inspection) read it.

>>> e = Estimate(measure="recording_rate", scope="all", estimate=0.683, lower=0.635,
...              upper=0.727, level=0.95, method="wilson", n=388, numerator=265,
...              denominator=388)
>>> e.summary()
'recording_rate [all]: 68.3% (95% CI 63.5-72.7%; wilson; n=388, 265/388)'
>>> Estimate.from_dict(e.to_dict()) == e
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FIGURES_VERSION = 1


@dataclass(frozen=True)
class Estimate:
    """A proportion, count or effect with its interval, method and sample size.

    ``measure`` names what is estimated (``recording_rate``, ``timeliness``,
    ``classification_accuracy``, ``cancellation_wrong``, ``victim_told``,
    ``unrecorded_per_year``, ...); ``scope`` the strand or unit (``all``, ``violence``,
    ``division=North``). ``numerator``/``denominator`` are the unweighted sample counts where
    they exist; ``n`` is the number of sampled records the estimate rests on.
    """

    measure: str
    scope: str
    estimate: float
    lower: float
    upper: float
    level: float
    method: str
    n: int
    numerator: float | None = None
    denominator: float | None = None
    unit: str = "proportion"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        return cls(**d)

    def _fmt(self, x: float) -> str:
        return f"{100 * x:.1f}" if self.unit == "proportion" else f"{x:,.0f}"

    def summary(self) -> str:
        pct = "%" if self.unit == "proportion" else ""
        counts = ""
        if self.numerator is not None and self.denominator is not None:
            counts = f", {self.numerator:g}/{self.denominator:g}"
        return (
            f"{self.measure} [{self.scope}]: {self._fmt(self.estimate)}{pct} "
            f"({100 * self.level:.0f}% CI {self._fmt(self.lower)}-{self._fmt(self.upper)}{pct}; "
            f"{self.method}; n={self.n}{counts})"
        )


@dataclass(frozen=True)
class Finding:
    """A detector's finding: an effect with interval, p and BH-adjusted q, and a sentence."""

    test: str
    unit: str
    effect: float
    lower: float
    upper: float
    effect_name: str
    p_value: float
    q_value: float
    sentence: str
    level: float = 0.95
    method: str = ""
    n: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**d)

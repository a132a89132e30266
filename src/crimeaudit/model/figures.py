"""The figures contract: every number crimeaudit publishes, with its uncertainty.

An :class:`Estimate` is what every estimator returns (design-based ratios, PPI++, unrecorded
crimes), what the store's ``estimates`` table holds, what ``--json`` prints and what the report
renders. Its JSON form is stable: later tools (comparison, re-inspection) read it.

>>> e = Estimate(measure="recording_rate", scope="all", estimate=0.683, lower=0.635,
...              upper=0.727, level=0.95, method="wilson", n=388, numerator=265,
...              denominator=388, se=0.0236, n_effective=388)
>>> e.summary()
'recording_rate [all]: 68.3% (95% CI 63.5-72.7%; se 2.4 points; wilson; n=388, 265/388)'
>>> [round(x, 3) for x in e.conf_int(0.99)]
[0.62, 0.74]
>>> Estimate.from_json(e.to_json()) == e
True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

FIGURES_VERSION = 2


def strict(value: Any) -> Any:
    """``value`` made strict-JSON-safe: non-finite floats become null ("unbounded" or
    "undefined"), tuples become lists. The one place this conversion is done.

    >>> strict({"a": float("inf"), "b": [1.0, float("nan")], "c": (1, 2)})
    {'a': None, 'b': [1.0, None], 'c': [1, 2]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value`` (see :func:`strict`), keys sorted."""
    kwargs.setdefault("sort_keys", True)
    return json.dumps(strict(value), allow_nan=False, default=str, **kwargs)


@dataclass(frozen=True)
class Estimate:
    """A proportion, count or effect with its standard error, interval, method and sample size.

    ``measure`` names what is estimated (``recording_rate``, ``timeliness``,
    ``classification_accuracy``, ``cancellation_wrong``, ``victim_told``,
    ``unrecorded_per_year``, ...); ``scope`` the strand or unit (``all``, ``violence``,
    ``division=North``). ``numerator``/``denominator`` are the unweighted sample counts where
    they exist; ``n`` is the number of sampled records the estimate rests on and
    ``n_effective`` the design's effective sample size (Kish). ``se`` is the design-based
    standard error of ``estimate``; ``warnings`` are what a reader must see beside the figure.
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
    se: float | None = None
    n_effective: float | None = None
    sample_id: str | None = None
    warnings: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.warnings, list):  # JSON gives lists; keep the type hashable
            object.__setattr__(self, "warnings", tuple(self.warnings))

    # -- intervals ----------------------------------------------------------------------------
    def conf_int(self, level: float | None = None) -> tuple[float, float]:
        """The interval at ``level`` (default: the estimate's own), by the estimate's method.

        Wilson and Clopper-Pearson intervals are recomputed at the effective sample size, a
        logit-scale interval from ``se`` on that scale, a linearised one as ``estimate +/- z se``.
        Unrecorded-crime intervals are derived from a rate's interval: only their own level.
        """
        if level is None or math.isclose(level, self.level):
            return self.lower, self.upper
        from crimeaudit.uncertainty import interval_for

        return interval_for(self, level)

    # -- text ---------------------------------------------------------------------------------
    def _fmt(self, x: float) -> str:
        if x is None or (isinstance(x, float) and not math.isfinite(x)):
            return "unbounded"
        return f"{100 * x:.1f}" if self.unit == "proportion" else f"{x:,.0f}"

    def summary(self) -> str:
        """One line: estimate, interval, standard error, method, sample size, counts."""
        pct = "%" if self.unit == "proportion" else ""
        counts = ""
        if self.numerator is not None and self.denominator is not None:
            counts = f", {self.numerator:g}/{self.denominator:g}"
        se = ""
        if self.se is not None and math.isfinite(self.se):
            se = (f"se {100 * self.se:.1f} points; " if self.unit == "proportion"
                  else f"se {self.se:,.0f}; ")
        text = (
            f"{self.measure} [{self.scope}]: {self._fmt(self.estimate)}{pct} "
            f"({100 * self.level:.0f}% CI {self._fmt(self.lower)}-{self._fmt(self.upper)}{pct}; "
            f"{se}{self.method}; n={self.n}{counts})"
        )
        return text + "".join(f"\n  WARNING: {w}" for w in self.warnings)

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (floats may be infinite: see :meth:`to_json` for strict JSON)."""
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d

    def to_json(self) -> str:
        """Strict JSON (an unbounded endpoint is null)."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        """From :meth:`to_dict` or its JSON form (null endpoints read back as unbounded)."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("lower", "upper", "estimate"):
            if k in d and d[k] is None:
                d[k] = math.inf if k == "upper" else math.nan
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> Estimate:
        return cls.from_dict(json.loads(text))

    def with_(self, **changes: Any) -> Estimate:
        """A copy with some fields changed."""
        return replace(self, **changes)


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
        """Plain values; ``extra`` is copied one level deep only. A chart spec in it can be
        megabytes and is shared by many findings: ``asdict``'s deep copy of every one made a
        1M-incident report take minutes."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**d)

"""Funnel plot of areas' rates against their precision, with over-dispersion (Spiegelhalter 2005).

Each area has a rate ``y_i`` resting on ``n_i`` records (for a weighted or published figure,
its effective sample size ``p (1 - p) / se^2``). The target is the pooled rate
``p0 = sum(y_i n_i) / sum(n_i)`` and an area's binomial standard error under the target is
``s_i = sqrt(p0 (1 - p0) / n_i)``. Forces differ by more than binomial noise (their recording
really differs), so limits from ``s_i`` alone would flag large forces for trivial differences.
Spiegelhalter's remedy, used here by default, is an **additive random-effects** model: the
z-scores ``z_i = (y_i - p0) / s_i`` are winsorised at their 10th and 90th percentiles,
``phi = mean(z_w^2)``, and when ``k phi > k - 1`` the between-area variance is the
DerSimonian-Laird ``tau2 = (k phi - (k - 1)) / (sum w_i - sum w_i^2 / sum w_i)`` with
``w_i = 1 / s_i^2``. Limits at precision ``n`` are ``p0 +/- z sqrt(p0 (1 - p0) / n + tau2)``,
``z`` = 1.96 (95%) and 3.09 (99.8%), clipped to [0, 1]. ``dispersion="multiplicative"`` uses
``p0 +/- z sqrt(phi p0 (1 - p0) / n)`` (phi at least 1) instead, and ``"none"`` the binomial
limits. With fewer than :data:`MIN_AREAS` areas the over-dispersion is not estimated (too
noisy) and the limits are binomial; the funnel says so.

>>> f = funnel_of([0.80, 0.82, 0.85, 0.86, 0.88, 0.90, 0.93, 0.70],
...               [400, 900, 1200, 600, 1500, 800, 1000, 1100])
>>> f.dispersion, round(f.target, 3), f.tau2 > 0
('additive', 0.845, True)
>>> f.position(0.70, 1100), f.position(0.86, 600)
('below 99.8%', 'within')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crimeaudit.uncertainty import normal_quantile

DISPERSIONS = ("additive", "multiplicative", "none")
#: Over-dispersion is estimated only from at least this many areas.
MIN_AREAS = 5
LEVELS = (0.95, 0.998)


@dataclass(frozen=True)
class Funnel:
    """The funnel's target, over-dispersion and limits (see the module docstring)."""

    target: float
    dispersion: str
    tau2: float = 0.0
    phi: float = 1.0
    k: int = 0
    note: str = ""
    z_scores: tuple[float, ...] = field(default=(), compare=False)

    def sd(self, n: float) -> float:
        var = self.target * (1 - self.target) / max(n, 1e-12)
        if self.dispersion == "multiplicative":
            return math.sqrt(max(self.phi, 1.0) * var)
        if self.dispersion == "additive":
            return math.sqrt(var + self.tau2)
        return math.sqrt(var)

    def limits(self, n: float) -> dict[str, float]:
        """Lower and upper limits at precision ``n`` (95% and 99.8%)."""
        sd = self.sd(n)
        out = {"n": float(n), "target": self.target}
        for level, name in zip(LEVELS, ("95", "998"), strict=True):
            z = normal_quantile(level)
            out[f"lower{name}"] = max(0.0, self.target - z * sd)
            out[f"upper{name}"] = min(1.0, self.target + z * sd)
        return out

    def position(self, rate: float, n: float) -> str:
        """``within``, ``above 95%``, ``above 99.8%``, ``below 95%`` or ``below 99.8%``."""
        lim = self.limits(n)
        if rate > lim["upper998"]:
            return "above 99.8%"
        if rate < lim["lower998"]:
            return "below 99.8%"
        if rate > lim["upper95"]:
            return "above 95%"
        if rate < lim["lower95"]:
            return "below 95%"
        return "within"

    def curve(self, n_min: float, n_max: float, points: int = 60) -> list[dict[str, float]]:
        """The limits over a range of precisions, for drawing the funnel."""
        lo, hi = max(n_min * 0.8, 1.0), max(n_max * 1.2, n_min + 1.0)
        return [self.limits(float(m)) for m in np.geomspace(lo, hi, points)]

    def describe(self) -> str:
        if self.dispersion == "additive":
            text = (f"additive random-effects over-dispersion (Spiegelhalter 2005), "
                    f"tau = {100 * math.sqrt(self.tau2):.2f} points between areas")
        elif self.dispersion == "multiplicative":
            text = (f"multiplicative over-dispersion (Spiegelhalter 2005), "
                    f"phi = {max(self.phi, 1.0):.2f}")
        else:
            text = "binomial limits, no over-dispersion"
        return text + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "dispersion": self.dispersion, "tau2": self.tau2,
                "phi": self.phi, "areas": self.k, "description": self.describe()}


def _winsorised(z: np.ndarray, share: float = 0.10) -> np.ndarray:
    lo, hi = np.quantile(z, [share, 1 - share])
    return np.clip(z, lo, hi)


def funnel_of(rates, ns, dispersion: str = "additive") -> Funnel:
    """The funnel of areas with ``rates`` resting on ``ns`` records (effective sizes)."""
    if dispersion not in DISPERSIONS:
        raise ValueError(f"unknown dispersion {dispersion!r}; use one of "
                         f"{', '.join(DISPERSIONS)}")
    y = np.asarray(rates, dtype=float)
    n = np.asarray(ns, dtype=float)
    k = int(y.size)
    target = float((y * n).sum() / n.sum()) if k and n.sum() > 0 else float("nan")
    if not 0 < target < 1:
        return Funnel(target, "none", k=k, note="the pooled rate is 0 or 1")
    s2 = target * (1 - target) / n
    z = (y - target) / np.sqrt(s2)
    if dispersion == "none":
        return Funnel(target, "none", k=k, z_scores=tuple(z))
    if k < MIN_AREAS:
        return Funnel(target, "none", k=k, z_scores=tuple(z),
                      note=f"over-dispersion not estimated from fewer than {MIN_AREAS} areas")
    phi = float(np.mean(_winsorised(z) ** 2))
    if dispersion == "multiplicative":
        return Funnel(target, "multiplicative", phi=phi, k=k, z_scores=tuple(z))
    w = 1 / s2
    tau2 = 0.0
    if k * phi > k - 1:
        tau2 = float((k * phi - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
    return Funnel(target, "additive", tau2=max(tau2, 0.0), phi=phi, k=k, z_scores=tuple(z))


__all__ = ["DISPERSIONS", "MIN_AREAS", "Funnel", "funnel_of"]

"""Benjamini-Hochberg false-discovery-rate control across every unit and test of a run.

A detection run tests hundreds of units (divisions, officers, series). Reporting raw p-values
would flag about 5% of honest units by chance; the BH step-up procedure turns p-values into
q-values so that, among findings with ``q < 0.05``, at most about 5% are expected to be false.

>>> [round(q, 3) for q in bh_adjust([0.01, 0.04, 0.03, 0.5])]
[0.04, 0.053, 0.053, 0.5]
>>> bh_adjust([])
[]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted q-values, in the order given; NaN p-values stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return [float(x) for x in q]
    pv = np.clip(p[ok], 0.0, 1.0)
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    # Step-up: each q is the smallest ranked value at or after its rank.
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(ranked, 1.0)
    q[ok] = adjusted
    return [round(float(x), 12) if not math.isnan(x) else float("nan") for x in q]

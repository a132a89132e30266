"""Funnel-plot comparison of units' rates with over-dispersion (Spiegelhalter 2005).

Each unit (division, officer, strand) has ``events`` out of ``n`` records. Under the null it
shares the rate of the other units, give or take the ordinary spread between units. Binomial
noise alone understates that spread for real organisations, so large units would be flagged
for trivial differences; Spiegelhalter's remedy is to estimate the over-dispersion from the
units themselves, after winsorising the most extreme 10% at each end of the z-scores, and to
widen the limits by an additive random-effects variance ``tau2``.

Two refinements keep an outlying unit from hiding itself: the comparison rate and ``tau2`` are
estimated *leaving the tested unit out*, and the variance of that comparison rate is added.

Units rarely handle the same mix of cases (an officer on a sexual-offences team cancels more
than one on shoplifting because the strands differ, not the officer). With an ``expected``
column (:func:`standardised_counts`: the events the unit would have at the other units' rate
in each stratum, the indirect standardisation of Spiegelhalter's funnels), each unit is
compared with its own case-mix-adjusted rate instead of the rest's crude rate.

>>> import pandas as pd
>>> units = pd.DataFrame({"unit": list("ABCDEFGH"), "events": [50, 52, 48, 51, 49, 50, 53, 110],
...                       "n": [1000] * 8})
>>> res = funnel_test(units)
>>> p = res.set_index("unit")["p_value"]
>>> bool(p["H"] < 0.001), bool(p["A"] > 0.2)
(True, True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def _weighted(frame: pd.DataFrame, flag: str, weight: str | None) -> tuple[pd.DataFrame, str]:
    """Rows as they are (one record each), or rows that each stand for ``weight`` records.

    Summaries computed in the engine carry a count per row; the same funnel then comes from
    sums of counts instead of counts of rows, with the same integers.
    """
    if weight is None:
        return frame.assign(_events=frame[flag], _n=1), "size"
    return frame.assign(_events=frame[flag].astype("int64") * frame[weight],
                        _n=frame[weight]), "sum"


def unit_counts(frame: pd.DataFrame, key: str, flag: str, weight: str | None = None
                ) -> pd.DataFrame:
    """Events (rows where ``flag`` is true) and totals per ``key``, as funnel units.

    With ``weight``, each row stands for that many records (an engine summary).

    >>> unit_counts(pd.DataFrame({"d": ["a", "a", "b"], "x": [True, False, True]}), "d", "x")
      unit  events  n
    0    a       1  2
    1    b       1  1
    >>> unit_counts(pd.DataFrame({"d": ["a", "a", "b"], "x": [True, False, True],
    ...                           "k": [1, 1, 1]}), "d", "x", weight="k")
      unit  events  n
    0    a       1  2
    1    b       1  1
    """
    f, how = _weighted(frame, flag, weight)
    units = f.groupby(key).agg(events=("_events", "sum"), n=("_n", how))
    return units.reset_index().rename(columns={key: "unit"})


def standardised_counts(frame: pd.DataFrame, key: str, flag: str, stratum: str,
                        weight: str | None = None) -> pd.DataFrame:
    """Funnel units with ``expected``: events at the other units' rate in each ``stratum``.

    With ``weight``, each row stands for that many records (an engine summary).

    >>> f = pd.DataFrame({"d": list("aabb"), "s": list("xyxy"), "e": [1, 0, 1, 1]})
    >>> standardised_counts(f, "d", "e", "s")
      unit  events  n  expected
    0    a       1  2       2.0
    1    b       2  2       1.0
    """
    f, how = _weighted(frame, flag, weight)
    g = f.groupby([key, stratum]).agg(events=("_events", "sum"), n=("_n", how)).reset_index()
    tot = g.groupby(stratum)[["events", "n"]].transform("sum")
    rest_n = tot["n"] - g["n"]
    overall = g.groupby(key)[["events", "n"]].transform("sum")
    # A stratum only this unit has: fall back on the rest's crude rate (no information).
    crude = (g["events"].sum() - overall["events"]) / (g["n"].sum() - overall["n"]).clip(lower=1)
    rate = ((tot["events"] - g["events"]) / rest_n.clip(lower=1)).where(rest_n > 0, crude)
    g["expected"] = g["n"] * rate
    units = g.groupby(key).agg(events=("events", "sum"), n=("n", "sum"),
                               expected=("expected", "sum"))
    return units.reset_index().rename(columns={key: "unit"})


#: Tested units per block of the leave-one-out computation: memory is k x this, not k x k
#: (14,980 officers of 43 forces made each k x k matrix 1.8 GB).
LOO_BLOCK = 512


def _tau2_leave_one_out(y: np.ndarray, n: np.ndarray, p0: np.ndarray,
                        rows: np.ndarray | None = None) -> np.ndarray:
    """Additive over-dispersion ``tau2`` of the *other* units, for each tested unit at once.

    DerSimonian-Laird form on z-scores winsorised at their 10th and 90th percentiles; 0 when
    fewer than three other units, a null rate of 0 or 1, or no excess dispersion.

    ``p0[i, j]`` is the null rate of unit ``j`` when unit ``rows[i]`` (default: unit ``i``) is
    tested, its own entry ignored: a block of rows at a time instead of k calls, so thousands
    of officers stay fast and in bounded memory.
    """
    k = y.size
    rows = np.arange(k) if rows is None else rows
    off = np.arange(k)[None, :] != rows[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = p0 * (1 - p0) / n[None, :]
        z = np.where(off, (y[None, :] - p0) / np.sqrt(s2), np.nan)
        valid = ((p0 > 0) & (p0 < 1) | ~off).all(axis=1) & (k - 1 >= 3)
        lo, hi = np.nanquantile(z, [0.1, 0.9], axis=1)
        phi = np.nanmean(np.clip(z, lo[:, None], hi[:, None]) ** 2, axis=1)
        w = np.where(off, 1 / s2, 0.0)
        ws = w.sum(axis=1)
        tau2 = ((k - 1) * phi - (k - 2)) / (ws - (w**2).sum(axis=1) / ws)
    ok = valid & ((k - 1) * phi > (k - 2)) & np.isfinite(tau2)
    return np.where(ok, np.maximum(tau2, 0.0), 0.0)


def _beta_binomial_p(x, m, p0, var, alternative: str) -> np.ndarray:
    """Exact tail of each unit's count when its true rate varies around ``p0`` with ``var``.

    The rate is Beta with mean ``p0`` and variance ``var`` (the rest's sampling error plus the
    between-unit spread), so small counts get exact, not normal-approximation, p-values.
    """
    var = np.minimum(np.maximum(var, 1e-12), p0 * (1 - p0) * 0.999)
    conc = p0 * (1 - p0) / var - 1
    dist = stats.betabinom(np.asarray(m).astype(int), p0 * conc, (1 - p0) * conc)
    upper = dist.sf(np.asarray(x) - 1)
    lower = dist.cdf(x)
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return np.minimum(1.0, 2 * np.minimum(upper, lower))


def funnel_test(
    units: pd.DataFrame,
    alternative: str = "greater",
    level: float = 0.95,
    min_n: int = 1,
) -> pd.DataFrame:
    """Test each unit's rate ``events / n`` against the rest, allowing for over-dispersion.

    ``units`` has columns ``unit``, ``events``, ``n`` and optionally ``expected`` (from
    :func:`standardised_counts`: compare with the case-mix-adjusted rate). Returns one row
    per unit with the rate, the comparison rate of the other units (``p0``), the difference
    and its interval (binomial error of both rates, without ``tau2``: the interval describes
    this unit), the z-score against the over-dispersed null and its p-value
    (``alternative`` = greater, less or two-sided).
    """
    df = units[units["n"] >= min_n].reset_index(drop=True).copy()
    y = (df["events"] / df["n"]).to_numpy(float)
    r = df["events"].to_numpy(float)
    n = df["n"].to_numpy(float)
    k = len(df)
    zcrit = stats.norm.ppf(0.5 + level / 2)
    n_rest = n.sum() - n
    ok = n_rest > 0
    safe_rest = np.where(ok, n_rest, 1.0)
    floor = 0.5 / safe_rest
    expected = "expected" in df
    p0 = df["expected"].to_numpy(float) / n if expected else (r.sum() - r) / safe_rest

    def null(rows: np.ndarray) -> np.ndarray:
        """The null rates of every unit when each of ``rows`` is tested."""
        if expected:  # each other unit at its own case-mix-adjusted rate, floored as the tested
            return np.clip(np.broadcast_to(p0, (rows.size, k)), floor[rows, None],
                           1 - floor[rows, None])
        return np.broadcast_to(p0[rows, None], (rows.size, k))

    blocks = [np.arange(i, min(i + LOO_BLOCK, k)) for i in range(0, k, LOO_BLOCK)]
    tau2 = (np.concatenate([_tau2_leave_one_out(y, n, null(b), b) for b in blocks]) if k
            else np.zeros(0))
    # Floor the binomial variance at one event so a zero rate still has a finite SE.
    pv = np.clip(p0, floor, 1 - floor)
    s_unit = pv * (1 - pv) / n
    s_rest = pv * (1 - pv) / safe_rest
    z = (y - p0) / np.sqrt(s_unit + s_rest + tau2)
    p = _beta_binomial_p(r, n, pv, s_rest + tau2, alternative) if k else np.zeros(0)
    se_diff = np.sqrt(np.maximum(y * (1 - y), pv * (1 - pv)) / n + s_rest)
    d = y - p0
    out = pd.DataFrame({"p0": p0, "tau2": tau2, "diff": d, "lower": d - zcrit * se_diff,
                        "upper": d + zcrit * se_diff, "z": z, "p_value": p})
    out.loc[~ok, :] = np.nan
    df["rate"] = y
    return pd.concat([df, out], axis=1)


def funnel_limits(
    p0: float, tau2: float, n_min: float, n_max: float, points: int = 40
) -> list[dict[str, float]]:
    """Control limits (95% and 99.8%) over a range of denominators, for the funnel chart."""
    ns = np.unique(np.geomspace(max(n_min, 1.0), max(n_max, n_min + 1.0), points))
    out = []
    for m in ns:
        sd = np.sqrt(p0 * (1 - p0) / m + tau2)
        out.append(
            {
                "n": float(m),
                "target": p0,
                "lower95": max(0.0, p0 - 1.96 * sd),
                "upper95": min(1.0, p0 + 1.96 * sd),
                "lower998": max(0.0, p0 - 3.09 * sd),
                "upper998": min(1.0, p0 + 3.09 * sd),
            }
        )
    return out

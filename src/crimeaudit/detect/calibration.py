"""Calibration forces: record-level tables generated directly, with known injected effects.

The full simulator (``crimeaudit.simulation``) models a whole force from incidents up. To check
the detectors' false-alarm rate and power over hundreds of forces, only the tables each test
reads are needed; this module draws those directly (canonical schema, fixed seed), with each
target-chasing mechanism switched on at a stated size. Used by the tests and, where the
simulator is too slow for hundreds of forces, by ``benchmarks/bench_detect.py``.

>>> tables = calibration_force(n_crimes=2000, seed=1)
>>> sorted(tables), len(tables["crimes"]) >= 2000
(['classification_changes', 'crimes'], True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from crimeaudit.detect.periods import days_to_month_end
from crimeaudit.model.schema import TABLES

# Offence mix (code, weight); violent codes first so a division's violence is easy to find.
MIX = (("8N", 0.10), ("105A", 0.12), ("8L", 0.05), ("20A", 0.02), ("19C", 0.01),
       ("34B", 0.02), ("28E", 0.06), ("30C", 0.04), ("45", 0.08), ("39", 0.03),
       ("46", 0.15), ("49", 0.14), ("58A", 0.08), ("92D", 0.10))
DOWNGRADE_TO = {"8N": "105A", "20A": "23", "34B": "39", "28E": "40", "19C": "20A"}


@dataclass(frozen=True)
class Injection:
    """Target-chasing mechanisms and their sizes (all off by default: a compliant force)."""

    cancel_multiplier: float = 1.0      # cancellation rate in the last days of each period
    period: str = "quarter"             # month | quarter | financial_year
    last_days: int = 3
    downgrade_share: float = 0.0        # share of violent crimes downgraded in one division
    downgrade_division: str = "D1"
    deferral_probability: float = 0.0   # reports in the last days deferred past the boundary
    bunching_share: float = 0.0         # share of values above a threshold moved just below it
    bunching_threshold: float = 200.0
    bunching_offence: str = "46"


def calibration_force(
    n_crimes: int = 20000,
    seed: int = 0,
    injection: Injection | None = None,
    start: str = "2012-04-01",
    days: int = 730,
    divisions: int = 6,
    officers: int = 120,
) -> dict[str, pd.DataFrame]:
    """Crimes and classification changes of one force (canonical columns)."""
    inj = injection or Injection()
    rng = np.random.default_rng(seed)
    codes = np.array([c for c, _ in MIX])
    w = np.array([x for _, x in MIX])
    code = rng.choice(codes, size=n_crimes, p=w / w.sum())
    t0 = pd.Timestamp(start)
    reported = t0 + pd.to_timedelta(rng.uniform(0, days * 86400, n_crimes), unit="s")
    delay_h = rng.lognormal(np.log(6), 1.0, n_crimes)
    recorded = reported + pd.to_timedelta(delay_h, unit="h")
    division = np.array([f"D{i + 1}" for i in range(divisions)])[
        rng.integers(0, divisions, n_crimes)]
    officer = np.array([f"O{i + 1:03d}" for i in range(officers)])[
        rng.integers(0, officers, n_crimes)]
    reported = pd.DatetimeIndex(reported)
    recorded = pd.DatetimeIndex(recorded)

    if inj.deferral_probability > 0:
        # Reports in the last days of a period recorded just after the boundary instead.
        before = days_to_month_end(pd.Series(reported)).to_numpy()
        months = reported.month
        ends = {"month": set(range(1, 13)), "quarter": {3, 6, 9, 12}, "financial_year": {3}}
        at_end = (before < inj.last_days) & np.isin(months, list(ends[inj.period]))
        defer = at_end & (rng.random(n_crimes) < inj.deferral_probability)
        boundary = (reported.normalize() + pd.offsets.MonthBegin(1))
        late = boundary + pd.to_timedelta(rng.uniform(1, 36, n_crimes), unit="h")
        recorded = pd.DatetimeIndex(np.where(defer & (late > recorded), late, recorded))

    # Cancellations: a base 3% of records, cancelled 0-30 days after recording; in the last
    # days of each period extra cancellations raise the daily rate by the multiplier.
    status = np.full(n_crimes, "recorded", dtype=object)
    cancel_at = pd.Series(pd.NaT, index=range(n_crimes), dtype="datetime64[ns]")
    base = rng.random(n_crimes) < 0.03
    lag = pd.to_timedelta(rng.exponential(8.0, n_crimes) * 86400, unit="s")
    cancel_at[base] = (recorded + lag)[base]
    if inj.cancel_multiplier > 1:
        t_end = t0 + pd.Timedelta(days=days)
        period_days = pd.date_range(t0, t_end, freq="D")
        flags = days_to_month_end(pd.Series(period_days)) < inj.last_days
        ends = {"month": range(1, 13), "quarter": (3, 6, 9, 12), "financial_year": (3,)}
        flags &= pd.Series(period_days).dt.month.isin(ends[inj.period])
        window_days = period_days[flags.to_numpy()]
        daily = base.sum() / days
        extra_n = rng.poisson(daily * (inj.cancel_multiplier - 1) * len(window_days))
        when = window_days[rng.integers(0, len(window_days), extra_n)] + pd.to_timedelta(
            rng.uniform(0, 86400, extra_n), unit="s")
        # Each extra cancellation falls on a record made in the 30 days before it.
        order = np.argsort(recorded.to_numpy())
        rec_sorted = recorded.to_numpy()[order]
        hi = np.searchsorted(rec_sorted, when.to_numpy())
        lo = np.searchsorted(rec_sorted, (when - pd.Timedelta(days=30)).to_numpy())
        ok = hi > lo
        pos = lo[ok] + (rng.random(ok.sum()) * (hi[ok] - lo[ok])).astype(int)
        pick, when = order[pos], when[ok]
        pick, first = np.unique(pick, return_index=True)
        when = when[first]
        ok = ~base[pick]
        pick, when = pick[ok], when[ok]
        cancel_at[pick] = when
        base[pick] = True
    status[base] = "cancelled"
    reasons = np.array(["avi", "duplicate", "recorded_in_error", "transferred"])
    reason = np.where(base, reasons[rng.choice(4, n_crimes, p=[0.5, 0.25, 0.15, 0.1])], None)

    value = np.where(np.isin(code, ["46", "49", "45", "39", "28E", "30C", "58A"]),
                     np.round(rng.lognormal(np.log(120), 1.0, n_crimes), 2), np.nan)
    if inj.bunching_share > 0:
        t = inj.bunching_threshold
        above = (code == inj.bunching_offence) & (value >= t) & (value < 3 * t)
        move = above & (rng.random(n_crimes) < inj.bunching_share)
        value[move] = np.round(rng.uniform(0.9 * t, t - 0.01, move.sum()), 2)

    crimes = pd.DataFrame({
        "crime_id": [f"C{seed}-{i:07d}" for i in range(n_crimes)],
        "incident_id": None, "reported_at": reported, "recorded_at": recorded,
        "offence_code": code, "status": status, "cancellation_reason": reason,
        "cancelled_at": cancel_at.to_numpy(), "outcome": None, "property_value": value,
        "division": division, "officer": officer,
    })

    # Classification changes: an honest 2% of records reclassified, half up and half down.
    changes = []
    honest = np.flatnonzero(rng.random(n_crimes) < 0.02)
    for i in honest:
        c = code[i]
        if c in DOWNGRADE_TO and rng.random() < 0.5:
            changes.append((i, c, DOWNGRADE_TO[c]))
        elif c in DOWNGRADE_TO.values():
            up = [k for k, v in DOWNGRADE_TO.items() if v == c][0]
            changes.append((i, c, up))
    if inj.downgrade_share > 0:
        violent = np.isin(code, ["8N", "20A", "34B", "19C"]) & (division == inj.downgrade_division)
        pick = np.flatnonzero(violent & (rng.random(n_crimes) < inj.downgrade_share))
        changes += [(i, code[i], DOWNGRADE_TO[code[i]]) for i in pick]
    idx = np.array([c[0] for c in changes], dtype=int)
    ch = pd.DataFrame({
        "crime_id": crimes["crime_id"].to_numpy()[idx],
        "changed_at": (recorded[idx] + pd.to_timedelta(rng.uniform(1, 20, idx.size), unit="D")),
        "from_code": [c[1] for c in changes], "to_code": [c[2] for c in changes],
        "changed_by": officer[idx],
    }).drop_duplicates(["crime_id"])
    ch["changed_at"] = ch["changed_at"].dt.floor("s")
    final = dict(zip(ch["crime_id"], ch["to_code"], strict=True))
    crimes["offence_code"] = crimes["crime_id"].map(final).fillna(crimes["offence_code"])
    # Whole seconds, as force systems record them (and the store's microsecond timestamps hold).
    for col in ("reported_at", "recorded_at", "cancelled_at"):
        crimes[col] = crimes[col].dt.floor("s").astype("datetime64[us]")
    ch["changed_at"] = ch["changed_at"].astype("datetime64[us]")
    return {"crimes": crimes, "classification_changes": ch.reset_index(drop=True)}


def as_canonical(tables: dict[str, pd.DataFrame]) -> dict[str, pa.Table]:
    """The frames as Arrow tables in the canonical schemas (absent columns null), for a store."""
    out = {}
    for name, df in tables.items():
        schema = TABLES[name].arrow_schema()
        cols = {}
        for f in schema:
            if f.name in df:
                cols[f.name] = pa.array(df[f.name].to_numpy(), type=f.type, from_pandas=True)
            else:
                cols[f.name] = pa.nulls(len(df), type=f.type)
        out[name] = pa.table(cols, schema=schema)
    return out

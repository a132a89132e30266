"""Integrity test, property values: first digits (Benford) and round numbers.

Values people report (what was stolen or damaged) follow Benford's law of first digits
closely (a 1 three times in ten, a 9 one time in twenty), and they come in round sums at a
rate a force's staff share. Values typed in to fill a field, or set to keep a crime under a
threshold, change both: more round numbers, or first digits far from the others'.

**Tests.**

* *First digits, force-wide*: the mean absolute deviation (MAD) of the nine first-digit shares
  from Benford's, with a bootstrap interval; tested one-sided against Nigrini's
  nonconformity level (``nonconformity_mad``, 0.015 for first digits), not by chi-square: with
  tens of thousands of values chi-square rejects any real ledger, and Nigrini's MAD levels are
  what auditors use.
* *First digits by division*: the same MAD test for each division's values (a division's
  own values, not against the other divisions': one division's made-up values would make the
  others look different from the rest).
* *Round numbers* by division and by officer: the share of values that are multiples of
  ``round_unit`` on a funnel against the other units (as the cancellation tests).

>>> first_digit(pd.Series([1.0, 19.99, 250, 0.5, 1000]))
[1, 1, 2, 5, 1]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import norm

from crimeaudit.detect.base import Detector, DetectorSettings, Skips
from crimeaudit.detect.charts import bar_chart
from crimeaudit.detect.downgrading import funnel_findings, plural
from crimeaudit.detect.funnel import unit_counts
from crimeaudit.detect.inputs import DetectInput
from crimeaudit.model.figures import Finding

TEST = "property_digits"
DIGITS = np.arange(1, 10)
BENFORD = np.log10(1 + 1 / DIGITS)


class PropertyDigitSettings(DetectorSettings):
    """Minimum data, the round unit and the Benford conformity level."""

    min_values: int = Field(300, ge=1, description=(
        "Property values (1 or more) needed before the first-digit and round-number tests "
        "run."))
    min_values_per_unit: int = Field(100, ge=1, description=(
        "Property values a division or officer needs to be tested."))
    min_units: int = Field(3, ge=2, description=(
        "Divisions or officers needed to compare them."))
    round_unit: float = Field(100.0, gt=0, description=(
        "A value that is a multiple of this counts as a round number."))
    nonconformity_mad: float = Field(0.015, gt=0, description=(
        "Mean absolute deviation from Benford's first-digit shares above which values do "
        "not conform (Nigrini's level for first digits)."))
    bootstrap_resamples: int = Field(200, ge=20, description=(
        "Bootstrap resamples for the interval and test of the force-wide MAD."))
    seed: int = Field(0, description="Seed of the bootstrap (same data, same result).")


def first_digit(values: pd.Series) -> list[int]:
    """The first significant digit of each positive value (read from its decimal form)."""
    return [int(f"{float(v):e}"[0]) for v in values]


def _values(data: DetectInput) -> pd.DataFrame:
    """Distinct (value, division, officer) with counts: values repeat, so this is small."""
    c = data.crimes
    v = c.property_value
    sel = c.filter(v.notnull() & ~v.isnan() & (v >= 1))
    cols = {"value": sel.property_value}
    for k in ("division", "officer"):
        if k in c.columns:
            cols[k] = sel[k]
    x = sel.select(**cols)
    df = x.group_by(list(cols)).agg(n=x.count()).to_pandas()
    df["n"] = df["n"].astype("int64")
    df["digit"] = first_digit(df["value"]) if len(df) else []
    return df


def _digit_counts(df: pd.DataFrame) -> np.ndarray:
    """Values with first digit 1, ..., 9 (as floats)."""
    return df.groupby("digit")["n"].sum().reindex(DIGITS, fill_value=0).to_numpy(float)


def property_digit_tests(data: DetectInput, settings: PropertyDigitSettings | None = None,
                         skips: Skips | None = None) -> list[Finding]:
    settings = settings or PropertyDigitSettings()
    skips = skips if skips is not None else Skips()
    df = _values(data)
    total = int(df["n"].sum())
    if skips.fewer(settings, "min_values", total, "property values", unit=TEST):
        return []
    out = [_benford(_digit_counts(df), data.level, settings)]
    for key in ("division", "officer"):
        if key not in df or skips.fewer(settings, "min_units", df[key].dropna().nunique(),
                                        plural(key), unit=f"{TEST} by {key}"):
            continue
        if key == "division":
            out += _benford_by(df, key, data.level, settings, skips)
        rounded = df.assign(round=np.isclose(np.mod(df["value"], settings.round_unit), 0))
        units = unit_counts(rounded.dropna(subset=[key]), key, "round", weight="n")
        unit = settings.round_unit
        out += funnel_findings(
            units, TEST, f"round property values, by {key}",
            f"excess share of values that are multiples of {unit:g}", "greater", data.level,
            lambda r, key=key, unit=unit: (
                f"{key.capitalize()} {r.unit}: {r.events:,} of {r.n:,} property values "
                f"({100 * r.rate:.1f}%) are multiples of {unit:g}, against "
                f"{100 * r.p0:.1f}% for the other {plural(key)}."),
            min_n=settings.min_values_per_unit, min_units=settings.min_units,
            settings=settings, skips=skips, min_n_setting="min_values_per_unit",
            n_words="property values",
            **({"area": lambda r: r.unit, "measure": "round property values"}
               if key == "division" else
               {"measure": lambda r: f"round property values, officer {r.unit}"}))
    return out


def _mad(counts: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(counts / counts.sum() - expected).mean())


def _benford(counts, level, settings, unit="first digits: all", area="all",
             who="The") -> Finding:
    """The MAD of ``counts`` (first digits 1-9) from Benford's shares, tested against the
    nonconformity level: one-sided, normal on the bootstrap's standard error."""
    n = int(counts.sum())
    mad = _mad(counts, BENFORD)
    rng = np.random.default_rng(settings.seed)
    boot = np.array([_mad(rng.multinomial(n, counts / n).astype(float), BENFORD)
                     for _ in range(settings.bootstrap_resamples)])
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    thr = settings.nonconformity_mad
    se = float(boot.std(ddof=1))
    p = float(norm.sf((mad - thr) / se)) if se > 0 else float(mad <= thr)
    shares = counts / n
    words = ("close conformity" if mad < 0.006 else "acceptable conformity" if mad < 0.012
             else "marginal conformity" if mad <= thr else "nonconformity")
    rows = [{"first digit": str(d), "share": float(s), "series": "property values"}
            for d, s in zip(DIGITS, shares, strict=True)]
    rows += [{"first digit": str(d), "share": float(b), "series": "Benford"}
             for d, b in zip(DIGITS, BENFORD, strict=True)]
    return Finding(
        test=TEST, unit=unit, effect=mad, lower=float(lo), upper=float(hi),
        effect_name="mean absolute deviation from Benford's first-digit shares",
        p_value=p, q_value=float("nan"),
        sentence=(f"{who} first digits of {n:,} property values are {mad:.4f} from Benford's "
                  f"shares on average ({words} by Nigrini's levels; {100 * shares[0]:.1f}% "
                  f"start with 1 against {100 * BENFORD[0]:.1f}%, {100 * shares[8]:.1f}% with "
                  f"9 against {100 * BENFORD[8]:.1f}%)."),
        level=level,
        method=(f"mean absolute deviation (MAD) from Benford; multinomial bootstrap "
                f"({settings.bootstrap_resamples} resamples) interval; one-sided z test "
                f"against MAD {thr:g} on the bootstrap standard error"),
        n=n,
        extra={"area": area, "scale": None,
               "measure": "first digits of property values against Benford's law",
               "chart": bar_chart(rows, "first digit", "share",
                                  f"First digits of property values ({area})",
                                  color="series")})


def _benford_by(df, key, level, settings, skips) -> list[Finding]:
    by = {u: _digit_counts(g) for u, g in df.dropna(subset=[key]).groupby(key)}
    out = []
    small = 0
    for unit, counts in by.items():
        if counts.sum() < settings.min_values_per_unit:
            small += 1
            continue
        out.append(_benford(counts, level, settings, f"first digits, by {key}: {unit}",
                            str(unit), who=f"{key.capitalize()} {unit}: the"))
    if small:
        skips.note(f"first digits by {key}: {small} of {len(by)} units with fewer than "
                   f"min_values_per_unit={settings.min_values_per_unit} property values not "
                   "tested")
    return out


class PropertyDigits(Detector):
    """Integrity test, property values (see the module notes)."""

    name = TEST
    question = ("Do property values depart from Benford's first digits, or does a division "
                "or officer record more round numbers or other first digits than the rest?")
    needs = (("property_values",),)
    Settings = PropertyDigitSettings

    def run(self, data: DetectInput, settings: PropertyDigitSettings,
            skips: Skips | None = None) -> list[Finding]:
        return property_digit_tests(data, settings, skips)


__all__ = ["BENFORD", "PropertyDigitSettings", "PropertyDigits", "first_digit",
           "property_digit_tests"]

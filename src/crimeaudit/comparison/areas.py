"""Many areas at once: a league table with intervals, a funnel plot and, when asked, every
pair of areas compared with multiplicity-adjusted p-values.

Areas come from audits (one figure per project) or from a CSV of published figures
(:func:`read_counts`), one row per area, either

* ``area, recorded, should_have_been`` - counts: the rate ``recorded / should_have_been``
  with its Wilson interval, pairs by Newcombe's interval; or
* ``area, rate, half_width, n`` - when only a rate and the half-width of its 95% interval are
  published (percentages or proportions): the variance the half-width implies,
  ``se = half_width / 1.96``, the published interval, and pairs by ``d +/- 1.96
  sqrt(se_a^2 + se_b^2)``; the result says so in a note. On the funnel such an area's
  precision is its effective sample size ``rate (1 - rate) / se^2``.

Pairs (``pairs=True``) are B minus A for every pair in the table's input order, with the
unadjusted interval and p-value and the p-value adjusted over all pairs (Holm's step-down by
default, or Benjamini-Hochberg, via statsmodels ``multipletests``).

The published 2014 counts (two areas: too few to estimate over-dispersion):

>>> import io
>>> text = "area,recorded,should_have_been\\nGreater Manchester,265,388\\nHampshire,67,112\\n"
>>> res = compare_areas(read_counts(io.StringIO(text)), pairs=True)
>>> [(a.area, round(a.lower, 3), round(a.upper, 3)) for a in res.areas]
[('Greater Manchester', 0.635, 0.727), ('Hampshire', 0.506, 0.684)]
>>> p = res.pairs[0]
>>> p.label_b, p.label_a
('Hampshire', 'Greater Manchester')
>>> f"{100 * p.difference:.1f} ({100 * p.lower:.1f} to {100 * p.upper:.1f})"
'-8.5 (-18.7 to 1.4)'
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from statsmodels.stats.multitest import multipletests

from crimeaudit.comparison.audits import Audit
from crimeaudit.comparison.definitions import common_differences
from crimeaudit.comparison.difference import METHODS, Difference, rate_difference
from crimeaudit.comparison.errors import CompareError
from crimeaudit.comparison.funnel import Funnel, funnel_of
from crimeaudit.comparison.sentences import change_sentence
from crimeaudit.model.figures import Estimate, dumps
from crimeaudit.uncertainty import normal_quantile, proportion_interval

ADJUSTMENTS = {"holm": "holm", "bh": "fdr_bh"}
PUBLISHED = "published half-width"
ALIASES = {
    "area": "area", "force": "area", "name": "area",
    "recorded": "recorded", "crimes_recorded": "recorded",
    "should_have_been": "should_have_been", "should_have_been_recorded": "should_have_been",
    "should_be_recorded": "should_have_been", "should": "should_have_been",
    "rate": "rate", "recording_rate": "rate", "estimate": "rate",
    "half_width": "half_width", "halfwidth": "half_width", "ci_half_width": "half_width",
    "margin": "half_width", "n": "n", "sample_size": "n", "level": "level",
}
FRAME_COLUMNS = ("rank", "area", "estimate", "lower", "upper", "n", "n_effective", "method",
                 "recorded", "should_have_been", "funnel", "z")


@dataclass(frozen=True)
class Area:
    """One area's figure: rate, interval, the records it rests on and where it came from."""

    area: str
    figure: Estimate
    design: str = "srs"
    source: str = "counts"

    @property
    def estimate(self) -> float:
        return self.figure.estimate

    @property
    def lower(self) -> float:
        return self.figure.lower

    @property
    def upper(self) -> float:
        return self.figure.upper

    @property
    def n(self) -> int:
        return self.figure.n

    @property
    def n_effective(self) -> float:
        """Precision on the funnel: the count, or ``p (1 - p) / se^2`` for other figures."""
        e = self.figure
        if self.source == "counts":
            return float(e.denominator)
        if e.n_effective and self.source != PUBLISHED:
            return float(e.n_effective)
        p, se = e.estimate, e.se
        if se and 0 < p < 1:
            return p * (1 - p) / se ** 2
        return float(e.n)


def counts_area(area: str, recorded: int, should_have_been: int, level: float = 0.95) -> Area:
    """An area from published counts: rate with its Wilson interval.

    >>> a = counts_area("Hampshire", 67, 112)
    >>> round(a.estimate, 3), round(a.lower, 3), round(a.upper, 3)
    (0.598, 0.506, 0.684)
    """
    p = recorded / should_have_been
    lo, hi = proportion_interval(recorded, should_have_been, level, "wilson")
    e = Estimate("recording_rate", "all", p, lo, hi, level, "wilson", should_have_been,
                 recorded, should_have_been, se=math.sqrt(p * (1 - p) / should_have_been),
                 n_effective=float(should_have_been), sample_id=area)
    return Area(area, e, "srs", "counts")


def published_area(area: str, rate: float, half_width: float, n: int | None,
                   level: float = 0.95) -> Area:
    """An area from a published rate and interval half-width: the variance it implies.

    >>> a = published_area("Kent 2017", 0.836, 0.0185, 1500)
    >>> round(a.figure.se, 5), round(a.lower, 4), round(a.n_effective)
    (0.00944, 0.8175, 1539)
    """
    se = half_width / normal_quantile(level)
    n_eff = rate * (1 - rate) / se ** 2 if 0 < rate < 1 else float(n or 0)
    e = Estimate("recording_rate", "all", rate, max(rate - half_width, 0.0),
                 min(rate + half_width, 1.0), level, PUBLISHED, int(n or round(n_eff)),
                 se=se, n_effective=n_eff, sample_id=area,
                 notes="variance implied by the published half-width"
                       + ("" if n else "; no n published"))
    return Area(area, e, "published", PUBLISHED)


def audit_area(audit: Audit, measure: str = "recording_rate", scope: str = "all") -> Area:
    """An area from an audit's figure (its design-based interval and variance)."""
    e = audit.get(measure, scope)
    if e is None:
        raise CompareError(f"{audit.label} has no estimate of {measure} for {scope}")
    return Area(audit.label, e, audit.design_kind(e), "audit")


# -- reading a counts file ---------------------------------------------------------------------


def _number(text: str, where: str, column: str) -> float | None:
    text = (text or "").strip().rstrip("%").replace(",", "")
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise CompareError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise CompareError(f"{where}: {column} must be a non-negative number, not {text!r}")
    return value


def read_counts(source: str | os.PathLike | io.TextIOBase) -> list[Area]:
    """Areas from a CSV of published figures (see the module docstring); errors name the file,
    the line and the column.

    Rates above 1 are read as percentages (and their half-widths as points).
    """
    name = "counts"
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise CompareError(f"{path}: no such counts file")
        text = path.read_text(encoding="utf-8-sig")
    else:
        text = source.read()
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise CompareError(f"{name}: empty file; expected a header such as "
                           "area,recorded,should_have_been")
    columns = {}
    for raw in reader.fieldnames:
        key = raw.strip().lower().replace("-", "_").replace(" ", "_")
        if key in ALIASES:
            columns[ALIASES[key]] = raw
    if "area" not in columns:
        raise CompareError(f"{name}: no 'area' column (columns: {', '.join(reader.fieldnames)})")
    counts = {"recorded", "should_have_been"} <= set(columns)
    published = {"rate", "half_width"} <= set(columns)
    if not counts and not published:
        raise CompareError(f"{name}: needs columns recorded and should_have_been, or rate, "
                           "half_width and n")
    rows = []
    for line, row in enumerate(reader, start=2):
        where = f"{name}: line {line}"
        def get(col: str, row=row) -> str:
            return row.get(columns[col], "") if col in columns else ""

        area = (get("area") or "").strip()
        if not area:
            raise CompareError(f"{where}: area is empty")
        rec = _number(get("recorded"), where, "recorded") if counts else None
        should = _number(get("should_have_been"), where, "should_have_been") if counts else None
        rate = _number(get("rate"), where, "rate") if published else None
        hw = _number(get("half_width"), where, "half_width") if published else None
        n = _number(get("n"), where, "n")
        level = _number(get("level"), where, "level")
        rows.append((where, area, rec, should, rate, hw, n, level))
    if not rows:
        raise CompareError(f"{name}: no areas in the file")
    percent = any(r[4] is not None and r[4] > 1 for r in rows)
    areas: list[Area] = []
    seen: set[str] = set()
    for where, area, rec, should, rate, hw, n, level in rows:
        if area in seen:
            raise CompareError(f"{where}: area {area!r} appears twice")
        seen.add(area)
        lvl = level / 100 if level and level > 1 else (level or 0.95)
        if rec is not None and should is not None:
            if rec != int(rec) or should != int(should):
                raise CompareError(f"{where}: counts must be whole numbers")
            if should == 0:
                raise CompareError(f"{where}: should_have_been is 0: no rate for {area}")
            if rec > should:
                raise CompareError(f"{where}: recorded ({rec:g}) is more than "
                                   f"should_have_been ({should:g})")
            areas.append(counts_area(area, int(rec), int(should)))
        elif rate is not None and hw is not None:
            r, h = (rate / 100, hw / 100) if percent else (rate, hw)
            if r > 1:
                raise CompareError(f"{where}: rate {rate:g} is above 100%")
            if h <= 0:
                raise CompareError(f"{where}: half_width must be above 0")
            if h >= 0.5:
                # A proportion's 95% interval is never this wide: most likely the rates are
                # proportions and the half-widths percentage points (0.836 with 1.85).
                raise CompareError(f"{where}: half_width {hw:g} is half the scale or more; "
                                   "give rates and half-widths in the same units (both "
                                   "percentages, 83.6 and 1.85, or both proportions, 0.836 "
                                   "and 0.0185)")
            areas.append(published_area(area, r, h, int(n) if n else None, lvl))
        else:
            raise CompareError(f"{where}: {area} has neither recorded and should_have_been "
                               "nor rate and half_width")
    return areas


# -- the comparison ----------------------------------------------------------------------------


@dataclass
class AreaComparison:
    """A league table (``areas``, highest rate first), the funnel and, if asked, all pairs."""

    areas: list[Area]
    funnel: Funnel
    positions: dict[str, str]
    pairs: list[Difference] | None = None
    level: float = 0.95
    measure: str = "recording_rate"
    scope: str = "all"
    adjust: str = "holm"
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kind: str = "areas"

    def outside(self, level: float = 0.95) -> list[str]:
        """Areas outside the funnel's ``level`` limits (0.95 or 0.998), highest rate first."""
        tag = "95%" if level == 0.95 else "99.8%"
        return [a.area for a in self.areas
                if self.positions[a.area] != "within"
                and (tag == "95%" or self.positions[a.area].endswith("99.8%"))]

    def to_frame(self) -> pd.DataFrame:
        """The league table: one row per area."""
        rows = []
        for rank, a in enumerate(self.areas, start=1):
            z = (a.estimate - self.funnel.target) / self.funnel.sd(a.n_effective)
            rows.append({"rank": rank, "area": a.area, "estimate": a.estimate,
                         "lower": a.lower, "upper": a.upper, "n": a.n,
                         "n_effective": a.n_effective, "method": a.figure.method,
                         "recorded": a.figure.numerator if a.source == "counts" else None,
                         "should_have_been": a.figure.denominator
                         if a.source == "counts" else None,
                         "funnel": self.positions[a.area], "z": z})
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def pairs_frame(self) -> pd.DataFrame:
        """One row per pair: a, b, difference (b minus a), interval, p and adjusted p."""
        cols = ["a", "b", "difference", "lower", "upper", "p", "p_adjusted", "method"]
        rows = [{"a": d.label_a, "b": d.label_b, "difference": d.difference,
                 "lower": d.lower, "upper": d.upper, "p": d.p_value,
                 "p_adjusted": d.p_adjusted, "method": d.method} for d in self.pairs or []]
        return pd.DataFrame(rows, columns=cols)

    def summary(self) -> str:
        pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
        lines = [f"League table of {self.measure} [{self.scope}], {len(self.areas)} areas, "
                 f"{100 * self.level:.0f}% intervals"]
        for rank, a in enumerate(self.areas, start=1):
            lines.append(f"{rank:>3}. {a.area}: {pct(a.estimate)} ({pct(a.lower)}-"
                         f"{pct(a.upper)}), n={a.n:,}, {a.figure.method}; funnel: "
                         f"{self.positions[a.area]}")
        lines.append(f"Funnel: pooled rate {pct(self.funnel.target)}; "
                     f"{self.funnel.describe()}.")
        out95, out998 = self.outside(0.95), self.outside(0.998)
        lines.append(f"Outside the 95% limits: {', '.join(out95) or 'none'}; outside the "
                     f"99.8% limits: {', '.join(out998) or 'none'}.")
        if self.pairs is not None:
            adj = "Holm" if self.adjust == "holm" else "Benjamini-Hochberg"
            clear = [d for d in self.pairs if d.p_adjusted is not None and d.p_adjusted < 0.05]
            lines.append(f"Pairs: {len(self.pairs)} compared, {len(clear)} with {adj}-adjusted "
                         "p < 0.05" + (":" if clear else "."))
            lines += [f"  {d.sentence} (adjusted p {d.p_adjusted:.3g})" for d in clear]
        lines += [f"WARNING: {w}" for w in self.warnings]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        frame = self.to_frame()
        areas = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
        out = {"kind": self.kind, "measure": self.measure, "scope": self.scope,
               "level": self.level, "areas": areas, "funnel": self.funnel.to_dict(),
               "outside_95": self.outside(0.95), "outside_998": self.outside(0.998),
               "warnings": list(self.warnings), "notes": list(self.notes)}
        if self.pairs is not None:
            out["adjust"] = self.adjust
            out["pairs"] = [{"a": d.label_a, "b": d.label_b, "difference": d.difference,
                             "lower": d.lower, "upper": d.upper, "p": d.p_value,
                             "p_adjusted": d.p_adjusted, "method": d.method,
                             "sentence": d.sentence} for d in self.pairs]
        return out

    def to_json(self) -> str:
        return dumps(self.to_dict(), indent=2)

    def funnel_spec(self) -> dict:
        from crimeaudit.comparison.charts import funnel_spec

        return funnel_spec(self)

    def league_spec(self) -> dict:
        from crimeaudit.comparison.charts import league_spec

        return league_spec(self)


def _plain(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


def area_pairs(areas: list[Area], level: float = 0.95, adjust: str = "holm"
               ) -> list[Difference]:
    """Every pair of areas (B minus A, in the order given) with adjusted p-values."""
    if adjust not in ADJUSTMENTS:
        raise CompareError(f"unknown adjustment {adjust!r}; use holm or bh")
    out = []
    for i, a in enumerate(areas):
        for b in areas[i + 1:]:
            d = rate_difference(a.figure, b.figure, a.design, b.design, level, a.area, b.area)
            sentence = change_sentence(a.figure, b.figure, d.difference, d.lower, d.upper,
                                       level, between=(a.area, b.area))
            out.append((d, sentence))
    if not out:
        return []
    p = [d.p_value for d, _ in out]
    adjusted = multipletests(p, method=ADJUSTMENTS[adjust])[1]
    return [replace(d, sentence=s, p_adjusted=float(q))
            for (d, s), q in zip(out, adjusted, strict=True)]


def compare_areas(areas: list[Area], pairs: bool = False, level: float = 0.95,
                  adjust: str = "holm", dispersion: str = "additive",
                  audits: list[Audit] | None = None, measure: str = "recording_rate",
                  scope: str = "all") -> AreaComparison:
    """League table, funnel and (``pairs``) pairwise differences of ``areas``."""
    if len(areas) < 2:
        raise CompareError("a comparison of areas needs at least two areas")
    if level != 0.95 or any(abs(a.figure.level - level) > 1e-9 for a in areas):
        areas = [_at_level(a, level) for a in areas]
    funnel = funnel_of([a.estimate for a in areas], [a.n_effective for a in areas],
                       dispersion)
    positions = {a.area: funnel.position(a.estimate, a.n_effective) for a in areas}
    pair_list = area_pairs(areas, level, adjust) if pairs else None
    league = sorted(areas, key=lambda a: (-a.estimate, a.area))
    warnings, notes = common_differences(audits) if audits else ([], [])
    published = [a.area for a in areas if a.source == PUBLISHED]
    if published:
        notes.append(f"{len(published)} area(s) published only a rate and its interval "
                     f"half-width ({', '.join(published)}): their variance is the one the "
                     "half-width implies (se = half-width / z, z = 1.96 at 95%), their "
                     "interval is the published one, and their precision on the funnel is "
                     "the effective sample size rate (1 - rate) / se^2")
        unsized = [a.area for a in areas if a.source == PUBLISHED and a.figure.notes
                   and "no n published" in a.figure.notes]
        if unsized:
            notes.append(f"no sample size published for {', '.join(unsized)}: n shown is "
                         "the effective sample size the half-width implies")
    if any(a.source == "counts" for a in areas):
        notes.append("areas with counts: Wilson score intervals; pairs of them by Newcombe's "
                     "hybrid score interval")
    notes.append(f"funnel: {funnel.describe()}; 95% and 99.8% limits around the pooled rate")
    if pairs:
        notes.append(f"pairs: B minus A, unadjusted {100 * level:.0f}% intervals; p-values "
                     f"adjusted over {len(pair_list)} pairs by "
                     f"{'Holm' if adjust == 'holm' else 'Benjamini-Hochberg'}; methods: "
                     + "; ".join(f"{m}: {METHODS[m]}"
                                 for m in sorted({d.method for d in pair_list})))
    return AreaComparison(areas=league, funnel=funnel, positions=positions, pairs=pair_list,
                          level=level, measure=measure, scope=scope, adjust=adjust,
                          warnings=warnings, notes=notes)


def _at_level(a: Area, level: float) -> Area:
    """The area's interval at ``level`` (Wilson recomputed for counts)."""
    e = a.figure
    if a.source == "counts":
        return counts_area(a.area, int(e.numerator), int(e.denominator), level)
    lo, hi = e.conf_int(level)
    return replace(a, figure=e.with_(lower=lo, upper=hi, level=level))


__all__ = ["ADJUSTMENTS", "Area", "AreaComparison", "area_pairs", "audit_area",
           "compare_areas", "counts_area", "published_area", "read_counts"]

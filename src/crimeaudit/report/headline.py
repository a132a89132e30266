"""The report's first sentence, computed from the overall recording rate and unrecorded count.

>>> rate = {"estimate": 0.896, "lower": 0.877, "upper": 0.913, "level": 0.95,
...         "method": "wilson", "n": 1500}
>>> unrec = {"estimate": 6431.0, "lower": 5280.0, "upper": 7760.0, "unit": "crimes"}
>>> headline(rate, unrec)["sentence"]  # doctest: +NORMALIZE_WHITESPACE
'An estimated 89.6% of crimes that should have been recorded were recorded (95% CI
 87.7-91.3%); about one crime in ten, some 6,400 a year (95% CI 5,300-7,800), goes unrecorded.'
>>> one_in(0.75), one_in(0.999), one_in(0.5)
('one crime in four', None, 'one crime in two')

A headline never rests on a warned figure without saying so, and states the rate corrected for
auditor error where a double review measured it:

>>> warned = dict(rate, warnings=["only 12 decided records in this figure's denominator"])
>>> adjusted = {"estimate": 0.91, "lower": 0.885, "upper": 0.93, "level": 0.95}
>>> print(headline(warned, None, adjusted)["sentence"])  # doctest: +NORMALIZE_WHITESPACE
An estimated 89.6% of crimes that should have been recorded were recorded (95% CI
87.7-91.3%); about one crime in ten goes unrecorded. Corrected for the auditors' own errors,
measured by blind double review, the rate is 91.0% (95% CI 88.5-93.0%). Read with care: only
12 decided records in this figure's denominator.
"""

from __future__ import annotations

import math
from typing import Any

_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
          "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen", "twenty"]


def one_in(rate: float) -> str | None:
    """"one crime in k" for the unrecorded share 1 - rate (None when nearly none is missed)."""
    missed = 1 - rate
    if not math.isfinite(missed) or missed < 0.005:
        return None
    k = max(2, round(1 / missed))
    if k <= 20:
        return f"one crime in {_WORDS[k]}"
    return f"one crime in {k:,}"


def round_count(x: float) -> str:
    """Two significant figures: a headline count, not a false precision (exact in tables)."""
    if not math.isfinite(x):
        return "an unbounded number"
    if x < 100:
        return f"{x:,.0f}"
    digits = int(math.floor(math.log10(abs(x)))) - 1
    return f"{round(x, -digits):,.0f}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def headline(rate: dict[str, Any] | None, unrecorded: dict[str, Any] | None,
             adjusted: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sentence and the figures it rests on (``adjusted``: the rate corrected for auditor
    error, ``recording_rate_adjusted``, when a double review measured it)."""
    if rate is None:
        return {"sentence": "No overall recording rate could be estimated: no sampled record "
                            "was judged a crime that should have been recorded.",
                "rate": None, "unrecorded": None}
    level = f"{100 * rate['level']:.0f}% CI"
    s = (f"An estimated {pct(rate['estimate'])} of crimes that should have been recorded were "
         f"recorded ({level} {pct(rate['lower'])[:-1]}-{pct(rate['upper'])})")
    phrase = one_in(rate["estimate"])
    if phrase is None:
        s += "; almost no crime goes unrecorded."
    else:
        s += f"; about {phrase}"
        if unrecorded is not None and unrecorded.get("estimate") is not None:
            lo = unrecorded.get("lower")
            hi = unrecorded.get("upper")
            hi_txt = round_count(hi) if hi is not None else "unbounded"
            s += (f", some {round_count(unrecorded['estimate'])} a year ({level} "
                  f"{round_count(lo if lo is not None else 0)}-{hi_txt}),")
        s += " goes unrecorded."
    if adjusted is not None and adjusted.get("estimate") is not None:
        s += (f" Corrected for the auditors' own errors, measured by blind double review, the "
              f"rate is {pct(adjusted['estimate'])} ({level} {pct(adjusted['lower'])[:-1]}-"
              f"{pct(adjusted['upper'])}).")
    # The corrected rate's own warnings count too (few double reviews, a measured shortfall).
    warnings = [w for f in (rate, unrecorded, adjusted) if f for w in (f.get("warnings") or [])]
    warnings = [w for w in dict.fromkeys(warnings)
                if "recording_rate_adjusted corrects" not in w or adjusted is None]
    if warnings:
        s += " Read with care: " + "; ".join(warnings) + "."
    return {"sentence": s, "rate": rate, "unrecorded": unrecorded, "adjusted": adjusted,
            "warnings": warnings}

"""How far two auditors agree: Cohen's kappa, and the first review's sensitivity and specificity.

A double-review design has a random share of the sampled records reviewed a second time, blind
(``review = "second"`` in the decisions store), and the disagreements resolved by a lead
(``review = "adjudication"``). For each yes/no question this module gives, as figures
(:class:`crimeaudit.model.Estimate`, scope ``all``):

* ``agreement_<question>``: Cohen's kappa between the first and the blind second review, with
  statsmodels' asymptotic interval (``statsmodels.stats.inter_rater.cohens_kappa``);
* ``sensitivity_<question>`` / ``specificity_<question>``: the share of records whose resolved
  answer is yes (no) that the first review also answered yes (no), with Wilson intervals. The
  resolved answer is the adjudication where there is one, else the answer both reviews gave.

Records whose two reviews disagree and that nobody has adjudicated yet have no resolved answer:
they are counted in kappa but not in sensitivity and specificity, and the caller warns.

>>> import pandas as pd
>>> first = pd.DataFrame({"record_id": list("abcdefgh"),
...                       "should_record": list("yyyynnnn")})
>>> second = first.assign(should_record=list("yyynnnnn"))
>>> adjudicated = pd.DataFrame({"record_id": ["d"], "should_record": ["y"]})
>>> rows = agreement_table(first.replace({"y": "yes", "n": "no"}),
...                        second.replace({"y": "yes", "n": "no"}),
...                        adjudicated.replace({"y": "yes", "n": "no"}), "should_record")
>>> rows["pairs"], rows["agree"], rows["sensitivity"], rows["specificity"]
(8, 7, (4, 4), (4, 4))
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from statsmodels.stats.inter_rater import cohens_kappa

from crimeaudit.model.figures import Estimate
from crimeaudit.uncertainty import normal_quantile, wilson

#: The yes/no questions whose agreement is reported (those the estimated figures rest on).
QUESTIONS = ("should_record", "recorded", "correctly_classified", "within_time_limit")


def _aligned(first: pd.DataFrame, second: pd.DataFrame, question: str):
    f = first.set_index("record_id")[question]
    s = second.set_index("record_id")[question]
    both = s.index.intersection(f.index)
    return f.loc[both], s.loc[both]


def resolved_answers(first: pd.DataFrame, second: pd.DataFrame,
                     adjudicated: pd.DataFrame, question: str) -> pd.Series:
    """Per double-reviewed record: the adjudicated answer, else the answer both reviews gave
    (missing where they disagree and nobody has adjudicated)."""
    f, s = _aligned(first, second, question)
    out = f.where(f == s).astype(object)
    if len(adjudicated):
        a = adjudicated.set_index("record_id")[question]
        a = a[a.index.isin(f.index) & a.notna()]
        out.loc[a.index] = a.astype(object)
    return out


def agreement_table(first: pd.DataFrame, second: pd.DataFrame, adjudicated: pd.DataFrame,
                    question: str) -> dict:
    """Counts behind the agreement figures of one question: the 2x2 table of first vs second
    review, and (agreeing, total) for sensitivity and specificity against resolved answers."""
    f, s = _aligned(first, second, question)
    fa, sa = f.to_numpy(object), s.to_numpy(object)
    ok = np.isin(fa, ["yes", "no"]) & np.isin(sa, ["yes", "no"])
    table = np.array([[(ok & (fa == a) & (sa == b)).sum() for b in ("yes", "no")]
                      for a in ("yes", "no")], dtype=float)
    res = resolved_answers(first, second, adjudicated, question).to_numpy(object)
    adj = f.index.isin(adjudicated.record_id) if len(adjudicated) else np.zeros(len(f), bool)
    pos, neg = res == "yes", res == "no"
    return {"table": table, "pairs": int(table.sum()), "agree": int(np.trace(table)),
            "sensitivity": (int((pos & (fa == "yes")).sum()), int(pos.sum())),
            "specificity": (int((neg & (fa == "no")).sum()), int(neg.sum())),
            "unresolved": int((ok & (fa != sa) & ~adj).sum())}


def kappa(table: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Cohen's kappa of a 2x2 table with its asymptotic interval and standard error
    (statsmodels); NaN where it is undefined (both reviews gave one answer only).

    >>> k, lo, hi, se = kappa(np.array([[40, 2], [3, 55]]))
    >>> round(k, 3), round(lo, 3), round(hi, 3)
    (0.898, 0.81, 0.985)
    """
    n = table.sum()
    pe = float((table.sum(0) * table.sum(1)).sum() / (n * n)) if n else 1.0
    if n == 0 or math.isclose(pe, 1.0):
        return math.nan, math.nan, math.nan, math.nan
    with np.errstate(all="ignore"):  # its test against kappa = 0 may divide by 0: unused
        r = cohens_kappa(table)
    k, se = float(r.kappa), float(r.std_kappa)
    z = normal_quantile(level)
    return k, max(-1.0, k - z * se), min(1.0, k + z * se), se


def agreement_figures(first: pd.DataFrame, second: pd.DataFrame, adjudicated: pd.DataFrame,
                      level: float, sample_id: str | None) -> list[Estimate]:
    """Kappa, sensitivity and specificity figures for every question both reviews answered."""
    out: list[Estimate] = []
    for q in QUESTIONS:
        if q not in first or q not in second:
            continue
        t = agreement_table(first, second, adjudicated, q)
        if t["pairs"] == 0:
            continue
        k, lo, hi, se = kappa(t["table"], level)
        warn = []
        if t["unresolved"]:
            warn.append(f"{t['unresolved']} double-reviewed records disagree on {q} and are "
                        "not adjudicated yet")
        if t["pairs"] < 30:
            warn.append(f"only {t['pairs']} double-reviewed records answered {q}: read the "
                        "agreement as an indication")
        if math.isfinite(k):
            out.append(Estimate(
                measure=f"agreement_{q}", scope="all", estimate=k, lower=lo, upper=hi,
                level=level, unit="kappa", n=t["pairs"], numerator=t["agree"],
                denominator=t["pairs"], se=se, sample_id=sample_id, warnings=tuple(warn),
                method="Cohen's kappa, first vs blind second review (statsmodels "
                       "cohens_kappa, asymptotic interval)",
                notes=f"the reviews agreed on {t['agree']} of {t['pairs']} records",
                extra={"table_yes_no": t["table"].astype(int).tolist()}))
        for name, (x, m) in (("sensitivity", t["sensitivity"]),
                             ("specificity", t["specificity"])):
            if m == 0:
                continue
            lo_, hi_ = wilson(x, m, level)
            answer = "yes" if name == "sensitivity" else "no"
            out.append(Estimate(
                measure=f"{name}_{q}", scope="all", estimate=x / m, lower=lo_, upper=hi_,
                level=level, method="wilson", n=m, numerator=x, denominator=m,
                se=math.sqrt(x / m * (1 - x / m) / m), n_effective=float(m),
                sample_id=sample_id, warnings=tuple(warn),
                notes=f"share of double-reviewed records resolved {answer!r} that the first "
                      f"review also answered {answer!r}"))
    return out


__all__ = ["QUESTIONS", "agreement_figures", "agreement_table", "kappa", "resolved_answers"]

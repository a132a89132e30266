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

The workbench shows the same numbers: :func:`pairs` lines up each record's latest first and
second review (and whether a disagreement is still open), and :func:`kappa_by_question` gives
kappa per question over every answer (the class too, as a nominal answer) through the same
:func:`kappa`. There is one kappa in crimeaudit, here.

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

from crimeaudit.audit.decisions import DECISION_COLUMNS
from crimeaudit.model.figures import Estimate
from crimeaudit.uncertainty import normal_quantile, proportion_interval

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
            lo_, hi_ = proportion_interval(x, m, level, "wilson")
            answer = "yes" if name == "sensitivity" else "no"
            out.append(Estimate(
                measure=f"{name}_{q}", scope="all", estimate=x / m, lower=lo_, upper=hi_,
                level=level, method="wilson", n=m, numerator=x, denominator=m,
                se=math.sqrt(x / m * (1 - x / m) / m), n_effective=float(m),
                sample_id=sample_id, warnings=tuple(warn),
                notes=f"share of double-reviewed records resolved {answer!r} that the first "
                      f"review also answered {answer!r}"))
    return out


# -- the workbench's view: pairs of reviews and kappa per question ----------------------------


def _value(v) -> str | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)) or str(v).strip() == "":
        return None
    return str(v).strip()


def latest_by_kind(decisions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{review kind: its latest row per record, indexed by record_id}, from decision rows of
    one sample (:func:`crimeaudit.audit.decisions.all_decisions`)."""
    out = {}
    d = decisions.copy()
    d["review"] = d["review"].fillna("first") if "review" in d else "first"
    for kind in ("first", "second", "adjudication"):
        k = d[d.review == kind].sort_values("decision_id")
        out[kind] = k.groupby("record_id").tail(1).set_index("record_id")
    return out


def pairs(decisions: pd.DataFrame) -> pd.DataFrame:
    """One row per record with both a first and a second review.

    A record's first and second review are each its latest row of that kind; they *disagree*
    when any decision column differs (an unanswered question counts as an answer: "not asked"
    against "yes" is a disagreement about whether the question applied). Columns: record_id,
    first_id, second_id, first_auditor, second_auditor, each question as
    ``first_<q>``/``second_<q>``, ``differs`` (the questions that differ), ``adjudication_id``
    (an adjudication newer than both reviews, or None) and ``open`` (a disagreement not yet
    adjudicated).
    """
    latest = latest_by_kind(decisions)
    first, second, adj = latest["first"], latest["second"], latest["adjudication"]
    both = sorted(set(first.index) & set(second.index))
    rows = []
    for rid in both:
        f, s = first.loc[rid], second.loc[rid]
        row = {"record_id": rid, "first_id": int(f.decision_id), "second_id": int(s.decision_id),
               "first_auditor": f.auditor, "second_auditor": s.auditor}
        differs = []
        for q in DECISION_COLUMNS:
            a, b = _value(f[q]), _value(s[q])
            row[f"first_{q}"], row[f"second_{q}"] = a, b
            if (a or "").upper() != (b or "").upper():
                differs.append(q)
        newest = max(row["first_id"], row["second_id"])
        a_id = int(adj.loc[rid].decision_id) if rid in adj.index else None
        row["differs"] = differs
        row["adjudication_id"] = a_id if a_id is not None and a_id > newest else None
        row["open"] = bool(differs) and row["adjudication_id"] is None
        rows.append(row)
    cols = ["record_id", "first_id", "second_id", "first_auditor", "second_auditor",
            *[f"{k}_{q}" for q in DECISION_COLUMNS for k in ("first", "second")], "differs",
            "adjudication_id", "open"]
    return pd.DataFrame(rows, columns=cols)


def kappa_by_question(paired: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Cohen's kappa per decision question (:func:`kappa`), with its interval, the share of
    records where the reviews agree, and n (records where both answered the question).

    ``note`` says why kappa is missing: too few records, or both reviewers gave one answer
    only (kappa is undefined when agreement by chance is certain).

    >>> p = pd.DataFrame({"first_should_record": ["yes", "yes", "no", "no", "yes"],
    ...                   "second_should_record": ["yes", "no", "no", "no", "yes"]})
    >>> k = kappa_by_question(p).set_index("question").loc["should_record"]
    >>> int(k.n), round(float(k.agreement), 2), round(float(k.kappa), 3)
    (5, 0.8, 0.615)
    """
    out = []
    for q in DECISION_COLUMNS:
        a_col, b_col = f"first_{q}", f"second_{q}"
        if a_col not in paired:
            continue
        sub = paired[[a_col, b_col]].dropna()
        a = sub[a_col].astype(str).str.upper()
        b = sub[b_col].astype(str).str.upper()
        n = len(sub)
        row = {"question": q, "n": n, "agreement": float((a == b).mean()) if n else np.nan,
               "kappa": np.nan, "lower": np.nan, "upper": np.nan, "note": ""}
        cats = sorted(set(a) | set(b))
        if n < 2:
            row["note"] = "fewer than 2 records reviewed twice"
        elif len(cats) < 2:
            row["note"] = "one answer only: kappa undefined"
        else:
            table = pd.crosstab(pd.Categorical(a, cats), pd.Categorical(b, cats),
                                dropna=False).to_numpy().astype(float)
            k, lo, hi, se = kappa(table, level)
            row["kappa"] = k
            if not math.isfinite(k):
                row["note"] = "kappa undefined for these answers"
            elif math.isfinite(se) and se > 0:
                row.update(lower=lo, upper=hi)
            else:
                row["note"] = "no interval: a reviewer gave one answer only"
        out.append(row)
    return pd.DataFrame(out, columns=["question", "n", "agreement", "kappa", "lower", "upper",
                                      "note"])


__all__ = ["QUESTIONS", "agreement_figures", "agreement_table", "kappa", "kappa_by_question",
           "latest_by_kind", "pairs", "resolved_answers"]

"""Double review: pairing first and second reviews, their disagreements, and Cohen's kappa.

Works on the decision rows of one sample (:func:`crimeaudit.audit.all_decisions`), so the
estimators' auditor-error work can use the same numbers the workbench shows. A record's first
and second review are each its latest row of that kind; they *disagree* when any decision
column differs (an unanswered question counts as an answer: "not asked" against "yes" is a
disagreement about whether the question applied). A disagreement is *open* until a lead's
adjudication newer than both reviews exists.

Kappa per question is statsmodels' ``cohens_kappa`` on the two reviews' contingency table, with
its asymptotic normal interval (kappa +/- z * its standard error) at the project's level, over
the records where both reviews answered the question.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from crimeaudit.audit.decisions import DECISION_COLUMNS

#: Questions kappa is reported for: every decision column (the class as a nominal answer).
QUESTIONS = DECISION_COLUMNS


def _value(v) -> str | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)) or str(v).strip() == "":
        return None
    return str(v).strip()


def latest_by_kind(decisions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{review kind: its latest row per record, indexed by record_id}."""
    out = {}
    d = decisions.copy()
    d["review"] = d["review"].fillna("first") if "review" in d else "first"
    for kind in ("first", "second", "adjudication"):
        k = d[d.review == kind].sort_values("decision_id")
        out[kind] = k.groupby("record_id").tail(1).set_index("record_id")
    return out


def pairs(decisions: pd.DataFrame) -> pd.DataFrame:
    """One row per record with both a first and a second review.

    Columns: record_id, first_id, second_id, first_auditor, second_auditor, each question as
    ``first_<q>``/``second_<q>``, ``differs`` (the questions that differ), ``adjudication_id``
    (a newer adjudication or NA) and ``open`` (a disagreement not yet adjudicated).
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
        for q in QUESTIONS:
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
            *[f"{k}_{q}" for q in QUESTIONS for k in ("first", "second")], "differs",
            "adjudication_id", "open"]
    return pd.DataFrame(rows, columns=cols)


def kappa_by_question(paired: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Cohen's kappa per question with its interval, agreement share and n.

    ``note`` says why kappa is missing: too few records, or both reviewers gave one answer
    only (kappa is undefined when agreement by chance is certain).

    >>> p = pd.DataFrame({"first_should_record": ["yes", "yes", "no", "no", "yes"],
    ...                   "second_should_record": ["yes", "no", "no", "no", "yes"]})
    >>> k = kappa_by_question(p).set_index("question").loc["should_record"]
    >>> int(k.n), round(float(k.agreement), 2), round(float(k.kappa), 3)
    (5, 0.8, 0.615)
    """
    from scipy.stats import norm
    from statsmodels.stats.inter_rater import cohens_kappa

    out = []
    for q in QUESTIONS:
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
                                dropna=False).to_numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = cohens_kappa(table)
            # statsmodels' interval is fixed at 95%; the same normal interval at ``level``.
            z = float(norm.ppf(0.5 + level / 2))
            k, se = float(res.kappa), float(res.std_kappa)
            row["kappa"] = k
            if np.isfinite(se) and se > 0:
                row.update(lower=k - z * se, upper=k + z * se)
            else:
                row["note"] = "no interval: a reviewer gave one answer only"
            if not np.isfinite(row["kappa"]):
                row["note"] = "kappa undefined for these answers"
        out.append(row)
    return pd.DataFrame(out, columns=["question", "n", "agreement", "kappa", "lower", "upper",
                                      "note"])

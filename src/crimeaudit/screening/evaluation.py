"""How well a screen separates its labels: cross-validated, against a plain baseline.

Every candidate is scored on the same stratified folds (each label is predicted by a model
that never saw it): the screen's recipe (TF-IDF word 1-2-grams with coded tokens and rule
hits, calibrated logistic regression) and the plain baseline (scikit-learn's
``TfidfVectorizer()`` and ``LogisticRegression()`` on the narrative alone). A saved model can
be scored too, as it is; if it was trained on these very labels its figures are not held out,
and say so.

From the pooled out-of-fold probabilities, each with its standard error, interval, method and
n:

* **ROC AUC** (Hanley-McNeil standard error, Wald interval clipped to [0, 1]);
* **precision at k**: the share of positives among the k highest scores (Wilson interval);
* **calibration**: Brier score (standard error of the mean squared error), the calibration
  slope and intercept of a logistic regression of the label on the logit of the probability
  (1 and 0 when calibrated), and the expected calibration error over ten equal-count bins.

:func:`choose` keeps the better recipe on AUC (the screen on a tie): if the screen's own
features cannot beat the plain baseline on a force's labels, the baseline is used, and the
training report says which and why.

>>> rng = np.random.default_rng(0)
>>> y = rng.random(400) < 0.3
>>> m = metrics(y, np.where(y, 0.7, 0.3) + rng.normal(0, 0.1, 400), k=50)
>>> m["auc"]["estimate"] > 0.95, m["precision_at_k"]["n"]
(True, 50)
"""

from __future__ import annotations

import math

import numpy as np
import statsmodels.api as sm
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from crimeaudit.screening.labels import LabelledSet
from crimeaudit.screening.model import RECIPES, ScreenModel
from crimeaudit.uncertainty import wilson

DEFAULT_FOLDS = 5
DEFAULT_K = 50


def _stat(estimate, se, lo, hi, method, n, warnings=()) -> dict:
    def f(x):
        return None if x is None or not math.isfinite(x) else float(x)

    return {"estimate": f(estimate), "se": f(se), "interval": [f(lo), f(hi)],
            "method": method, "n": int(n), "warnings": list(warnings)}


def _auc(y: np.ndarray, p: np.ndarray, level: float) -> dict:
    n1, n0 = int(y.sum()), int((~y).sum())
    a = float(roc_auc_score(y, p))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    se = math.sqrt(max(var, 0.0))
    z = stats.norm.ppf(0.5 + level / 2)
    return _stat(a, se, max(0.0, a - z * se), min(1.0, a + z * se),
                 "ROC AUC of out-of-fold probabilities; Hanley-McNeil standard error, Wald "
                 "interval", len(y))


def _precision_at_k(y, p, k, level) -> dict:
    k = int(min(k, len(y)))
    top = np.argsort(-p, kind="stable")[:k]
    hits = int(y[top].sum())
    lo, hi = wilson(hits, k, level)
    warn = [] if k >= 30 else [f"only {k} records in the top k"]
    return _stat(hits / k, math.sqrt(hits / k * (1 - hits / k) / k), lo, hi,
                 f"share of positives among the {k} highest out-of-fold probabilities; Wilson "
                 "interval", k, warn)


def _calibration(y, p, level) -> dict:
    z = stats.norm.ppf(0.5 + level / 2)
    sq = (p - y) ** 2
    brier, se = float(sq.mean()), float(sq.std(ddof=1) / math.sqrt(len(y)))
    eps = 1e-6
    logit = np.log(np.clip(p, eps, 1 - eps) / (1 - np.clip(p, eps, 1 - eps)))
    warn = []
    try:
        fit = sm.GLM(y.astype(float), sm.add_constant(logit),
                     family=sm.families.Binomial()).fit()
        (a, b), (sa, sb) = fit.params, fit.bse
    except Exception as exc:  # perfect separation: a slope cannot be estimated
        a = b = sa = sb = math.nan
        warn.append(f"calibration slope not estimable ({type(exc).__name__})")
    bins = np.array_split(np.argsort(p, kind="stable"), 10)
    ece = float(sum(len(i) * abs(p[i].mean() - y[i].mean()) for i in bins if len(i)) / len(y))
    return {
        "brier": _stat(brier, se, brier - z * se, brier + z * se,
                       "mean squared difference of probability and label; normal interval",
                       len(y)),
        "slope": _stat(b, sb, b - z * sb, b + z * sb,
                       "logistic regression of the label on logit(probability): 1 when "
                       "calibrated", len(y), warn),
        "intercept": _stat(a, sa, a - z * sa, a + z * sa,
                           "the same regression's intercept: 0 when calibrated", len(y), warn),
        "expected_calibration_error": _stat(
            ece, None, None, None, "mean |mean probability - share positive| over ten "
            "equal-count bins, weighted by size", len(y)),
    }


def metrics(y, p, k: int = DEFAULT_K, level: float = 0.95) -> dict:
    """AUC, precision at k and calibration of probabilities ``p`` for labels ``y``."""
    y, p = np.asarray(y, bool), np.asarray(p, float)
    return {"auc": _auc(y, p, level), "precision_at_k": _precision_at_k(y, p, k, level),
            "calibration": _calibration(y, p, level), "n": len(y),
            "positives": int(y.sum())}


def folds_of(labels: LabelledSet, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out indices of each fold (stratified, shuffled with ``seed``)."""
    folds = int(min(folds, labels.y.sum(), (~labels.y).sum()))
    cv = StratifiedKFold(n_splits=max(folds, 2), shuffle=True, random_state=seed)
    return [test for _, test in cv.split(np.zeros(len(labels)), labels.y)]


def _pick(xs, idx) -> list:
    return [xs[i] for i in idx]


def _fit(recipe: str, labels: LabelledSet, idx: np.ndarray, hits, seed: int) -> ScreenModel:
    def pick(xs):
        return _pick(xs, idx)

    model = ScreenModel("cv", seed, recipe, labels.target)
    codes = labels.offence_codes if labels.target["kind"] == "crime" else None
    return model.fit(pick(labels.narratives), pick(labels.call_types),
                     pick(labels.closing_codes), labels.y[idx],
                     pick(codes) if codes else [None] * len(idx), pick(hits))


def _predict(model: ScreenModel, labels: LabelledSet, idx, hits) -> np.ndarray:
    def pick(xs):
        return _pick(xs, idx)

    return model.predict(pick(labels.narratives), pick(labels.call_types),
                         pick(labels.closing_codes), pick(hits))[0]


def out_of_fold(labels: LabelledSet, recipe: str, folds: list[np.ndarray], hits,
                seed: int = 0) -> np.ndarray:
    """Each label's probability from the recipe fitted on the other folds."""
    p = np.full(len(labels), np.nan)
    every = np.arange(len(labels))
    for test in folds:
        train = np.setdiff1d(every, test)
        p[test] = _predict(_fit(recipe, labels, train, hits, seed), labels, test, hits)
    return p


def compare(labels: LabelledSet, hits, folds: int = DEFAULT_FOLDS, k: int = DEFAULT_K,
            seed: int = 0, level: float = 0.95, current: ScreenModel | None = None) -> dict:
    """Every recipe (and ``current`` as saved) on the same folds; see the module notes."""
    parts = folds_of(labels, folds, seed)
    out = {"folds": len(parts), "seed": seed, "k": k, "labels": labels.summary(),
           "candidates": {}}
    for recipe in RECIPES:
        out["candidates"][recipe] = metrics(labels.y, out_of_fold(labels, recipe, parts,
                                                                  hits, seed), k, level)
    if current is not None:
        p = _predict(current, labels, np.arange(len(labels)), hits)
        m = metrics(labels.y, p, k, level)
        seen = current.target.get("trained_on") == labels.fingerprint
        m["model_version"], m["recipe"] = current.version, current.recipe
        m["warnings"] = (["trained on these labels: in-sample, not a held-out figure"]
                         if seen else [])
        out["candidates"]["current"] = m
    out["chosen"], out["why"] = choose(out["candidates"])
    return out


def choose(candidates: dict) -> tuple[str, str]:
    """The recipe to train: the screen unless the plain baseline's AUC is higher."""
    s = candidates["screen"]["auc"]["estimate"]
    b = candidates["baseline"]["auc"]["estimate"]
    if b > s:
        return "baseline", (f"the plain TF-IDF + logistic regression baseline separated these "
                            f"labels better on the same folds (AUC {b:.3f} against the "
                            f"screen's {s:.3f})")
    return "screen", (f"the screen's features did at least as well as the plain baseline on "
                      f"the same folds (AUC {s:.3f} against {b:.3f})")


__all__ = ["DEFAULT_FOLDS", "DEFAULT_K", "choose", "compare", "folds_of", "metrics",
           "out_of_fold"]

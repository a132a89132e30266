"""The trainable screen: TF-IDF word n-grams -> calibrated logistic regression.

Two classifiers share one vectoriser: P(a crime should have been recorded) (calibrated,
sigmoid) and the most likely offence class (trained on crime-disclosing incidents only). The
call type, the closing code and the rules hit enter as extra tokens, so the model sees them.

>>> m = ScreenModel().fit(["he punched her", "noise from party", "punched in face", "loud music"],
...                       ["ASSAULT", "NOISE", "ASSAULT", "NOISE"], ["NFA"] * 4,
...                       [True, False, True, False], ["105A", None, "105A", None])
>>> p, cls = m.predict(["punched by male"], ["ASSAULT"], ["NFA"])
>>> bool(p[0] > 0.5), cls[0]
(True, '105A')
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier

from crimeaudit.screening.errors import ScreenError
from crimeaudit.store.files import open_for_write

DEFAULT_SCENARIO = "national-2014"
DEFAULT_SEED = 20140
DEFAULT_SIZE = 40000
MODEL_FILE = "screen-model.npz"
#: A model of a class group (e.g. serious against minor), kept beside the screen's own.
CLASS_MODEL_FILE = "class-model.npz"
#: What older versions wrote: never read (unpickling runs whatever code the file names).
LEGACY_MODEL_FILE = "screen-model.pkl"
#: Bumped whenever the arrays or the header change meaning; other values are refused.
FILE_FORMAT = "crimeaudit-screen-model/1"


def _text(value) -> str:
    """A cell as text, every kind of missing (None, NaN, pandas' NA, "") as ``""``.

    Training reads pandas frames (a missing code is NaN) and scoring Arrow batches (None):
    both must give the model the same document.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def feature_text(narratives, call_types, closing_codes, rule_hits=None) -> list[str]:
    """The document the model reads: narrative plus coded tokens (call, closing code, rules).

    The one feature function of training and scoring; a missing value is ``none`` whatever
    form it arrives in:

    >>> feature_text(["x"], [None], [float("nan")]) == feature_text(["x"], [""], [None])
    True
    >>> feature_text(["x"], [None], [float("nan")])[0]
    'x zzcallnone zzclosenone '
    """
    out = []
    hits = rule_hits if rule_hits is not None else [()] * len(narratives)
    for text, call, close, rh in zip(narratives, call_types, closing_codes, hits, strict=True):
        extra = (f" zzcall{_text(call) or 'none'} zzclose{_text(close) or 'none'} "
                 + " ".join(f"zzrule{r}" for r in rh))
        out.append(_text(text) + extra)
    return out


def plain_text(narratives) -> list[str]:
    """What the plain baseline reads: the narrative alone (missing as ``""``)."""
    return [_text(t) for t in narratives]


TOKEN_PATTERN = r"(?u)\b\w+\b"
#: The same runs of word characters as TOKEN_PATTERN, in RE2 syntax (letters, digits, "_").
_NON_WORD = r"[^\pL\pN_]+"


def _arrow_ready(vec: TfidfVectorizer) -> bool:
    """Whether :func:`tfidf_transform` reproduces this vectoriser exactly (ours always does)."""
    p = vec.get_params()
    return (p["analyzer"] == "word" and p["lowercase"] and p["token_pattern"] == TOKEN_PATTERN
            and p["ngram_range"] in ((1, 1), (1, 2)) and p["input"] == "content"
            and p["stop_words"] is None and p["preprocessor"] is None
            and p["tokenizer"] is None and p["strip_accents"] is None
            # the fitted weighting step that TfidfVectorizer.transform itself ends with
            and hasattr(vec, "_tfidf"))


def tfidf_transform(vec: TfidfVectorizer, docs):
    """``vec.transform(docs)``, with the tokens and n-grams cut by Arrow kernels.

    scikit-learn tokenises document by document in Python, which was most of the time of
    screening a million incidents; here lower-casing, splitting, bigrams and the vocabulary
    look-up run over the whole batch at once, and scikit-learn's own fitted transformer then
    weights the counts, so the matrix is the same (tested equal to ``vec.transform``).

    >>> v = TfidfVectorizer(ngram_range=(1, 2), token_pattern=TOKEN_PATTERN).fit(
    ...     ["a knife was shown", "no knife"])
    >>> (tfidf_transform(v, ["Knife shown!"]) != v.transform(["Knife shown!"])).nnz
    0
    """
    if not _arrow_ready(vec):
        return vec.transform(docs)
    text = docs if isinstance(docs, pa.Array) else pa.array(list(docs), pa.string())
    pieces = pc.split_pattern_regex(pc.utf8_lower(pc.fill_null(text, "")), _NON_WORD)
    owner = pc.list_parent_indices(pieces).to_numpy()
    flat = pc.list_flatten(pieces)
    word = pc.not_equal(flat, "")
    tokens, owner = flat.filter(word), owner[word.to_numpy(zero_copy_only=False)]
    terms, owners = [tokens], [owner]
    if vec.ngram_range[1] == 2:
        pair = np.flatnonzero(owner[1:] == owner[:-1])
        terms.append(pc.binary_join_element_wise(tokens.take(pair), tokens.take(pair + 1), " "))
        owners.append(owner[pair])
    keys = pa.array(list(vec.vocabulary_), pa.string())
    column_of_key = np.fromiter(vec.vocabulary_.values(), np.int64, len(keys))
    rows, cols = [], []
    for t, o in zip(terms, owners, strict=True):
        at = pc.index_in(t, value_set=keys)
        known = at.is_valid().to_numpy(zero_copy_only=False)
        rows.append(o[known])
        cols.append(column_of_key[at.drop_null().to_numpy()])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    counts = sp.coo_matrix((np.ones(len(rows), vec.dtype), (rows, cols)),
                           shape=(len(text), len(keys))).tocsr()
    counts.sum_duplicates()
    return vec._tfidf.transform(counts, copy=False)


#: How a screen is built: the screen's own features, or the plain baseline it is checked
#: against (scikit-learn's defaults: word unigrams, logistic regression, no calibration).
RECIPES = ("screen", "baseline")


def vectoriser_for(recipe: str) -> TfidfVectorizer:
    """The (unfitted) text features of a recipe."""
    if recipe == "baseline":
        return TfidfVectorizer()
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                           max_features=200_000, dtype=np.float32, token_pattern=TOKEN_PATTERN)


class ScreenModel:
    """Crime/no-crime and offence-class classifiers over incident text."""

    def __init__(self, version: str = "untrained", seed: int = 0, recipe: str = "screen",
                 target: dict | None = None):
        if recipe not in RECIPES:
            raise ScreenError(f"unknown screen recipe {recipe!r} (recipes: "
                              f"{', '.join(RECIPES)})")
        self.version = version
        self.seed = seed
        #: ``screen`` (narrative with coded tokens, calibrated) or ``baseline`` (plain
        #: TF-IDF + logistic regression on the narrative alone).
        self.recipe = recipe
        #: What the probability is of: ``{"kind": "crime"}`` (a crime should have been
        #: recorded) or ``{"kind": "class", "positive": "serious", "negative": "minor", ...}``.
        self.target = dict(target or {"kind": "crime"})
        self.vectoriser = vectoriser_for(recipe)
        self.crime = None
        self.offence = None

    def fit(self, narratives, call_types, closing_codes, should_record, offence_codes,
            rule_hits=None) -> ScreenModel:
        docs = self._documents(narratives, call_types, closing_codes, rule_hits)
        y = np.asarray(should_record, dtype=bool)
        if y.all() or not y.any():
            what = (f"{self.target.get('positive')} and {self.target.get('negative')}"
                    if self.target["kind"] == "class" else "crimes and non-crimes")
            raise ScreenError(f"training needs both {what} among the labels")
        if len(docs) < 50 and self.recipe == "screen":
            self.vectoriser.set_params(min_df=1)
        X = self.vectoriser.fit_transform(docs)
        if self.recipe == "baseline":
            # The plain model of P(target); the offence class below is fitted as for the
            # screen, so a baseline crime model still names the likely class.
            self.crime = LogisticRegression(max_iter=1000).fit(X, y)
        else:
            cv = int(min(3, y.sum(), (~y).sum()))
            base = LogisticRegression(C=4.0, max_iter=2000)
            self.crime = (CalibratedClassifierCV(base, method="sigmoid", cv=cv).fit(X, y)
                          if cv >= 2 else base.fit(X, y))
        codes = np.array([c if c else "" for c in offence_codes], dtype=object)
        keep = y & (codes != "")
        if keep.sum() and len(set(codes[keep])) > 1:
            self.offence = SGDClassifier(loss="log_loss", alpha=2e-5, max_iter=30, tol=None,
                                         random_state=self.seed).fit(X[keep], codes[keep])
        elif keep.sum():
            self.offence = str(codes[keep][0])
        return self

    def _documents(self, narratives, call_types, closing_codes, rule_hits):
        if self.recipe == "baseline":
            return plain_text(narratives)
        return feature_text(narratives, call_types, closing_codes, rule_hits)

    def predict(self, narratives, call_types, closing_codes, rule_hits=None):
        """(probability of the target array, predicted offence class list)."""
        if self.crime is None:
            raise ScreenError("the screen model is not trained")
        X = tfidf_transform(self.vectoriser, self._documents(narratives, call_types,
                                                             closing_codes, rule_hits))
        p = self.crime.predict_proba(X)[:, 1]
        if isinstance(self.offence, str) or self.offence is None:
            cls = [self.offence] * len(p)
        else:
            cls = list(self.offence.predict(X))
        return p, cls

    def save(self, path: Path) -> None:
        """Write the fitted parameters as arrays plus a JSON header: data, never code.

        Written through :func:`crimeaudit.store.files.open_for_write`: a temporary file then
        renamed, so an interrupted save never leaves a truncated model where the next run
        would look for one, and no link planted in the project folder is followed.
        """
        if self.crime is None:
            raise ScreenError("the screen model is not trained")
        header, arrays = _to_data(self)
        with open_for_write(Path(path), "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), **arrays)

    @staticmethod
    def load(path: Path) -> ScreenModel:
        """The model saved at ``path``, rebuilt from plain arrays and JSON.

        ``np.load(allow_pickle=False)`` and ``json`` only ever produce numbers, strings and
        lists, and the scikit-learn objects are built here from a fixed set of classes, so a
        crafted file can at worst be refused: it cannot run code. Anything malformed is one
        :class:`ScreenError` naming the file.
        """
        path = Path(path)
        try:
            with open(path, "rb") as f:
                pickled = f.read(1) == b"\x80"  # a pickle's first opcode (PROTO)
            if pickled:
                raise pickled_model_error(path)
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            header = json.loads(str(arrays.pop("header")[()]))
            if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
                raise ValueError(f"not a {FILE_FORMAT} file")
            return _from_data(header, arrays)
        except ScreenError:
            raise
        except KeyError as e:
            raise unreadable_model_error(path, f"not a complete screen model (no {e})") from None
        except Exception as e:  # whatever a damaged or crafted file trips: one clear line
            raise unreadable_model_error(path, f"not a readable screen model ({e})") from None


def unreadable_model_error(path: Path, why: str) -> ScreenError:
    """One line: the file, what is wrong with it, and the two ways out (retrain or delete)."""
    path = Path(path)
    project = path.parent.parent if path.parent.name == "screen" else "DIR"
    why = " ".join(str(why).split())  # library messages may hold line breaks
    return ScreenError(f"{path}: {why}; retrain with `crimeaudit screen train {project}` or "
                       "delete the file (the default model is then retrained)")


def pickled_model_error(path: Path) -> ScreenError:
    """The refusal for a pickled model: saying why keeps users from hunting for a bug."""
    return unreadable_model_error(path, "pickled screen model files are no longer read, for "
                                        "safety (loading one could run code from the file)")


def _params(est) -> dict:
    """An estimator's constructor arguments (its fitted parts are saved separately)."""
    return {k: v for k, v in est.get_params(deep=False).items() if k != "estimator"}


def _vectoriser_params(vec: TfidfVectorizer) -> dict:
    """The vectoriser's settings as JSON would return them (dtype by name, tuples as lists)."""
    p = dict(vec.get_params(), dtype=np.dtype(vec.dtype).name)
    return json.loads(json.dumps(p))


def _linear_data(est, prefix: str, arrays: dict) -> dict:
    """A linear classifier's weights and classes into ``arrays``; its settings for the header."""
    classes = est.classes_
    if classes.dtype.kind not in "bU":  # object arrays would be pickled into the file
        classes = classes.astype(str)
    arrays[f"{prefix}coef"] = est.coef_
    arrays[f"{prefix}intercept"] = est.intercept_
    arrays[f"{prefix}classes"] = classes
    return {"params": _params(est)}


def _to_data(model: ScreenModel) -> tuple[dict, dict]:
    """(JSON header, named arrays): everything :func:`_from_data` needs, nothing executable."""
    vec = model.vectoriser
    arrays = {"vocabulary_columns": np.fromiter(vec.vocabulary_.values(), np.int64,
                                                len(vec.vocabulary_)),
              "idf": vec.idf_}
    header = {"format": FILE_FORMAT, "version": model.version, "seed": int(model.seed),
              "vectoriser": _vectoriser_params(vec), "terms": list(vec.vocabulary_),
              "recipe": model.recipe, "target": model.target}
    if isinstance(model.crime, CalibratedClassifierCV):
        folds = model.crime.calibrated_classifiers_
        if any(f.method != "sigmoid" or len(f.calibrators) != 1 for f in folds):
            raise ScreenError("only a binary sigmoid-calibrated screen can be saved")
        header["crime"] = {"kind": "calibrated", "params": _params(model.crime),
                           "folds": [_linear_data(f.estimator, f"crime{i}_", arrays)
                                     for i, f in enumerate(folds)]}
        arrays["crime_sigmoid"] = np.array([[f.calibrators[0].a_, f.calibrators[0].b_]
                                            for f in folds], np.float64)
    else:
        header["crime"] = {"kind": "logistic", **_linear_data(model.crime, "crime_", arrays)}
    if model.offence is None or isinstance(model.offence, str):
        header["offence"] = {"kind": "constant", "value": model.offence}
    else:
        header["offence"] = {"kind": "sgd", **_linear_data(model.offence, "offence_", arrays)}
    return header, arrays


def _linear(cls, spec: dict, prefix: str, arrays: dict, n_features: int, kind: str):
    """A fitted linear classifier of class ``cls`` rebuilt from its weights, shapes checked.

    ``kind`` is the numpy kind its classes must have: "b" (crime yes/no) or "U" (offence codes).
    """
    coef, intercept = arrays[f"{prefix}coef"], arrays[f"{prefix}intercept"]
    classes = arrays[f"{prefix}classes"]
    if classes.dtype.kind != kind or classes.ndim != 1 or len(np.unique(classes)) != len(
            classes) or len(classes) < 2 or (kind == "b" and classes.tolist() != [False, True]):
        raise ValueError(f"{prefix}classes: not the classes such a classifier has")
    rows = 1 if len(classes) == 2 else len(classes)
    if (coef.dtype.kind != "f" or intercept.dtype.kind != "f"
            or coef.shape != (rows, n_features) or intercept.shape != (rows,)):
        raise ValueError(f"{prefix}coef: weights of the wrong type or shape")
    est = cls(**spec["params"])
    est.coef_, est.intercept_, est.n_features_in_ = coef, intercept, n_features
    est.classes_ = classes
    return est


def _from_data(header: dict, arrays: dict) -> ScreenModel:
    """The model :func:`_to_data` described, from fixed classes only; ValueError if malformed.

    ``_CalibratedClassifier`` and ``_SigmoidCalibration`` are private to scikit-learn, but they
    are what a fitted CalibratedClassifierCV holds; rebuilding them is the only way to get its
    exact predictions back without pickle (the round-trip test catches a change upstream).
    """
    # Files from before recipes and targets are the screen's own, of P(crime).
    target = header.get("target") or {"kind": "crime"}
    if not isinstance(target, dict) or target.get("kind") not in ("crime", "class"):
        raise ValueError("unknown target")
    model = ScreenModel(str(header["version"]), int(header["seed"]),
                        str(header.get("recipe", "screen")), target)
    vec = model.vectoriser
    saved = dict(header["vectoriser"])
    ours = _vectoriser_params(vec)
    # How text becomes features is this code's, not the file's: only min_df (used in fitting,
    # and lowered for tiny training sets) may differ.
    if {k: v for k, v in saved.items() if k != "min_df"} != {
            k: v for k, v in ours.items() if k != "min_df"}:
        raise ValueError("text settings differ from this version's")
    vec.set_params(min_df=saved["min_df"])
    terms, columns, idf = header["terms"], arrays["vocabulary_columns"], arrays["idf"]
    n = len(terms)
    if (not n or not all(isinstance(t, str) for t in terms) or columns.shape != (n,)
            or columns.dtype.kind not in "iu" or not np.array_equal(np.sort(columns),
                                                                    np.arange(n))
            or idf.shape != (n,) or idf.dtype.kind != "f"):
        raise ValueError("vocabulary and weights do not match")
    vec.vocabulary_ = dict(zip(terms, columns.tolist(), strict=True))
    vec.fixed_vocabulary_ = False
    vec._tfidf = TfidfTransformer(norm=vec.norm, use_idf=vec.use_idf,
                                  smooth_idf=vec.smooth_idf, sublinear_tf=vec.sublinear_tf)
    vec._tfidf.idf_, vec._tfidf.n_features_in_ = idf, n

    crime = header["crime"]
    if crime["kind"] == "calibrated":
        sig = arrays["crime_sigmoid"]
        if (not crime["folds"] or sig.shape != (len(crime["folds"]), 2)
                or sig.dtype.kind != "f"):
            raise ValueError("calibration does not match its folds")
        folds = []
        for i, spec in enumerate(crime["folds"]):
            lr = _linear(LogisticRegression, spec, f"crime{i}_", arrays, n, "b")
            cal = _SigmoidCalibration()
            cal.a_, cal.b_ = sig[i, 0], sig[i, 1]
            folds.append(_CalibratedClassifier(lr, [cal], classes=lr.classes_,
                                               method="sigmoid"))
        model.crime = CalibratedClassifierCV(LogisticRegression(**crime["folds"][0]["params"]),
                                             **crime["params"])
        model.crime.calibrated_classifiers_ = folds
        model.crime.classes_, model.crime.n_features_in_ = folds[0].classes, n
    elif crime["kind"] == "logistic":
        model.crime = _linear(LogisticRegression, crime, "crime_", arrays, n, "b")
    else:
        raise ValueError(f"unknown crime classifier {crime['kind']!r}")

    offence = header["offence"]
    if offence["kind"] == "sgd":
        model.offence = _linear(SGDClassifier, offence, "offence_", arrays, n, "U")
    elif offence["kind"] == "constant" and (offence["value"] is None
                                            or isinstance(offence["value"], str)):
        model.offence = offence["value"]
    else:
        raise ValueError("unknown offence classifier")
    return model


def version_of(kind: str, *parts) -> str:
    """A short, stable model version from what it was trained on."""
    h = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:10]
    return f"{kind}-{h}"


def train_default(progress=None) -> ScreenModel:
    """The shipped default: trained deterministically on a simulated force's narratives.

    A different scenario and seed from the benchmark's held-out force, so its quality figures
    are honest.
    """
    from crimeaudit.screening.rules import load_rules
    from crimeaudit.simulation import simulate

    sim = simulate(DEFAULT_SCENARIO, seed=DEFAULT_SEED, n_incidents=DEFAULT_SIZE)
    inc = sim.tables["incidents"].to_pandas()
    truth = sim.tables["truth_incidents"].to_pandas().set_index("incident_id").loc[
        inc.incident_id]
    hits = load_rules().match(inc.narrative.tolist())
    model = ScreenModel(version_of("default", DEFAULT_SCENARIO, DEFAULT_SEED, DEFAULT_SIZE))
    return model.fit(inc.narrative.tolist(), inc.call_type.tolist(), inc.closing_code.tolist(),
                     truth.discloses_crime.to_numpy(), truth.true_offence_code.tolist(), hits)

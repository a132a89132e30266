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
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier

from crimeaudit.screening.errors import ScreenError

DEFAULT_SCENARIO = "national-2014"
DEFAULT_SEED = 20140
DEFAULT_SIZE = 40000
MODEL_FILE = "screen-model.pkl"


def feature_text(narratives, call_types, closing_codes, rule_hits=None) -> list[str]:
    """The document the model reads: narrative plus coded tokens (call, closing code, rules)."""
    out = []
    hits = rule_hits if rule_hits is not None else [()] * len(narratives)
    for text, call, close, rh in zip(narratives, call_types, closing_codes, hits, strict=True):
        extra = f" zzcall{call or 'none'} zzclose{close or 'none'} " + " ".join(
            f"zzrule{r}" for r in rh)
        out.append((text or "") + extra)
    return out


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


class ScreenModel:
    """Crime/no-crime and offence-class classifiers over incident text."""

    def __init__(self, version: str = "untrained", seed: int = 0):
        self.version = version
        self.seed = seed
        self.vectoriser = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                          max_features=200_000, dtype=np.float32,
                                          token_pattern=TOKEN_PATTERN)
        self.crime = None
        self.offence = None

    def fit(self, narratives, call_types, closing_codes, should_record, offence_codes,
            rule_hits=None) -> ScreenModel:
        docs = feature_text(narratives, call_types, closing_codes, rule_hits)
        y = np.asarray(should_record, dtype=bool)
        if y.all() or not y.any():
            raise ScreenError("training needs both crimes and non-crimes among the decisions")
        if len(docs) < 50:
            self.vectoriser.set_params(min_df=1)
        X = self.vectoriser.fit_transform(docs)
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

    def predict(self, narratives, call_types, closing_codes, rule_hits=None):
        """(p_crime array, predicted offence class list)."""
        if self.crime is None:
            raise ScreenError("the screen model is not trained")
        X = tfidf_transform(self.vectoriser, feature_text(narratives, call_types, closing_codes,
                                                          rule_hits))
        p = self.crime.predict_proba(X)[:, 1]
        if isinstance(self.offence, str) or self.offence is None:
            cls = [self.offence] * len(p)
        else:
            cls = list(self.offence.predict(X))
        return p, cls

    def save(self, path: Path) -> None:
        path.write_bytes(pickle.dumps(self, protocol=5))

    @staticmethod
    def load(path: Path) -> ScreenModel:
        # Only the project's own folder is ever read: pickle is safe for files we wrote.
        return pickle.loads(Path(path).read_bytes())


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

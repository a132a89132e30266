"""How the simulated force behaves: per-offence probabilities resolved from a scenario's knobs.

Rates are given by strand; an offence takes the rate of its most specific strand named in the
mapping (rape before sexual before all).

>>> from crimeaudit.model.codes import load_code_lists
>>> book = OffenceBook(load_code_lists())
>>> rates = book.by_strand({"all": 0.9, "sexual": 0.8, "rape": 0.7})
>>> [float(rates[book.index[c]]) for c in ("8N", "20A", "19C")]
[0.9, 0.8, 0.7]
>>> book.code[book.downgrades[book.index["8N"]][0]]
'105A'
"""

from __future__ import annotations

import numpy as np

from crimeaudit.model.codes import CodeLists

# Where a careless or target-chasing recorder puts a crime: a less serious class that the facts
# do not support. Codes missing from a user's code list are skipped; an offence with none here
# falls back to the next less serious class in its strand.
DEFAULT_DOWNGRADES: dict[str, list[str]] = {
    "5D": ["8N", "105A"], "8N": ["105A"], "8P": ["105B", "8N"], "105A": ["9A"],
    "105B": ["105A", "9A"], "8Q": ["8L"], "8L": ["8R"], "19C": ["20A"], "19D": ["20A"],
    "19F": ["17A"], "20A": ["23", "105A"], "17A": ["23", "105A"], "34B": ["39", "49"],
    "34A": ["46", "49"], "28E": ["28F", "58A", "40"], "28F": ["58A"], "30C": ["30D", "58B", "49"],
    "30D": ["58B"], "37.2": ["48"], "48": ["126"], "39": ["49"], "56A": ["56B"],
    "56B": ["58D"], "58A": ["58D"], "10D": ["9A"], "92A": ["92D"],
}


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class OffenceBook:
    """Offence codes as integer indices, with strands, ranks and downgrade targets."""

    def __init__(self, codes: CodeLists, targets: dict[str, list[str]] | None = None):
        self.codes = codes
        self.code = list(codes.offences)
        self.index = {c: i for i, c in enumerate(self.code)}
        self.rank = np.array([codes.offence(c).seriousness_rank for c in self.code])
        self.strand = [codes.offence(c).strand for c in self.code]
        chosen = {**DEFAULT_DOWNGRADES, **(targets or {})}
        self.downgrades: list[list[int]] = []
        for i, c in enumerate(self.code):
            down = [self.index[t] for t in chosen.get(c, []) if t in self.index
                    and self.rank[self.index[t]] < self.rank[i]]
            if not down:
                lower = [j for j in range(len(self.code))
                         if self.strand[j] == self.strand[i] and self.rank[j] < self.rank[i]]
                if lower:
                    down = [max(lower, key=lambda j: self.rank[j])]
            self.downgrades.append(down)
        self.upgrades: list[list[int]] = [[] for _ in self.code]
        for i, down in enumerate(self.downgrades):
            for j in down:
                self.upgrades[j].append(i)

    def by_strand(self, mapping: dict[str, float], default: float = 0.0) -> np.ndarray:
        """One value per offence index from a strand-keyed mapping."""
        out = np.full(len(self.code), default, float)
        for i, c in enumerate(self.code):
            for s in self.codes.strands_of(c):
                if s in mapping:
                    out[i] = mapping[s]
                    break
        return out

    def in_strands(self, strands: list[str]) -> np.ndarray:
        return np.array([any(self.codes.in_strand(c, s) for s in strands) for c in self.code])


def pick_from(rng: np.random.Generator, options: list[list[int]], rows: np.ndarray) -> np.ndarray:
    """For each offence index in ``rows``, one of its options at random (-1 when none)."""
    width = max((len(o) for o in options), default=0)
    if width == 0 or len(rows) == 0:
        return np.full(len(rows), -1, np.int64)
    table = np.full((len(options), width), -1, np.int64)
    n_opt = np.zeros(len(options), np.int64)
    for i, o in enumerate(options):
        table[i, : len(o)] = o
        n_opt[i] = len(o)
    k = (rng.random(len(rows)) * np.maximum(n_opt[rows], 1)).astype(np.int64)
    return table[rows, k]


def calibrated_probability(
    base: np.ndarray, effect: np.ndarray, group: np.ndarray, fixed: np.ndarray | None = None,
) -> np.ndarray:
    """Per-row probabilities logit(base) + effect + shift, the shift chosen per group so that
    each group's mean probability equals its base rate exactly.

    Division and officer effects then move recording between divisions and officers without
    moving the force-wide rate the scenario states. ``fixed`` holds overriding probabilities
    (NaN where none); they count towards the mean but are not shifted.

    >>> p = calibrated_probability(np.full(4, 0.8), np.array([-1.0, 0.0, 1.0, 2.0]),
    ...                            np.zeros(4, int))
    >>> round(float(p.mean()), 6)
    0.8
    """
    n_groups = int(group.max()) + 1 if len(group) else 0
    free = np.ones(len(base), bool) if fixed is None else np.isnan(fixed)
    target = np.bincount(group, weights=base, minlength=n_groups)
    if fixed is not None:
        target -= np.bincount(group[~free], weights=fixed[~free], minlength=n_groups)
    x = logit(base) + effect
    lo, hi = np.full(n_groups, -30.0), np.full(n_groups, 30.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        total = np.bincount(group[free], weights=sigmoid(x[free] + mid[group[free]]),
                            minlength=n_groups)
        low = total < target
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    p = sigmoid(x + ((lo + hi) / 2)[group])
    exact = (base <= 0) | (base >= 1)
    p[exact] = base[exact]
    if fixed is not None:
        p[~free] = fixed[~free]
    return p

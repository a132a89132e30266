"""Labelled examples for training and evaluating the screen, from wherever a force has them.

Three sources, one result (:class:`LabelledSet`):

* the project's audit decisions (the default), or a decisions CSV (``incident_id``,
  ``should_record``, optional ``correct_class``), joined to the project's incidents for their
  narratives;
* a **labelled CSV of narratives** (``narrative`` and ``label``; optional ``call_type`` and
  ``closing_code``; no ids, no dates), such as a force's own assault reports marked serious or
  minor.

And two kinds of target:

* **crime or not**: labels yes/no (true/false, 1/0, crime/no crime): P(a crime should have been
  recorded), the screen's own question;
* **a group of classes**: ``positive`` names the labels (or, from decisions, the offence codes
  of ``correct_class``) that count as the positive group, e.g. ``serious`` or ``5D,8N``; every
  other label is the negative group. From decisions, only records decided as crimes with a
  class take part (class-only labels: serious against minor among crimes).

Every row read is used or excluded with its reason, and the counts reconcile
(``read = used + sum(excluded)``); the minimums are checked on what is used.

>>> import pandas as pd
>>> d = pd.DataFrame({"narrative": ["stabbed", "pushed", None], "label": ["serious", "minor",
...                   "minor"]})
>>> s = from_frame(d, "x.csv", positive="serious")
>>> s.y.tolist(), s.excluded, s.target["positive"]
([True, False], {'no narrative': 1}, 'serious')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crimeaudit.screening.errors import ScreenError

#: Fewest labels, and fewest on each side, a screen is trained or evaluated on.
MIN_LABELS = 20
MIN_PER_SIDE = 5
YES = {"yes": True, "y": True, "true": True, "1": True, "crime": True,
       "no": False, "n": False, "false": False, "0": False, "no crime": False,
       "not a crime": False, "non-crime": False, "noncrime": False}
LABEL_COLUMNS = ("narrative", "label")
OPTIONAL_COLUMNS = ("call_type", "closing_code")


@dataclass
class LabelledSet:
    """Narratives (with call types and closing codes where known) and their 0/1 labels."""

    narratives: list
    call_types: list
    closing_codes: list
    y: np.ndarray
    target: dict
    source: str
    read: int
    excluded: dict[str, int] = field(default_factory=dict)
    offence_codes: list | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def fingerprint(self) -> str:
        """A short hash of the texts and labels: a model records what it was trained on."""
        h = hashlib.sha256()
        for t, y in zip(self.narratives, self.y, strict=True):
            h.update(f"{t}\x1f{int(y)}\x1e".encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        return {"source": self.source, "target": self.target, "read": self.read,
                "used": len(self), "positive": int(self.y.sum()),
                "negative": int((~self.y).sum()), "excluded": dict(self.excluded)}

    def check(self, minimum: int = MIN_LABELS, per_side: int = MIN_PER_SIDE) -> LabelledSet:
        """Refuse a set too small to learn from (after cleaning, so the count is honest)."""
        pos, neg = int(self.y.sum()), int((~self.y).sum())
        names = _side_names(self.target)
        dropped = (f" ({', '.join(f'{v} {k}' for k, v in self.excluded.items())} excluded)"
                   if self.excluded else "")
        if len(self) < minimum:
            raise ScreenError(f"{self.source}: need at least {minimum} usable labels, found "
                              f"{len(self)} of {self.read} read{dropped}")
        if min(pos, neg) < per_side:
            raise ScreenError(f"{self.source}: need at least {per_side} labels of each kind, "
                              f"found {pos} {names[0]} and {neg} {names[1]}{dropped}")
        return self


def _side_names(target: dict) -> tuple[str, str]:
    if target["kind"] == "crime":
        return "crimes", "non-crimes"
    return str(target["positive"]), str(target["negative"])


def _positive_set(positive: str | None) -> list[str]:
    return [p.strip().upper() for p in (positive or "").split(",") if p.strip()]


def read_csv(path: str | Path) -> pd.DataFrame:
    """A CSV as text columns, or one clear error naming the file."""
    path = Path(path)
    if not path.exists():
        raise ScreenError(f"{path}: file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ScreenError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None


def from_frame(df: pd.DataFrame, source: str, positive: str | None = None) -> LabelledSet:
    """A labelled CSV of narratives (columns ``narrative``, ``label``; see the module notes)."""
    missing = [c for c in LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise ScreenError(f"{source}: line 1: missing column(s) {', '.join(missing)} (a "
                          "labelled CSV needs narrative and label; call_type and closing_code "
                          "are optional)")
    read = len(df)
    excluded: dict[str, int] = {}
    text = df["narrative"].astype("string").str.strip()
    label = df["label"].astype("string").str.strip()
    keep = text.notna() & (text != "")
    _count(excluded, "no narrative", ~keep)
    has_label = label.notna() & (label != "")
    _count(excluded, "no label", keep & ~has_label)
    keep &= has_label
    lower = label.str.lower()
    wanted = _positive_set(positive)
    if wanted:
        y = label.str.upper().isin(wanted)
        found = set(label[keep].str.upper())
        unknown = [p for p in wanted if p not in found]
        if unknown:
            raise ScreenError(f"{source}: --positive {', '.join(unknown)} is not a label in the "
                              f"file (labels: {_label_counts(label[keep])})")
        others = sorted(set(label[keep & ~y]))
        target = {"kind": "class", "positive": ", ".join(sorted(set(label[keep & y]))),
                  "negative": ", ".join(others) if len(others) <= 3 else "other labels"}
    else:
        yes = lower.map(YES)
        unknown = keep & yes.isna()
        if unknown.any():
            raise ScreenError(f"{source}: labels are not yes/no (labels: "
                              f"{_label_counts(label[keep])}); name the positive group with "
                              "--positive, e.g. --positive serious")
        y = yes.fillna(False).astype(bool)
        target = {"kind": "crime"}
    sub = df[keep.to_numpy()]
    cols = {c: (sub[c].tolist() if c in sub else [None] * len(sub)) for c in OPTIONAL_COLUMNS}
    return LabelledSet(text[keep].tolist(), cols["call_type"], cols["closing_code"],
                       y[keep].to_numpy(bool), target, source, read, excluded)


def _count(excluded: dict, reason: str, mask) -> None:
    n = int(np.asarray(mask).sum())
    if n:
        excluded[reason] = excluded.get(reason, 0) + n


def _label_counts(label: pd.Series) -> str:
    counts = label.value_counts()
    shown = ", ".join(f"{k} ({v})" for k, v in counts.head(8).items())
    return shown + (", ..." if len(counts) > 8 else "")


def from_decisions(d: pd.DataFrame, incidents: pd.DataFrame, source: str,
                   positive: str | None = None) -> LabelledSet:
    """Decisions (``incident_id``, ``should_record``, optional ``correct_class``) joined to
    the incidents they are about. With ``positive`` (offence codes), class-only labels:
    records decided as crimes with a class, positive when the class is in the group."""
    read = len(d)
    excluded: dict[str, int] = {}
    yes = d["should_record"].astype("string").str.strip().str.lower().map(YES)
    known = d["incident_id"].isin(set(incidents["incident_id"]))
    _count(excluded, "incident not in the project", ~known)
    _count(excluded, "should_record not yes/no", known & yes.isna())
    keep = known & yes.notna()
    wanted = _positive_set(positive)
    cls = (d["correct_class"].astype("string").str.strip().str.upper()
           if "correct_class" in d else pd.Series(pd.NA, index=d.index, dtype="string"))
    if wanted:
        crime = keep & yes.fillna(False).astype(bool)
        _count(excluded, "decided not a crime (class-only labels)", keep & ~crime)
        has_cls = crime & cls.notna() & (cls != "")
        _count(excluded, "no correct_class", crime & ~has_cls)
        keep = has_cls
        y = cls.isin(wanted)
        target = {"kind": "class", "positive": ", ".join(wanted), "negative": "other classes"}
    else:
        y = yes.fillna(False).astype(bool)
        target = {"kind": "crime"}
    sub = d[keep.to_numpy()].merge(incidents, on="incident_id", how="left")
    return LabelledSet(sub["narrative"].tolist(), sub["call_type"].tolist(),
                       sub["closing_code"].tolist(), y[keep].to_numpy(bool), target, source,
                       read, excluded,
                       [c if isinstance(c, str) and c else None for c in cls[keep]])


__all__ = ["LABEL_COLUMNS", "MIN_LABELS", "MIN_PER_SIDE", "LabelledSet", "from_decisions",
           "from_frame", "read_csv"]

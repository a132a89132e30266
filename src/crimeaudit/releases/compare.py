"""Two releases of the same crimes, compared crime by crime over the months both cover.

A :class:`Release` is one publication of a force's crimes: one row per crime (``crime_id``,
``month``, the published crime ``type`` and ``outcome`` text, or the codes where the store
has no text), plus what the store could not hold: the extra copies of a Crime ID repeated
within a month, and the crime rows the ingest quarantined. :func:`compare_releases` matches
the two on ``crime_id`` and counts, over the shared months, crimes **matched**, **vanished**
(in the earlier release only), **new** (in the later release only), and among the matched
ones **type**, **outcome** and **period** (month) changes, with the table of transitions
(published text before -> after, count). Every count is reported, zeros included.

**Repeated Crime IDs.** data.police.uk files repeat some Crime IDs within a month (241 ids
in each City of London release, 2017-12 to 2020-11). The ingest keeps every copy (the later
ones as ``<id>~copy2``...), and each release is compared on the *first copy in file order*
of each id, the extra copies counted, not compared. Why first copy
and not the multiset of copies: the copies of one id never differ in crime type (0 of 241 in
either City release), so matched, vanished, new and type changes do not depend on the
choice; they do differ in outcome, so the outcome comparison of a repeated id rests on the
copies keeping their order between releases (the statement gives the outcome changes among
repeated ids, to bound it).

>>> import pandas as pd
>>> old = release_from_frame(pd.DataFrame({
...     "crime_id": ["a", "b", "c", "c"], "month": ["2020-01"] * 4,
...     "type": ["Burglary", "Drugs", "Robbery", "Robbery"],
...     "outcome": ["Under investigation", None, "Court result unavailable", "x"]}), "old")
>>> new = release_from_frame(pd.DataFrame({
...     "crime_id": ["a", "c", "d"], "month": ["2020-01", "2020-01", "2020-01"],
...     "type": ["Burglary", "Robbery", "Drugs"],
...     "outcome": ["Investigation complete; no suspect identified",
...                 "Court result unavailable", None]}), "new")
>>> r = compare_releases(old, new)
>>> {k: r.counts[k] for k in COUNTS}
{'matched': 2, 'vanished': 1, 'new': 1, 'type_changes': 0, 'outcome_changes': 1, \
'period_changes': 0}
>>> r.transitions["outcome"][0]
{'from': 'Under investigation', 'to': 'Investigation complete; no suspect identified', \
'count': 1}
>>> r.repeated_ids["old"]
{'ids': 1, 'extra_copies': 1, 'outcome_changes_among_them': 0}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: The counts every comparison reports, in this order (zeros included).
COUNTS = ("matched", "vanished", "new", "type_changes", "outcome_changes", "period_changes")
#: What no published text looks like in a release (outcome not yet given, for instance).
NONE = "(none)"
HANDLING = ("each Crime ID repeated within a month is compared on its first copy in file order; "
            "the other copies (stored as <id>~copy2, ~copy3...) are counted here, not compared")


@dataclass
class Release:
    """One release: its crimes (one row each) and what the store could not hold.

    ``crimes`` has ``crime_id``, ``month`` (``YYYY-MM``), ``type`` and ``outcome`` (text;
    :data:`NONE` where empty). ``type_basis``/``outcome_basis`` say whether they are the
    published text or codes. ``repeated`` has ``month``, ``crime_id``, ``extra_copies`` and
    ``outcomes`` (the outcome text of the extra copies, ``;``-joined, where known);
    ``quarantined`` has ``month`` (or ``None``), ``reason``, ``n``: crime rows not loaded.
    """

    label: str
    crimes: pd.DataFrame
    type_basis: str = "published text"
    outcome_basis: str = "published text"
    repeated: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"month": [], "crime_id": [], "extra_copies": []}))
    quarantined: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"month": [], "reason": [], "n": []}))
    in_other_months: int = 0

    @property
    def months(self) -> set[str]:
        return set(self.crimes["month"].dropna())


def month_of(values: pd.Series) -> pd.Series:
    """``YYYY-MM`` from dates, datetimes, periods or text (``2020-01``, ``2020-01-01``).

    >>> month_of(pd.Series(["2020-01", "2020-02-01 00:00:00"])).tolist()
    ['2020-01', '2020-02']
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m")
    return values.astype("string").str.slice(0, 7).astype(object)


def _text(values: pd.Series) -> pd.Series:
    out = values.astype(object).where(values.notna(), NONE)
    return out.map(lambda v: str(v).strip() or NONE)


def release_from_frame(frame: pd.DataFrame, label: str, *, type_basis: str = "published text",
                       outcome_basis: str = "published text") -> Release:
    """A release from a frame of rows in file order (``crime_id``, ``month``, ``type``,
    ``outcome``); a Crime ID repeated within a month keeps its first row, the others are
    counted in ``repeated``. Rows without a Crime ID are not crimes and are dropped."""
    f = frame.dropna(subset=["crime_id"]).copy()
    f["month"] = month_of(f["month"])
    f["type"] = _text(f["type"]) if "type" in f else NONE
    f["outcome"] = _text(f["outcome"]) if "outcome" in f else NONE
    dup = f.duplicated(["month", "crime_id"], keep="first")
    extra = f[dup]
    repeated = (extra.groupby(["month", "crime_id"], sort=False)
                .agg(extra_copies=("crime_id", "size"),
                     outcomes=("outcome", lambda s: ";".join(s)))
                .reset_index())
    crimes = f[~dup][["crime_id", "month", "type", "outcome"]]
    # An id in two months of one release (not seen in real files): its first month is kept
    # and the others counted, so that each crime is compared once.
    again = crimes.duplicated("crime_id", keep="first")
    release = Release(label, crimes[~again].reset_index(drop=True), type_basis,
                      outcome_basis, repeated)
    release.in_other_months = int(again.sum())
    return release


@dataclass
class ReleaseComparison:
    """What changed between two releases over their shared months (see the module notes).

    ``crimes`` has one row per crime compared: ``crime_id``, ``status`` (matched, vanished,
    new), ``month_old``/``month_new``, ``type_old``/``type_new``, ``outcome_old``/
    ``outcome_new`` and the flags ``changed_type``, ``changed_outcome``, ``changed_period``.
    """

    old: Release
    new: Release
    shared_months: list[str]
    crimes: pd.DataFrame
    counts: dict[str, int]
    transitions: dict[str, list[dict[str, Any]]]
    repeated_ids: dict[str, dict[str, int]]
    statement: str

    def by_month(self) -> list[dict[str, Any]]:
        """Per shared month: crimes in each release and each count (zeros included)."""
        c = self.crimes
        rows = []
        for m in self.shared_months:
            o = c[c["month_old"] == m]
            n = c[c["month_new"] == m]
            rows.append({
                "month": m, "old_crimes": int(len(o)), "new_crimes": int(len(n)),
                "matched": int((o["status"] == "matched").sum()),
                "vanished": int((o["status"] == "vanished").sum()),
                "new": int((n["status"] == "new").sum()),
                "type_changes": int(o["changed_type"].sum()),
                "outcome_changes": int(o["changed_outcome"].sum()),
                "period_changes": int(o["changed_period"].sum()),
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: counts, transitions, repeated ids, what was compared."""
        def quarantined(r: Release) -> dict[str, int]:
            q = r.quarantined
            q = q[q["month"].isin(self.shared_months) | q["month"].isna()]
            return {str(k): int(v) for k, v in q.groupby("reason")["n"].sum().items()}

        return {
            "releases": {"old": self.old.label, "new": self.new.label},
            "shared_months": {"first": self.shared_months[0] if self.shared_months else None,
                              "last": self.shared_months[-1] if self.shared_months else None,
                              "n": len(self.shared_months)},
            "old_crimes": int(self.counts["old_crimes"]),
            "new_crimes": int(self.counts["new_crimes"]),
            **{k: int(self.counts[k]) for k in COUNTS},
            "moved_into_shared_months": int(self.counts["moved_into_shared_months"]),
            "compared_on": {"type": self.old.type_basis if self.old.type_basis ==
                            self.new.type_basis else
                            f"{self.old.type_basis} (old), {self.new.type_basis} (new)",
                            "outcome": self.old.outcome_basis if self.old.outcome_basis ==
                            self.new.outcome_basis else
                            f"{self.old.outcome_basis} (old), {self.new.outcome_basis} (new)"},
            "repeated_ids": self.repeated_ids,
            "repeated_ids_handling": HANDLING,
            "not_compared_quarantined": {"old": quarantined(self.old),
                                         "new": quarantined(self.new)},
            "statement": self.statement,
            "transitions": self.transitions,
            "by_month": self.by_month(),
        }


def _transitions(rows: pd.DataFrame, a: str, b: str) -> list[dict[str, Any]]:
    if rows.empty:
        return []
    t = rows.groupby([a, b]).size().reset_index(name="count")
    t = t.sort_values(["count", a, b], ascending=[False, True, True])
    return [{"from": str(r[a]), "to": str(r[b]), "count": int(r["count"])}
            for _, r in t.iterrows()]


def _repeated(r: Release, shared: list[str], matched_new: pd.DataFrame | None) -> dict[str, int]:
    rep = r.repeated[r.repeated["month"].isin(shared)]
    out = {"ids": int(rep["crime_id"].nunique()), "extra_copies": int(rep["extra_copies"].sum())}
    if matched_new is not None:
        ids = set(rep["crime_id"])
        out["outcome_changes_among_them"] = int(
            matched_new[matched_new["crime_id"].isin(ids)]["changed_outcome"].sum())
    return out


def compare_releases(old: Release, new: Release) -> ReleaseComparison:
    """Match ``old`` and ``new`` on ``crime_id`` over the months both releases cover.

    Matched: a crime of the earlier release in a shared month that the later release also
    has (in any month: a different month is a period change). Vanished: only in the earlier
    release. New: a crime of the later release in a shared month that the earlier release
    never had. ``moved_into_shared_months`` counts crimes of the later release in a shared
    month that the earlier release had outside them (so that ``new_crimes = matched -
    period changes out of the shared months + moved in + new``).
    """
    shared = sorted(old.months & new.months)
    o_all = old.crimes.set_index("crime_id")
    n_all = new.crimes.set_index("crime_id")
    o = old.crimes[old.crimes["month"].isin(shared)]
    n = new.crimes[new.crimes["month"].isin(shared)]
    right = n_all.reindex(o["crime_id"])
    found = right["month"].notna().to_numpy()
    base = pd.DataFrame({
        "crime_id": o["crime_id"].to_numpy(),
        "status": ["matched" if x else "vanished" for x in found],
        "month_old": o["month"].to_numpy(), "month_new": right["month"].to_numpy(),
        "type_old": o["type"].to_numpy(), "type_new": right["type"].to_numpy(),
        "outcome_old": o["outcome"].to_numpy(), "outcome_new": right["outcome"].to_numpy(),
    })
    base["changed_type"] = found & (base["type_old"] != base["type_new"]).to_numpy()
    base["changed_outcome"] = found & (base["outcome_old"] != base["outcome_new"]).to_numpy()
    base["changed_period"] = found & (base["month_old"] != base["month_new"]).to_numpy()
    in_old = n["crime_id"].isin(o_all.index).to_numpy()
    appeared = n[~in_old]
    fresh = pd.DataFrame({
        "crime_id": appeared["crime_id"].to_numpy(), "status": "new",
        "month_old": None, "month_new": appeared["month"].to_numpy(), "type_old": None,
        "type_new": appeared["type"].to_numpy(), "outcome_old": None,
        "outcome_new": appeared["outcome"].to_numpy(),
        "changed_type": False, "changed_outcome": False, "changed_period": False,
    })
    moved_in = n[in_old & ~n["crime_id"].isin(set(o["crime_id"])).to_numpy()]
    crimes = pd.concat([base, fresh], ignore_index=True) if len(fresh) else base
    matched = base[base["status"] == "matched"]
    counts = {
        "old_crimes": len(o), "new_crimes": len(n),
        "matched": len(matched), "vanished": int((base["status"] == "vanished").sum()),
        "new": len(fresh), "type_changes": int(base["changed_type"].sum()),
        "outcome_changes": int(base["changed_outcome"].sum()),
        "period_changes": int(base["changed_period"].sum()),
        "moved_into_shared_months": len(moved_in),
    }
    transitions = {
        "type": _transitions(matched[matched["changed_type"]], "type_old", "type_new"),
        "outcome": _transitions(matched[matched["changed_outcome"]], "outcome_old",
                                "outcome_new"),
        "period": _transitions(matched[matched["changed_period"]], "month_old", "month_new"),
        "vanished_by_type": [{"type": k, "count": int(v)} for k, v in
                             base[base["status"] == "vanished"]["type_old"]
                             .value_counts().sort_index().items()],
        "new_by_type": [{"type": k, "count": int(v)} for k, v in
                        fresh["type_new"].value_counts().sort_index().items()],
    }
    repeated = {"old": _repeated(old, shared, matched),
                "new": _repeated(new, shared, None)}
    statement = (f"Crime IDs repeated within a month: {repeated['old']['ids']:,} in "
                 f"{old.label} ({repeated['old']['extra_copies']:,} extra copies), "
                 f"{repeated['new']['ids']:,} in {new.label} "
                 f"({repeated['new']['extra_copies']:,}); {HANDLING}. "
                 f"{repeated['old']['outcome_changes_among_them']:,} of the outcome changes "
                 "are of repeated ids, whose copies differ in outcome.")
    for r in (old, new):
        if r.in_other_months:
            statement += (f" {r.in_other_months:,} Crime IDs of {r.label} appear in more than "
                          "one month: each is compared in its first month.")
    return ReleaseComparison(old, new, shared, crimes, counts, transitions, repeated,
                             statement)


__all__ = ["COUNTS", "NONE", "Release", "ReleaseComparison", "compare_releases", "month_of",
           "release_from_frame"]

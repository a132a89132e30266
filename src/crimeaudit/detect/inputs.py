"""What the detectors read: summaries computed in the engine, and only the rows a test needs.

A million-incident force holds hundreds of thousands of crime records; the detectors need
far less of them: daily counts of cancellations, downgrades and late recordings per offence
and division, crime counts per offence, division and officer, the crimes reported in the
last days before a month boundary, the property values near a threshold. :class:`DetectInput`
keeps the canonical tables as Ibis expressions (a project's store, or ``ibis.memtable`` over
pandas or Arrow for tests and benchmarks: one code path), asks the engine for each summary the
first time a detector needs it and keeps the small result. Offence codes are mapped to strands
and seriousness ranks from the project's code lists.

Aggregate ``counts`` (public data, already one row per area, offence and period) and a
previous release's crimes (compared crime by crime) are small and held as pandas frames.

>>> import pandas as pd
>>> crimes = pd.DataFrame({"crime_id": ["a", "b"], "offence_code": ["8N", "19C"],
...                        "recorded_at": pd.to_datetime(["2020-01-01", "2020-01-02"]),
...                        "status": ["recorded", "cancelled"], "division": ["N", "S"]})
>>> data = DetectInput.from_frames(crimes=crimes)
>>> data.has("crimes"), data.has("cancellations"), data.has("counts")
(True, True, False)
>>> data.crime_mix()[["strand", "division", "cancelled", "n"]].to_dict("records")[0]
{'strand': 'violence', 'division': 'N', 'cancelled': False, 'n': 1}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis import _

from crimeaudit.detect.targets import Targets
from crimeaudit.model.codes import CodeLists, load_code_lists

CRIME_COLUMNS = (
    "crime_id", "incident_id", "reported_at", "recorded_at", "offence_code", "status",
    "cancellation_reason", "cancelled_at", "outcome", "property_value", "division", "officer",
    "victim", "location",
)
#: The incidents column with the published clearance text, and the one with the type a call
#: was closed as (calls-for-service data; used where an ingest profile loads them).
CLOSING_TEXT = "source_closing_description"
FINAL_TYPE = "final_call_type"
INCIDENT_COLUMNS = ("incident_id", "reported_at", "call_type", "closing_code", "division",
                    CLOSING_TEXT, FINAL_TYPE)
CHANGE_COLUMNS = ("crime_id", "changed_at", "from_code", "to_code", "changed_by")
COUNT_COLUMNS = (
    "source", "area", "offence", "offence_group", "period_start", "period_end", "period_type",
    "count", "adjustment",
)
#: The columns of a release compared crime by crime (test 8): the published text where the
#: ingest kept it, else the codes.
RELEASE_COLUMNS = ("crime_id", "recorded_at", "offence_code", "source_offence_description",
                   "outcome", "source_outcome_description", "source")
_TIMESTAMPS = ("reported_at", "recorded_at", "cancelled_at", "changed_at")

#: The inputs a detector can need (:attr:`Detector.needs`), in the words of its skip reason.
INPUTS: dict[str, str] = {
    "crimes": "crime records",
    "reported_times": "crimes with reported_at and recorded_at",
    "property_values": "crimes with property values",
    "cancellations": "crime records with cancellations",
    "counts": "aggregate counts (monthly, quarterly or rolling 12-month)",
    "monthly_counts": "monthly counts",
    "incidents": "incidents",
    "previous_release": "a previous release (--previous-release)",
    "dispositions": ("calls for service with their clearance (incidents without crime "
                     "records), or incident reports with undated resolutions"),
}


class PropertyValues(NamedTuple):
    """The property values of one offence near a threshold, and where they sit in all of them.

    ``near`` holds the values in ``[low, high)`` in ascending order; ``below`` counts the values
    under ``low`` and ``n`` all values, so a bootstrap over *all* values sorted ascending can be
    drawn without fetching the values far from the threshold.
    """

    n: int
    below: int
    near: np.ndarray


def _table(data: Any, columns: tuple[str, ...]) -> ir.Table | None:
    """The wanted columns (those present) as an Ibis table, or ``None`` when empty or absent.

    pandas and Arrow data become ``ibis.memtable``; an engine's table stays in the engine.
    """
    if data is None:
        return None
    if isinstance(data, pd.DataFrame):
        df = data[[c for c in columns if c in data.columns]].copy()
        for col in set(_TIMESTAMPS) & set(df.columns):
            df[col] = pd.to_datetime(df[col])
        if df.empty:
            return None
        t = ibis.memtable(df)
    elif isinstance(data, pa.Table):
        if data.num_rows == 0:
            return None
        t = ibis.memtable(data.select([c for c in columns if c in data.column_names]))
    else:
        t = data.select([c for c in columns if c in data.columns])
        if not int(t.count().execute()):
            return None
    casts = {}
    for name, dtype in t.schema().items():
        if dtype.is_null():  # an all-missing pandas column: give it its canonical type
            casts[name] = t[name].cast("float64" if name == "property_value" else
                                       "timestamp" if name in _TIMESTAMPS else "string")
        elif name in _TIMESTAMPS and dtype.is_string():
            casts[name] = t[name].cast("timestamp")
    return t.mutate(**casts) if casts else t


def to_frame(data: Any, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """A pandas frame of the wanted columns (those present) from Ibis, Arrow or pandas data.

    For tables that are small by nature (aggregate ``counts``, a release compared crime by
    crime); full-size tables stay in the engine (:class:`DetectInput`).
    """
    if data is None:
        return None
    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, pa.Table):
        df = data.select([c for c in columns if c in data.column_names]).to_pandas()
    else:  # an Ibis table expression: select first, so only needed columns leave the engine
        df = data.select([c for c in columns if c in data.columns]).to_pandas()
    df = df[[c for c in columns if c in df.columns]].copy()
    return df if len(df) else None


def _column(t: ir.Table, name: str, dtype: str = "string") -> ir.Value:
    """A column, or a typed missing value where the table lacks it (optional columns)."""
    return t[name] if name in t.columns else ibis.null(dtype)


@dataclass(eq=False)
class DetectInput:
    """The canonical tables a detection run reads, plus code lists, targets and settings.

    ``crimes``, ``incidents`` and ``changes`` (``classification_changes``) are Ibis tables;
    ``counts`` and ``previous_crimes`` small pandas frames. Build with :meth:`from_frames`.
    Summaries are computed on first use and kept; the tables' engine must stay open until
    the run ends (``detect_project`` runs inside the open project).
    """

    crimes: ir.Table | None = None
    incidents: ir.Table | None = None
    changes: ir.Table | None = None
    counts: pd.DataFrame | None = None
    previous_crimes: pd.DataFrame | None = None
    codes: CodeLists = field(default_factory=load_code_lists)
    #: (earlier, later) :class:`crimeaudit.releases.Release` read from two projects, with
    #: what their stores could not hold (repeated ids, quarantined crimes); else built from
    #: ``previous_crimes`` and ``crimes``.
    releases: tuple[Any, Any] | None = None
    targets: Targets = field(default_factory=Targets)
    level: float = 0.95
    timeliness_hours: float = 24.0
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_frames(
        cls,
        crimes: Any = None,
        incidents: Any = None,
        changes: Any = None,
        counts: Any = None,
        previous_crimes: Any = None,
        **options: Any,
    ) -> DetectInput:
        """Build from any mix of Ibis tables, Arrow tables and pandas frames.

        ``options`` are the other fields: ``codes``, ``targets``, ``level``,
        ``timeliness_hours``, ``releases``.
        """
        data = cls(
            crimes=_table(crimes, CRIME_COLUMNS),
            incidents=_table(incidents, INCIDENT_COLUMNS),
            changes=_table(changes, CHANGE_COLUMNS),
            counts=_counts_frame(to_frame(counts, COUNT_COLUMNS)),
            previous_crimes=release_frame(previous_crimes),
            **options,
        )
        return data

    # -- what is there --------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """Is input ``name`` (a key of :data:`INPUTS`) present with rows?"""
        if name == "crimes":
            return self.crimes is not None
        if name == "reported_times":
            return self.has_records and self.facts["n_reported"] > 0
        if name == "property_values":
            return self.has_records and self.facts["n_values"] > 0
        if name == "cancellations":
            return self.has_records and self.facts["n_cancelled"] > 0
        if name == "counts":
            return self.counts is not None
        if name == "monthly_counts":
            return self.counts is not None and bool((self.counts["period_type"] == "month").any())
        if name == "incidents":
            return self.incidents is not None
        if name == "dispositions":
            return self.disposition_kind() is not None
        if name == "previous_release":
            return self.previous_crimes is not None or self.releases is not None
        raise KeyError(f"unknown detect input {name!r} (inputs: {', '.join(INPUTS)})")

    @property
    def has_records(self) -> bool:
        return self.crimes is not None

    def crime_has(self, column: str) -> bool:
        return self.crimes is not None and column in self.crimes.columns

    def change_has(self, column: str) -> bool:
        return self.changes is not None and column in self.changes.columns

    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def facts(self) -> dict[str, Any]:
        """Crime counts and the recording span, from one engine query.

        ``n_crimes``, ``n_reported`` (with ``reported_at``), ``n_values`` (with a property
        value), ``n_cancelled``, ``first_recorded``, ``last_recorded``.
        """
        def compute():
            c = self.crimes
            if c is None:
                return {"n_crimes": 0, "n_reported": 0, "n_values": 0, "n_cancelled": 0,
                        "first_recorded": None, "last_recorded": None}
            zero = ibis.literal(0)
            row = c.aggregate(
                n_crimes=c.count(),
                n_reported=c.reported_at.count() if "reported_at" in c.columns else zero,
                n_values=c.property_value.count() if "property_value" in c.columns else zero,
                n_cancelled=((c.status == "cancelled").fill_null(False).sum()
                             if "status" in c.columns else zero),
                first_recorded=_column(c, "recorded_at", "timestamp").min(),
                last_recorded=_column(c, "recorded_at", "timestamp").max(),
            ).to_pandas().iloc[0]
            out = {k: int(row[k]) for k in ("n_crimes", "n_reported", "n_values", "n_cancelled")}
            for k in ("first_recorded", "last_recorded"):
                out[k] = None if pd.isna(row[k]) else pd.Timestamp(row[k])
            return out
        return self._cached("facts", compute)

    # -- code lists -----------------------------------------------------------------------

    def strand_of(self, codes: pd.Series) -> pd.Series:
        """Each offence code's strand (``unknown`` for codes not in the code lists)."""
        strand = {k: o.strand for k, o in self.codes.offences.items()}
        return codes.map(strand).fillna("unknown")

    def strands_of(self, code_strand: str) -> list[str]:
        """A crime strand and its parents (``rape`` -> rape, sexual, all)."""
        return self.codes.ancestry(code_strand)

    def strand_members(self) -> dict[str, list[str]]:
        """Each strand and the most-specific strands it contains (for per-strand subsets)."""
        strands = list(self.codes.strand_parent)
        return {s: [t for t in strands if s in self.codes.ancestry(t)] for s in strands}

    def _rank(self, code: ir.StringValue) -> ir.Value:
        ranks = {k: o.seriousness_rank for k, o in self.codes.offences.items()}
        if not ranks:
            return ibis.null("int64")
        return code.substitute(ranks, else_=ibis.null("int64"))

    def _direction(self, ch: ir.Table) -> ir.StringValue:
        """``down``, ``up``, ``same`` or ``unknown`` (a code not in the lists), as
        :meth:`CodeLists.is_downgrade` decides, in the engine."""
        fr, to = self._rank(ch.from_code), self._rank(ch.to_code)
        return ibis.cases((fr.isnull() | to.isnull(), "unknown"), (to < fr, "down"),
                          (to > fr, "up"), else_="same")

    def _crime_divisions(self) -> ir.Table:
        c = self.crimes
        return c.select(c.crime_id, division=_column(c, "division"))

    # -- summaries ------------------------------------------------------------------------

    def crime_mix(self) -> pd.DataFrame:
        """Crimes per offence code, division, officer and cancellation (with its reason).

        Columns ``offence_code``, ``strand``, ``division``, ``officer``, ``cancelled``,
        ``reason`` (only for cancelled crimes) and ``n``: every rate the cancellation and pair
        tests compare is a sum over these rows.
        """
        def compute():
            c = self.crimes
            cancelled = (_column(c, "status") == "cancelled").fill_null(False)
            x = c.select(
                offence_code=c.offence_code, division=_column(c, "division"),
                officer=_column(c, "officer"), cancelled=cancelled,
                reason=ibis.ifelse(cancelled, _column(c, "cancellation_reason"),
                                   ibis.null("string")))
            df = x.group_by(list(x.columns)).agg(n=x.count()).to_pandas()
            df["n"] = df["n"].astype("int64")
            df["cancelled"] = df["cancelled"].astype(bool)
            df["strand"] = self.strand_of(df["offence_code"])
            return df
        return self._cached("crime_mix", compute)

    def daily_events(self) -> dict[str, pd.DataFrame]:
        """Daily events per measure: columns ``date``, ``strand``, ``division``, ``n``.

        ``cancellations`` (by cancellation day, strand of the crime), ``downgrades`` (by change
        day, strand of the class changed from, division of the crime) and ``late_recording``
        (by report day, with ``late``: recorded more than ``timeliness_hours`` after the
        report; the rows with ``late`` false are the other reports, the exposure).
        """
        def compute():
            out: dict[str, pd.DataFrame] = {}
            c = self.crimes
            if c is None:
                return out
            keys = ["date", "strand", "division"]
            if "cancelled_at" in c.columns and "status" in c.columns:
                can = c.filter((c.status == "cancelled") & c.cancelled_at.notnull())
                out["cancellations"] = self._by_day(
                    can.select(date=can.cancelled_at.truncate("D"), code=can.offence_code,
                               division=_column(can, "division")), keys)
            if self.changes is not None:
                ch = self.changes
                down = ch.filter(self._direction(ch) == "down")
                down = down.left_join(self._crime_divisions(), "crime_id")
                out["downgrades"] = self._by_day(
                    down.select(date=down.changed_at.truncate("D"), code=down.from_code,
                                division=down.division), keys)
            if "reported_at" in c.columns and self.facts["n_reported"] > 0:
                r = c.filter(c.reported_at.notnull())
                seconds = self.timeliness_hours * 3600
                limit = (ibis.interval(seconds=int(seconds)) if float(seconds).is_integer()
                         else ibis.interval(microseconds=round(seconds * 1_000_000)))
                late = (r.recorded_at > r.reported_at + limit).fill_null(False)
                df = self._by_day(
                    r.select(date=r.reported_at.truncate("D"), code=r.offence_code,
                             division=_column(r, "division"), late=late), keys + ["late"])
                df["late"] = df["late"].astype(bool)
                out["late_recording"] = df
            return out
        return self._cached(("daily_events", self.timeliness_hours), compute)

    def _by_day(self, x: ir.Table, keys: list[str]) -> pd.DataFrame:
        """Count rows per ``code`` and the other keys in the engine; codes become strands."""
        by = ["code"] + [k for k in keys if k != "strand"]
        df = x.group_by(by).agg(n=x.count()).to_pandas()
        df["strand"] = self.strand_of(df["code"])
        df = df.groupby(keys, dropna=False, as_index=False)["n"].sum()
        df["n"] = df["n"].astype("int64")
        return df

    def reclassified_crimes(self) -> pd.DataFrame:
        """Crimes by the strand of their *first* class, division and whether ever downgraded.

        Columns ``strand``, ``division``, ``down``, ``n``: the denominators and events of the
        downgrade-rate funnels.
        """
        def compute():
            c, ch = self.crimes, self.changes
            # The first change of each crime (ties in time broken by code, for determinism).
            order = ibis.row_number().over(group_by=ch.crime_id,
                                           order_by=[ch.changed_at, ch.from_code])
            first = (ch.mutate(_order=order).filter(_._order == 0)
                     .select("crime_id", first_code=_.from_code, changed=ibis.literal(True)))
            down = (ch.filter(self._direction(ch) == "down").select("crime_id").distinct()
                    .mutate(down=ibis.literal(True)))
            x = (c.select("crime_id", "offence_code", division=_column(c, "division"))
                 .left_join(first, "crime_id").left_join(down, "crime_id"))
            x = x.select(code=ibis.ifelse(x.changed.notnull(), x.first_code, x.offence_code),
                         division=x.division, down=x.down.fill_null(False))
            df = x.group_by(["code", "division", "down"]).agg(n=x.count()).to_pandas()
            df["strand"] = self.strand_of(df["code"])
            df["down"] = df["down"].astype(bool)
            df = df.groupby(["strand", "division", "down"], dropna=False, as_index=False)["n"].sum()
            df["n"] = df["n"].astype("int64")
            return df
        return self._cached("reclassified_crimes", compute)

    def reclassifications(self) -> pd.DataFrame:
        """Reclassifications with a direction (down or up) by division, officer and quarter.

        Columns ``division`` (of the crime), ``changed_by``, ``quarter`` (``2013Q2``),
        ``is_down``, ``n``: the down-versus-up asymmetry funnels.
        """
        def compute():
            ch = self.changes
            known = ch.mutate(direction=self._direction(ch)).filter(
                _.direction.isin(["down", "up"]))
            known = known.left_join(self._crime_divisions(), "crime_id")
            x = known.select(division=known.division,
                             changed_by=_column(known, "changed_by"),
                             quarter=known.changed_at.truncate("Q"),
                             is_down=known.direction == "down")
            df = x.group_by(list(x.columns)).agg(n=x.count()).to_pandas()
            df["quarter"] = pd.to_datetime(df["quarter"]).dt.to_period("Q").astype(str)
            df["is_down"] = df["is_down"].astype(bool)
            df["n"] = df["n"].astype("int64")
            return df
        return self._cached("reclassifications", compute)

    def boundary_reports(self, window_days: int) -> pd.DataFrame:
        """Crimes reported within about ``window_days`` before a month start or the 15th.

        Row level (deferral's trials need each report's time and its recording time), but only
        the rows near a boundary and four columns: ``reported_at``, ``recorded_at``,
        ``strand``, ``division``. The filter keeps a day's margin; the exact window is applied
        by :func:`crimeaudit.detect.deferral.boundary_trials`.
        """
        def compute():
            c = self.crimes
            rep = c.reported_at
            keep = rep.notnull()
            if window_days < 13:
                next_month = rep.truncate("M") + ibis.interval(months=1)
                near_end = rep.truncate("D") + ibis.interval(days=window_days + 1) >= next_month
                day = rep.day()
                near_mid = (day >= 14 - window_days) & (day <= 14)
                keep = keep & (near_end | near_mid)
            x = c.filter(keep).select("reported_at", "recorded_at", "offence_code",
                                      division=_column(c, "division"))
            df = x.to_pandas()
            df["strand"] = self.strand_of(df["offence_code"])
            return df.drop(columns="offence_code")
        return self._cached(("boundary_reports", window_days), compute)

    def property_values(self, code: str, low: float, high: float) -> PropertyValues:
        """Property values of offence ``code``: all counted, only those in [low, high) fetched."""
        def compute():
            c = self.crimes
            v = c.property_value
            sel = c.filter((c.offence_code == code) & v.notnull() & ~v.isnan())
            row = sel.aggregate(n=sel.count(),
                                below=(sel.property_value < low).sum()).to_pandas().iloc[0]
            n = int(row["n"])
            below = 0 if pd.isna(row["below"]) else int(row["below"])
            near = (sel.filter((sel.property_value >= low) & (sel.property_value < high))
                    .select("property_value").order_by("property_value").to_pandas())
            return PropertyValues(n, below, near["property_value"].to_numpy(float))
        return self._cached(("property_values", code, low, high), compute)

    def monthly_crimes(self) -> pd.DataFrame:
        """Crimes per recording month and strand: ``month`` (a monthly Period), ``strand``,
        ``n``."""
        def compute():
            c = self.crimes
            x = c.select(month=c.recorded_at.truncate("M"), code=c.offence_code)
            df = x.group_by(["month", "code"]).agg(n=x.count()).to_pandas()
            df["strand"] = self.strand_of(df["code"])
            df["month"] = pd.to_datetime(df["month"]).dt.to_period("M")
            df = df.groupby(["month", "strand"], as_index=False)["n"].sum()
            df["n"] = df["n"].astype("int64")
            return df
        return self._cached("monthly_crimes", compute)

    def monthly_incidents(self) -> pd.DataFrame:
        """Incidents per reporting month and call type: ``month``, ``call_type``, ``n``."""
        def compute():
            i = self.incidents
            x = i.select(month=i.reported_at.truncate("M"), call_type=_column(i, "call_type"))
            df = x.group_by(["month", "call_type"]).agg(n=x.count()).to_pandas()
            df["month"] = pd.to_datetime(df["month"]).dt.to_period("M")
            df["n"] = df["n"].astype("int64")
            return df
        return self._cached("monthly_incidents", compute)

    def disposition_kind(self) -> str | None:
        """``calls`` (incidents with a clearance, no crime records), ``reports`` (crime
        records whose cancellations have no date: incident reports with a resolution), or
        ``None``: the calls-for-service test does not apply."""
        def compute():
            if self.incidents is not None and self.crimes is None:
                cols = self.incidents.columns
                return "calls" if ("closing_code" in cols or CLOSING_TEXT in cols
                                   or FINAL_TYPE in cols) else None
            if self.crimes is not None and self.incidents is None and self.facts["n_cancelled"]:
                c = self.crimes
                if "cancelled_at" not in c.columns:
                    return "reports"
                dated = int(c.cancelled_at.count().execute())
                return "reports" if dated == 0 else None
            return None
        return self._cached("disposition_kind", compute)

    def call_dispositions(self) -> pd.DataFrame | None:
        """Calls (or reports) per day, division, initial and final type and clearance:
        ``date``, ``division``, ``initial``, ``final``, ``closing``, ``cancelled``, ``n``
        (``attrs["kind"]``: calls or reports), counted in the engine."""
        def compute():
            kind = self.disposition_kind()
            if kind == "calls":
                i = self.incidents
                closing = (i[CLOSING_TEXT].fill_null(_column(i, "closing_code"))
                           if CLOSING_TEXT in i.columns else _column(i, "closing_code"))
                x = i.select(date=i.reported_at.truncate("D"), division=_column(i, "division"),
                             initial=_column(i, "call_type"), final=_column(i, FINAL_TYPE),
                             closing=closing, cancelled=ibis.literal(False))
            elif kind == "reports":
                c = self.crimes
                when = (c.reported_at.fill_null(c.recorded_at) if "reported_at" in c.columns
                        else c.recorded_at)
                x = c.select(date=when.truncate("D"), division=_column(c, "division"),
                             initial=ibis.null("string"), final=ibis.null("string"),
                             closing=_column(c, "outcome"),
                             cancelled=(_column(c, "status") == "cancelled").fill_null(False))
            else:
                return None
            df = x.group_by(list(x.columns)).agg(n=x.count()).to_pandas()
            df["date"] = pd.to_datetime(df["date"])
            df["n"] = df["n"].astype("int64")
            df["cancelled"] = df["cancelled"].astype(bool)
            df.attrs["kind"] = kind
            return df
        return self._cached("call_dispositions", compute)

    def release_crimes(self) -> pd.DataFrame:
        """This release's crimes, crime by crime (only :data:`RELEASE_COLUMNS`)."""
        return self._cached("release_crimes", lambda: release_frame(self.crimes))


def release_frame(crimes: Any) -> pd.DataFrame | None:
    """A release's crimes for the crime-by-crime comparison (``recorded_at`` as datetimes)."""
    df = to_frame(crimes, RELEASE_COLUMNS)
    if df is not None:
        df["recorded_at"] = pd.to_datetime(df["recorded_at"])
    return df


def _counts_frame(k: pd.DataFrame | None) -> pd.DataFrame | None:
    if k is not None:
        k["period_start"] = pd.to_datetime(k["period_start"])
        k["period_end"] = pd.to_datetime(k["period_end"])
        k["count"] = k["count"].astype(float)
    return k

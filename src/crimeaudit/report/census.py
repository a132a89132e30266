"""Figures the report computes over every record, not a sample: census timeliness and the N100
check.

**Census timeliness.** Every crime record (including ones later cancelled) whose report time
is known: the crime's own ``reported_at``, else that of the incident it references. The delay
is ``recorded_at`` minus the report time; the share within the project's limit
(``timeliness_hours``) is a count over all of them, so it has no sampling error. Records
created before their report time are a data error and are counted apart. When the project has
an audit period, crimes reported in it count.

**N100 check.** A rape report is an incident whose call type the code lists put in the rape
strand, whose closing code is an N100 (:data:`N100_CLOSING_CODES`), or that the screen judged
most likely a rape (``screen_scores.predicted_offence`` in the rape strand). Closed without a
crime record: no crime record is linked to it (:func:`crimeaudit.linkage.linked_pairs`). They
are listed by a keyed pseudonym of the incident reference (the project's pseudonym key: the
force can find its records, a reader of the report cannot).

>>> delay_bands(24)  # doctest: +NORMALIZE_WHITESPACE
[(0.0, 24.0, 'within 24 hours'), (24.0, 72.0, '24 hours to 3 days'),
 (72.0, 168.0, '3 days to 7 days'), (168.0, 720.0, '7 days to 30 days'),
 (720.0, inf, 'over 30 days')]
"""

from __future__ import annotations

import math
import os
from typing import Any

import ibis

#: Closing codes a force uses for an N100 (a rape report recorded as not a crime, with reasons).
N100_CLOSING_CODES = ("N100",)
#: Rape reports without a crime record listed in the report (the counts cover all of them).
N100_LISTED = 200
#: A division's census share rests on fewer crimes than this: a caution is shown beside it.
FEW_CRIMES = 30

_EDGES = (72.0, 168.0, 720.0)


def _hours(h: float) -> str:
    return f"{h:g} hours" if h < 72 or h % 24 else f"{h / 24:g} days"


def delay_bands(limit: float) -> list[tuple[float, float, str]]:
    """The delay distribution's bands: within the limit, then to 3, 7 and 30 days."""
    edges = [0.0, float(limit)] + [e for e in _EDGES if e > limit] + [math.inf]
    bands = []
    for k, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        text = (f"within {_hours(hi)}" if k == 0 else
                f"over {_hours(lo)}" if hi == math.inf else f"{_hours(lo)} to {_hours(hi)}")
        bands.append((lo, hi, text))
    return bands


def _report_time(project) -> ibis.Table | None:
    """Crimes with their report time (own, else the referenced incident's) and division."""
    eng = project.engine
    if not eng.has_table("crimes"):
        return None
    c = eng.table("crimes")
    if eng.has_table("incidents"):
        i = eng.table("incidents").select(ref_id="incident_id", ref_at="reported_at",
                                          ref_division="division")
        c = c.left_join(i, c.incident_id == i.ref_id)
        rep = ibis.coalesce(c.reported_at, c.ref_at)
        div = ibis.coalesce(c.division, c.ref_division)
    else:
        rep, div = c.reported_at, c.division
    t = c.select(rep_at=rep, recorded_at=c.recorded_at,
                 division=div.fill_null("(no division)"))
    start, end = project.config.audit_period_start, project.config.audit_period_end
    if start is not None:
        t = t.filter(t.rep_at.isnull() | (t.rep_at.date() >= start))
    if end is not None:
        t = t.filter(t.rep_at.isnull() | (t.rep_at.date() <= end))
    return t


def census_timeliness(project) -> dict[str, Any] | None:
    """Share of every crime recorded within the limit, overall and by division, with the delay
    distribution (None when the store has no crime records)."""
    t = _report_time(project)
    if t is None:
        return None
    limit = float(project.config.timeliness_hours)
    hours = (t.recorded_at.epoch_seconds() - t.rep_at.epoch_seconds()) / 3600.0
    bands = delay_bands(limit)
    cases = [(hours.isnull(), "unknown"), (hours < 0, "before")]
    cases += [(hours <= hi, str(k)) for k, (_, hi, _) in enumerate(bands[:-1])]
    band = ibis.cases(*cases, else_=str(len(bands) - 1))
    t = t.mutate(band=band, hours=hours)
    df = project.engine.to_pandas(t.group_by(["division", "band"]).aggregate(n=t.count()))
    if df.empty:
        return None
    known = t.filter(t.hours.notnull() & (t.hours >= 0))
    q = project.engine.to_pandas(known.aggregate(
        median=known.hours.median(), p90=known.hours.quantile(0.9)))

    def summary(rows) -> dict[str, Any]:
        counts = {str(b): int(n) for b, n in zip(rows["band"], rows["n"], strict=True)}
        timed = sum(v for k, v in counts.items() if k not in ("unknown", "before"))
        within = counts.get("0", 0)
        dist = [{"band": text, "crimes": counts.get(str(k), 0),
                 "share": counts.get(str(k), 0) / timed if timed else None}
                for k, (_, _, text) in enumerate(bands)]
        warnings = []
        if 0 < timed < FEW_CRIMES:
            warnings.append(f"only {timed} crimes with both times: read the share as an "
                            "indication")
        return {"crimes": int(sum(counts.values())), "timed": timed, "within": within,
                "share": within / timed if timed else None,
                "recorded_before_report": counts.get("before", 0),
                "no_report_time": counts.get("unknown", 0), "distribution": dist,
                "warnings": warnings}

    overall = summary(df.groupby("band", as_index=False)["n"].sum())
    divisions = [dict(summary(g), division=str(d))
                 for d, g in df.groupby("division", sort=True)]
    med, p90 = (q.iloc[0]["median"], q.iloc[0]["p90"]) if not q.empty else (None, None)
    return {"limit_hours": limit, "method": "census: every crime record, no sampling",
            "period": {"start": _iso(project.config.audit_period_start),
                       "end": _iso(project.config.audit_period_end)},
            "overall": overall,
            "median_hours": None if med is None or med != med else float(med),
            "p90_hours": None if p90 is None or p90 != p90 else float(p90),
            "divisions": divisions if len(divisions) > 1 else []}


def _iso(d) -> str | None:
    return d.isoformat() if d else None


def _reference_key(project) -> bytes | None:
    """The project's pseudonym key if it is at hand (never created here)."""
    from crimeaudit.ingestion.pseudonym import KEY_ENV, KEY_FILE, KEY_FILE_ENV, project_key

    path = os.environ.get(KEY_FILE_ENV) or str(project.path / KEY_FILE)
    if os.environ.get(KEY_ENV) is None and not os.path.isfile(path):
        return None
    try:
        return project_key(project.path, project.config.pseudonym_key_fingerprint).key
    except Exception:  # a wrong key: list no references rather than misleading ones
        return None


def n100_check(project, listed: int = N100_LISTED) -> dict[str, Any] | None:
    """Rape reports, and those closed without a crime record (see the module notes); None
    when the store has no incidents."""
    from crimeaudit.linkage.pairs import linked_pairs

    eng = project.engine
    if not eng.has_table("incidents"):
        return None
    codes = project.codes
    rape_codes = codes.codes_in_strand("rape")
    rape_calls = [k for k, s in codes.call_type_strands.items() if s == "rape"]
    i = eng.table("incidents")
    by_call = i.call_type.isin(rape_calls) if rape_calls else ibis.literal(False)
    by_close = i.closing_code.upper().strip().isin(list(N100_CLOSING_CODES))
    cols = {"incident_id": i.incident_id, "reported_at": i.reported_at,
            "division": i.division, "closing_code": i.closing_code,
            "by_call": by_call.fill_null(False), "by_close": by_close.fill_null(False)}
    t = i.select(**cols)
    screened = eng.has_table("screen_scores")
    if screened:
        s = eng.table("screen_scores").select(sid="incident_id", predicted="predicted_offence",
                                              p_crime="p_crime")
        t = t.left_join(s, t.incident_id == s.sid).drop("sid")
        t = t.mutate(by_screen=t.predicted.isin(rape_codes).fill_null(False))
    else:
        t = t.mutate(by_screen=ibis.literal(False), p_crime=ibis.null().cast("float64"))
    start, end = project.config.audit_period_start, project.config.audit_period_end
    if start is not None:
        t = t.filter(t.reported_at.date() >= start)
    if end is not None:
        t = t.filter(t.reported_at.date() <= end)
    t = t.filter(t.by_call | t.by_close | t.by_screen)
    recorded_as_rape = ibis.literal(False)
    if eng.has_table("crimes"):
        pairs = linked_pairs(project)
        crimes = eng.table("crimes").select(cid="crime_id", offence_code="offence_code")
        pc = pairs.join(crimes, pairs.crime_id == crimes.cid)
        per = pc.group_by(pid="incident_id").aggregate(
            records=pc.count(), as_rape=pc.offence_code.isin(rape_codes).any())
        t = t.left_join(per, t.incident_id == per.pid).drop("pid")
        recorded = t.records.notnull()
        recorded_as_rape = t.as_rape.fill_null(False)
    else:
        recorded = ibis.literal(False)
    t = t.mutate(recorded=recorded, as_rape=recorded_as_rape)
    agg = t.aggregate(reports=t.count(), recorded=t.recorded.sum(),
                      as_rape=t.as_rape.sum(),
                      n100_closed=(~t.recorded & t.by_close).sum(),
                      unrecorded=(~t.recorded).sum())
    row = eng.to_pandas(agg).iloc[0]
    reports = int(row.reports)
    out = {"reports": reports, "recorded": int(row.recorded or 0),
           "recorded_as_rape": int(row.as_rape or 0),
           "without_record": int(row.unrecorded or 0),
           "without_record_n100": int(row.n100_closed or 0),
           "n100_codes": list(N100_CLOSING_CODES), "screened": screened,
           "identified_by": {"call type": rape_calls, "closing code": list(N100_CLOSING_CODES),
                             "screen": screened},
           "listed": [], "references": "none"}
    out["without_record_other"] = out["without_record"] - out["without_record_n100"]
    out["warnings"] = []
    if 0 < reports < FEW_CRIMES:
        out["warnings"].append(f"only {reports} rape reports found: counts, not a rate")
    if not screened and not rape_calls:
        out["warnings"].append(
            "no call type is in the rape strand and the incidents were not screened: only "
            "incidents closed with an N100 code can be found (run crimeaudit screen)")
    if out["without_record"] == 0:
        return out
    key = _reference_key(project)
    if key is None:
        out["references"] = ("not listed: the project's pseudonym key is not available "
                             "where the report was written")
        return out
    miss = t.filter(~t.recorded).order_by([t.reported_at, t.incident_id]).limit(listed)
    df = eng.to_pandas(miss.select("incident_id", "reported_at", "division", "closing_code",
                                   "by_call", "by_close", "by_screen", "p_crime"))
    from crimeaudit.ingestion.pseudonym import pseudonym

    out["references"] = "keyed pseudonym of the incident reference (project key)"
    for r in df.to_dict("records"):
        why = [w for w, f in (("call type", r["by_call"]), ("N100 closing code", r["by_close"]),
                              ("screen", r["by_screen"])) if f]
        p = r.get("p_crime")
        out["listed"].append({
            "reference": pseudonym(key, str(r["incident_id"])),
            "reported": str(r["reported_at"])[:10],
            "division": None if r["division"] is None else str(r["division"]),
            "closing_code": None if r["closing_code"] is None else str(r["closing_code"]),
            "found_by": ", ".join(why),
            "p_crime": None if p is None or p != p else round(float(p), 3)})
    return out


__all__ = ["N100_CLOSING_CODES", "census_timeliness", "delay_bands", "n100_check"]

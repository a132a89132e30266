"""Findings lists: candidate unrecorded crimes and candidate downgrades, each with its reason."""

from __future__ import annotations

import pandas as pd

from crimeaudit.screen.errors import ScreenError
from crimeaudit.screen.rules import load_rules
from crimeaudit.screen.scoring import SCORES_TABLE


def _linked_incidents(project):
    eng = project.engine
    if eng.has_table("links"):
        return eng.table("links").select("incident_id", "crime_id")
    c = eng.table("crimes")
    return c.filter(c.incident_id.notnull()).select("incident_id", "crime_id")


def _need_scores(project):
    if not project.engine.has_table(SCORES_TABLE):
        raise ScreenError("no screen scores yet: run crimeaudit screen DIR first")


def unrecorded_candidates(project, threshold: float = 0.5, limit: int | None = None,
                          rules=None) -> pd.DataFrame:
    """Incidents that likely disclosed a crime but have no linked crime record, most likely first.

    Columns: rank, incident_id, p_crime, predicted_offence, call_type, closing_code, reason.
    """
    _need_scores(project)
    eng = project.engine
    s = eng.table(SCORES_TABLE)
    linked = _linked_incidents(project)
    inc = eng.table("incidents").select("incident_id", "call_type", "closing_code", "narrative")
    q = (s.filter(s.p_crime >= threshold)
         .filter(~s.incident_id.isin(linked.incident_id))
         .join(inc, "incident_id")
         .order_by([s.p_crime.desc(), s.incident_id]))
    if limit:
        q = q.limit(limit)
    df = eng.to_pandas(q)
    book = load_rules(rules)
    df["reason"] = [
        _reason(book, r, f"P(crime)={r.p_crime:.2f}, likely {r.predicted_offence}; "
                         f"closed {r.closing_code}; no crime record linked")
        for r in df.itertuples()]
    df.insert(0, "rank", range(1, len(df) + 1))
    return df[["rank", "incident_id", "p_crime", "predicted_offence", "call_type",
                "closing_code", "reason"]]


def _reason(book, row, head: str) -> str:
    hits = [h for h in (row.rule_hits or "").split(";") if h]
    parts = [head] + [book.explain(row.narrative, h) for h in hits]
    return "; ".join(parts)


def downgrade_candidates(project, limit: int | None = None, rules=None) -> pd.DataFrame:
    """Recorded crimes whose incident narrative describes a more serious class than recorded.

    A rule with ``implies`` (weapon, injury, entry to a dwelling, force in a theft) whose
    ``family`` includes the recorded class's strand, and whose implied class is more serious,
    makes a candidate; ranked by the gap in seriousness, then by P(crime).
    """
    _need_scores(project)
    eng = project.engine
    codes = project.codes
    book = load_rules(rules)
    implying = [r for r in book.rules if r.implies]
    s = eng.table(SCORES_TABLE)
    links = _linked_incidents(project)
    c = eng.table("crimes")
    c = c.filter(c.status == "recorded").select("crime_id", "offence_code")
    inc = eng.table("incidents").select("incident_id", "narrative")
    q = (s.filter(s.rule_hits != "").join(links, "incident_id").join(c, "crime_id")
         .join(inc, "incident_id"))
    df = eng.to_pandas(q)
    rows = []
    for r in df.itertuples():
        hits = set((r.rule_hits or "").split(";"))
        try:
            rec = codes.offence(r.offence_code)
        except KeyError:
            continue
        best = None
        for rule in implying:
            if rule.id not in hits or rec.strand not in rule.family:
                continue
            implied = codes.offence(rule.implies)
            gap = implied.seriousness_rank - rec.seriousness_rank
            if gap > 0 and (best is None or gap > best[0]):
                best = (gap, rule, implied)
        if best:
            gap, rule, implied = best
            rows.append({
                "crime_id": r.crime_id, "incident_id": r.incident_id,
                "recorded_offence": r.offence_code, "suggested_offence": implied.code,
                "seriousness_gap": gap, "p_crime": r.p_crime,
                "reason": (f"recorded {rec.code} ({rec.description}) but the narrative says "
                           f"{book.explain(r.narrative, rule.id)}; suggests at least "
                           f"{implied.code} ({implied.description})"),
            })
    out = pd.DataFrame(rows, columns=["crime_id", "incident_id", "recorded_offence",
                                      "suggested_offence", "seriousness_gap", "p_crime",
                                      "reason"])
    out = out.sort_values(["seriousness_gap", "p_crime", "crime_id"],
                          ascending=[False, False, True]).reset_index(drop=True)
    if limit:
        out = out.head(limit)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out

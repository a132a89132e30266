"""Findings lists: candidate unrecorded crimes and candidate downgrades, each with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crimeaudit.linkage.pairs import linked_pairs
from crimeaudit.screening.errors import ScreenError
from crimeaudit.screening.rules import load_rules
from crimeaudit.screening.scoring import SCORES_TABLE
from crimeaudit.store.project import project_verb


def _linked_incidents(project):
    """Incident-crime pairs: the one definition of linked (references, and Splink's links)."""
    return linked_pairs(project).select("incident_id", "crime_id")


def _need_scores(project):
    if not project.engine.has_table(SCORES_TABLE):
        raise ScreenError("no screen scores yet: run crimeaudit screen run DIR first")


@project_verb
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


@project_verb
def downgrade_candidates(project, limit: int | None = None, rules=None) -> pd.DataFrame:
    """Recorded crimes whose incident narrative describes a more serious class than recorded.

    Two kinds of evidence, each shown in the reason:

    * a rule with ``implies`` (weapon, injury, entry to a dwelling, force in a theft) whose
      ``family`` includes the recorded class's strand, and whose implied class is more serious;
    * the screen model's most likely class for the narrative, when it is more serious than the
      recorded one (it catches what no rule names, e.g. a robbery recorded as a theft).

    Ranked by evidence (both agree, then the model alone, then a rule alone: the order of their
    precision on held-out simulated forces, see ``benchmarks/results/screen_quality.md``), then
    by the gap in seriousness, then by P(crime). Columns: rank, crime_id, incident_id,
    recorded_offence, suggested_offence, seriousness_gap, evidence, p_crime, reason.
    """
    _need_scores(project)
    eng = project.engine
    codes = project.codes
    book = load_rules(rules)
    s = eng.table(SCORES_TABLE)
    links = _linked_incidents(project)
    c = eng.table("crimes")
    c = c.filter(c.status == "recorded").select("crime_id", "offence_code")
    inc = eng.table("incidents").select("incident_id", "narrative")
    # Only rows with a rule hit or a class differing from the recorded one can be candidates:
    # filtering in the engine keeps the narratives of the other crimes out of memory.
    q = (s.join(links, "incident_id").join(c, "crime_id")
         .filter((s.rule_hits != "") | (s.predicted_offence != c.offence_code))
         .join(inc, "incident_id"))
    df = eng.to_pandas(q.select("crime_id", "incident_id", "offence_code", "predicted_offence",
                                "rule_hits", "p_crime", "narrative"))
    rank = {k: o.seriousness_rank for k, o in codes.offences.items()}
    strand = {k: o.strand for k, o in codes.offences.items()}
    df = df[df.offence_code.isin(rank)].reset_index(drop=True)
    rec_rank = df.offence_code.map(rank).to_numpy(float)
    rec_strand = df.offence_code.map(strand)
    # The strongest rule for each crime, rule by rule over all rows at once.
    rule_gap = np.zeros(len(df))
    rule_id = np.full(len(df), None, dtype=object)
    hits = ";" + df.rule_hits.fillna("") + ";"
    for rule in book.rules:
        if not rule.implies or rule.implies not in rank:
            continue
        gap = rank[rule.implies] - rec_rank
        ok = (hits.str.contains(f";{rule.id};", regex=False) & rec_strand.isin(rule.family)
              ).to_numpy() & (gap > rule_gap)
        rule_gap = np.where(ok, gap, rule_gap)
        rule_id = np.where(ok, rule.id, rule_id)
    model_gap = np.nan_to_num(df.predicted_offence.map(rank).to_numpy(float) - rec_rank)
    model_gap = np.where(model_gap > 0, model_gap, 0)
    keep = (rule_gap > 0) | (model_gap > 0)
    df, rule_gap, rule_id, model_gap = df[keep], rule_gap[keep], rule_id[keep], model_gap[keep]
    implies = {r.id: r.implies for r in book.rules if r.implies}
    by_rule = pd.Series(rule_id, index=df.index).map(implies)
    suggested = np.where(model_gap > rule_gap, df.predicted_offence, by_rule)
    evidence = np.select([(rule_gap > 0) & (model_gap > 0), rule_gap > 0],
                         ["rules and model", "rules"], "model")
    out = pd.DataFrame({
        "crime_id": df.crime_id, "incident_id": df.incident_id,
        "recorded_offence": df.offence_code, "suggested_offence": suggested,
        "seriousness_gap": np.maximum(rule_gap, model_gap).astype(int), "evidence": evidence,
        "p_crime": df.p_crime,
        "why_rule": rule_id, "why_text": df.narrative, "why_class": df.predicted_offence,
    })
    order = out.evidence.map({"rules and model": 0, "model": 1, "rules": 2})
    out = (out.assign(_order=order)
           .sort_values(["_order", "seriousness_gap", "p_crime", "crime_id"],
                        ascending=[True, False, False, True])
           .drop(columns="_order").reset_index(drop=True))
    if limit:
        out = out.head(limit)
    # Reasons only for the rows kept: explaining a rule hit runs its patterns again.
    out["reason"] = [_downgrade_reason(codes, book, r) for r in out.itertuples()]
    out = out.drop(columns=["why_rule", "why_text", "why_class"])
    out.insert(0, "rank", range(1, len(out) + 1))
    return out


def _downgrade_reason(codes, book, row) -> str:
    rec = codes.offence(row.recorded_offence)
    sug = codes.offence(row.suggested_offence)
    says = []
    if isinstance(row.why_rule, str):  # None in the frame may have become NaN
        says.append(f"the narrative says {book.explain(row.why_text, row.why_rule)}")
    if row.evidence != "rules":
        model = codes.offence(row.why_class)
        says.append(f"the screen model reads it as {model.code} ({model.description}), "
                    f"P(crime)={row.p_crime:.2f}")
    return (f"recorded {rec.code} ({rec.description}) but {' and '.join(says)}; "
            f"suggests at least {sug.code} ({sug.description})")

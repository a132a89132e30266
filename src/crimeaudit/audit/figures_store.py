"""The store's record of every published figure: tables ``estimate_runs`` and ``estimates``.

One *estimation run* is one sample estimated with one method at one level; its figures are
rows of ``estimates`` keyed by run, measure and scope, each with estimate, standard error,
interval, level, method, numerator, denominator, n, effective n, notes and warnings.
Recording-rate and cancellation audits, several samples, and re-estimates of one sample with
other methods sit side by side: re-estimating a sample with the same method and level replaces
that run's figures and nothing else. The report, ``estimate --json`` and later comparisons read
the figures from here; files under ``reports/`` are exports.

>>> run_id_for("S0123456789", "auto", 0.95)
'S0123456789/auto/0.95'
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa

from crimeaudit.audit.errors import AuditError
from crimeaudit.audit.results import AuditEstimates
from crimeaudit.model.figures import Estimate, dumps
from crimeaudit.model.schema import ESTIMATE_RUNS, ESTIMATES

RUNS_TABLE = ESTIMATE_RUNS.name
ESTIMATES_TABLE = ESTIMATES.name
RUNS_SCHEMA = ESTIMATE_RUNS.arrow_schema()
ESTIMATES_SCHEMA = ESTIMATES.arrow_schema()


def run_id_for(sample_id: str, method: str, level: float) -> str:
    """The key of an estimation run: the same sample, method and level replace each other."""
    return f"{sample_id}/{method}/{level:g}"


def _replace_rows(eng, name: str, schema: pa.Schema, run_id: str, new: pa.Table) -> None:
    eng.create_empty(name, schema)
    t = eng.table(name)
    old = eng.to_pyarrow(t.filter(t.run_id != run_id)).cast(schema)
    eng.write(name, pa.concat_tables([old, new.cast(schema)]))


def _num(x):
    return None if x is None else float(x)


def store_run(project, result) -> str:
    """Store an :class:`~crimeaudit.audit.measures.AuditEstimates` (one transaction); returns
    its run id."""
    eng = project.engine
    run_id = run_id_for(result.sample_id or "?", result.method, result.level)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    run = pa.table({
        "run_id": [run_id], "sample_id": [result.sample_id], "frame": [result.frame],
        "requested_method": [result.method], "level": [float(result.level)],
        "by": [json.dumps(list(result.by))], "design": [dumps(result.design)],
        "sample": [dumps(result.sample)], "decisions": [dumps(result.decisions)],
        "estimated_at": [now],
    }, schema=RUNS_SCHEMA)
    rows = [{
        "run_id": run_id, "position": i, "sample_id": result.sample_id, "measure": e.measure,
        "scope": e.scope, "estimate": _num(e.estimate), "se": _num(e.se),
        "lower": _num(e.lower), "upper": _num(e.upper), "level": float(e.level),
        "method": e.method, "unit": e.unit, "numerator": _num(e.numerator),
        "denominator": _num(e.denominator), "n": int(e.n), "n_effective": _num(e.n_effective),
        "notes": e.notes, "warnings": json.dumps(list(e.warnings)), "extra": dumps(e.extra),
    } for i, e in enumerate(result.estimates)]
    table = pa.Table.from_pylist(rows, schema=ESTIMATES_SCHEMA)
    with eng.transaction():
        _replace_rows(eng, RUNS_TABLE, RUNS_SCHEMA, run_id, run)
        _replace_rows(eng, ESTIMATES_TABLE, ESTIMATES_SCHEMA, run_id, table)
    return run_id


def _estimate_of(row: dict) -> Estimate:
    d = {k: row[k] for k in ("measure", "scope", "estimate", "se", "lower", "upper", "level",
                             "method", "unit", "numerator", "denominator", "n_effective",
                             "notes", "sample_id")}
    d = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in d.items()}
    d["n"] = int(row["n"])
    d["warnings"] = tuple(json.loads(row["warnings"] or "[]"))
    d["extra"] = json.loads(row["extra"] or "{}")
    return Estimate.from_dict(d)


def stored_runs(project, sample_id: str | None = None, frame: str | None = None,
                method: str | None = None) -> list:
    """Every stored estimation run (oldest first) as ``AuditEstimates``, optionally only one
    sample's, one frame's (``incidents`` / ``cancellations``) or one requested method's."""
    eng = project.engine
    if not eng.has_table(RUNS_TABLE):
        return []
    runs = eng.table(RUNS_TABLE)
    for col, value in (("sample_id", sample_id), ("frame", frame),
                       ("requested_method", method)):
        if value is not None:
            runs = runs.filter(runs[col] == value)
    runs_df = eng.to_pandas(runs.order_by(["estimated_at", "run_id"]))
    if runs_df.empty:
        return []
    est = eng.table(ESTIMATES_TABLE)
    est_df = eng.to_pandas(est.filter(est.run_id.isin(list(runs_df.run_id)))
                         .order_by(["run_id", "position"]))
    by_run: dict[str, list[Estimate]] = {}
    for row in est_df.to_dict("records"):
        by_run.setdefault(row["run_id"], []).append(_estimate_of(row))
    out = []
    for r in runs_df.to_dict("records"):
        out.append(AuditEstimates(
            estimates=by_run.get(r["run_id"], []), design=json.loads(r["design"]),
            level=float(r["level"]), method=r["requested_method"], sample_id=r["sample_id"],
            sample=json.loads(r["sample"]), decisions=json.loads(r["decisions"]),
            frame=r["frame"], by=tuple(json.loads(r["by"])), run_id=r["run_id"],
            estimated_at=r["estimated_at"]))
    return out


def load_run(project, run_id: str):
    """One stored run by its id."""
    for run in stored_runs(project):
        if run.run_id == run_id:
            return run
    raise AuditError(f"no stored estimates {run_id!r}")

"""Scoring every incident, retraining on auditors' decisions, and the review-next list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crimeaudit.audit.decisions import latest_decisions
from crimeaudit.model.schema import SCREEN_SCORES
from crimeaudit.progress import Progress
from crimeaudit.screening.errors import ScreenError
from crimeaudit.screening.model import (
    LEGACY_MODEL_FILE,
    MODEL_FILE,
    ScreenModel,
    pickled_model_error,
    train_default,
    version_of,
)
from crimeaudit.screening.rules import RuleBook, load_rules, split_hits
from crimeaudit.store.project import project_verb

SCORES_TABLE = SCREEN_SCORES.name
SCORES_SCHEMA = SCREEN_SCORES.arrow_schema()
CHUNK = 200_000


def _folder(project) -> Path:
    return project.folder("screen")


def load_model(project, progress: Progress | None = None) -> ScreenModel:
    """The project's model (retrained) or the default, trained once and kept in the project.

    A pickled model left by an older version is refused, never unpickled: the project folder
    may be shared, and unpickling runs whatever code the file names. Once the project has a
    model in the new format the old file is simply ignored, so retraining is the way out.
    """
    path = _folder(project) / MODEL_FILE
    if path.exists():
        return ScreenModel.load(path)
    legacy = _folder(project) / LEGACY_MODEL_FILE
    if legacy.exists():
        raise pickled_model_error(legacy)
    if progress:
        progress.note("Training the default screen model on simulated narratives (once)")
    model = train_default()
    model.save(path)
    return model


def _score_batch(batch: pa.RecordBatch, book: RuleBook, model: ScreenModel) -> pa.Table:
    narratives = batch.column("narrative")
    hit_ids = book.hit_ids(narratives)
    p, cls = model.predict(narratives.to_pylist(), batch.column("call_type").to_pylist(),
                           batch.column("closing_code").to_pylist(), split_hits(hit_ids))
    n = batch.num_rows
    return pa.table({
        "incident_id": batch.column("incident_id"), "p_crime": pa.array(p, pa.float64()),
        "predicted_offence": pa.array(cls, pa.string()),
        "rule_hits": hit_ids, "model_version": pa.repeat(pa.scalar(model.version), n),
    }).cast(SCORES_SCHEMA)


@project_verb
def screen(project, rules: str | Path | None = None, progress: Progress | None = None) -> int:
    """Score every incident into ``screen_scores``; returns the number scored.

    Incidents stream through in record batches of ``CHUNK`` rows (rules as Arrow kernels, then
    the model), so memory holds one batch of narratives and the scores, never the whole table.
    """
    progress = progress or Progress()
    eng = project.engine
    book = load_rules(rules)
    model = load_model(project, progress)
    inc = eng.table("incidents").select("incident_id", "narrative", "call_type", "closing_code")
    total = eng.count("incidents")
    parts = []
    with progress.task("Screening incidents", total=total) as advance:
        for batch in eng.to_pyarrow_batches(inc, chunk_size=CHUNK):
            if batch.num_rows:
                parts.append(_score_batch(batch, book, model))
                advance(batch.num_rows)
    table = pa.concat_tables(parts) if parts else SCORES_SCHEMA.empty_table()
    eng.write(SCORES_TABLE, table)
    project.log_run("screen", ["incidents"], {"screen_scores": table.num_rows},
                    {"model_version": model.version, "rules": book.source})
    return table.num_rows


def _read_decisions_csv(path: Path) -> pd.DataFrame:
    if not Path(path).exists():
        raise ScreenError(f"{path}: decisions file not found")
    d = pd.read_csv(path, dtype=str)
    missing = {"incident_id", "should_record"} - set(d.columns)
    if missing:
        raise ScreenError(f"{path}: line 1: missing column(s) {', '.join(sorted(missing))}")
    return d


def _project_decisions(project) -> pd.DataFrame:
    d = latest_decisions(project, across_samples=True)
    d = d[d.record_type == "incident"]
    return d.rename(columns={"record_id": "incident_id"})[
        ["incident_id", "should_record", "correct_class"]]


@project_verb
def train(project, decisions_csv: str | Path | None = None, rules=None,
          progress: Progress | None = None) -> ScreenModel:
    """Retrain the screen on the project's own auditors' decisions.

    ``decisions_csv`` (incident_id, should_record yes/no, correct_class) is used when given,
    else the audit's decisions table. The new model replaces the project's model file.
    """
    d = _read_decisions_csv(Path(decisions_csv)) if decisions_csv else _project_decisions(project)
    yes = d.should_record.astype(str).str.lower().map(
        {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False})
    d = d[yes.notna()].assign(y=yes[yes.notna()].astype(bool))
    if len(d) < 20:
        raise ScreenError(f"need at least 20 yes/no decisions to train, found {len(d)}")
    eng = project.engine
    t = eng.table("incidents")
    inc = eng.to_pandas(t.filter(t.incident_id.isin(d.incident_id.tolist())).select(
        "incident_id", "narrative", "call_type", "closing_code"))
    d = d.merge(inc, on="incident_id", how="inner")
    hits = load_rules(rules).match(d.narrative.tolist())
    cls = d.correct_class if "correct_class" in d else pd.Series([None] * len(d))
    model = ScreenModel(version_of("project", len(d), *sorted(d.incident_id)[:50]))
    model.fit(d.narrative.tolist(), d.call_type.tolist(), d.closing_code.tolist(),
              d.y.to_numpy(), [c if isinstance(c, str) and c else None for c in cls], hits)
    model.save(_folder(project) / MODEL_FILE)
    project.log_run("screen train", ["decisions"], {"decisions": len(d)},
                    {"model_version": model.version})
    return model


@project_verb
def next_for_review(project, n: int = 50) -> pd.DataFrame:
    """Incidents whose label would teach the model most (uncertainty sampling).

    This is a separate, labelled list (``purpose = model_training``): these records are chosen
    *because* the model is unsure, so they are not a random sample and must never be mixed into
    the audit's sample or its estimates. Records already in an audit sample are left out.
    """
    eng = project.engine
    if not eng.has_table(SCORES_TABLE):
        raise ScreenError("no screen scores yet: run crimeaudit screen run DIR first")
    s = eng.table(SCORES_TABLE)
    s = s.mutate(uncertainty=(s.p_crime - 0.5).abs())
    if eng.has_table("audit_samples"):
        a = eng.table("audit_samples")
        s = s.filter(~s.incident_id.isin(a.record_id))
    top = eng.to_pandas(s.order_by(["uncertainty", "incident_id"]).limit(n))
    top["purpose"] = "model_training (not part of the audit's random sample)"
    top["rank"] = np.arange(1, len(top) + 1)
    return top[["rank", "incident_id", "p_crime", "predicted_offence", "rule_hits", "purpose"]]

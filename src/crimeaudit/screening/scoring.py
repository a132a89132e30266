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
from crimeaudit.screening.evaluation import DEFAULT_FOLDS, DEFAULT_K, compare
from crimeaudit.screening.labels import LabelledSet, from_decisions, from_frame, read_csv
from crimeaudit.screening.model import (
    CLASS_MODEL_FILE,
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
    d = read_csv(path)
    missing = {"incident_id", "should_record"} - set(d.columns)
    if missing:
        raise ScreenError(f"{path}: line 1: missing column(s) {', '.join(sorted(missing))}")
    return d


def _project_decisions(project) -> pd.DataFrame:
    d = latest_decisions(project, across_samples=True)
    d = d[d.record_type == "incident"]
    return d.rename(columns={"record_id": "incident_id"})[
        ["incident_id", "should_record", "correct_class"]]


def labelled_set(project, decisions_csv: str | Path | None = None,
                 labels_csv: str | Path | None = None,
                 positive: str | None = None) -> LabelledSet:
    """The labels to learn from: a labelled CSV of narratives, a decisions CSV, or the audit's
    decisions (see :mod:`crimeaudit.screening.labels`); minimums checked after cleaning."""
    if labels_csv and decisions_csv:
        raise ScreenError("give --labels or --decisions, not both")
    if labels_csv:
        return from_frame(read_csv(labels_csv), str(labels_csv), positive).check()
    if decisions_csv:
        d, source = _read_decisions_csv(Path(decisions_csv)), str(decisions_csv)
    else:
        d, source = _project_decisions(project), "the audit's decisions"
    eng = project.engine
    ids = d.incident_id.dropna().unique().tolist()
    if eng.has_table("incidents") and ids:
        t = eng.table("incidents")
        inc = eng.to_pandas(t.filter(t.incident_id.isin(ids)).select(
            "incident_id", "narrative", "call_type", "closing_code"))
    else:
        inc = pd.DataFrame(columns=["incident_id", "narrative", "call_type", "closing_code"])
    return from_decisions(d, inc, source, positive).check()


def model_path(project, target: dict) -> Path:
    """Where the project keeps its model for a target: P(crime) is the screen's own model
    (what ``screen run`` scores with); a model of a class group is kept beside it."""
    return _folder(project) / (MODEL_FILE if target["kind"] == "crime" else CLASS_MODEL_FILE)


@project_verb
def train(project, decisions_csv: str | Path | None = None, rules=None,
          progress: Progress | None = None, labels_csv: str | Path | None = None,
          positive: str | None = None, folds: int = DEFAULT_FOLDS,
          seed: int = 0) -> ScreenModel:
    """Retrain the screen on a force's own labels, keeping the better of two recipes.

    Labels come from ``labels_csv`` (a labelled CSV of narratives: ``narrative``, ``label``),
    else ``decisions_csv`` (``incident_id``, ``should_record`` yes/no, ``correct_class``), else
    the audit's decisions; ``positive`` names the labels or offence codes of a class group
    (class-only labels, e.g. serious against minor). The screen's recipe and the plain TF-IDF
    + logistic regression baseline are cross-validated on the same folds and the better on
    AUC is fitted on every label and saved (:func:`model_path`); ``model.training`` holds the
    comparison and the choice.
    """
    labels = labelled_set(project, decisions_csv, labels_csv, positive)
    hits = load_rules(rules).match(labels.narratives)
    if progress:
        progress.note(f"Cross-validating the screen and the plain baseline on {len(labels):,} "
                      "labels")
    result = compare(labels, hits, folds=folds, seed=seed,
                     level=project.config.confidence_level)
    target = dict(labels.target, trained_on=labels.fingerprint, chosen_because=result["why"])
    model = ScreenModel(version_of("project", labels.fingerprint, result["chosen"]), seed,
                        result["chosen"], target)
    codes = labels.offence_codes if labels.target["kind"] == "crime" else None
    model.fit(labels.narratives, labels.call_types, labels.closing_codes, labels.y,
              codes or [None] * len(labels), hits)
    path = model_path(project, labels.target)
    model.save(path)
    model.training = dict(result, model_file=str(path), model_version=model.version)
    project.log_run("screen train", ["decisions" if not labels_csv else str(labels_csv)],
                    {"labels": len(labels), **{f"excluded: {k}": v
                                               for k, v in labels.excluded.items()}},
                    {"model_version": model.version, "recipe": model.recipe,
                     "target": labels.target})
    return model


@project_verb
def evaluate(project, decisions_csv: str | Path | None = None,
             labels_csv: str | Path | None = None, positive: str | None = None, rules=None,
             folds: int = DEFAULT_FOLDS, k: int = DEFAULT_K, seed: int = 0) -> dict:
    """Cross-validated AUC, precision at k and calibration of the screen's recipe and the plain
    baseline on the same folds, and of the project's current model as saved (flagged when it
    was trained on these labels). Labels as for :func:`train`."""
    labels = labelled_set(project, decisions_csv, labels_csv, positive)
    hits = load_rules(rules).match(labels.narratives)
    path = model_path(project, labels.target)
    current = ScreenModel.load(path) if path.exists() else None
    notes = []
    if current is not None and (current.target.get("kind") != labels.target["kind"] or (
            labels.target["kind"] == "class"
            and current.target.get("positive") != labels.target["positive"])):
        notes.append(f"the current model ({path.name}) is of another target "
                     f"({current.target}); not scored")
        current = None
    elif current is None:
        notes.append(f"no current model at {path} (train one, or run `screen run` once for "
                     "the shipped default)")
    out = compare(labels, hits, folds=folds, k=k, seed=seed,
                  level=project.config.confidence_level, current=current)
    out["notes"] = notes
    return out


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

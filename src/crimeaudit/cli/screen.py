"""CLI verbs for the screen stage (registered by crimeaudit.cli).

``crimeaudit screen`` is a group of sub-commands, in the order a registrar uses them:
``run`` (score every incident), ``findings`` (the ranked lists), ``next`` (records to label for
the model), ``train`` (retrain on the project's own labels) and ``evaluate`` (cross-validated
against a plain baseline). ``crimeaudit screen DIR`` is
kept as a shorthand for ``crimeaudit screen run DIR``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from typer.core import TyperGroup

from crimeaudit.cli.common import (
    UserError,
    console,
    handle_errors,
    open_project,
    print_json,
    progress,
)

HELP = """Screen every incident: P(a crime should have been recorded), the likely class, and why.

Run after [bold]crimeaudit link[/bold]. A typical session (DIR is the project folder):

  1. score every incident (table screen_scores):
     crimeaudit screen run DIR
  2. the ranked findings lists, each row with its reason:
     crimeaudit screen findings DIR --kind unrecorded -o unrecorded.csv
     crimeaudit screen findings DIR --kind downgrades -o downgrades.csv
  3. optional, to teach the model your force's wording:
     crimeaudit screen next DIR -n 50 -o label-these.csv
     crimeaudit screen train DIR --decisions labelled.csv
  4. optional, from a labelled CSV of narratives (serious/minor, or yes/no):
     crimeaudit screen train DIR --labels narratives.csv --positive serious
     crimeaudit screen evaluate DIR --labels narratives.csv --positive serious

[dim]crimeaudit screen DIR is short for crimeaudit screen run DIR.[/dim]
"""

DIRECTORY = typer.Argument(..., help="The project folder.", show_default=False)
RULES = typer.Option(None, "--rules", help="A rules YAML replacing the shipped rules "
                                          "(see docs/screen.md).")
JSON = typer.Option(False, "--json", help="Print the result as JSON.")


class ScreenGroup(TyperGroup):
    """The screen group, where a first argument that is not a sub-command means ``run``."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        # Older scripts and the README say `crimeaudit screen DIR`; only a word that is neither
        # a sub-command nor an option is taken as the folder, so `screen --help` still works.
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Add the ``screen`` group (run, findings, next, train, evaluate) to the app."""
    group = typer.Typer(cls=ScreenGroup, help=HELP, no_args_is_help=True,
                        rich_markup_mode="rich")
    for name, verb in (("run", run), ("findings", findings), ("next", review_next),
                       ("train", train), ("evaluate", evaluate)):
        group.command(name, help=_reflowed(verb.__doc__))(verb)
    app.add_typer(group, name="screen")


def run(directory: Path = DIRECTORY, rules: Path = RULES, json_: bool = JSON) -> None:
    """Score every incident into table screen_scores.

    Each incident gets P(a crime should have been recorded), the most likely offence class and
    the rules it hits. The first run in a project trains the shipped default model (a minute or
    two) and keeps it in DIR/screen/; after `screen train` the project's own model is used.
    """
    from crimeaudit.screening import screen as score

    with open_project(directory) as project:
        count = score(project, rules=rules, progress=progress())
    _say(json_, {"scored": count}, f"screened {count:,} incidents -> screen_scores; next: "
                                   f"crimeaudit screen findings {directory}")


def findings(
    directory: Path = DIRECTORY,
    kind: str = typer.Option("unrecorded", "--kind",
                             help="unrecorded: incidents that likely disclosed a crime but have "
                                  "no linked crime record. downgrades: recorded crimes whose "
                                  "narrative describes a more serious class."),
    threshold: float = typer.Option(0.5, "--threshold",
                                    help="unrecorded: the least P(crime) listed."),
    limit: int = typer.Option(None, "-n", "--limit", help="At most this many rows (best first)."),
    rules: Path = RULES,
    out: Path = typer.Option(None, "--out", "-o", help="Write the whole list to this CSV."),
    json_: bool = JSON,
) -> None:
    """The ranked findings lists, each row with the reason it is there.

    Needs `screen run` first (and `link`, so that recorded crimes are known). Print the top 50,
    or write everything with -o FILE.csv for the registrar.
    """
    from crimeaudit.screening import downgrade_candidates, unrecorded_candidates

    with open_project(directory) as project:
        if kind not in ("unrecorded", "downgrades"):
            raise UserError(f"--kind must be unrecorded or downgrades, not {kind!r}")
        if kind == "unrecorded":
            df = unrecorded_candidates(project, threshold=threshold, limit=limit, rules=rules)
        else:
            df = downgrade_candidates(project, limit=limit, rules=rules)
    _table(df, out, json_)


def review_next(
    directory: Path = DIRECTORY,
    n: int = typer.Option(50, "-n", "--limit", help="How many records to propose."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the list to this CSV."),
    json_: bool = JSON,
) -> None:
    """Records whose labels would teach the model most (active learning).

    The model is least sure about these. They are NOT a random sample: label them for
    `screen train` only, never mix them into the audit's sample or its estimates. Records
    already in an audit sample are left out.
    """
    from crimeaudit.screening import next_for_review

    with open_project(directory) as project:
        df = next_for_review(project, n)
    _table(df, out, json_)


LABELS = typer.Option(None, "--labels", help=(
    "A labelled CSV of narratives: columns narrative and label (yes/no for crime or not, or "
    "any labels such as serious/minor with --positive); call_type and closing_code are "
    "optional; no ids or dates needed."))
DECISIONS = typer.Option(None, "--decisions", help=(
    "A CSV of incident_id,should_record (yes/no)[,correct_class] about the project's "
    "incidents; default (without --labels): the audit's decisions."))
POSITIVE = typer.Option(None, "--positive", help=(
    "Train on a group of classes instead of crime or not: the labels (with --labels) or "
    "offence codes of correct_class (with decisions) that count as positive, comma-separated, "
    "e.g. serious or 5D,8N; every other label or class is the negative group."))
FOLDS = typer.Option(5, "--folds", help="Cross-validation folds (stratified).")
SEED = typer.Option(0, "--seed", help="Seed of the folds (same labels and seed, same result).")


def train(
    directory: Path = DIRECTORY,
    decisions: Path = DECISIONS,
    labels: Path = LABELS,
    positive: str = POSITIVE,
    folds: int = FOLDS,
    seed: int = SEED,
    rules: Path = RULES,
    json_: bool = JSON,
) -> None:
    """Retrain the screen on the force's own labels (at least 20, and 5 of each kind).

    The screen's recipe and a plain TF-IDF + logistic regression baseline are cross-validated
    on the same folds and the better is kept (the output says which and why). A crime/no-crime
    model replaces DIR/screen/screen-model.npz (delete it to go back to the shipped default;
    run `screen run` afterwards to rescore); a model of a class group (--positive) is kept as
    DIR/screen/class-model.npz.
    """
    from crimeaudit.screening import train as fit

    with open_project(directory) as project:
        model = fit(project, decisions_csv=decisions, rules=rules, progress=progress(),
                    labels_csv=labels, positive=positive, folds=folds, seed=seed)
    t = model.training
    if json_:
        print_json(t)
        return
    console.print(_labels_line(t["labels"]))
    console.print(_comparison(t))
    console.print(f"kept the {t['chosen']} recipe: {t['why']}")
    nxt = (f"; next: crimeaudit screen run {directory} to rescore"
           if model.target["kind"] == "crime" else "")
    console.print(f"trained {model.version} -> {t['model_file']}{nxt}")


def evaluate(
    directory: Path = DIRECTORY,
    decisions: Path = DECISIONS,
    labels: Path = LABELS,
    positive: str = POSITIVE,
    folds: int = FOLDS,
    top_k: int = typer.Option(50, "--top-k", help="k of precision at k."),
    seed: int = SEED,
    rules: Path = RULES,
    json_: bool = JSON,
) -> None:
    """How well the screen separates labelled records, against a plain baseline.

    Cross-validated ROC AUC, precision at k and calibration (Brier score, calibration slope
    and intercept, expected calibration error) of the screen's recipe and of a plain TF-IDF +
    logistic regression baseline on the same folds, and of the project's current model as
    saved (marked in-sample when it was trained on these labels), so you see whether
    retraining helped. Labels as for `screen train`.
    """
    from crimeaudit.screening import evaluate as assess

    with open_project(directory) as project:
        out = assess(project, decisions_csv=decisions, labels_csv=labels, positive=positive,
                     rules=rules, folds=folds, k=top_k, seed=seed)
    if json_:
        print_json(out)
        return
    console.print(_labels_line(out["labels"]))
    console.print(_comparison(out))
    for note in out["notes"]:
        console.print(f"note: {note}")
    console.print(f"better recipe on these folds: {out['chosen']} ({out['why']})")


def _labels_line(s: dict) -> str:
    t = s["target"]
    what = ("crime (yes) against no crime" if t["kind"] == "crime"
            else f"{t['positive']} against {t['negative']}")
    dropped = "; ".join(f"{v:,} {k}" for k, v in s["excluded"].items())
    return (f"{s['used']:,} labels of {s['read']:,} read from {s['source']} "
            f"({s['positive']:,} positive, {s['negative']:,} negative): {what}"
            + (f"; excluded: {dropped}" if dropped else ""))


def _comparison(out: dict) -> str:
    """One row per candidate, 80 columns: AUC, precision at k, Brier, calibration slope."""
    lines = [f"{out['folds']}-fold cross-validation (seed {out['seed']}), "
             f"{out['labels']['used']:,} labels:",
             f"  {'candidate':<10} {'AUC (95% CI)':<20} {'prec@' + str(out['k']):<9} "
             f"{'Brier':<7} {'slope':<6}"]
    for key, m in out["candidates"].items():
        a = m["auc"]
        lo, hi = a["interval"]
        slope = m["calibration"]["slope"]["estimate"]
        lines.append(f"  {key:<10} {a['estimate']:.3f} ({lo:.3f}-{hi:.3f})  "
                     f"{m['precision_at_k']['estimate']:<9.2f} "
                     f"{m['calibration']['brier']['estimate']:<7.3f} "
                     f"{'-' if slope is None else f'{slope:.2f}':<6}")
        for w in m.get("warnings", []):
            lines.append(f"    {key}: {w}")
    return "\n".join(lines)


def _reflowed(doc: str) -> str:
    """A docstring as help text: Rich keeps line breaks, so each paragraph becomes one line."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _say(json_: bool, data: dict, text: str) -> None:
    if json_:
        print_json(data)
    else:
        console.print(text)


def _table(df, out: Path | None, json_: bool) -> None:
    if out:
        from crimeaudit.store.files import open_for_write

        with handle_errors(), open_for_write(out, newline="") as f:
            df.to_csv(f, index=False)
        console.print(f"wrote {len(df):,} rows to {out}")
    elif json_:
        print_json(df.to_dict(orient="records"))
    else:
        console.print(df.head(50).to_string(index=False), highlight=False)
        if len(df) > 50:
            console.print(f"... {len(df) - 50:,} more (use --out FILE.csv)")

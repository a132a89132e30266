"""CLI verbs for the screen stage (registered by crimeaudit.cli).

``crimeaudit screen DIR`` scores every incident; ``screen train DIR``, ``screen next DIR`` and
``screen findings DIR`` retrain, list records to review for the model, and export the findings.
"""

from __future__ import annotations

from pathlib import Path

import typer

from crimeaudit.cli.common import UserError, console, print_json, progress

ACTIONS = ("train", "next", "findings")


def register(app: typer.Typer) -> None:
    """Add ``screen`` (with its actions train, next, findings) to the app."""
    app.command("screen")(screen)


def screen(
    target: str = typer.Argument(..., help="The project folder, or an action: "
                                           "train, next, findings (then the folder)."),
    directory: Path = typer.Argument(None, help="The project folder (after an action)."),
    rules: Path = typer.Option(None, "--rules", help="A rules YAML replacing the default."),
    decisions: Path = typer.Option(None, "--decisions",
                                   help="train: CSV of incident_id,should_record,correct_class "
                                        "(default: the audit's decisions)."),
    n: int = typer.Option(None, "-n", "--limit", help="next/findings: how many rows."),
    threshold: float = typer.Option(0.5, "--threshold", help="findings: least P(crime)."),
    kind: str = typer.Option("unrecorded", "--kind", help="findings: unrecorded or downgrades."),
    out: Path = typer.Option(None, "--out", "-o", help="next/findings: write a CSV here."),
    json_: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Screen every incident: P(a crime should have been recorded), the likely class, and why."""
    from crimeaudit.store.project import Project

    if target in ACTIONS:
        if directory is None:
            raise UserError(f"screen {target} needs the project folder: "
                            f"crimeaudit screen {target} DIR")
        action = target
    else:
        if directory is not None:
            raise UserError(f"unknown screen action {target!r}: use one of {', '.join(ACTIONS)}")
        action, directory = "score", Path(target)
    with Project.open(directory) as project:
        if action == "score":
            from crimeaudit.screen import screen as run
            count = run(project, rules=rules, progress=progress())
            _say(json_, {"scored": count}, f"screened {count:,} incidents -> screen_scores")
        elif action == "train":
            from crimeaudit.screen import train
            model = train(project, decisions_csv=decisions, rules=rules, progress=progress())
            _say(json_, {"model_version": model.version},
                 f"trained {model.version}; run crimeaudit screen {directory} to rescore")
        elif action == "next":
            from crimeaudit.screen import next_for_review
            _table(next_for_review(project, n or 50), out, json_)
        else:
            from crimeaudit.screen import downgrade_candidates, unrecorded_candidates
            if kind == "unrecorded":
                df = unrecorded_candidates(project, threshold=threshold, limit=n, rules=rules)
            elif kind == "downgrades":
                df = downgrade_candidates(project, limit=n, rules=rules)
            else:
                raise UserError(f"--kind must be unrecorded or downgrades, not {kind!r}")
            _table(df, out, json_)


def _say(json_: bool, data: dict, text: str) -> None:
    if json_:
        print_json(data)
    else:
        console.print(text)


def _table(df, out: Path | None, json_: bool) -> None:
    if out:
        df.to_csv(out, index=False)
        console.print(f"wrote {len(df):,} rows to {out}")
    elif json_:
        print_json(df.to_dict(orient="records"))
    else:
        console.print(df.head(50).to_string(index=False), highlight=False)
        if len(df) > 50:
            console.print(f"... {len(df) - 50:,} more (use --out FILE.csv)")

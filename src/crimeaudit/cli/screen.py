"""CLI verbs for the screen stage (registered by crimeaudit.cli).

``crimeaudit screen`` is a group of sub-commands, in the order a registrar uses them:
``run`` (score every incident), ``findings`` (the ranked lists), ``next`` (records to label for
the model) and ``train`` (retrain on the project's own decisions). ``crimeaudit screen DIR`` is
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
    """Add the ``screen`` group (run, findings, next, train) to the app."""
    group = typer.Typer(cls=ScreenGroup, help=HELP, no_args_is_help=True,
                        rich_markup_mode="rich")
    for name, verb in (("run", run), ("findings", findings), ("next", review_next),
                       ("train", train)):
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


def train(
    directory: Path = DIRECTORY,
    decisions: Path = typer.Option(None, "--decisions",
                                   help="A CSV of incident_id,should_record (yes/no)"
                                        "[,correct_class]; default: the audit's decisions."),
    rules: Path = RULES,
    json_: bool = JSON,
) -> None:
    """Retrain the screen on the project's own auditors' decisions (at least 20).

    The new model replaces the project's model (DIR/screen/screen-model.npz); delete that file
    to go back to the shipped default. Run `screen run` afterwards to rescore.
    """
    from crimeaudit.screening import train as fit

    with open_project(directory) as project:
        model = fit(project, decisions_csv=decisions, rules=rules, progress=progress())
    _say(json_, {"model_version": model.version},
         f"trained {model.version}; next: crimeaudit screen run {directory} to rescore")


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

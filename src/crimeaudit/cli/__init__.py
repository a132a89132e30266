"""The ``crimeaudit`` command line: thin, one function per verb, each calling the public API.

Verbs are grouped by stage; each stage's module has a ``register(app)`` that adds its commands.
"""

from __future__ import annotations

import sys

import typer

from crimeaudit.cli import audit, demo, detect, ingest, link, project, report, screen, simulate
from crimeaudit.cli.common import console, handle_errors

app = typer.Typer(
    name="crimeaudit",
    help=(
        "Find the crimes that were never counted.\n\n"
        "A typical audit: init a project, ingest a force's exports, link and screen the\n"
        "incidents, draw a sample, review it, estimate, detect, and write the report.\n"
        "Try `crimeaudit demo` to see the whole job on a simulated force."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)



@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        from crimeaudit import __version__

        typer.echo(f"crimeaudit {__version__}")
        raise typer.Exit()


for stage in (project, simulate, ingest, link, screen, audit, detect, report, demo):
    stage.register(app)


def main() -> None:
    with handle_errors():
        app()


__all__ = ["app", "console", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

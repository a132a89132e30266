"""The ``crimeaudit`` command line: thin, one function per verb, each calling the public API.

Verbs are grouped by stage; each stage's module has a ``register(app)`` that adds its commands.
"""

from __future__ import annotations

import sys

import typer

from crimeaudit.cli import (
    audit,
    compare,
    demo,
    detect,
    ingest,
    link,
    project,
    records,
    releases,
    report,
    screen,
    simulate,
    web,
)
from crimeaudit.cli.common import (
    CrimeauditGroup,
    console,
    handle_errors,
    install_warning_format,
    note,
    set_debug,
)
from crimeaudit.store import lock

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
    cls=CrimeauditGroup,
    # A traceback's local variables can hold rows of a force's data: never print them.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    debug: bool = typer.Option(
        False, "--debug",
        help="Show the full traceback of any error (to report a bug). Without it, every "
             "error is one line."),
    wait: float = typer.Option(
        lock.DEFAULT_WAIT, "--wait", metavar="SECONDS", min=0,
        help="If another command is using the project, wait this many seconds for it to "
             "finish before giving up (0: do not wait)."),
) -> None:
    # Set on every run: the state is module-level, and tests run many commands in one process.
    set_debug(debug)
    lock.set_wait(wait, on_wait=note)
    if not debug:
        install_warning_format()
    if version:
        from crimeaudit import __version__

        typer.echo(f"crimeaudit {__version__}")
        raise typer.Exit()


for stage in (project, simulate, ingest, records, link, screen, audit, detect, report, demo,
              compare, web, releases):
    stage.register(app)


def main() -> None:
    with handle_errors():
        app()


__all__ = ["app", "console", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

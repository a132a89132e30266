"""CLI verbs for the link stage (registered by crimeaudit.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from crimeaudit.cli.common import console, open_project, print_json, progress


def register(app: typer.Typer) -> None:
    """Add ``link`` to the app."""
    app.command("link")(link)


def link(
    directory: Path = typer.Argument(..., help="The project folder."),
    threshold: float = typer.Option(0.9, "--threshold",
                                    help="Least match probability for a probabilistic link."),
    exact_only: bool = typer.Option(False, "--exact-only",
                                    help="Only link on references (no Splink)."),
    json_: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Link incidents to crime records: exact on references, then Splink for the rest."""
    from crimeaudit.linkage import LinkSettings
    from crimeaudit.linkage import link as run
    with open_project(directory) as project:
        counts = run(project, LinkSettings(threshold=threshold, probabilistic=not exact_only),
                     progress=progress())
    if json_:
        print_json(counts)
        return
    console.print(f"links: {counts['exact']:,} exact, {counts['probabilistic']:,} probabilistic "
                  f"({counts['crimes']:,} crimes)")
    if "precision" in counts:
        console.print(f"against the simulator's truth: precision {counts['precision']:.4f}, "
                      f"recall {counts['recall']:.4f}")

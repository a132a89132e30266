"""CLI verbs for the detect stage (registered by crimeaudit.cli)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``crimeaudit detect``."""

    @app.command("detect")
    def detect(
        project_dir: Path = typer.Argument(..., help="Project folder."),
        targets: Path | None = typer.Option(
            None, "--targets", help="Targets YAML (default: the project's `targets` setting)."
        ),
        previous_release: Path | None = typer.Option(
            None, "--previous-release",
            help="Another project holding an earlier release of the same data, to compare.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    ) -> None:
        """Look for signs of target pressure: every test the project's data supports."""
        from crimeaudit.cli.common import (
            UserError,
            console,
            handle_errors,
            print_json,
            progress,
        )
        from crimeaudit.detect import TargetsError, detect_project

        with handle_errors():
            try:
                run = detect_project(project_dir, targets, previous_release,
                                     progress=None if as_json else progress())
            except TargetsError as exc:
                raise UserError(str(exc)) from None
        if as_json:
            print_json({"summary": run.summary(),
                        "findings": [f.to_dict() for f in run.findings]})
            return
        sig = run.significant()
        console.print(
            f"Ran {len(run.tests_run)} tests over {len(run.findings):,} units; "
            f"{len(sig)} findings at q < 0.05 (Benjamini-Hochberg)."
        )
        for test, why in run.skipped.items():
            console.print(f"  skipped {test}: {why}", style="dim")
        for f in sig[:20]:
            console.print(f"  [{f.test}] {f.sentence} (q={f.q_value:.2g})", highlight=False)
        if len(sig) > 20:
            console.print(f"  ... and {len(sig) - 20} more", style="dim")
        console.print(f"Findings: {project_dir / 'reports' / 'findings.json'} and table "
                      "`findings`.")

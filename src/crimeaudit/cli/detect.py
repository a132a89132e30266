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
        setting: list[str] | None = typer.Option(
            None, "--set",
            help="A detector setting, detector.setting=value (repeatable), e.g. "
                 "bunching.min_values_near_threshold=150. Settings and defaults: "
                 "docs/detect.md.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    ) -> None:
        """Look for signs of target pressure: every test the project's data supports."""
        import sys

        from crimeaudit.cli.common import console, handle_errors, progress
        from crimeaudit.detect import detect_project
        from crimeaudit.detect.runner import parse_setting, write_findings_json

        # A bad targets file or setting is a DetectError: one line, exit code 2.
        with handle_errors():
            overrides: dict[str, dict] = {}
            for text in setting or []:
                detector, name, value = parse_setting(text)
                overrides.setdefault(detector, {})[name] = value
            run = detect_project(project_dir, targets, previous_release,
                                 progress=None if as_json else progress(),
                                 settings=overrides)
        if as_json:
            # Streamed finding by finding: a large force's charts are hundreds of megabytes.
            write_findings_json(run, sys.stdout, strict=False)
            return
        sig = run.significant()
        console.print(
            f"Ran {len(run.tests_run)} tests over {len(run.findings):,} units; "
            f"{len(sig)} findings at q < 0.05 (Benjamini-Hochberg)."
        )
        for test, why in run.skipped.items():
            console.print(f"  skipped {test}: {why}", style="dim", highlight=False)
        for test, notes in run.units_skipped.items():
            console.print(f"  {test}: {len(notes)} unit{'' if len(notes) == 1 else 's'} left "
                          f"out by a minimum-data setting, e.g. {notes[0]}", style="dim",
                          highlight=False)
        for f in sig[:20]:
            console.print(f"  [{f.test}] {f.sentence} (q={f.q_value:.2g})", highlight=False)
        if len(sig) > 20:
            console.print(f"  ... and {len(sig) - 20} more", style="dim")
        console.print(f"Findings: {project_dir / 'reports' / 'findings.json'} and table "
                      "`findings`.")

"""CLI verbs for the detect stage (registered by crimeaudit.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

#: Findings printed without --area (all of them are in findings.json).
SHOWN = 20
#: Findings of one area printed that are not significant (after all its significant ones).
SHOWN_NOT_SIGNIFICANT = 5


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
        area: str | None = typer.Option(
            None, "--area",
            help="Show one area's findings: a force, borough, division or other area as the "
                 "data names it (case ignored; 'Tower Hamlets' also matches 'Tower Hamlets "
                 "027B'). q-values are always the whole run's."),
        setting: list[str] | None = typer.Option(
            None, "--set",
            help="A detector setting, detector.setting=value (repeatable), e.g. "
                 "bunching.min_values_near_threshold=150. Settings and defaults: "
                 "docs/detect.md.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    ) -> None:
        """Look for signs of target pressure: every test the project's data supports.

        Findings are ranked by strength of evidence and size of effect together and shown by
        area and test; areas that cannot be compared are listed with the reason.
        """
        import sys

        from crimeaudit.cli.common import console, handle_errors, progress
        from crimeaudit.detect import detect_project
        from crimeaudit.detect.runner import parse_setting, write_findings_json

        # A bad targets file, setting or area is a DetectError: one line, exit code 2.
        with handle_errors():
            overrides: dict[str, dict] = {}
            for text in setting or []:
                detector, name, value = parse_setting(text)
                overrides.setdefault(detector, {})[name] = value
            run = detect_project(project_dir, targets, previous_release,
                                 progress=None if as_json else progress(),
                                 settings=overrides)
            shown = run.findings if area is None else run.for_area(area)
        if as_json:
            # Streamed finding by finding; charts are in reports/charts.json.
            write_findings_json(run, sys.stdout, strict=False, area=area)
            return
        _print(console, run, shown, area)
        console.print(f"Findings: {project_dir / 'reports' / 'findings.json'} (charts in "
                      "charts.json beside it) and table `findings`.", highlight=False)


def _print(console, run, shown, area) -> None:
    """The run in words: what ran, what was left out and why, findings by area and test."""
    from crimeaudit.detect.reading import area_of, matches_area

    sig = run.significant()
    console.print(
        f"Ran {len(run.tests_run)} tests over {len(run.findings):,} units; "
        f"{len(sig)} findings at q < 0.05 (Benjamini-Hochberg).", highlight=False)
    for test, why in run.skipped.items():
        console.print(f"  skipped {test}: {why}", style="dim", highlight=False)
    for test, notes in run.units_skipped.items():
        console.print(f"  {test}: {len(notes)} unit{'' if len(notes) == 1 else 's'} left "
                      f"out by a minimum-data setting, e.g. {notes[0]}", style="dim",
                      highlight=False)
    rel = run.facts.get("releases")
    if rel:
        counts = ", ".join(f"{k} {rel[k]:,}" for k in ("matched", "vanished", "new",
                                                       "type_changes", "outcome_changes",
                                                       "period_changes"))
        console.print(f"Releases compared over {rel['shared_months']['n']} shared months: "
                      f"{counts}. {rel['statement']}", highlight=False)
    excluded = [e for e in run.excluded if area is None or matches_area(e["area"], area)]
    if excluded:
        console.print(f"Left out of comparisons they cannot take part in ({len(excluded)}):",
                      highlight=False)
        for e in excluded[:10]:
            console.print(f"  [{e['test']}] {e['unit']}: {e['reason']}", style="dim",
                          highlight=False)
        if len(excluded) > 10:
            console.print(f"  ... and {len(excluded) - 10} more (findings.json: "
                          "summary.excluded)", style="dim", highlight=False)
    if area is None:
        picked = sig[:SHOWN]
        title = (f"Strongest findings, by area and test (first {len(picked)} of {len(sig)} at "
                 "q < 0.05; rank = evidence and effect together):")
    else:
        own_sig = [f for f in shown if f.q_value < 0.05]
        rest = [f for f in shown if not f.q_value < 0.05]
        picked = own_sig + rest[:SHOWN_NOT_SIGNIFICANT]
        names = sorted({area_of(f) for f in shown})
        title = (f"{', '.join(names)}: {len(shown)} findings, {len(own_sig)} at q < 0.05 "
                 f"(rank = evidence and effect together; q over the whole run):")
    console.print(title, highlight=False)
    order: dict[str, dict[str, list]] = {}
    for f in picked:  # picked is in rank order: each area and test first met at its best
        order.setdefault(area_of(f), {}).setdefault(f.test, []).append(f)
    for name, tests in order.items():
        console.print(f"  {name}", highlight=False)
        for test, fs in tests.items():
            console.print(f"    {test}", style="dim", highlight=False)
            for f in fs:
                console.print(f"      #{f.extra.get('rank')} {f.sentence}", highlight=False)
    if area is not None and len(shown) > len(picked):
        console.print(f"  ... and {len(shown) - len(picked)} more not significant "
                      "(--json lists them all)", style="dim", highlight=False)
    elif area is None and len(sig) > len(picked):
        console.print(f"  ... and {len(sig) - len(picked)} more at q < 0.05 (--area NAME "
                      "for one area's)", style="dim", highlight=False)

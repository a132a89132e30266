"""CLI verb ``crimeaudit releases OLD NEW`` (registered by crimeaudit.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

#: Transitions printed per table (all of them are in --json).
SHOWN = 15


def register(app: typer.Typer) -> None:
    """Add ``crimeaudit releases``."""

    @app.command("releases")
    def releases(
        old: Path = typer.Argument(..., help="The earlier release: a project folder, or a "
                                              "folder of files (with --profile)."),
        new: Path = typer.Argument(..., help="The later release, the same way."),
        profile: str | None = typer.Option(
            None, "--profile", "-p",
            help="Ingest profile to read folders of files with (e.g. police-uk-street); "
                 "not needed for projects."),
        as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    ) -> None:
        """Compare two releases of the same crimes over the months both cover.

        Counts matched, vanished, new, type, outcome and period changes (zeros included),
        with the transitions in the published text, and says how Crime IDs repeated within
        a month were handled.
        """
        from crimeaudit.cli.common import console, handle_errors, progress
        from crimeaudit.model.figures import dumps
        from crimeaudit.releases import compare_releases, read_release

        with handle_errors():
            shown = None if as_json else progress()
            a = read_release(old, profile, label=f"OLD ({old.name})", progress=shown)
            b = read_release(new, profile, label=f"NEW ({new.name})", progress=shown)
            result = compare_releases(a, b)
        d = result.to_dict()
        if as_json:
            typer.echo(dumps(d, indent=1))
            return
        months = d["shared_months"]
        console.print(f"{a.label} against {b.label}: {months['n']} shared months "
                      f"({months['first']} to {months['last']}); {d['old_crimes']:,} crimes in "
                      f"OLD and {d['new_crimes']:,} in NEW in those months.", highlight=False)
        width = max(len(k) for k in d if k in _COUNT_WORDS)
        for key, words in _COUNT_WORDS.items():
            console.print(f"  {key:<{width}}  {d[key]:>8,}  {words}", highlight=False)
        console.print(f"Compared on: crime type as {d['compared_on']['type']}; outcome as "
                      f"{d['compared_on']['outcome']}.", highlight=False)
        console.print(d["statement"], highlight=False)
        for side in ("old", "new"):
            for reason, n in d["not_compared_quarantined"][side].items():
                console.print(f"  not compared ({side.upper()}): {n:,} crime rows quarantined "
                              f"at ingest: {reason}", style="dim", highlight=False)
        for kind, title in (("type", "Type changes"), ("outcome", "Outcome changes"),
                            ("period", "Period changes")):
            rows = d["transitions"][kind]
            console.print(f"{title} ({sum(r['count'] for r in rows):,}):", highlight=False)
            if not rows:
                console.print("  none", highlight=False)
            for r in rows[:SHOWN]:
                console.print(f"  {r['count']:>6,}  {r['from']} -> {r['to']}", highlight=False)
            if len(rows) > SHOWN:
                console.print(f"  ... {len(rows) - SHOWN} more transitions (--json has all)",
                              style="dim", highlight=False)


_COUNT_WORDS = {
    "matched": "crimes of OLD also in NEW",
    "vanished": "crimes of OLD missing from NEW (most likely cancelled or merged)",
    "new": "crimes of NEW that OLD never had",
    "type_changes": "matched crimes whose crime type changed",
    "outcome_changes": "matched crimes whose outcome changed",
    "period_changes": "matched crimes now published in another month",
}

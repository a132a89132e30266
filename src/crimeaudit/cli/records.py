"""CLI verbs for versioned records: history (a record's versions) and unload (undo a load)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from crimeaudit.cli.common import console, open_project, print_json
from crimeaudit.ingestion import history, unload


def _v(*names: str):
    return lambda values: " ".join(str(values[n])[:10] for n in names if values.get(n) is not None)


#: The fields a terminal shows per version (every field is in --json), and short names for
#: the changed ones.
_CELLS = {"crimes": {"status": _v("status"), "class": _v("offence_code"),
                     "outcome": _v("outcome"),
                     "cancellation": _v("cancellation_reason", "cancelled_at")},
          "incidents": {"call type": _v("call_type"), "closing": _v("closing_code"),
                        "division": _v("division")}}
_SHORT = {"offence_code": "class", "cancellation_reason": "cancellation",
          "cancelled_at": "cancellation", "source_offence_code": "source class",
          "source_offence_description": "source class"}


def register(app: typer.Typer) -> None:
    """Add ``history`` and ``unload`` to the app."""

    @app.command("history")
    def history_cmd(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        reference: str = typer.Argument(..., metavar="ID",
                                        help="The crime or incident reference, as the force's "
                                             "export gives it."),
        as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    ) -> None:
        """A crime's or incident's versions across exports: what changed, when, from which
        file, and which version the audit uses (at the project's reference_date)."""
        with open_project(directory) as project:
            found = history(project, reference)
        if as_json:
            print_json([h.to_dict() for h in found])
            return
        for h in found:
            kind = h.table[:-1]
            at = f"at {h.reference_date}" if h.reference_date else "now"
            now = [i for i, v in enumerate(h.versions, 1) if v.current]
            console.print(Text(f"{kind} {h.record_id}: {len(h.versions)} version(s); in "
                               f"effect {at}: " + (f"version {now[0]}" if now else
                                                   "none (first exported after that date)")))
            t = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
            cells = _CELLS[h.table]
            for col in ("#", "as of", "file(s)", *cells, "changed"):
                t.add_column(col, overflow="fold", no_wrap=col in ("#", "as of"))
            for i, v in enumerate(h.versions, 1):
                changed = dict.fromkeys(_SHORT.get(c, c) for c in v.changed)
                t.add_row(Text(f"{i}{'*' if v.current else ''}"), Text((v.as_of or "-")[:10]),
                          Text(", ".join(Path(f).name for f in v.files)),
                          *(Text(fn(v.values)) for fn in cells.values()),
                          Text(", ".join(changed) or ("first seen" if i == 1 else "-")))
            console.print(t)
        console.print("* the version every stage uses (the latest export as of the project's "
                      "reference_date)", highlight=False)

    @app.command("unload")
    def unload_cmd(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        file: str = typer.Argument(..., help="The file to undo: its path, name or the start "
                                             "of its SHA-256, as ingest and quarantine show."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Undo one file's load: its incidents and crimes go back to the versions the other
        files give them, and its ledger and quarantined rows go."""
        with open_project(directory) as project:
            r = unload(project, file)
        if as_json:
            print_json(r.to_dict())
            return
        rows = ", ".join(f"{n} {t} rows" for t, n in r.rows.items()) or "no rows"
        console.print(Text(f"unloaded {Path(r.file).name} ({r.profile}): {rows}; the store now "
                           f"holds {r.incidents} incidents and {r.crimes} crimes"))

"""What the ingest verbs print beyond their row tables: where the rows went by reason
(``quarantine --summary``), a profile's dry run (``profiles --check``) and the lines under
``ingest``'s table (excluded rows, unclassified crimes).

Every value that comes from a file is escaped: data never becomes Rich markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from crimeaudit.cli.common import console
from crimeaudit.model.codes import UNCLASSIFIED


def ingest_lines(report: Any, directory: Path) -> None:
    """Excluded rows by reason and crosswalk gaps, under ``ingest``'s table."""
    by_reason: dict[str, int] = {}
    for f in report.files:
        if f.skipped:
            continue
        for e in f.exclusions:
            by_reason[e["reason"]] = by_reason.get(e["reason"], 0) + int(e["rows"])
    if by_reason:
        console.print(f"excluded {report.excluded} rows outside the profile's scope:",
                      highlight=False)
        for reason, n in sorted(by_reason.items(), key=lambda x: -x[1]):
            console.print(f"  {n:>7,}  {str(reason)}", highlight=False)
    gaps: dict[str, dict[str, int]] = {}
    for f in report.files:
        for where, values in ({} if f.skipped else f.unmapped).items():
            acc = gaps.setdefault(where, {})
            for v, n in values.items():
                acc[v] = acc.get(v, 0) + n
    for where, values in gaps.items():
        if not where.endswith(UNCLASSIFIED):
            continue  # a default, a value kept as published: what the profile asked for
        top = sorted(values.items(), key=lambda x: -x[1])[:5]
        shown = ", ".join(f"{str(repr(v))} {n:,}" for v, n in top)
        more = f" and {len(values) - len(top)} more" if len(values) > len(top) else ""
        console.print(f"{sum(values.values()):,} crimes of categories with no class, loaded "
                      f"as {UNCLASSIFIED} ({str(where.split(' -> ')[0])}): {shown}{more}",
                      highlight=False)
    for f in report.files:
        for what, values in ({} if f.skipped else f.adjusted).items():
            shown = ", ".join(f"{str(repr(v))} {n:,}" for v, n in values.items())
            console.print(f"{sum(values.values()):,} rows loaded with {str(what)}: {shown} "
                          f"({str(Path(f.file).name)})", highlight=False)
    if report.quarantined or report.excluded:
        console.print(f"By reason: crimeaudit quarantine {str(directory)} --summary",
                      highlight=False)


def quarantine_summary(summary: dict[str, Any]) -> None:
    """Per file, read = loaded + excluded + quarantined, then the reasons with their rows."""
    t = Table()
    t.add_column("file", overflow="fold")
    for name in ("read", "loaded", "excluded", "quarantined"):
        t.add_column(name, no_wrap=True, justify="right")
    t.add_column("", overflow="fold")
    for f in summary["files"]:
        t.add_row(str(Path(f["file"]).name), f"{f['read']:,}", f"{f['loaded']:,}",
                  f"{f['excluded']:,}", f"{f['quarantined']:,}",
                  "" if f["reconciles"] else "does not reconcile")
    tot = summary["totals"]
    t.add_row("all files", f"{tot['read']:,}", f"{tot['loaded']:,}", f"{tot['excluded']:,}",
              f"{tot['quarantined']:,}", "")
    console.print(t)
    r = Table()
    r.add_column("file", overflow="fold", ratio=1)
    r.add_column("kind", no_wrap=True)
    r.add_column("reason", overflow="fold", ratio=3)
    r.add_column("rows", no_wrap=True, justify="right")
    r.add_column("first line", no_wrap=True, justify="right")
    for f in summary["files"]:
        name = str(Path(f["file"]).name)
        for e in f["excluded_reasons"]:
            values = ", ".join(f"{str(v)} {n:,}" for v, n in
                               sorted(e["values"].items(), key=lambda x: -x[1])[:4])
            r.add_row(name, "excluded", f"{str(e['reason'])} ({str(e['column'])}: "
                      f"{values})", f"{e['rows']:,}", str(e["first_line"]))
        for q in f["quarantine_reasons"]:
            r.add_row(name, "quarantined", str(q["reason"]), f"{q['rows']:,}",
                      str(q["first_line"]))
    if r.row_count:
        console.print(r)
    console.print(f"read {tot['read']:,} = loaded {tot['loaded']:,} + excluded "
                  f"{tot['excluded']:,} + quarantined {tot['quarantined']:,} in "
                  f"{len(summary['files'])} files", highlight=False)


def profile_check(check: Any, source: str) -> None:
    """The dry run of ``profiles --check``: problems first, then each file by column."""
    state = "valid" if check.ok else "FAILS"
    console.print(f"{str(source)}: {state} profile {str(repr(check.profile))} "
                  f"({', '.join(check.targets)})", highlight=False)
    for p in check.problems:
        console.print(f"  problem: {str(p)}", highlight=False)
    for f in check.files:
        console.print(f"{str(Path(f['file']).name)}: read {f['read']:,} = would load "
                      f"{f['loaded']:,} + exclude {f['excluded']:,} + quarantine "
                      f"{f['quarantined']:,}", highlight=False)
        if f["columns"]:
            t = Table("column", "what", "reason", "rows")
            for c in f["columns"]:
                t.add_row(str(c["column"]), c["what"], str(c["reason"]), f"{c['rows']:,}")
            console.print(t)
        for where, values in f["unmapped"].items():
            t = Table(f"value not in crosswalk {str(where)}", "rows")
            for v, n in sorted(values.items(), key=lambda x: -x[1])[:20]:
                t.add_row(str(v), f"{n:,}")
            if len(values) > 20:
                t.add_row(f"... {len(values) - 20} more (--json lists all)", "")
            console.print(t)


__all__ = ["ingest_lines", "profile_check", "quarantine_summary"]

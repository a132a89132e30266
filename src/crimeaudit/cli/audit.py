"""CLI verbs for the audit stage: sample, plan, review export/import/oracle, estimate."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from crimeaudit.cli.common import (
    console,
    err_console,
    handle_errors,
    open_project,
    print_json,
    progress,
    styled,
)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def estimates_table(estimates, level: float) -> Table:
    """A Rich table of estimates (proportions as percentages, counts as numbers).

    Methods are long ("stratified-ratio+wilson-neff") and few: the table gives each a number
    and names them once below it, so that a row stays on one line of an 80-column terminal.
    """
    methods = list(dict.fromkeys(e.method for e in estimates))
    caption = "\n".join(f"method [{k}]: {m}" for k, m in enumerate(methods, 1))
    # No vertical rules and single gaps, so the table fits an 80-column terminal without
    # breaking a figure across lines (only scope may wrap).
    t = Table(title=f"Audit estimates ({100 * level:.0f}% intervals)", box=box.SIMPLE_HEAD,
              collapse_padding=True, pad_edge=False, caption=caption, caption_justify="left")
    for col in ("measure", "scope", "estimate", "interval", "method", "n", "counts"):
        t.add_column(col, justify="right" if col in ("estimate", "n") else "left",
                     no_wrap=col != "scope", overflow="fold")
    for e in estimates:
        if e.unit == "proportion":
            est, lo, hi = _pct(e.estimate), _pct(e.lower), _pct(e.upper)
        else:
            est, lo, hi = (f"{v:,.0f}" if v == v and v != float("inf") else "unbounded"
                           for v in (e.estimate, e.lower, e.upper))
        counts = f"{e.numerator:g}/{e.denominator:g}" if e.denominator is not None else ""
        t.add_row(e.measure, e.scope, est, f"{lo} - {hi}", f"[{methods.index(e.method) + 1}]",
                  str(e.n), counts)
    return t


def register(app: typer.Typer) -> None:
    review = typer.Typer(help="Review sheets: export, import completed decisions, oracle.",
                         no_args_is_help=True)
    app.add_typer(review, name="review")

    @app.command("sample")
    def sample(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        design: str = typer.Option("srs", help="srs, stratified or pps."),
        size: int = typer.Option(1000, help="Records to draw (expected number for pps)."),
        seed: int = typer.Option(..., help="Random seed: the same seed redraws the same sample."),
        by: list[str] = typer.Option(["strand"], "--by", help="Stratify by strand/division."),
        allocation: str = typer.Option("neyman", help="proportional or neyman (stratified)."),
        expected_rate: float = typer.Option(0.85, help="Anticipated rate (Neyman weights)."),
        size_column: str = typer.Option(
            None, help="pps size: incidents column, TABLE.COLUMN, or call_type_priority."),
        frame: str = typer.Option("incidents", help="incidents or cancellations."),
        start: str = typer.Option(None, help="Audit period start (YYYY-MM-DD)."),
        end: str = typer.Option(None, help="Audit period end (YYYY-MM-DD)."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Draw a seeded audit sample and store it in the project."""
        from crimeaudit.audit import SampleDesign, draw_sample

        with open_project(directory) as p:
            d = SampleDesign(
                kind=design, size=size, seed=seed, strata_by=tuple(by), allocation=allocation,
                expected_rate=expected_rate, size_column=size_column, frame=frame,
                period_start=_date(start), period_end=_date(end),
            )
            s = draw_sample(p, d, progress=None if json_out else progress())
            if json_out:
                print_json({"sample_id": s.sample_id, "design": d.to_dict(), "drawn": len(s),
                            "frame_size": s.frame_size, "population": s.population,
                            "allocation": s.allocation})
                return
            console.print(s.summary())
            if design == "stratified":
                t = Table("stratum", "N", "n")
                for h in sorted(s.population):
                    t.add_row(h, f"{s.population[h]:,}", str(s.allocation[h]))
                console.print(t)
            console.print(f"Next: crimeaudit review export {directory}")

    @app.command("plan")
    def plan(
        directory: Path = typer.Argument(None, help="Project folder (for population sizes)."),
        margin: float = typer.Option(0.02, help="Half-width wanted, as a proportion."),
        expected: float = typer.Option(0.85, help="Expected recording rate."),
        level: float = typer.Option(0.95, help="Confidence level."),
        assurance: float = typer.Option(
            0.8, help="Probability that the audit's interval achieves the margin."),
        strand: list[str] = typer.Option(["all", "violence"], "--strand", help="Strands."),
        population: int = typer.Option(None, help="Records in the population (no project)."),
        crime_share: float = typer.Option(None, help="Share of records that are crimes."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """How many records to audit so that the interval achieves a margin with a given
        assurance (the same Wilson interval estimate computes, no FPC)."""
        from crimeaudit.audit import plan_for_project, plan_sample_size
        from crimeaudit.audit.plan import ASSUMPTIONS, FORMULA

        with handle_errors():
            if directory is not None:
                with open_project(directory) as p:
                    plans = plan_for_project(p, margin, expected, level, tuple(strand),
                                             crime_share, assurance)
            else:
                plans = [plan_sample_size(margin, expected, level, population,
                                          crime_share or 1.0, assurance=assurance)]
            if json_out:
                print_json([x.to_dict() for x in plans])
                return
            t = Table(title=f"Sample size for +/-{100 * margin:.1f} points at "
                            f"{100 * expected:.0f}% ({100 * level:.0f}% level, "
                            f"{100 * assurance:.0f}% assurance)")
            for col in ("scope", "records to audit", "crimes needed", "assurance",
                        "n0 (average)", "population", "crime share"):
                t.add_column(col)
            for x in plans:
                t.add_row(x.scope, f"{x.n_records:,}" + ("" if x.reachable else " (all)"),
                          f"{x.n_crimes:,}", f"{100 * x.achieved:.1f}%", f"{x.n_infinite:,}",
                          f"{x.population:,}" if x.population else "infinite",
                          f"{x.crime_share:.2f}")
            console.print(t)
            for x in plans:
                if not x.reachable:
                    err_console.print(styled(
                        ("warning", "yellow"),
                        f" {x.scope}: the margin cannot be reached with "
                        f"{100 * assurance:.0f}% assurance even by auditing every record"))
            console.print(f"Method: {FORMULA}  (z = {plans[0].z:.3f})")
            console.print(f"Assumes: {ASSUMPTIONS}. n0 is the textbook size, which reaches "
                          "the margin in about half of audits.")

    @review.command("export")
    def review_export(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        sample_id: str = typer.Option(None, "--sample", help="Sample id (default: latest)."),
        out: Path = typer.Option(None, help="Folder for the sheets (default DIR/review)."),
    ) -> None:
        """Write the review sheet (CSV and XLSX) for a sample."""
        from crimeaudit.audit import export_review

        with open_project(directory) as p:
            paths = export_review(p, sample_id, out, progress=progress())
            console.print(f"Wrote {paths['csv']}\nWrote {paths['xlsx']}")

    @review.command("import")
    def review_import(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        sheet: Path = typer.Argument(..., help="Completed sheet (.csv or .xlsx)."),
        sample_id: str = typer.Option(None, "--sample", help="Sample id (default: the sheet's)."),
        auditor: str = typer.Option(None, help="Auditor for rows with an empty auditor column."),
        corrections: bool = typer.Option(
            False, help="The sheet corrects some records only (no row needed for the others)."),
        force: bool = typer.Option(
            False, "--force", help="Import even if newer decisions exist on the sheet's records "
                                   "(they are superseded; the default refuses a stale sheet)."),
        json_out: bool = typer.Option(False, "--json", help="Print what was stored as JSON."),
    ) -> None:
        """Validate a completed sheet and store its decisions (all or nothing).

        Blank rows are records not yet reviewed, so a partly done sheet imports. A sheet
        exported before newer decisions on its records is refused unless --force.
        """
        from crimeaudit.audit import import_review
        from crimeaudit.cli.inputs import check_review_sheet

        with handle_errors():
            check_review_sheet(sheet)
        with open_project(directory) as p:
            r = import_review(p, sheet, sample_id, auditor, corrections,
                              progress=None if json_out else progress(), force=force)
            if json_out:
                print_json(dataclasses.asdict(r))
                return
            console.print(r.summary())

    @app.command("status")
    def status(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Each sample's progress: decided, undecided, cannot tell, by auditor."""
        from crimeaudit.audit.status import audit_status

        with open_project(directory) as p:
            df = audit_status(p)
            dangling, some = p.engine.record_versions().dangling_references()
        if json_out:
            print_json(df.to_dict("records"))
            return
        if dangling:
            console.print(Text(f"{dangling} crimes point at incidents not loaded (such as "
                               f"{', '.join(some)}): ingest those incidents, or they stay "
                               f"unlinked"))
        if df.empty:
            console.print("No sample has been drawn yet: crimeaudit sample DIR --seed N")
            return
        # Fits 80 columns: ids and counts never wrap; only the auditor list may.
        t = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
        for col in ("sample", "frame", "size", "decided", "undecided", "cannot tell",
                    "2nd reviews", "by auditor"):
            t.add_column(col, no_wrap=col != "by auditor",
                         justify="left" if col in ("sample", "frame", "by auditor") else "right")
        for r in df.itertuples(index=False):
            who = ", ".join(f"{k} {v}" for k, v in r.by_auditor.items()) or "-"
            t.add_row(r.sample_id, r.frame, str(r.size), str(r.decided), str(r.undecided),
                      str(r.cannot_tell), str(r.second_reviews), who)
        console.print(t)

    @review.command("oracle")
    def review_oracle(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        sample_id: str = typer.Option(None, "--sample", help="Sample id (default: latest)."),
        error_rate: float = typer.Option(0.0, help="Probability of flipping each decision."),
        seed: int = typer.Option(0, help="Seed for the auditor's errors."),
        second_share: float = typer.Option(
            0.0, help="Share of records reviewed again, blind, by a second auditor (with the "
                      "same error rate); disagreements are adjudicated. 0.1 = a 10% double "
                      "review."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Decide every sampled record from the simulated ground truth."""
        from crimeaudit.audit import latest_decisions, oracle_review

        with open_project(directory) as p:
            r = oracle_review(p, sample_id, error_rate, seed,
                              progress=None if json_out else progress(),
                              second_share=second_share)
            second = latest_decisions(p, r.sample_id, review="second") if second_share else ()
            adjudicated = (latest_decisions(p, r.sample_id, review="adjudication")
                           if second_share else ())
            if json_out:
                print_json({**dataclasses.asdict(r), "error_rate": error_rate,
                            "second_reviews": len(second), "adjudicated": len(adjudicated)})
                return
            console.print(r.summary())
            if second_share:
                console.print(f"blind second review of {len(second)} records (every finding "
                              f"and {100 * second_share:g}% of the others); "
                              f"{len(adjudicated)} disagreements adjudicated")

    @app.command("estimate")
    def estimate_cmd(
        directory: Path = typer.Argument(..., help="The audit project folder."),
        by: list[str] = typer.Option([], "--by", help="strand and/or division."),
        level: float = typer.Option(None, help="Confidence level (default: project's)."),
        method: str = typer.Option(
            "auto", help="auto, wilson, clopper-pearson, linearised or ppi."),
        sample_id: str = typer.Option(None, "--sample", help="Sample id (default: latest)."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Recording rate, timeliness, classification, cancellations and unrecorded crimes."""
        from crimeaudit.audit import estimate
        from crimeaudit.audit.measures import export_path

        with open_project(directory) as p:
            res = estimate(p, sample_id, tuple(by), level, method,
                           progress=None if json_out else progress())
            if json_out:
                typer.echo(res.to_json())
                return
            console.print(estimates_table(res.estimates, res.level))
            # A figure quoted without its caveat is a wrong figure: show every warning here too.
            for e in res.estimates:
                for warning in e.warnings:
                    err_console.print(styled(("warning", "yellow"),
                                             f" {e.measure} ({e.scope}): {warning}"))
            console.print(f"Stored in the project (run {res.run_id}); exported to "
                          f"{export_path(p, res)}")


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        from crimeaudit.audit import AuditError

        raise AuditError(f"{text!r} is not a date (YYYY-MM-DD)") from None

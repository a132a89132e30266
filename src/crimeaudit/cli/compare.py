"""CLI verb of the comparison stage: ``crimeaudit compare A B ... [--counts FILE] [--pairs]``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from crimeaudit.cli.common import console, err_console, handle_errors


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _p(p: float | None) -> str:
    if p is None or p != p:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _table(title: str, columns: list[str], right: set[str]) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left", overflow="fold")
    return t


SHORT = {"recording_rate": "recording rate", "unrecorded_per_year": "unrecorded a year",
         "timeliness": "within time limit", "classification_accuracy": "correctly classified",
         "cancellation_wrong": "cancellations wrong", "victim_told": "victims told"}


def _fig(e) -> str:
    """Two lines: the figure, then its interval (keeps the table inside 80 columns)."""
    if e.unit == "proportion":
        return f"{_pct(e.estimate)}\n{100 * e.lower:.1f}-{100 * e.upper:.1f}"
    return f"{e.estimate:,.0f}\n{e.lower:,.0f}-{e.upper:,.0f}"


def _print_pair(res) -> None:
    t = _table(f"A: {res.a.label}\nB: {res.b.label}\n(differences B - A, "
               f"{100 * res.level:.0f}% intervals)",
               ["figure", "A", "B", "B - A", "p"], {"A", "B", "B - A", "p"})
    for d in res.differences:
        if d.unit == "proportion":
            diff = f"{_pts(d.difference)}\n{_pts(d.lower)} to {_pts(d.upper)}"
        else:
            diff = f"{d.difference:+,.0f}\n{d.lower:+,.0f} to {d.upper:+,.0f}"
        name = SHORT.get(d.measure, d.measure)
        t.add_row(name if d.scope == "all" else f"{name}\n{d.scope}", _fig(d.a), _fig(d.b),
                  diff, _p(d.p_value))
    console.print(t)
    from crimeaudit.comparison.difference import METHODS

    for m in sorted({d.method for d in res.differences}):
        console.print(f"Method {m}: {METHODS[m]}.")
    for d in res.differences:
        if d.scope == "all" and d.measure in ("recording_rate", "unrecorded_per_year"):
            console.print(d.sentence)


def _print_areas(res) -> None:
    t = _table(f"League table: {res.measure} [{res.scope}], {100 * res.level:.0f}% intervals",
               ["rank", "area", "rate", "interval", "n", "funnel"],
               {"rank", "rate", "interval", "n"})
    for i, a in enumerate(res.areas, start=1):
        t.add_row(str(i), a.area, _pct(a.estimate), f"{_pct(a.lower)}-{_pct(a.upper)}",
                  f"{a.n:,}", res.positions[a.area])
    console.print(t)
    console.print(f"Funnel: pooled rate {_pct(res.funnel.target)}; {res.funnel.describe()}.")
    console.print(f"Outside the 95% limits: {', '.join(res.outside(0.95)) or 'none'}; "
                  f"outside the 99.8% limits: {', '.join(res.outside(0.998)) or 'none'}.")
    if res.pairs is not None:
        name = "Holm" if res.adjust == "holm" else "BH"
        p = _table(f"Pairs (B - A), p adjusted by {name}",
                   ["A", "B", "B - A", "interval", "p", "adj. p"],
                   {"B - A", "interval", "p", "adj. p"})
        for d in res.pairs:
            p.add_row(d.label_a, d.label_b, _pts(d.difference),
                      f"{_pts(d.lower)} to {_pts(d.upper)}", _p(d.p_value), _p(d.p_adjusted))
        console.print(p)


def _print_trend(res) -> None:
    t = _table(f"Trend: {res.measure} [{res.scope}], {100 * res.level:.0f}% intervals",
               ["audit", "rate", "interval", "n", "p-chart limits", "outside"],
               {"rate", "interval", "n"})
    for i, (a, e) in enumerate(zip(res.audits, res.figures, strict=True)):
        c = res.control.points[i] if res.control else None
        t.add_row(a.label, _pct(e.estimate), f"{_pct(e.lower)}-{_pct(e.upper)}", f"{e.n:,}",
                  f"{_pct(c['lower'])}-{_pct(c['upper'])}" if c else "",
                  ("yes" if c["outside"] else "no") if c else "")
    console.print(t)
    for d in res.steps:
        console.print(f"{d.sentence} (p {_p(d.p_value)}, {d.method})")
    h = res.homogeneity
    console.print(f"No change over all audits: Q = {h['q']:.2f} on {h['df']} df, "
                  f"p {_p(h['p'])}.")


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare_cmd(
        audits: list[str] = typer.Argument(
            None, help="Audit project folders, DIR or DIR@SAMPLE. Two give a comparison, "
                       "figure by figure; one project with several samples or several audits "
                       "of one force give a trend; several forces a league table."),
        counts: Path = typer.Option(
            None, "--counts", help="CSV of published figures: area,recorded,should_have_been "
                                   "or area,rate,half_width,n."),
        pairs: bool = typer.Option(False, "--pairs", help="Compare every pair of areas "
                                                           "(multiplicity-adjusted p)."),
        as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
        out: Path = typer.Option(None, "--out", help="Folder to write compare.html (charts, "
                                                     "offline) and compare.json into."),
        sample: list[str] = typer.Option(None, "--sample",
                                         help="Samples of the one project to compare."),
        kind: str = typer.Option("auto", help="auto, pair, trend or areas."),
        measure: str = typer.Option(None, help="Measure (default: every shared one for two "
                                               "audits, recording_rate otherwise)."),
        scope: str = typer.Option(None, help="Scope: all, a strand, or division=NAME."),
        level: float = typer.Option(0.95, help="Confidence level of the intervals."),
        adjust: str = typer.Option("holm", help="Pairs' p-value adjustment: holm or bh."),
        dispersion: str = typer.Option("additive", help="Funnel over-dispersion: additive, "
                                                        "multiplicative or none."),
        method: str = typer.Option(None, help="Use the stored estimates of this method."),
    ) -> None:
        """Compare audits, forces or published figures: did the rate change, who stands out."""
        from crimeaudit.comparison import compare, write_page

        with handle_errors():
            res = compare(*(audits or []), counts=counts, samples=sample or None, kind=kind,
                          measure=measure, scope=scope, level=level, pairs=pairs,
                          adjust=adjust, dispersion=dispersion, method=method)
            paths = write_page(res, out) if out else None
        if as_json:
            typer.echo(res.to_json())
        else:
            {"pair": _print_pair, "areas": _print_areas, "trend": _print_trend}[res.kind](res)
            for w in res.warnings:
                console.print(f"WARNING: {w}")
            for n in res.notes:
                console.print(f"Note: {n}")
        if paths:
            err_console.print(f"Wrote {paths['html']}\nWrote {paths['json']}")

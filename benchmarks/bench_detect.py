"""Validate the detectors by simulation: false alarms, power, and speed; and the public data.

    .venv/bin/python benchmarks/bench_detect.py power [--forces 200] [--crimes 40000]
    .venv/bin/python benchmarks/bench_detect.py speed [--incidents 1000000]
    .venv/bin/python benchmarks/bench_detect.py simulated [--forces 20] [--incidents 150000]
    .venv/bin/python benchmarks/bench_detect.py public [--out DIR]

``power``: for each record-level test, ``--forces`` compliant forces and as many with the effect
injected at its documented size; a force "raises a finding" when the test gives any unit
q < 0.05 (BH over that test's units in that force). Forces are calibration forces from
``crimeaudit.detect.calibration`` (the record-level tables drawn directly: the full simulator
was not available when this ran, and hundreds of whole-force simulations would not fit the
shared machine). Also: a whole run (every test, BH across all) on compliant forces, and the
break test on synthetic stationary rolling 12-month series.

``speed``: ``crimeaudit detect`` (load from the store, every test, write findings) on a force of
``--incidents`` incidents simulated by ``crimeaudit.simulate`` (kent-2013), against a force a
tenth the size measured in the same run.

``public``: every applicable test on /work/shared/data (the worked example's numbers).
Writes benchmarks/results/detect*.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from crimeaudit.detect import DetectInput, run_detection
from crimeaudit.detect.breaks import break_tests
from crimeaudit.detect.bunching import bunching_tests
from crimeaudit.detect.calibration import Injection, calibration_force
from crimeaudit.detect.cancellations import cancellation_tests
from crimeaudit.detect.deferral import deferral_tests
from crimeaudit.detect.downgrading import reclassification_tests
from crimeaudit.detect.multiplicity import bh_adjust
from crimeaudit.detect.period_end import period_end_records
from crimeaudit.detect.targets import parse_targets

RESULTS = Path(__file__).parent / "results"
QUARTER_ALL = parse_targets({"targets": [{"strand": "all", "period": "quarter"}]})

# (test, injected effect as stated in the table, injection, function, declared targets)
CASES = [
    ("period_end (cancellations)",
     "cancellation rate x2 in the last 3 days of each quarter",
     Injection(cancel_multiplier=2.0, period="quarter", last_days=3),
     lambda d: [f for f in period_end_records(d, 3) if f.unit.startswith("cancellations")],
     QUARTER_ALL),
    ("deferral",
     "10% of reports in the last 3 days of a quarter recorded after it ends",
     Injection(deferral_probability=0.10, period="quarter", last_days=3),
     lambda d: deferral_tests(d, 3), QUARTER_ALL),
    ("downgrading",
     "10% of violent crimes in one division (of 6) downgraded",
     Injection(downgrade_share=0.10, downgrade_division="D3"),
     reclassification_tests, None),
    ("bunching",
     "10% of shoplifting values in [200, 600) moved to [180, 200)",
     Injection(bunching_share=0.10), lambda d: bunching_tests(d, n_boot=0), None),
]


def _raised(findings) -> bool:
    q = bh_adjust([f.p_value for f in findings])
    return any(x < 0.05 for x in q)


def _data(n, seed, injection, targets):
    t = calibration_force(n_crimes=n, seed=seed, injection=injection)
    data = DetectInput.from_frames(crimes=t["crimes"], changes=t["classification_changes"])
    if targets is not None:
        data.targets = targets
    return data


def _wilson(k: int, n: int) -> str:
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, method="wilson")
    return f"{100 * k / n:.1f}% ({100 * lo:.1f}-{100 * hi:.1f})"


def stationary_rolling_false_alarms(series: int = 400, seed: int = 1) -> tuple[int, int]:
    """Break test on areas whose share of national never changes (rolling 12-month totals)."""
    rng = np.random.default_rng(seed)
    ends = pd.date_range("2007-03-31", "2018-12-31", freq="QE")
    rows = []
    areas = [f"A{i}" for i in range(series // 4)]
    for offence in ("o1", "o2", "o3", "o4"):
        season = 1 + 0.1 * np.sin(2 * np.pi * np.arange(len(ends) + 3) / 4)
        trend = np.exp(np.linspace(0, -0.4, len(ends) + 3))
        for a in areas:
            size = rng.uniform(300, 3000)
            # Flows with AR(1) noise in the share: persistent but no break.
            ar = np.zeros(len(ends) + 3)
            for i in range(1, ar.size):
                ar[i] = 0.5 * ar[i - 1] + rng.normal(0, 0.03)
            flows = rng.poisson(size * season * trend * np.exp(ar))
            rolling = np.convolve(flows, np.ones(4), "valid")
            rows += [{"source": "synthetic", "area": a, "offence": offence,
                      "period_end": e, "period_type": "rolling_12m", "count": float(r),
                      "adjustment": False, "offence_group": None, "period_start": e}
                     for e, r in zip(ends, rolling, strict=True)]
    counts = pd.DataFrame(rows)
    found = break_tests(DetectInput.from_frames(counts=counts))
    q = bh_adjust([f.p_value for f in found])
    return sum(x < 0.05 for x in q), len(found)


def power(forces: int, crimes: int, whole_runs: int) -> None:
    warnings.simplefilter("ignore")
    lines = ["# Detect: false alarms and power", "",
             f"Calibration forces of {crimes:,} crimes over two years (about "
             f"{crimes * 5 // 2:,} incidents), 6 divisions, 120 officers, 3% cancelled, 2% "
             "honestly reclassified (half up, half down). A force *raises a finding* when the "
             "test gives any unit q < 0.05 (Benjamini-Hochberg over that test's units). "
             f"{forces} compliant and {forces} injected forces per test; 95% Wilson intervals.",
             "", "| test | injected effect (size used) | targets declared | false alarms "
             "(compliant) | power (injected) | median s per force |",
             "|---|---|---|---|---|---|"]
    t_all = time.perf_counter()
    for name, effect, inj, fn, targets in CASES:
        fa = pw = 0
        times = []
        for i in range(forces):
            t0 = time.perf_counter()
            fa += _raised(fn(_data(crimes, 10_000 + i, None, targets)))
            pw += _raised(fn(_data(crimes, 20_000 + i, inj, targets)))
            times.append((time.perf_counter() - t0) / 2)
        tg = "quarter, all crime" if targets is not None else "none"
        lines.append(f"| {name} | {effect} | {tg} | {_wilson(fa, forces)} | "
                     f"{_wilson(pw, forces)} | {statistics.median(times):.2f} |")
        print(lines[-1], flush=True)
    # Cancellation funnels: the false-alarm side (a compliant force has no odd unit).
    fa = sum(_raised(cancellation_tests(_data(crimes, 30_000 + i, None, None)))
             for i in range(forces))
    lines.append(f"| cancellations (funnels by strand, division, officer) | none (false-alarm "
                 f"check only) | none | {_wilson(fa, forces)} | - | - |")
    print(lines[-1], flush=True)
    # Whole runs: every test, BH across all of them, no targets declared.
    fa = 0
    for i in range(whole_runs):
        run = run_detection(_data(crimes, 40_000 + i, None, None))
        fa += bool(run.significant())
    lines += ["", f"Whole run (`run_detection`, every record-level test, BH across all, no "
              f"targets) on {whole_runs} compliant forces: any finding at q < 0.05 in "
              f"{_wilson(fa, whole_runs)} of forces.", ""]
    k, n = stationary_rolling_false_alarms()
    lines += [f"Recording-practice breaks on {n} synthetic areas whose share of national never "
              "changes (quarterly rolling 12-month totals, AR(1) noise in the share, national "
              f"trend and season): {k} flagged at q < 0.05 ({100 * k / max(n, 1):.1f}%).", "",
              f"Total time {time.perf_counter() - t_all:,.0f} s."]
    (RESULTS / "detect.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def speed(incidents: int) -> None:
    """``detect_project`` on simulated kent-2013 forces of ``incidents`` and a tenth of it."""
    from crimeaudit.detect import detect_project
    from crimeaudit.simulate import simulate
    from crimeaudit.store.project import Project

    warnings.simplefilter("ignore")
    out = []
    for n_inc in (incidents // 10, incidents):
        t0 = time.perf_counter()
        sim = simulate("kent-2013", seed=7, n_incidents=n_inc)
        sim_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "force"
            with Project.init(d) as p:
                for name in ("incidents", "crimes", "classification_changes"):
                    p.engine.write(name, sim.tables[name])
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                run = detect_project(d)
                times.append(time.perf_counter() - t0)
        n_cr = sim.tables["crimes"].num_rows
        out.append((n_inc, n_cr, statistics.median(times), len(run.findings),
                    len(run.significant()), sim_s))
        print(out[-1], flush=True)
    base = out[0][2]
    lines = ["# Detect: speed", "",
             "`detect_project` (read incidents, crimes and classification changes from the "
             "DuckDB store, run every applicable test, write table `findings` and "
             "`reports/findings.json`), median of 3 runs, on forces simulated with "
             "`crimeaudit.simulate` (scenario kent-2013, seed 7). Shared 2-core machine; "
             "simulation time not included.", "",
             "| incidents | crime records | median seconds | findings | q < 0.05 | "
             "ratio to 100k baseline |", "|---|---|---|---|---|---|"]
    for n_inc, n_cr, sec, nf, ns, _ in out:
        lines.append(f"| {n_inc:,} | {n_cr:,} | {sec:.1f} | {nf:,} | {ns:,} | "
                     f"{sec / base:.2f} |")
    lines += ["", "Target: under 120 s for a 1M-incident force."]
    (RESULTS / "detect-speed.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


SIM_INJECTION = {
    "target_pressure": {"strands": ["all"], "period": "quarter", "last_days": 3,
                        "cancellation_multiplier": 2.0, "deferral_probability": 0.10},
    "bunching": [{"offences": ["46"], "threshold": 200, "share": 0.10}],
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def simulated(forces: int, incidents: int) -> None:
    """Cross-check on whole simulated forces: compliant against all mechanisms injected."""
    from crimeaudit.simulate import Scenario, load_scenario, simulate

    warnings.simplefilter("ignore")
    base = load_scenario("compliant").model_dump(mode="json")
    over = dict(SIM_INJECTION)
    divisions = [dict(d) for d in base["divisions"]]
    divisions[2]["downgrading"] = {"violence": 0.10}  # East: 10% of violent crimes downgraded
    over["divisions"] = divisions
    injected = Scenario.model_validate(_merge(base, over))
    compliant = Scenario.model_validate(base)
    checks = [(name, fn, targets) for name, _, _, fn, targets in CASES]
    hits = {name: [0, 0] for name, _, _ in checks}
    t_all = time.perf_counter()
    for i in range(forces):
        for j, scen in enumerate((compliant, injected)):
            sim = simulate(scen, seed=100 + i, n_incidents=incidents)
            t = sim.tables
            for name, fn, targets in checks:
                data = DetectInput.from_frames(crimes=t["crimes"],
                                               changes=t["classification_changes"])
                if targets is not None:
                    data.targets = targets
                hits[name][j] += _raised(fn(data))
    lines = ["# Detect: cross-check on whole simulated forces", "",
             f"`crimeaudit.simulate`, {forces} forces of {incidents:,} incidents (one "
             "financial year) from the `compliant` scenario, and as many from the same "
             "scenario with every mechanism injected at once (scenario overrides: "
             "`target_pressure` on all strands, quarter, last 3 days, cancellation multiplier "
             "2, deferral probability 0.10; division East `downgrading: {violence: 0.10}`; "
             "`bunching` of offence 46 at 200, share 0.10). Each test is judged on its own "
             "findings (BH over its units).", "",
             "| test | false alarms (compliant) | power (injected) |", "|---|---|---|"]
    for name, (fa, pw) in hits.items():
        lines.append(f"| {name} | {_wilson(fa, forces)} | {_wilson(pw, forces)} |")
    lines += ["", f"Total time {time.perf_counter() - t_all:,.0f} s."]
    (RESULTS / "detect-simulated.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _scaffold():
    """The public-data loaders (test scaffolding) in tests/test_detect_public.py."""
    path = Path(__file__).parent.parent / "tests" / "test_detect_public.py"
    spec = importlib.util.spec_from_file_location("detect_public_scaffold", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def public(out: Path | None) -> None:
    warnings.simplefilter("ignore")
    s = _scaffold()
    counts = pd.concat([s.ons_counts(), s.mps_counts(), s.lapd_counts()], ignore_index=True)
    t0 = time.perf_counter()
    agg = run_detection(DetectInput.from_frames(counts=counts))
    city = run_detection(DetectInput.from_frames(
        crimes=s.police_uk_crimes("later-release"),
        previous_crimes=s.police_uk_crimes("earlier-release")))
    took = time.perf_counter() - t0
    lines = ["# Detect on the real public data", "",
             f"Counts: ONS rec-crime-pfa, MPS borough monthly (two files), LAPD 2020 sample; "
             f"records: the two City of London data.police.uk releases. {took:.0f} s.", ""]
    for label, run in (("public counts", agg), ("City of London releases", city)):
        lines += [f"## {label}", "", f"Tests run: {', '.join(run.tests_run)}; skipped: "
                  + "; ".join(f"{k} ({v})" for k, v in run.skipped.items()), "",
                  "| test | units tested | q < 0.05 |", "|---|---|---|"]
        df = pd.DataFrame([{"test": f.test, "sig": f.q_value < 0.05} for f in run.findings])
        for test, g in df.groupby("test"):
            lines.append(f"| {test} | {len(g):,} | {int(g['sig'].sum()):,} |")
        lines += ["", "Strongest findings:", ""]
        for f in run.significant()[:15]:
            lines.append(f"- [{f.test}] {f.sentence} (q={f.q_value:.2g})")
        lines.append("")
    (RESULTS / "detect-public.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for label, run in (("counts", agg), ("city", city)):
            (out / f"findings-{label}.json").write_text(json.dumps(
                [f.to_dict() for f in run.findings], default=str), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("power")
    p.add_argument("--forces", type=int, default=200)
    p.add_argument("--crimes", type=int, default=40000)
    p.add_argument("--whole-runs", type=int, default=50)
    s = sub.add_parser("speed")
    s.add_argument("--incidents", type=int, default=1_000_000)
    m = sub.add_parser("simulated")
    m.add_argument("--forces", type=int, default=20)
    m.add_argument("--incidents", type=int, default=150_000)
    u = sub.add_parser("public")
    u.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if args.cmd == "power":
        power(args.forces, args.crimes, args.whole_runs)
    elif args.cmd == "speed":
        speed(args.incidents)
    elif args.cmd == "simulated":
        simulated(args.forces, args.incidents)
    else:
        public(args.out)


if __name__ == "__main__":
    sys.exit(main())

"""Validate the detectors by simulation: false alarms, power, and speed; and the public data.

    .venv/bin/python benchmarks/bench_detect.py simulated [--forces 200] [--incidents 0]
        [--workers 2] [--log FILE] [--first-seed 1000]
    .venv/bin/python benchmarks/bench_detect.py simulated-table FILE [--incidents 0]
    .venv/bin/python benchmarks/bench_detect.py power [--forces 200] [--crimes 40000]
    .venv/bin/python benchmarks/bench_detect.py speed [--incidents 1000000]
    .venv/bin/python benchmarks/bench_detect.py public [--out DIR]

``simulated`` (the headline validation): for each seed, a whole force from
``crimeaudit.simulation``'s ``compliant`` scenario and one from the same scenario with every
mechanism injected by scenario overrides; each check of :data:`SIM_CHECKS` runs on both, and a
force "raises a finding" when the check gives any unit q < 0.05 (BH over that check's units).
``--incidents 0`` is the scenario's own volume (600 a day for a financial year, about 220,000
incidents). Parallel over ``--workers`` processes; ``--log`` appends one JSON line per seed and
is resumable (seeds already in it are skipped), ``simulated-table`` rewrites the table from it.

``power``: the same record-level checks on calibration forces from
``crimeaudit.detect.calibration`` (record-level tables drawn directly: cheap, but not the
project's simulator), plus whole runs on compliant forces and the break test on synthetic
stationary rolling 12-month series.

``speed``: ``crimeaudit detect`` (load from the store, every test, write findings) on a force of
``--incidents`` incidents simulated by ``crimeaudit.simulation`` (kent-2013), against a force a
tenth the size measured in the same run.

``public``: each public source in /work/shared/data ingested through its profile into its own
project, then ``detect_project`` (the worked example's numbers).
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
from crimeaudit.detect.bunching import bunching_tests, thresholds_from
from crimeaudit.detect.calibration import Injection, calibration_force
from crimeaudit.detect.cancellations import cancellation_tests
from crimeaudit.detect.deferral import deferral_tests
from crimeaudit.detect.displacement import incident_displacement
from crimeaudit.detect.downgrading import pair_ratio_tests, reclassification_tests
from crimeaudit.detect.period_end import period_end_records
from crimeaudit.detect.targets import parse_targets
from crimeaudit.uncertainty import bh_adjust

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
    from crimeaudit.simulation import simulate
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
             "`crimeaudit.simulation` (scenario kent-2013, seed 7). Shared 2-core machine; "
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
SIM_DOWNGRADE = ("East", {"violence": 0.10})

# (test, injected effect as stated in the table, runs on a DetectInput). Each is run the way a
# user runs it: with the targets file declaring the quarter for the two period tests, and with
# no targets file (every period and strand tested, BH over all of them; marked *, run on every
# UNTARGETED_EVERY-th seed only, to keep the run within the shared machine's budget). Checks
# with no effect injected run on the compliant forces only.
UNTARGETED_EVERY = 4
SIM_CHECKS = [
    ("period_end (cancellations), quarter target declared",
     "cancellation rate x2 in the last 3 days of each quarter",
     lambda d: [f for f in period_end_records(_with(d, QUARTER_ALL), 3)
                if f.unit.startswith("cancellations")]),
    ("period_end (all measures), no targets *",
     "cancellation rate x2 in the last 3 days of each quarter",
     lambda d: period_end_records(d, 3)),
    ("deferral, quarter target declared",
     "10% of crimes due in the last 3 days of a quarter recorded 0.5-48 h after it ends",
     lambda d: deferral_tests(_with(d, QUARTER_ALL), 3)),
    ("deferral, no targets *",
     "10% of crimes due in the last 3 days of a quarter recorded 0.5-48 h after it ends",
     lambda d: deferral_tests(d, 3)),
    ("downgrading (reclassifications and pair ratios)",
     "10% of violent crimes in division East (1 of 4) downgraded",
     lambda d: reclassification_tests(d) + pair_ratio_tests(d)),
    ("bunching",
     "10% of shoplifting (46) values in [200, 400) moved to [180, 200)",
     lambda d: bunching_tests(d, thresholds_from(d), n_boot=0)),
    ("cancellations (funnels by strand, division, officer)", None, cancellation_tests),
    ("displacement (crimes per feeding incident)", None, incident_displacement),
]


def _with(data, targets):
    from dataclasses import replace

    return replace(data, targets=targets)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def simulated_scenarios():
    """The ``compliant`` scenario, and the same with every mechanism injected at once."""
    from crimeaudit.simulation import Scenario, load_scenario

    base = load_scenario("compliant").model_dump(mode="json")
    over = dict(SIM_INJECTION)
    divisions = [dict(d) for d in base["divisions"]]
    name, rates = SIM_DOWNGRADE
    for d in divisions:
        if d["name"] == name:
            d["downgrading"] = rates
    over["divisions"] = divisions
    return Scenario.model_validate(base), Scenario.model_validate(_merge(base, over))


def simulated_force(args) -> dict:
    """One seed: simulate the compliant and the injected force, run each check on both.

    Returns, per check and force kind, the smallest q (BH over that check's units).
    """
    seed, incidents, every = args
    from threadpoolctl import threadpool_limits

    from crimeaudit.simulation import simulate

    warnings.simplefilter("ignore")
    threadpool_limits(limits=1, user_api="blas")  # as run_detection does (small fits)
    out = {"seed": seed}
    for kind, scen in zip(("compliant", "injected"), simulated_scenarios(), strict=True):
        t0 = time.perf_counter()
        # incidents 0: the scenario's own volume (600 a day over its financial year).
        t = simulate(scen, seed=seed, n_incidents=incidents or None).tables
        out[f"{kind}:simulate_s"] = time.perf_counter() - t0
        data = DetectInput.from_frames(crimes=t["crimes"], incidents=t["incidents"],
                                       changes=t["classification_changes"])
        out[f"{kind}:crimes"] = data.facts["n_crimes"]
        out[f"{kind}:incidents"] = len(t["incidents"])
        for name, effect, fn in SIM_CHECKS:
            if (name.endswith("*") and seed % every) or (kind == "injected" and not effect):
                continue
            t0 = time.perf_counter()
            q = bh_adjust([f.p_value for f in fn(data)])
            out[f"{kind}:{name}"] = min((x for x in q if x == x), default=float("nan"))
            out[f"{kind}:{name}:s"] = time.perf_counter() - t0
    return out


def simulated(forces: int, incidents: int, workers: int, log: Path | None = None,
              first_seed: int = 1000) -> None:
    """Validation on whole simulated forces: ``forces`` compliant and ``forces`` injected."""
    import multiprocessing as mp

    compliant, _ = simulated_scenarios()
    t_all = time.perf_counter()
    rows = []
    if log is not None and log.exists():  # resume: seeds already in the log are not rerun
        rows = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x]
    done = {r["seed"] for r in rows}
    jobs = [(first_seed + i, incidents, UNTARGETED_EVERY) for i in range(forces)
            if first_seed + i not in done]
    with mp.get_context("spawn").Pool(workers) as pool:
        for r in pool.imap_unordered(simulated_force, jobs):
            rows.append(r)
            if log is not None:
                with log.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(r) + "\n")
            if len(rows) % 10 == 0:
                print(f"{len(rows)} forces, {time.perf_counter() - t_all:,.0f} s", flush=True)
    df = pd.DataFrame(rows).sort_values("seed")
    took = time.perf_counter() - t_all
    lines = simulated_table(df, incidents, compliant.period, took, workers, first_seed)
    (RESULTS / "detect-simulated.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def simulated_table(df, incidents, period, took, workers, first_seed) -> list[str]:
    n = len(df)
    crimes = int(df["compliant:crimes"].median())
    if "compliant:incidents" in df:
        incidents = int(df["compliant:incidents"].median())
    lines = ["# Detect: false alarms and power on whole simulated forces", "",
             f"Each force is simulated from incidents up by `crimeaudit.simulation`: {n} forces "
             f"of {incidents:,} incidents (one financial year, {period.start} to {period.end}; "
             f"median {crimes:,} crime records) from the `compliant` scenario, and {n} from "
             "the same scenario with every mechanism injected at once (scenario overrides: "
             "`target_pressure` on all strands, quarter, last 3 days, "
             "`cancellation_multiplier: 2`, `deferral_probability: 0.10`; division East "
             "`downgrading: {violence: 0.10}`; `bunching` of offence 46 at 200, share 0.10). "
             f"Seeds {first_seed} onwards; the same seed for the compliant and the injected "
             "force.", "",
             "A force *raises a finding* when the check gives any unit q < 0.05 "
             "(Benjamini-Hochberg over that check's units in that force). Target: false "
             "alarms <= 5% on compliant forces, power >= 80% on injected ones. 95% Wilson "
             "intervals.", "",
             "| test | effect injected (size used) | false alarms (compliant) | "
             "power (injected) | median s per force |", "|---|---|---|---|---|"]
    for name, effect, _ in SIM_CHECKS:
        comp = df[f"compliant:{name}"].dropna()
        fa = int((comp < 0.05).sum())
        power_cell = "- (none injected)"
        if effect:
            inj = df[f"injected:{name}"].dropna()
            power_cell = _wilson(int((inj < 0.05).sum()), len(inj))
        sec = statistics.median(df[f"compliant:{name}:s"].dropna())
        lines.append(f"| {name} | {effect or 'none (false-alarm check only)'} | "
                     f"{_wilson(fa, len(comp))} | {power_cell} | {sec:.2f} |")
    sim_s = statistics.median(df["compliant:simulate_s"])
    lines += ["", f"\\* run on every {UNTARGETED_EVERY}th seed only "
              f"({int(df[f'compliant:{SIM_CHECKS[1][0]}'].notna().sum())} forces of each kind).",
              "", f"Median simulation time per force {sim_s:.1f} s; total {took / 60:,.1f} min "
              f"over {workers} processes (nice 10) on a shared 2-core machine."]
    return lines


def _public_scaffold():
    """The public-data project builder of tests/test_detect_public.py (ingest profiles)."""
    path = Path(__file__).parent.parent / "tests" / "test_detect_public.py"
    spec = importlib.util.spec_from_file_location("detect_public", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PUBLIC_LABELS = {
    "ons": "ONS rec-crime-pfa (profile `ons-pfa`)",
    "mps": "MPS borough monthly, both files (profile `mps-borough-monthly`)",
    "lapd": "LAPD 2020 sample (profile `lapd`)",
    "city-later": "City of London, later release, against the earlier one "
                  "(profile `police-uk-street`, `--previous-release`)",
    "seattle": "Seattle call data, three beats 2010-2024 (profile `seattle-calls`)",
    "sf": "San Francisco incident reports, 2018-12 (profile `sf-incidents`)",
}
#: Areas whose own list the results show (``crimeaudit detect DIR --area NAME``).
PUBLIC_AREAS = {"ons": "Kent", "mps": "Westminster"}


def public(out: Path | None) -> None:
    """``crimeaudit ingest`` then ``crimeaudit detect`` on each public source."""
    from crimeaudit.detect import detect_project

    warnings.simplefilter("ignore")
    s = _public_scaffold()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        projects = s.build_public_projects(Path(tmp))
        ingest_s = time.perf_counter() - t0
        runs, took, sizes = {}, {}, {}
        for name in PUBLIC_LABELS:
            t0 = time.perf_counter()
            prev = projects["city-earlier"] if name == "city-later" else None
            runs[name] = detect_project(projects[name], previous_dir=prev)
            took[name] = time.perf_counter() - t0
            print(name, runs[name].summary(), f"{took[name]:.0f} s", flush=True)
            reports = projects[name] / "reports"
            sizes[name] = {f: (reports / f).stat().st_size for f in ("findings.json",
                                                                       "charts.json")}
    lines = ["# Detect on the real public data", "",
             "Each source ingested through its profile into its own project "
             "(`crimeaudit ingest DIR --profile ...`), then `crimeaudit detect DIR` "
             f"(every applicable test, BH across the project's findings). Ingest {ingest_s:.0f} s "
             f"for all {len(projects)} projects. Findings are ranked by evidence and effect "
             "together (docs/detect.md, Ranking); each sentence ends with its verdict once "
             "every test of the run counts.", "",
             "| project | findings | q < 0.05 | findings.json | charts.json | left out as "
             "structural |", "|---|---|---|---|---|---|"]
    for name in PUBLIC_LABELS:
        run = runs[name]
        lines.append(f"| {name} | {len(run.findings):,} | {len(run.significant()):,} | "
                     f"{sizes[name]['findings.json'] / 1e6:.2f} MB | "
                     f"{sizes[name]['charts.json'] / 1e6:.2f} MB | {len(run.excluded)} |")
    lines.append("")
    for name, label in PUBLIC_LABELS.items():
        run = runs[name]
        lines += [f"## {label}", "", f"Detect {took[name]:.0f} s. Tests run: "
                  f"{', '.join(run.tests_run) or 'none'}; skipped: "
                  + "; ".join(f"{k} ({v})" for k, v in run.skipped.items()), "",
                  "| test | units tested | q < 0.05 |", "|---|---|---|"]
        df = pd.DataFrame([{"test": f.test, "sig": f.q_value < 0.05} for f in run.findings],
                          columns=["test", "sig"])
        for test, g in df.groupby("test"):
            lines.append(f"| {test} | {len(g):,} | {int(g['sig'].sum()):,} |")
        if run.excluded:
            lines += ["", "Left out of comparisons they cannot take part in:", ""]
            why = {}
            for e in run.excluded:
                why.setdefault((e["area"], e["reason"]), []).append(e["test"])
            lines += [f"- {area} ({', '.join(sorted(set(t)))}): {reason}"
                      for (area, reason), t in why.items()]
        rel = run.facts.get("releases")
        if rel:
            lines += ["", "Release comparison (`crimeaudit releases`): "
                      + ", ".join(f"{k} {rel[k]:,}" for k in ("old_crimes", "matched",
                                                               "vanished", "new",
                                                               "type_changes",
                                                               "outcome_changes",
                                                               "period_changes"))
                      + f"; compared on {rel['compared_on']}. {rel['statement']}"]
        calls = run.facts.get("calls")
        if calls:
            lines += ["", "Calls-for-service measures (events of calls classified): "
                      + ", ".join(f"{k} {v['events']:,} of {v['of']:,}"
                                  for k, v in calls["measures"].items())]
        lines += ["", "Strongest findings (rank, test, area):", ""]
        for f in run.significant()[:10]:
            lines.append(f"- #{f.extra['rank']} [{f.test}, {f.extra.get('area')}] {f.sentence}")
        if name in PUBLIC_AREAS:
            area = PUBLIC_AREAS[name]
            lines += ["", f"`crimeaudit detect DIR --area {area}` (first five of "
                          f"{len(run.for_area(area))}):", ""]
            for f in run.for_area(area)[:5]:
                lines.append(f"- #{f.extra['rank']} [{f.test}] {f.sentence}")
        lines.append("")
    (RESULTS / "detect-public.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, run in runs.items():
            (out / f"findings-{name}.json").write_text(json.dumps(
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
    m.add_argument("--forces", type=int, default=200)
    m.add_argument("--incidents", type=int, default=100_000)
    m.add_argument("--workers", type=int, default=2)
    m.add_argument("--log", type=Path, default=None,
                   help="append one JSON line per seed; seeds already in it are skipped")
    m.add_argument("--first-seed", type=int, default=1000)
    t = sub.add_parser("simulated-table", help="rewrite the table from a simulated --log")
    t.add_argument("log", type=Path)
    t.add_argument("--incidents", type=int, default=100_000)
    t.add_argument("--minutes", type=float, default=float("nan"))
    t.add_argument("--first-seed", type=int, default=1000)
    u = sub.add_parser("public")
    u.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if args.cmd == "power":
        power(args.forces, args.crimes, args.whole_runs)
    elif args.cmd == "speed":
        speed(args.incidents)
    elif args.cmd == "simulated-table":
        compliant, _ = simulated_scenarios()
        df = pd.DataFrame([json.loads(x) for x in args.log.read_text().splitlines() if x])
        lines = simulated_table(df.sort_values("seed"), args.incidents, compliant.period,
                                60 * args.minutes, 2, args.first_seed)
        (RESULTS / "detect-simulated.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif args.cmd == "simulated":
        simulated(args.forces, args.incidents, args.workers, args.log, args.first_seed)
    else:
        public(args.out)


if __name__ == "__main__":
    sys.exit(main())

"""PPI++ against a simple random sample with Wilson intervals, on the simulated kent-2013 force.

Simulates ``kent-2013`` (``--incidents``, seed ``--seed``), scores every incident with the
screen's default model (trained on ``national-2014``, a different scenario and seed, as
``crimeaudit screen`` does at first use), then draws ``--reps`` simple random samples of
incidents per sample size. Labels come from ``truth_incidents``: ``discloses_crime`` (should a
crime have been recorded, S) and ``recorded`` (R). The target is the population's recording
rate ``sum(S R) / sum(S)``.

Per sample:

* **PPI++**: ``crimeaudit.screen.ppi.ppi_ratio`` (power-tuned lambda, delta-method interval)
  with the screen's ``p_crime`` on every incident and R known for every incident (as linkage
  gives it);
* **classical**: Wilson interval for the share recorded among the sample's should-record
  incidents.

Reported: coverage of the 95% interval, mean half-width, and the sample size each would need
for +/-2 points, scaling the sample size by ``(mean half-width / 0.02)^2``. Run::

    .venv/bin/python benchmarks/bench_ppi.py [--incidents 60000] [--reps 1000] [--n 1500]

Writes ``benchmarks/results/ppi.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from crimeaudit.screen.model import train_default
from crimeaudit.screen.ppi import ppi_ratio
from crimeaudit.screen.rules import load_rules
from crimeaudit.simulate import simulate

RESULTS = Path(__file__).parent / "results" / "ppi.md"
MARGIN = 0.02
LEVEL = 0.95


def wilson(x: np.ndarray, n: np.ndarray, level: float = LEVEL):
    """Wilson score interval for x successes out of n (vectorised)."""
    z = stats.norm.ppf(0.5 + level / 2)
    p = x / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def scored_force(scenario: str, seed: int, n_incidents: int):
    """(S, R, f) for every incident of a simulated force, f from the default screen model."""
    t0 = time.perf_counter()
    sim = simulate(scenario, seed=seed, n_incidents=n_incidents)
    t_sim = time.perf_counter() - t0
    inc = sim.tables["incidents"].to_pandas()
    truth = sim.tables["truth_incidents"].to_pandas().set_index("incident_id").loc[
        inc.incident_id]
    t0 = time.perf_counter()
    model = train_default()
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = load_rules().match(inc.narrative.tolist())
    f, _ = model.predict(inc.narrative.tolist(), inc.call_type.tolist(),
                         inc.closing_code.tolist(), hits)
    t_score = time.perf_counter() - t0
    s = truth.discloses_crime.to_numpy(dtype=bool)
    r = truth.recorded.to_numpy(dtype=bool)
    return s, r, np.asarray(f, float), {"simulate_s": t_sim, "train_default_s": t_train,
                                        "score_s": t_score}


def run_size(s, r, f, n: int, reps: int, rng) -> dict:
    truth = (s & r).sum() / s.sum()
    N = len(s)
    cov_p = cov_w = 0
    hw_p, hw_w, lams = [], [], []
    for _ in range(reps):
        idx = rng.choice(N, n, replace=False)
        res = ppi_ratio(s[idx], f[idx], r[idx], f, r, level=LEVEL)
        cov_p += res.lower <= truth <= res.upper
        hw_p.append(res.half_width)
        lams.append(res.lam)
        ns = s[idx].sum()
        x = (s[idx] & r[idx]).sum()
        lo, hi = wilson(np.array(x, float), np.array(ns, float))
        cov_w += lo <= truth <= hi
        hw_w.append((hi - lo) / 2)
    mp, mw = float(np.mean(hw_p)), float(np.mean(hw_w))
    need_p = n * (mp / MARGIN) ** 2
    need_w = n * (mw / MARGIN) ** 2
    return {"n": n, "truth": float(truth), "cov_ppi": cov_p / reps, "cov_wilson": cov_w / reps,
            "hw_ppi": mp, "hw_wilson": mw, "need_ppi": need_p, "need_wilson": need_w,
            "saving": 1 - need_p / need_w, "lam_median": float(np.median(lams))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="kent-2013")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--incidents", type=int, default=60_000)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--n", type=int, nargs="+", default=[1500])
    ap.add_argument("--sample-seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    s, r, f, timings = scored_force(args.scenario, args.seed, args.incidents)
    auc = roc_auc_score(s, f)
    rng = np.random.default_rng(args.sample_seed)
    rows = []
    for n in args.n:
        t1 = time.perf_counter()
        row = run_size(s, r, f, n, args.reps, rng)
        row["seconds"] = time.perf_counter() - t1
        rows.append(row)
        print(row, flush=True)
    total = time.perf_counter() - t0
    mc_se = 100 * np.sqrt(LEVEL * (1 - LEVEL) / args.reps)
    lines = [
        "# PPI++ against SRS + Wilson: recording rate on simulated kent-2013",
        "",
        "`benchmarks/bench_ppi.py`: scenario `{}`, seed {}, {:,} incidents ({:,} should have "
        "been recorded; true recording rate {:.4f}); screen = default model (trained on "
        "national-2014 seed 20140), ROC AUC {:.4f} on this force; {:,} simple random samples "
        "of incidents per size (sample seed {}); {:.0%} intervals. Half-widths are means over "
        "the samples; the size for +/-{:.0f} points scales n by (half-width / {})^2."
        .format(args.scenario, args.seed, len(s), int(s.sum()), rows[0]["truth"], auc,
                args.reps, args.sample_seed, LEVEL, MARGIN * 100, MARGIN),
        "",
        "| n | coverage PPI++ | coverage Wilson | half-width PPI++ | half-width Wilson | "
        "n for +/-2 pts PPI++ | n for +/-2 pts Wilson | fewer records | median lambda |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in rows:
        lines.append(
            f"| {w['n']:,} | {w['cov_ppi']:.1%} | {w['cov_wilson']:.1%} | {w['hw_ppi']:.4f} | "
            f"{w['hw_wilson']:.4f} | {w['need_ppi']:,.0f} | {w['need_wilson']:,.0f} | "
            f"{w['saving']:.0%} | {w['lam_median']:.2f} |")
    lines += [
        "",
        "Timings (one run, shared 2-core machine): simulate {:.1f} s, train default model "
        "{:.1f} s, score {:.1f} s, sampling {} s; total {:.1f} s.".format(
            timings["simulate_s"], timings["train_default_s"], timings["score_s"],
            ", ".join(f"{w['seconds']:.1f}" for w in rows), total),
        "",
        "Notes: R (recorded) is the simulator's truth for every incident, standing in for the "
        "`links` table (measured linkage precision 0.9997, recall 0.9985 on kent-2013 seed 7). "
        "Wilson is computed on the sample's should-record incidents with no finite-population "
        "correction, as a plain SRS audit would.",
        "",
        "Reading: the 'n for +/-2 pts' columns are extrapolations from each row's n; the PPI++ "
        "interval is a large-sample (delta-method) one, so check its coverage at the row whose "
        "n is nearest the size you would audit. Coverage is a Monte Carlo figure with standard "
        f"error about {mc_se:.1f} points at {args.reps:,} samples.",
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

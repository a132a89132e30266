"""Many auditors reviewing at once in the workbench, through HTTP, on SQLite and on PostgreSQL.

What a team does, end to end: ``crimeaudit simulate`` a force, ``init``, ``ingest``, ``link``,
``screen run`` and ``sample`` a project (each a ``crimeaudit`` process), add a lead and the
auditors (the accounts API ``crimeaudit users add`` calls, to skip 50 interpreter starts), start
``crimeaudit serve`` as its own process, let the lead share the sample among the auditors
through the web form, and then let reviewers work through HTTP for a bounded time. Each reviewer
logs in, opens the next record of its queue, posts a decision carrying a token of its own in the
notes, and follows the redirect to its next record.

Per store the run has two phases on the same server:

* **baseline** - one reviewer alone for ``--seconds`` (the latency with nobody else waiting);
* **load** - ``--reviewers`` (default 50) reviewers at once for ``--seconds``.

For each phase it reports requests, errors (any status but the expected 200/303), the 50th,
95th and 99th percentile latency of opening a record and of posting a decision, the decisions
per second, and the load phase's p95 as a ratio of the baseline's. After the server stops it
checks, through the public API and ``crimeaudit verify``, that every decision the server
accepted is stored exactly once (no token missing, none twice, none from a refused post) and
that the hash chain is intact. PostgreSQL comes from Debian's ``postgresql`` package, started
here on a free loopback port (``initdb``/``pg_ctl``, as the tests do); ``serve --db`` then keeps
the accounts and the decisions there.

Run::

    nice -n 15 .venv/bin/python benchmarks/bench_workbench.py [--reviewers 50] [--seconds 60]

It writes ``benchmarks/results/workbench.md`` and exits 1 if any decision was lost or doubled,
any request failed, or the chain is broken.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "workbench.md"
PASSWORD = "bench workbench password 2026"
NO_CRIME = {"should_record": "no", "cancellation_valid": "yes", "victim_told": "yes"}
CLI = [sys.executable, "-m", "crimeaudit"]


def crimeaudit(*args: str) -> str:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"crimeaudit {' '.join(args[:2])} failed: {r.stdout[-800:]}"
                         f"{r.stderr[-2000:]}")
    return r.stdout


def build_project(work: Path, incidents: int, size: int) -> tuple[Path, str]:
    """A linked, screened project with one drawn sample; cached in ``work``."""
    template = work / "template"
    done = work / "template.json"
    if done.exists():
        return template, json.loads(done.read_text())["sample_id"]
    data = work / "force"
    print(f"simulating {incidents:,} incidents and preparing the project ...", flush=True)
    if not (data / "manifest.json").exists():
        crimeaudit("simulate", "--scenario", "kent-2013", "--seed", "7", "--incidents",
                   str(incidents), "--out", str(data))
    shutil.rmtree(template, ignore_errors=True)  # a half-built one from an interrupted run
    crimeaudit("init", str(template))
    crimeaudit("ingest", str(template), "--profile", "canonical",
               *sorted(str(f) for f in data.glob("*.parquet")))
    crimeaudit("link", str(template))
    crimeaudit("screen", "run", str(template))
    crimeaudit("sample", str(template), "--design", "srs", "--size", str(size), "--seed", "1")
    sample_id = json.loads(crimeaudit("status", str(template), "--json"))[0]["sample_id"]
    done.write_text(json.dumps({"sample_id": sample_id}))
    return template, sample_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_tool(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


class Postgres:
    """A throwaway PostgreSQL server (trust auth, loopback only)."""

    def __init__(self) -> None:
        initdb, self.pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
        if not (initdb and self.pg_ctl):
            raise SystemExit("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.folder, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data = self.folder / "data"
        self.port = free_port()
        self._run(initdb, "-D", str(self.data), "-U", "bench", "--auth=trust", "-E", "UTF8")
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "-o", f"-p {self.port} -k {self.folder} -c "
                  "listen_addresses=127.0.0.1 -c max_connections=200", "start")
        self.url = f"postgresql://bench@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str) -> None:
        r = subprocess.run([*self.prefix, *cmd], capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise SystemExit(f"{cmd[0]} failed: {r.stderr[-500:]}")

    def stop(self) -> None:
        subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(self.folder, ignore_errors=True)


def add_accounts(project: Path, db: str | None, reviewers: int) -> list[str]:
    from crimeaudit.web.passwords import hash_password
    from crimeaudit.web.store import open_store

    store = open_store(project, db)
    pw = hash_password(PASSWORD)
    store.add_user("lead", "lead", pw)
    names = [f"auditor{i:02d}" for i in range(reviewers + 1)]
    for n in names:
        store.add_user(n, "auditor", pw)
    return names


class Server:
    def __init__(self, project: Path, db: str | None):
        self.port = free_port()
        self.log = open(project.parent / f"serve-{self.port}.log", "w")  # noqa: SIM115
        args = [*CLI, "serve", str(project), "--port", str(self.port)]
        if db:
            args += ["--db", db]
        self.proc = subprocess.Popen(["nice", "-n", "15", *args], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                httpx.get(self.url + "/login", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise SystemExit("serve did not start in 180 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(url: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=300, follow_redirects=False)
    page = c.get("/login")
    r = c.post("/login", data={"username": name, "password": PASSWORD,
                               "csrf_token": _csrf(page.text), "next": "/"})
    if r.status_code != 303:
        raise SystemExit(f"login of {name} failed: {r.status_code}")
    return c


class Reviewer(threading.Thread):
    """One auditor: open the next record of the queue, decide it, follow the redirect."""

    def __init__(self, url: str, name: str, sample_id: str, stop_at: list[float]):
        super().__init__(daemon=True)
        self.url, self.name, self.sample_id, self.stop_at = url, name, sample_id, stop_at
        self.opened: list[float] = []
        self.posted: list[float] = []
        self.errors: list[str] = []
        self.accepted: list[str] = []  # tokens of decisions the server said it stored
        self.refused: list[str] = []

    def run(self) -> None:
        c = self.client
        home = c.get("/").text
        links = re.findall(rf'/samples/{re.escape(self.sample_id)}/records/([^"?]+)\?review='
                           r'first', home)
        nxt = f"/samples/{self.sample_id}/records/{links[0]}?review=first" if links else None
        while nxt and time.monotonic() < self.stop_at[0]:
            t = time.perf_counter()
            page = c.get(nxt)
            self.opened.append(time.perf_counter() - t)
            if page.status_code != 200:
                self.errors.append(f"GET {page.status_code}")
                break
            seen = re.search(r'name="seen" value="(\d+)"', page.text).group(1)
            token = f"{self.name}-{uuid.uuid4().hex[:10]}"
            action = nxt.split("?")[0] + "/decide"
            t = time.perf_counter()
            r = c.post(action, data={"csrf_token": _csrf(page.text), "review": "first",
                                     "seen": seen, "notes": token, **NO_CRIME})
            self.posted.append(time.perf_counter() - t)
            if r.status_code == 303:
                self.accepted.append(token)
                loc = r.headers["location"]
                # The queue is done: decide its first record again (a correction).
                nxt = loc if "/records/" in loc else \
                    f"/samples/{self.sample_id}/records/{links[0]}?review=first"
            else:
                self.refused.append(token)
                self.errors.append(f"POST {r.status_code}")


def phase(url: str, names: list[str], sample_id: str, seconds: float) -> dict:
    stop_at = [float("inf")]
    crew = [Reviewer(url, n, sample_id, stop_at) for n in names]
    for r in crew:
        r.client = login(url, r.name)
    t0 = time.monotonic()
    stop_at[0] = t0 + seconds
    for r in crew:
        r.start()
    for r in crew:
        r.join()
    wall = time.monotonic() - t0
    for r in crew:
        r.client.close()
    opened = np.array([x for r in crew for x in r.opened])
    posted = np.array([x for r in crew for x in r.posted])

    def pct(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q)) if len(a) else float("nan")

    return {
        "reviewers": len(names), "wall_s": wall,
        "requests": int(len(opened) + len(posted)),
        "errors": sum(len(r.errors) for r in crew),
        "error_kinds": sorted({e for r in crew for e in r.errors}),
        "decisions": sum(len(r.accepted) for r in crew),
        "decisions_per_s": sum(len(r.accepted) for r in crew) / wall,
        "open_p50": pct(opened, 50), "open_p95": pct(opened, 95),
        "post_p50": pct(posted, 50), "post_p95": pct(posted, 95), "post_p99": pct(posted, 99),
        "accepted": [t for r in crew for t in r.accepted],
        "refused": [t for r in crew for t in r.refused],
    }


def check_record(project: Path, accepted: list[str], refused: list[str]) -> dict:
    """Every accepted decision stored exactly once, none refused stored, the chain intact."""
    import crimeaudit as ca
    from crimeaudit.audit import all_decisions

    with ca.Project.open(project) as p:
        d = all_decisions(p)
    notes = d.loc[d.source == "workbench", "notes"].dropna().tolist()
    counts: dict[str, int] = {}
    for n in notes:
        counts[n] = counts.get(n, 0) + 1
    lost = sum(1 for t in accepted if t not in counts)
    doubled = sum(1 for t, k in counts.items() if k > 1)
    stray = sum(1 for t in refused if t in counts) + sum(1 for t in counts
                                                         if t not in set(accepted))
    r = subprocess.run([*CLI, "verify", str(project)], capture_output=True, text=True)
    return {"stored": len(notes), "lost": lost, "doubled": doubled, "stray": stray,
            "chain_intact": r.returncode == 0, "verify": r.stdout.strip() or r.stderr.strip()}


def run_store(label: str, template: Path, sample_id: str, work: Path, reviewers: int,
              seconds: float, pg: Postgres | None) -> dict:
    project = work / f"project-{label}"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(template, project)
    db = None
    if pg:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg.url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        db = pg.url.rsplit("/", 1)[0] + f"/{name}"
    names = add_accounts(project, db, reviewers)
    server = Server(project, db)
    try:
        lead = login(server.url, "lead")
        page = lead.get(f"/samples/{sample_id}")
        r = lead.post(f"/samples/{sample_id}/assign",
                      data={"csrf_token": _csrf(page.text), "auditor": names})
        if r.status_code != 303:
            raise SystemExit(f"assigning failed: {r.status_code}")
        # Warm-up, not measured: the first view of a sample builds what every record page
        # shows (and imports the screen's rules), once per server.
        first = re.search(rf'/samples/{re.escape(sample_id)}/records/([^"?]+)',
                          lead.get(f"/samples/{sample_id}").text).group(1)
        if lead.get(f"/samples/{sample_id}/records/{first}?review=first").status_code != 200:
            raise SystemExit("the warm-up view failed")
        lead.close()
        print(f"  {label}: baseline, 1 reviewer for {seconds:.0f} s ...", flush=True)
        base = phase(server.url, names[:1], sample_id, seconds)
        print(f"  {label}: load, {reviewers} reviewers for {seconds:.0f} s ...", flush=True)
        load = phase(server.url, names[1:], sample_id, seconds)
    finally:
        server.stop()
    record = check_record(project, base["accepted"] + load["accepted"],
                          base["refused"] + load["refused"])
    shutil.rmtree(project, ignore_errors=True)
    return {"store": label, "baseline": base, "load": load, "record": record}


def table(results: list[dict]) -> str:
    head = ("| store | phase | reviewers | decisions | decisions/s | errors | open p50 s | "
            "open p95 s | decide p50 s | decide p95 s | decide p99 s | p95 / baseline p95 |")
    lines = [head, "|" + "---|" * 12]
    for r in results:
        for name in ("baseline", "load"):
            ph = r[name]
            ratio = ph["post_p95"] / r["baseline"]["post_p95"]
            lines.append(
                f"| {r['store']} | {name} | {ph['reviewers']} | {ph['decisions']} | "
                f"{ph['decisions_per_s']:.2f} | {ph['errors']} | {ph['open_p50']:.3f} | "
                f"{ph['open_p95']:.3f} | {ph['post_p50']:.3f} | {ph['post_p95']:.3f} | "
                f"{ph['post_p99']:.3f} | {ratio:.1f} |")
    lines += ["", "| store | decisions stored | lost | doubled | stored but refused | "
              "hash chain |", "|---|---|---|---|---|---|"]
    for r in results:
        c = r["record"]
        lines.append(f"| {r['store']} | {c['stored']} | {c['lost']} | {c['doubled']} | "
                     f"{c['stray']} | {'intact' if c['chain_intact'] else 'BROKEN'} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reviewers", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--incidents", type=int, default=5000)
    ap.add_argument("--size", type=int, default=1000, help="records in the sample")
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--work", type=Path, default=None, help="keep the project here")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-workbench-"))
    work.mkdir(parents=True, exist_ok=True)
    template, sample_id = build_project(work, a.incidents, a.size)
    results = []
    for label in a.stores.split(","):
        pg = Postgres() if label == "postgresql" else None
        try:
            results.append(run_store(label, template, sample_id, work, a.reviewers,
                                     a.seconds, pg))
        finally:
            if pg:
                pg.stop()
    load = os.getloadavg()
    text = [
        "# Workbench under load: concurrent reviewers through HTTP", "",
        f"`nice -n 15 .venv/bin/python benchmarks/bench_workbench.py --reviewers {a.reviewers} "
        f"--seconds {a.seconds:.0f} --incidents {a.incidents} --size {a.size}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, load average at the end {load[0]:.1f} (machine shared).", "",
        "One `crimeaudit serve` process per store (SQLite: `DIR/workbench.sqlite` and the "
        "project store; PostgreSQL: `--db`, accounts and decisions in the database). Baseline: "
        "one reviewer alone on the same server, just before the load phase. *open*: GET of a "
        "record's review page; *decide*: POST of a decision until the server's redirect. The "
        "server is warmed up first (the lead opens one record: the sample's record facts are "
        "built and the screen's rules imported once per server, ~5-15 s, not measured).", "",
        table(results), "",
    ]
    RESULTS.write_text("\n".join(text))
    print("\n".join(text))
    (work / "workbench.json").write_text(json.dumps(
        [{k: ({kk: vv for kk, vv in v.items() if kk not in ("accepted", "refused")}
              if isinstance(v, dict) else v) for k, v in r.items()} for r in results],
        indent=2))
    bad = any(r["record"]["lost"] or r["record"]["doubled"] or r["record"]["stray"]
              or not r["record"]["chain_intact"] or r["load"]["errors"] or
              r["baseline"]["errors"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

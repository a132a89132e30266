"""The same pipeline on both engines: DuckDB (the default) and PySpark give identical results.

A user who moves a project to Spark (``crimeaudit init --engine pyspark``) must get the same
counts, the same links, the same sample for the same seed, the same decisions, figures,
findings and report. Each command below runs through the CLI, on a small simulated force and on
real public files, once per engine, and the outputs are compared.

Spark needs Java 17 and ``pip install 'crimeaudit[spark]'``. Where they are missing these tests
skip, except where ``CRIMEAUDIT_REQUIRE_SPARK=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.engine import pyspark as spark_engine
from crimeaudit.store import Project

_why = spark_engine.spark_available()
if _why:
    if os.environ.get("CRIMEAUDIT_REQUIRE_SPARK") == "1":
        raise RuntimeError(f"CRIMEAUDIT_REQUIRE_SPARK=1 but Spark cannot start: {_why}")
    pytest.skip(f"Spark cannot start here: {_why}", allow_module_level=True)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ENGINES = ("duckdb", "pyspark")
FIX = Path(__file__).parent / "fixtures" / "ingest"
runner = CliRunner()


def ok(*args) -> str:
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.stdout


def _json(*args) -> dict:
    return json.loads(ok(*args, "--json"))


# What differs between any two runs (times, where files are) or names the engine itself.
_VOLATILE = re.compile(r"(_at|time|created|elapsed|seconds|path|file|dir|html|json|^engine)$")


def _difference(a, b, where: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ (None: nowhere). Numbers agree to a relative 1e-6:
    Splink's match probabilities differ by about 1e-8 between its DuckDB and Spark backends,
    and a 90th percentile of hours by a millisecond."""
    if isinstance(a, float) or isinstance(b, float):
        ok_ = (isinstance(a, int | float) and isinstance(b, int | float)
               and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12))
        return None if ok_ else f"{where}: {a!r} != {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where}: keys {sorted(set(a) ^ set(b))} in one only"
        return next((d for k in a if (d := _difference(a[k], b[k], f"{where}/{k}"))), None)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} != {len(b)} items"
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True))
                     if (d := _difference(x, y, f"{where}[{i}]"))), None)
    return None if a == b else f"{where}: {a!r} != {b!r}"


def _stable(value, root: str):
    """``value`` without what differs between two runs anywhere (times, the project's
    folder)."""
    if isinstance(value, dict):
        return {k: _stable(v, root) for k, v in value.items()
                if not (isinstance(k, str) and _VOLATILE.search(k))}
    if isinstance(value, list):
        return [_stable(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<project>")
    return value


def _table(project: Path, name: str, drop: tuple[str, ...] = ()) -> list[dict]:
    with Project.open(project) as p:
        if not p.engine.has_table(name):
            return []
        t = p.engine.to_pyarrow(p.engine.table(name))
    t = t.drop_columns([c for c in drop if c in t.column_names])
    rows = t.to_pylist()
    # (sorted on everything but the numbers, which agree to 1e-6 only)
    return sorted(rows, key=lambda r: json.dumps({k: v for k, v in r.items()
                                                   if not isinstance(v, float)},
                                                  sort_keys=True, default=str))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """kent-2013, 1,500 incidents, through every stage on each engine (CLI, one process)."""
    with pytest.MonkeyPatch.context() as mp:
        # One pseudonym key for both projects, so that their pseudonyms (and the version
        # hashes and links built on them) can be compared.
        mp.setenv("CRIMEAUDIT_PSEUDONYM_KEY", KEY)
        yield _run_both(tmp_path_factory.mktemp("engines"))


KEY = "engine-parity-test-key-0123456789abcdef"


def _run_both(tmp: Path) -> dict:
    force = tmp / "force"
    ok("simulate", "--scenario", "kent-2013", "--out", force, "--seed", "4",
       "--incidents", "1500")
    files = sorted(force.glob("*.parquet"))
    out = {}
    for engine in ENGINES:
        proj = tmp / engine
        ok("init", proj, "--engine", engine, "--name", "force")
        root = str(proj)
        out[engine] = {
            "dir": proj,
            "ingest": _stable(_json("ingest", proj, "--profile", "canonical", *files), root),
            "link": _stable(_json("link", proj), root),
            "screen": _stable(_json("screen", "run", proj), root),
        }
        out[engine]["sample"] = _stable(_json(
            "sample", proj, "--design", "stratified", "--by", "strand", "--size", "250",
            "--seed", "7"), root)
        out[engine]["oracle"] = _stable(_json(
            "review", "oracle", proj, "--error-rate", "0.02", "--second-share", "0.2",
            "--seed", "3"), root)
        out[engine]["estimate"] = _stable(_json("estimate", proj, "--by", "strand"), root)
        out[engine]["detect"] = _stable(_json("detect", proj), root)
        ok("report", proj)
        report = json.loads((proj / "reports" / "report.json").read_text(encoding="utf-8"))
        out[engine]["report"] = _stable(report, root)
    return out


@pytest.mark.parametrize("stage", ["ingest", "link", "screen", "sample", "oracle", "estimate",
                                   "detect", "report"])
def test_every_stage_gives_the_same_result_on_both_engines(runs, stage):
    assert _difference(runs["duckdb"][stage], runs["pyspark"][stage]) is None


def test_the_pyspark_project_really_ran_on_spark(runs):
    """Not DuckDB under another name: the store is a Spark catalogue of Parquet folders."""
    proj = runs["pyspark"]["dir"]
    assert not (proj / "store.duckdb").exists()
    catalog = json.loads((proj / "store.spark" / "catalog.json").read_text(encoding="utf-8"))
    assert {"incidents", "crimes", "links", "audit_samples", "audit_decisions"} <= set(
        catalog["tables"])
    with Project.open(proj) as p:
        assert type(p.engine).__name__ == "PySparkEngine"
        assert p.engine.count("incidents") == 1500


@pytest.mark.parametrize("table,drop", [
    ("incidents", ()), ("crimes", ()), ("links", ("run_id",)),
    ("audit_samples", ()), ("screen_scores", ("run_id",)),
    ("audit_decisions", ("decided_at", "batch", "prev_hash", "row_hash")),
    ("record_sightings", ()),
])
def test_the_stored_tables_are_identical(runs, table, drop):
    """Row for row (same links, same sample for the same seed, same decisions)."""
    duck = _table(runs["duckdb"]["dir"], table, drop)
    spark = _table(runs["pyspark"]["dir"], table, drop)
    assert duck and _difference(duck, spark) is None


def test_the_decision_chain_verifies_on_spark(runs):
    r = runner.invoke(app, ["verify", str(runs["pyspark"]["dir"])])
    assert r.exit_code == 0, r.output


def test_a_failed_command_leaves_the_spark_store_as_it_was(tmp_path, monkeypatch):
    """A transaction that fails half-way: nothing it wrote is seen, then or after reopening,
    and the folders it wrote are swept when the store opens again."""
    from crimeaudit.engine.pyspark import PySparkEngine

    store = tmp_path / "store.spark"
    eng = PySparkEngine.connect(store)
    eng.write("t", pa.table({"k": ["a", "b"]}))
    with pytest.raises(RuntimeError, match="killed"), eng.transaction():
        eng.write("t", pa.table({"k": ["c"]}), mode="append")
        eng.write("u", pa.table({"k": ["x"]}))
        assert eng.count("t") == 3 and eng.has_table("u")
        raise RuntimeError("killed")
    assert eng.count("t") == 2 and not eng.has_table("u")
    # A process killed inside a transaction leaves folders no table names: swept on open.
    orphan = store / "tables" / "t" / "orphan"
    orphan.mkdir()
    eng.close()
    eng = PySparkEngine.connect(store)
    assert not orphan.exists() and eng.count("t") == 2
    eng.close()


def test_real_public_files_load_the_same_on_both_engines(tmp_path, monkeypatch):
    """Real public files (their committed slices: data.police.uk street and outcomes for the
    City of London, San Francisco incidents, ONS recorded crime): the same rows loaded,
    excluded and quarantined, the same records and the same outcomes joined onto crimes."""
    loads = [("police-uk-street", "2019-06-city-of-london-street.csv"),
             ("police-uk-outcomes", "2019-06-city-of-london-outcomes.csv"),
             ("sf-incidents", "sfpd-slice.csv"), ("ons-pfa", "rec-crime-pfa-slice.csv")]
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", KEY)
    results = {}
    for engine in ENGINES:
        proj = tmp_path / engine
        ok("init", proj, "--engine", engine, "--name", "public")
        reports = [_stable(_json("ingest", proj, "--profile", profile, FIX / name), str(proj))
                   for profile, name in loads]
        results[engine] = (reports, _table(proj, "crimes"), _table(proj, "counts"),
                           _table(proj, "quarantine", ("time", "file")),
                           _table(proj, "ingest_exclusions", ("time", "file")))
    assert results["duckdb"][1], "the street file loads crimes"
    assert _difference(results["duckdb"], results["pyspark"]) is None


def test_many_appends_are_compacted_when_the_command_ends(tmp_path):
    """An ingest of many files appends a folder per file; the end of the command rewrites a
    table of more than MAX_PARTS folders as one, with every row kept."""
    from crimeaudit.engine.pyspark import MAX_PARTS, PySparkEngine

    eng = PySparkEngine.connect(tmp_path / "store.spark")
    with eng.transaction():
        for i in range(MAX_PARTS + 4):
            eng.write("t", pa.table({"k": [f"r{i}"]}), mode="append")
        assert len(eng._catalog.tables["t"]["parts"]) == MAX_PARTS + 4
    assert len(eng._catalog.tables["t"]["parts"]) == 1
    assert eng.count("t") == MAX_PARTS + 4
    assert len(list((tmp_path / "store.spark" / "tables" / "t").iterdir())) == 1
    eng.close()

"""One flow through one store, as a user runs it from the command line on a simulated force:
links reach the audit, every figure lives in the store (with its standard error), and the
report shows a recording audit and a cancellation audit side by side."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeaudit.audit import Sample, SampleDesign, sampling_frame, stored_runs
from crimeaudit.audit.review import review_frame
from crimeaudit.cli import app
from crimeaudit.store import Project

runner = CliRunner()


def ok(*args: str) -> str:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """kent-2013, 8,000 incidents: simulate, init, ingest, link (Splink), two samples."""
    tmp = tmp_path_factory.mktemp("flow")
    force, proj = tmp / "force", tmp / "kent"
    ok("simulate", "--scenario", "kent-2013", "--out", str(force), "--seed", "5",
       "--incidents", "8000")
    ok("init", str(proj))
    ok("ingest", str(proj), "--profile", "canonical", *sorted(map(str, force.glob("*.parquet"))))
    counts = json.loads(ok("link", str(proj), "--json"))
    assert counts["probabilistic"] > 0
    return proj


def _probabilistic_pair(p) -> tuple[str, str]:
    links = p.engine.to_pandas(p.engine.table("links"))
    prob = links[links.method == "probabilistic"].sort_values("crime_id")
    assert len(prob), "the simulated force should have lost references for Splink to recover"
    row = prob.iloc[0]
    return str(row.incident_id), str(row.crime_id)


def test_a_crime_linked_by_probability_folds_into_its_incident(audited):
    with Project.open(audited) as p:
        incident_id, crime_id = _probabilistic_pair(p)
        frame = p.engine.to_pandas(sampling_frame(p, SampleDesign("srs", size=1)))
        # The crime is not audited a second time as "a crime without an incident" ...
        assert not ((frame.record_type == "crime") & (frame.record_id == crime_id)).any()
        # ... and its incident counts as having a crime record.
        assert frame.loc[frame.record_id == incident_id, "has_crime"].item()
        # The auditor's sheet for that incident shows the crime and how it was linked.
        records = pd.DataFrame({"sample_id": ["S"], "record_type": ["incident"],
                                "record_id": [incident_id], "stratum": ["all"],
                                "strand": ["other"], "division": ["x"],
                                "inclusion_probability": [1.0], "weight": [1.0],
                                "design": ["srs"], "seed": [0]})
        sheet = review_frame(p, Sample("S", SampleDesign("srs", size=1), records))
    text = sheet.crime_records.item()
    assert crime_id in text and "linked by Splink, match probability" in text


def test_without_the_link_stage_exact_references_still_count(tmp_path):
    force, proj = tmp_path / "force", tmp_path / "p"
    ok("simulate", "--scenario", "kent-2013", "--out", str(force), "--seed", "8",
       "--incidents", "1500")
    ok("init", str(proj))
    ok("ingest", str(proj), "--profile", "canonical", *sorted(map(str, force.glob("*.parquet"))))
    with Project.open(proj) as p:
        frame = p.engine.to_pandas(sampling_frame(p, SampleDesign("srs", size=1)))
        crimes = p.engine.to_pandas(p.engine.table("crimes").select("crime_id", "incident_id"))
    referenced = crimes.incident_id.notna().sum()
    assert frame.has_crime.sum() > 0.9 * crimes.incident_id.dropna().nunique()
    # Only crimes with no reference at all are crimes without an incident.
    assert (frame.record_type == "crime").sum() == len(crimes) - referenced


def test_recording_and_cancellation_audits_sit_side_by_side(audited):
    d = str(audited)
    ok("sample", d, "--design", "stratified", "--size", "400", "--seed", "1")
    ok("review", "oracle", d)
    first = json.loads(ok("estimate", d, "--by", "strand", "--json"))
    ok("sample", d, "--frame", "cancellations", "--size", "80", "--seed", "2")
    ok("review", "oracle", d)
    canc = json.loads(ok("estimate", d, "--json"))
    # A cancellation sample gives cancellation figures, never a (meaningless) recording rate.
    assert {e["measure"] for e in canc["estimates"]} == {"cancellation_wrong", "victim_told"}
    # Every figure carries its standard error.
    for doc in (first, canc):
        for e in doc["estimates"]:
            assert e["se"] is not None and e["se"] >= 0, e
    with Project.open(audited) as p:
        runs = stored_runs(p)
        rate = next(r for r in runs if r.sample_id == first["sample_id"]).get("recording_rate")
    # The recording-rate figures were not overwritten by the cancellation estimate.
    assert rate.estimate == pytest.approx(
        next(e for e in first["estimates"] if e["measure"] == "recording_rate"
             and e["scope"] == "all")["estimate"])
    assert {r.frame for r in runs} == {"incidents", "cancellations"}
    ok("report", d)
    doc = json.loads((audited / "reports" / "report.json").read_text())
    measures = {(e["measure"], e["scope"], e["extra"]["sample_id"]) for e in doc["estimates"]}
    assert ("recording_rate", "all", first["sample_id"]) in measures
    assert ("cancellation_wrong", "all", canc["sample_id"]) in measures
    assert doc["linkage"]["probabilistic"] > 0
    html = (audited / "reports" / "report.html").read_text()
    assert "linked to their incident by a reference" in html


def test_re_estimating_with_another_method_keeps_both(audited):
    d = str(audited)
    ok("sample", d, "--design", "srs", "--size", "300", "--seed", "3")
    ok("review", "oracle", d)
    wilson = json.loads(ok("estimate", d, "--json"))
    cp = json.loads(ok("estimate", d, "--method", "clopper-pearson", "--json"))
    again = json.loads(ok("estimate", d, "--json"))
    assert wilson["run_id"] != cp["run_id"] and again["run_id"] == wilson["run_id"]
    with Project.open(audited) as p:
        mine = [r for r in stored_runs(p) if r.sample_id == wilson["sample_id"]]
    assert sorted(r.method for r in mine) == ["auto", "clopper-pearson"]


def test_every_table_in_the_store_is_in_the_registry(audited):
    from crimeaudit.model.schema import STORE_TABLES

    d = str(audited)
    ok("screen", "run", d)
    ok("sample", d, "--design", "stratified", "--size", "400", "--seed", "9")
    ok("review", "oracle", d)
    ppi = json.loads(ok("estimate", d, "--method", "ppi", "--json"))
    assert ppi["frame"] == "incidents" and ppi["estimates"][0]["se"] > 0
    ok("detect", d)
    with Project.open(audited) as p:
        tables = set(p.engine.list_tables())
        for name in tables & set(STORE_TABLES):
            # The stored schema is the registered one (same columns, same order).
            assert p.engine.table(name).columns == tuple(STORE_TABLES[name].column_names), name
    assert tables <= set(STORE_TABLES), tables - set(STORE_TABLES)
    assert {"links", "screen_scores", "estimates", "estimate_runs", "findings"} <= tables


def test_an_ingest_after_link_is_seen_at_once(tmp_path):
    """Links are read from the link stage only while they describe the tables as they are."""
    from crimeaudit.linkage.pairs import linked_pairs, links_are_current

    force, proj = tmp_path / "force", tmp_path / "p"
    ok("simulate", "--scenario", "kent-2013", "--out", str(force), "--seed", "4",
       "--incidents", "1200", "--format", "csv")
    ok("init", str(proj))
    ok("ingest", str(proj), "--profile", "canonical", str(force / "incidents.csv"))
    ok("link", str(proj), "--exact-only")
    with Project.open(proj) as p:
        assert links_are_current(p)
        assert p.engine.execute(linked_pairs(p).count()) == 0  # no crimes yet
    ok("ingest", str(proj), "--profile", "canonical", str(force / "crimes.csv"))
    with Project.open(proj) as p:
        assert not links_are_current(p)
        referenced = p.engine.execute(p.engine.table("crimes").incident_id.notnull().sum())
        assert p.engine.execute(linked_pairs(p).count()) >= 0.9 * referenced > 0

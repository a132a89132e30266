"""The synthetic force: schemas, determinism, links between tables, files and the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.model.schema import TABLES
from crimeaudit.simulation import ScenarioError, list_scenarios, load_scenario, simulate


@pytest.fixture(scope="module")
def kent():
    return simulate("kent-2013", seed=11, n_incidents=6000).tables


def test_built_in_scenarios_are_listed_and_valid():
    names = list_scenarios()
    assert {"compliant", "kent-2013", "national-2014", "reform"} <= set(names)
    for name in names:
        assert load_scenario(name).name == name


@pytest.mark.parametrize("name", ["compliant", "reform"])
def test_tables_have_exactly_the_canonical_schemas(name):
    tables = simulate(name, seed=1, n_incidents=1500).tables
    assert set(tables) == {"incidents", "crimes", "classification_changes", "truth_incidents",
                           "truth_crimes"}
    for table_name, table in tables.items():
        assert table.schema.equals(TABLES[table_name].arrow_schema()), table_name
        for col in TABLES[table_name].columns:
            if col.required:
                assert table[col.name].null_count == 0, (table_name, col.name)


def test_same_seed_same_files_other_seed_other_data(tmp_path):
    a = simulate("kent-2013", seed=5, n_incidents=3000, out_dir=tmp_path / "a")
    simulate("kent-2013", seed=5, n_incidents=3000, out_dir=tmp_path / "b")
    c = simulate("kent-2013", seed=6, n_incidents=3000)
    for f in sorted((tmp_path / "a").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    assert not a.tables["incidents"].equals(c.tables["incidents"])
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["scenario"] == "kent-2013" and manifest["seed"] == 5
    assert manifest["rows"]["incidents"] == 3000
    assert set(manifest["sha256"]) == {f"{n}.parquet" for n in TABLES if n != "counts"}
    assert pq.read_table(tmp_path / "a" / "crimes.parquet").equals(a.tables["crimes"])


def test_csv_output(tmp_path):
    simulate("compliant", seed=2, n_incidents=500, out_dir=tmp_path, fmt="csv")
    header = (tmp_path / "crimes.csv").read_text().splitlines()[0]
    assert header.replace('"', "").split(",") == TABLES["crimes"].column_names


def test_identifiers_and_links_between_tables(kent):
    inc, crimes = kent["incidents"], kent["crimes"]
    truth_i, truth_c = kent["truth_incidents"], kent["truth_crimes"]
    ids = inc["incident_id"].to_pylist()
    assert all(re.fullmatch(r"INC-\d{9}", i) for i in ids[:50])
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"CR-\d{9}", c) for c in crimes["crime_id"].to_pylist()[:50])
    assert all(re.fullmatch(r"OFF-\d{4}", o) for o in inc["officer"].to_pylist()[:50])
    # Reported times are in order over the scenario's year, and crimes are recorded after.
    t = inc["reported_at"].to_numpy()
    assert (np.diff(t.astype(np.int64)) >= 0).all()
    assert str(t[0])[:4] == "2013" and str(t[-1])[:4] == "2013"
    assert pc.all(pc.greater_equal(crimes["recorded_at"], crimes["reported_at"])).as_py()
    # Every crime's incident reference points at a real incident, as its truth says.
    known = set(ids)
    refs = [r for r in crimes["incident_id"].to_pylist() if r is not None]
    assert set(refs) <= known
    true_ref = truth_c["true_incident_id"].to_pylist()
    lost = truth_c["incident_ref_lost"].to_pylist()
    for ref, true, was_lost in zip(crimes["incident_id"].to_pylist(), true_ref, lost,
                                   strict=True):
        assert ref == (None if was_lost else true)
    # An incident lists exactly the crimes that kept their reference to it.
    listed = {c for r in inc["crime_refs"].to_pylist() if r for c in r.split(";")}
    kept = {c for c, r in zip(crimes["crime_id"].to_pylist(), crimes["incident_id"].to_pylist(),
                              strict=True) if r is not None}
    assert listed == kept
    # Closed as a crime exactly when a record was made from it.
    closing = np.array(inc["closing_code"].to_pylist())
    recorded = truth_i["recorded"].to_numpy(zero_copy_only=False)
    assert ((closing == "CRIME_RECORDED") == recorded).all()
    assert not recorded[~truth_i["discloses_crime"].to_numpy(zero_copy_only=False)].all()
    # Some crimes came with no incident at all (walk-in and online reports).
    assert truth_c["true_incident_id"].null_count > 0


def test_classification_truth_agrees_with_records_and_changes(kent):
    from crimeaudit.model.codes import load_code_lists

    codes = load_code_lists()
    crimes, truth, changes = kent["crimes"], kent["truth_crimes"], kent["classification_changes"]
    final = crimes["offence_code"].to_pylist()
    true = truth["true_offence_code"].to_pylist()
    down = truth["downgraded"].to_pylist()
    correct = truth["correctly_classified"].to_pylist()
    for f, t, d, c in zip(final, true, down, correct, strict=True):
        assert c == (f == t)
        assert d == codes.is_downgrade(t, f)
    assert 0 < sum(down) < len(down) * 0.2
    # The last change of each crime leads to its current class.
    last = {}
    for cid, to in zip(changes["crime_id"].to_pylist(), changes["to_code"].to_pylist(),
                       strict=True):
        last[cid] = to
    by_id = dict(zip(crimes["crime_id"].to_pylist(), final, strict=True))
    assert last and all(by_id[c] == to for c, to in last.items())
    # Both downgrades and legitimate corrections appear among the changes.
    froms = changes["from_code"].to_pylist()
    tos = changes["to_code"].to_pylist()
    assert any(codes.is_downgrade(a, b) for a, b in zip(froms, tos, strict=True))
    assert any(codes.is_downgrade(b, a) for a, b in zip(froms, tos, strict=True))


def test_cancellations_carry_reason_time_and_truth(kent):
    crimes, truth = kent["crimes"], kent["truth_crimes"]
    status = np.array(crimes["status"].to_pylist())
    cancelled = status == "cancelled"
    assert set(status) == {"recorded", "cancelled"}
    reason = np.array(crimes["cancellation_reason"].to_pylist(), dtype=object)
    assert set(reason[cancelled]) <= {"transferred", "avi", "duplicate", "recorded_in_error"}
    assert (reason[~cancelled] == None).all()  # noqa: E711
    valid = np.array(truth["cancellation_valid"].to_pylist(), dtype=object)
    assert set(valid[cancelled]) == {True, False}
    assert (valid[~cancelled] == None).all()  # noqa: E711
    cancelled_at = crimes["cancelled_at"].to_numpy(zero_copy_only=False)
    recorded_at = crimes["recorded_at"].to_numpy(zero_copy_only=False)
    assert (cancelled_at[cancelled] > recorded_at[cancelled]).all()
    outcome = np.array(crimes["outcome"].to_pylist(), dtype=object)
    assert (outcome[cancelled] == None).all()  # noqa: E711
    assert set(outcome[~cancelled]) - {None} <= {f"OC{i}" for i in range(1, 23)}


def test_property_values_only_for_property_crimes(kent):
    from crimeaudit.model.codes import load_code_lists

    codes = load_code_lists()
    crimes = kent["crimes"]
    for code, value in zip(crimes["offence_code"].to_pylist(),
                           crimes["property_value"].to_pylist(), strict=True):
        strand = codes.offence(code).strand
        has_value = strand in {"theft", "burglary", "robbery", "criminal_damage"}
        assert (value is not None and value > 0) == has_value, (code, value)


def test_scenario_file_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: compliant\nrecording:\n  by_strand: {all: 0.9, violins: 0.5}\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml, line 3, column \d+: "
                                            r"recording\.by_strand: unknown strand: violins"):
        load_scenario(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("extends: compliant\ncancellation:\n  rate: {all: 0.02}\n  rat: 1\n")
    with pytest.raises(ScenarioError, match=r"typo\.yaml, line 4, column \d+: cancellation\.rat"):
        load_scenario(typo)
    with pytest.raises(ScenarioError, match="no scenario"):
        load_scenario("no-such-force")
    ok = tmp_path / "mine.yaml"
    ok.write_text("extends: kent-2013\nname: mine\nincident_ref_lost_rate: 0.5\n")
    s = load_scenario(ok)
    assert s.name == "mine" and s.incident_ref_lost_rate == 0.5
    assert s.target_pressure.strands == ["violence", "burglary"]


def test_reform_may_change_only_behaviour(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("extends: compliant\nreform:\n  date: 2023-10-01\n  changes: {divisions: []}\n")
    with pytest.raises(ScenarioError, match="reform"):
        load_scenario(bad)


def test_cli_simulate_lists_writes_and_reports_errors(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(app, ["simulate", "--list"])
    assert listed.exit_code == 0 and "kent-2013" in listed.output
    out = tmp_path / "out"
    done = runner.invoke(app, ["simulate", "--scenario", "compliant", "--seed", "3",
                               "--incidents", "800", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "800" in done.output and (out / "incidents.parquet").exists()
    assert pq.read_table(out / "incidents.parquet").num_rows == 800
    missing = runner.invoke(app, ["simulate", "--scenario", "nowhere", "--seed", "1",
                                  "--out", str(out)])
    assert missing.exit_code != 0


@pytest.mark.parametrize("n", [1, 2, 7])
def test_tiny_forces_still_give_consistent_tables(n, tmp_path):
    result = simulate("reform", seed=np.int64(3), n_incidents=n, out_dir=tmp_path)
    assert result.tables["incidents"].num_rows == n
    assert result.tables["crimes"].num_rows == result.tables["truth_crimes"].num_rows
    assert json.loads((tmp_path / "manifest.json").read_text())["seed"] == 3


def test_force_codes_let_several_forces_share_one_project(tmp_path):
    """Two forces simulated with their own codes load into one project with no id in common,
    every reference still pointing at its own force's records, and link finds them all."""
    import crimeaudit as ca

    for code, seed in (("KNT", 1), ("MPS", 2)):
        simulate("national-2014", seed=seed, n_incidents=1500, out_dir=tmp_path / code,
                 force_code=code)
    knt = simulate("national-2014", seed=1, n_incidents=1500, force_code="KNT").tables
    plain = simulate("national-2014", seed=1, n_incidents=1500).tables
    # Same force, same seed: only the identifiers differ, by the prefix.
    assert knt["crimes"]["offence_code"].equals(plain["crimes"]["offence_code"])
    assert knt["crimes"]["crime_id"].to_pylist() == [
        "KNT-" + x for x in plain["crimes"]["crime_id"].to_pylist()]
    refs = [r for r in knt["incidents"]["crime_refs"].to_pylist() if r and ";" in r]
    assert refs and all(all(p.startswith("KNT-CR-") for p in r.split(";")) for r in refs)
    assert set(knt["crimes"]["division"].to_pylist()) == {
        "KNT " + d for d in plain["crimes"]["division"].to_pylist()}
    # One project, both forces: every row loaded, and the exact links do not cross forces.
    project = ca.Project.init(tmp_path / "audit")
    files = sorted((tmp_path / "KNT").glob("*.parquet")) + sorted(
        (tmp_path / "MPS").glob("*.parquet"))
    ca.ingest(project, "canonical", files)
    n_inc = project.engine.table("incidents").count().execute()
    assert n_inc == 3000
    from crimeaudit.linkage.pairs import linked_pairs

    pairs = linked_pairs(project).execute()
    assert len(pairs) > 0
    assert (pairs["incident_id"].str[:3] == pairs["crime_id"].str[:3]).all()
    project.close()


def test_force_code_is_checked():
    with pytest.raises(ValueError, match="force code"):
        simulate("compliant", seed=1, n_incidents=200, force_code="kn t")
    result = CliRunner().invoke(app, ["simulate", "-s", "compliant", "--seed", "1", "-n", "200",
                                      "--out", "x", "--force-code", "lower"])
    assert result.exit_code != 0 and "force code" in result.output

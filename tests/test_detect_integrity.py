"""Integrity analytics as detect tests (issue 16, item 6): reference gaps and reuse,
near-duplicate crimes, first digits and round numbers of property values.

Each check starts from a simulated force (the simulator numbers crimes CR-000000001... in the
order they are made), tampers with its crimes file as a force's data could be, loads it with
`crimeaudit ingest` and reads `crimeaudit detect --json`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.detect import DetectInput, run_detection
from crimeaudit.detect.references import split_reference
from crimeaudit.model.codes import load_code_lists
from crimeaudit.simulation import simulate

NEW = ("references", "near_duplicates", "property_digits")


@pytest.fixture(scope="module")
def force(tmp_path_factory):
    """A compliant simulated force: its crimes, and the other files as written."""
    out = tmp_path_factory.mktemp("sim")
    simulate("compliant", seed=21, n_incidents=20000, out_dir=out)
    return out, pd.read_parquet(out / "crimes.parquet")


def _detect(tmp_path, sim_dir, crimes: pd.DataFrame) -> dict:
    crimes_file = tmp_path / "crimes.parquet"
    crimes.to_parquet(crimes_file, index=False)
    d = tmp_path / "proj"
    r = CliRunner()
    assert r.invoke(app, ["init", str(d)]).exit_code == 0
    res = r.invoke(app, ["ingest", str(d), str(sim_dir / "incidents.parquet"), str(crimes_file),
                         "-p", "canonical"])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["detect", str(d), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _mid_month(crimes: pd.DataFrame) -> tuple[str, int]:
    """A month in the middle of the force's span, and the row in the middle of that month."""
    month = pd.to_datetime(crimes["recorded_at"]).dt.to_period("M").astype(str)
    months = sorted(month.unique())
    mid = months[len(months) // 2]
    rows = np.flatnonzero(month == mid)
    return mid, int(rows[len(rows) // 2])


def _significant(out: dict, test: str) -> list[dict]:
    return [f for f in out["findings"] if f["test"] == test and f["q"] < 0.05]


def test_clean_force_raises_no_integrity_alarm(tmp_path, force):
    sim, crimes = force
    out = _detect(tmp_path, sim, crimes)
    assert set(NEW) <= set(out["summary"]["tests_run"])
    for test in NEW:
        assert _significant(out, test) == [], test
    facts = out["summary"]["facts"]
    assert facts["references"]["missing_numbers"] == 0
    assert facts["references"]["sequences_tested"] == 1
    assert facts["near_duplicates"]["groups"] == 0


def test_records_deleted_from_the_middle_of_a_month_are_found_as_a_gap(tmp_path, force):
    sim, crimes = force
    month, at = _mid_month(crimes.sort_values("crime_id").reset_index(drop=True))
    crimes = crimes.sort_values("crime_id").reset_index(drop=True)
    gone = crimes.iloc[at:at + 12]
    out = _detect(tmp_path, sim, crimes.drop(gone.index))
    hits = _significant(out, "references")
    assert [f["date"] for f in hits] == [month]
    f = hits[0]
    gap = f["details"]["gaps"][0]
    # The exact references deleted, written as the force writes them.
    assert (gap["first_missing"], gap["last_missing"]) == (gone.crime_id.iloc[0],
                                                           gone.crime_id.iloc[-1])
    assert gap["missing"] == 12 and f["details"]["events"] == 12
    assert gone.crime_id.iloc[0] in f["sentence"] and month in f["sentence"]
    # Readable: a division named as the data names it, not a code.
    assert gap["division_before"] in set(crimes.division)
    assert f["rank"] == 1
    assert out["summary"]["facts"]["references"]["missing_numbers"] == 12


def test_scattered_single_deletions_are_found_too(tmp_path, force):
    sim, crimes = force
    crimes = crimes.sort_values("crime_id").reset_index(drop=True)
    month, at = _mid_month(crimes)
    drop = [at + 7 * i for i in range(10)]  # every seventh record: ten one-number gaps
    out = _detect(tmp_path, sim, crimes.drop(drop))
    hits = _significant(out, "references")
    assert [f["date"] for f in hits] == [month]
    assert hits[0]["details"]["events"] == 10


def test_a_number_used_twice_under_two_spellings_is_reported(tmp_path, force):
    sim, crimes = force
    crimes = crimes.sort_values("crime_id").reset_index(drop=True)
    # Record 501's reference is replaced by record 500's number, spelt without padding: the
    # number is reused and 501's own number goes missing.
    original = crimes.loc[500, "crime_id"]
    crimes.loc[501, "crime_id"] = "cr-" + str(int(original[3:]))
    out = _detect(tmp_path, sim, crimes)
    reused = [f for f in _significant(out, "references") if f["unit"].startswith("reused")]
    assert len(reused) == 1
    assert reused[0]["details"]["reused"][0]["references"] == [original, crimes.loc[501,
                                                                                 "crime_id"]]
    assert original in reused[0]["sentence"]


def test_duplicated_and_split_crimes_are_found_in_their_division(tmp_path, force):
    sim, crimes = force
    live = crimes[(crimes.status == "recorded") & (crimes.division == "North")]
    copies = live.sample(40, random_state=1).copy()
    top = int(crimes.crime_id.str[3:].astype(int).max())
    copies["crime_id"] = [f"CR-{top + i + 1:09d}" for i in range(len(copies))]
    # Half recorded twice under the same class, half split off as another class.
    copies.iloc[20:, copies.columns.get_loc("offence_code")] = "58A"
    out = _detect(tmp_path, sim, pd.concat([crimes, copies], ignore_index=True))
    force_wide = [f for f in _significant(out, "near_duplicates") if f["area"] == "all"]
    assert len(force_wide) == 1
    assert out["summary"]["facts"]["near_duplicates"]["groups"] == 40
    assert out["summary"]["facts"]["near_duplicates"]["extra_records"] == 40
    groups = force_wide[0]["details"]["groups"]
    assert {g["kind"] for g in groups} <= {"recorded twice", "split"}
    assert all(len(g["references"]) == 2 for g in groups)
    # Classes by name, not only code: "58A ..." reads as the code list describes it.
    offences = load_code_lists().offences
    assert all(o == f"{o.split()[0]} {offences[o.split()[0]].description}"
               for g in groups for o in g["offences"])
    assert any(g["kind"] == "split" for g in groups)
    assert set(copies.crime_id) & {r for g in groups for r in g["references"]}
    by_division = [f for f in _significant(out, "near_duplicates") if f["area"] != "all"]
    assert [f["area"] for f in by_division] == ["North"]
    # Pseudonyms stay in the store: the finding shows references, never the victim.
    assert not any(v in json.dumps(force_wide[0]) for v in copies.victim.dropna())


def test_made_up_round_values_in_one_division_stand_out(tmp_path, force):
    sim, crimes = force
    rng = np.random.default_rng(3)
    crimes = crimes.copy()
    rows = crimes.index[(crimes.division == "South") & crimes.property_value.notna()]
    # Values typed in by hand: hundreds, first digits anything from 1 to 9.
    crimes.loc[rows, "property_value"] = 100.0 * rng.integers(1, 10, len(rows))
    out = _detect(tmp_path, sim, crimes)
    hits = _significant(out, "property_digits")
    assert {f["area"] for f in hits} == {"South"}
    measures = {f["measure"] for f in hits}
    assert measures == {"round property values",
                        "first digits of property values against Benford's law"}
    assert all("South" in f["sentence"] for f in hits)


def test_reference_sequences_are_read_from_the_reference_itself():
    parts = split_reference(pd.Series(["46/00012/19", "46/12345/19 ", "cr-7", "CR-0007",
                                       "no digits", None, "2019/0001234"]))
    assert parts["sequence"].tolist() == ["46/#/19", "46/#/19", "CR-#", "CR-#", None, None,
                                          "2019/#"]
    assert parts["number"].tolist()[:4] == [12, 12345, 7, 7]
    assert parts["width"].tolist() == [5, 5, 1, 4, 0, 0, 7]


def test_ids_that_are_not_numbered_in_order_are_not_called_gaps():
    rng = np.random.default_rng(0)
    crimes = pd.DataFrame({
        "crime_id": [f"X{n}" for n in rng.choice(10**7, 500, replace=False)],
        "offence_code": "49", "status": "recorded",
        "recorded_at": pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(500), "h")})
    run = run_detection(DetectInput.from_frames(crimes=crimes))
    assert not [f for f in run.findings if f.test == "references"]
    assert "not numbered in order" in run.skipped["references"]


def test_a_reference_typed_far_out_is_a_new_block_not_a_gap_that_hides_deletions():
    n = 3000
    crimes = pd.DataFrame({
        "crime_id": [f"46/{i:06d}/19" for i in range(1, n + 1)], "offence_code": "49",
        "status": "recorded", "division": "Ashford",
        "recorded_at": pd.Timestamp("2019-01-01") + pd.to_timedelta(np.arange(n) * 45, "min")})
    month = crimes.recorded_at.dt.to_period("M").astype(str)
    crimes = crimes.drop(range(1500, 1515))  # fifteen records of February deleted
    crimes.loc[n, ["crime_id", "offence_code", "status", "division", "recorded_at"]] = [
        "46/987654/19", "49", "recorded", "Ashford", pd.Timestamp("2019-03-01")]
    run = run_detection(DetectInput.from_frames(crimes=crimes))
    sig = [f for f in run.significant() if f.test == "references"]
    assert [(f.extra["date"], f.extra["events"], f.extra["area"]) for f in sig] == [
        (month[1500], 15, "Ashford")]
    assert sig[0].extra["gaps"][0]["first_missing"] == "46/001501/19"
    assert any("jump from 3000 to 987654" in n for n in run.units_skipped["references"])

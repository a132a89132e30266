"""The screen learns the force (issue 16, item 4): class-only and crime labels from a labelled
CSV of narratives or from decisions, one feature function, minimums after cleaning, the
choice between the screen and a plain baseline, `screen evaluate`, and rules tested on real
phrasing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeaudit.cli import app
from crimeaudit.model.codes import load_code_lists
from crimeaudit.screening.evaluation import choose
from crimeaudit.screening.model import CLASS_MODEL_FILE, MODEL_FILE, ScreenModel
from crimeaudit.screening.rules import load_rules
from crimeaudit.simulation import simulate

SERIOUS = {"5D", "8N"}


@pytest.fixture(scope="module")
def sim():
    """A small simulated force: incidents with their truth."""
    s = simulate("national-2014", seed=161, n_incidents=6000)
    inc = s.tables["incidents"].to_pandas()
    truth = s.tables["truth_incidents"].to_pandas()
    return inc.merge(truth, on="incident_id")


@pytest.fixture(scope="module")
def assault_csv(sim, tmp_path_factory):
    """Violence narratives labelled serious (5D, 8N) or minor, with no ids and no dates."""
    viol = {k for k, o in load_code_lists().offences.items() if o.strand == "violence"}
    d = sim[sim.discloses_crime & sim.true_offence_code.isin(viol)]
    d = d.assign(label=np.where(d.true_offence_code.isin(SERIOUS), "Serious", "minor"))
    path = tmp_path_factory.mktemp("labels") / "assaults.csv"
    d[["narrative", "label"]].to_csv(path, index=False)
    return path, d


def _project(tmp_path):
    d = tmp_path / "proj"
    assert CliRunner().invoke(app, ["init", str(d)]).exit_code == 0
    return d


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_class_only_labels_from_a_csv_train_and_evaluate_without_code(tmp_path, assault_csv):
    path, d = assault_csv
    proj = _project(tmp_path)
    res = _run("screen", "train", proj, "--labels", path, "--positive", "serious", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["labels"]["used"] == len(d)
    assert out["labels"]["positive"] == int(d.true_offence_code.isin(SERIOUS).sum())
    assert out["labels"]["target"] == {"kind": "class", "positive": "Serious",
                                       "negative": "minor"}
    s, b = (out["candidates"][k]["auc"]["estimate"] for k in ("screen", "baseline"))
    # The kept recipe is the better of the two on the same folds.
    assert out["chosen"] == ("baseline" if b > s else "screen")
    assert max(s, b) > 0.9
    # A class model is kept beside the crime screen, never in its place.
    assert (proj / "screen" / CLASS_MODEL_FILE).exists()
    assert not (proj / "screen" / MODEL_FILE).exists()
    model = ScreenModel.load(proj / "screen" / CLASS_MODEL_FILE)
    assert model.recipe == out["chosen"] and model.target["positive"] == "Serious"

    res = _run("screen", "evaluate", proj, "--labels", path, "--positive", "serious", "--json")
    assert res.exit_code == 0, res.output
    ev = json.loads(res.stdout)
    assert set(ev["candidates"]) == {"screen", "baseline", "current"}
    # Same folds, same seed: the cross-validated figures are those training saw.
    assert ev["candidates"]["screen"]["auc"] == out["candidates"]["screen"]["auc"]
    cur = ev["candidates"]["current"]
    assert cur["warnings"] == ["trained on these labels: in-sample, not a held-out figure"]
    for m in ev["candidates"].values():
        for stat in (m["auc"], m["precision_at_k"], m["calibration"]["brier"]):
            assert set(stat) == {"estimate", "se", "interval", "method", "n", "warnings"}
            lo, hi = stat["interval"]
            assert lo <= stat["estimate"] <= hi
        assert m["precision_at_k"]["n"] == 50
    # The terminal table fits 80 columns and names the better recipe.
    res = _run("screen", "evaluate", proj, "--labels", path, "--positive", "serious")
    assert res.exit_code == 0, res.output
    table = [line for line in res.output.splitlines() if line.startswith("  ")]
    assert len(table) == 5 and max(len(line) for line in table) <= 80
    assert "baseline" in res.output and "better recipe on these folds:" in res.output


def test_crime_labels_from_a_csv_replace_the_screen_model(tmp_path, sim):
    d = sim.sample(400, random_state=2)
    labels = tmp_path / "crime.csv"
    d.assign(label=np.where(d.discloses_crime, "yes", "no"))[
        ["narrative", "label", "call_type", "closing_code"]].to_csv(labels, index=False)
    proj = _project(tmp_path)
    res = _run("screen", "train", proj, "--labels", labels)
    assert res.exit_code == 0, res.output
    assert "crime (yes) against no crime" in res.output and "kept the " in res.output
    model = ScreenModel.load(proj / "screen" / MODEL_FILE)
    assert model.target["kind"] == "crime"


def test_training_and_scoring_read_a_missing_closing_code_alike(tmp_path, sim):
    d = sim.sample(300, random_state=3).copy()
    d.loc[d.index[:150], "closing_code"] = None  # written as an empty cell, read back as NaN
    labels = tmp_path / "crime.csv"
    d.assign(label=np.where(d.discloses_crime, "yes", "no"))[
        ["narrative", "label", "call_type", "closing_code"]].to_csv(labels, index=False)
    proj = _project(tmp_path)
    assert _run("screen", "train", proj, "--labels", labels).exit_code == 0
    model = ScreenModel.load(proj / "screen" / MODEL_FILE)
    if model.recipe == "screen":
        terms = set(model.vectoriser.vocabulary_)
        assert "zzclosenone" in terms and "zzclosenan" not in terms
    # Scoring (Arrow gives None) and training (pandas gives NaN) see the same document.
    texts = d.narrative.tolist()[:5]
    p_none = model.predict(texts, ["X"] * 5, [None] * 5)[0]
    p_nan = model.predict(texts, ["X"] * 5, [float("nan")] * 5)[0]
    assert p_none.tolist() == p_nan.tolist()


def test_minimums_are_checked_after_cleaning(tmp_path, sim):
    proj = _project(tmp_path)
    # 25 decisions, 21 about incidents the project does not hold: 4 usable.
    ids = [f"NOPE-{i}" for i in range(21)] + ["INC-1", "INC-2", "INC-3", "INC-4"]
    f = tmp_path / "decisions.csv"
    pd.DataFrame({"incident_id": ids, "should_record": ["yes", "no"] * 12 + ["yes"]}).to_csv(
        f, index=False)
    res = _run("screen", "train", proj, "--decisions", f)
    assert res.exit_code == 2
    line = res.output.strip()
    assert "need at least 20 usable labels, found 0 of 25 read" in line
    assert "25 incident not in the project excluded" in line and "\n" not in line
    assert not (proj / "screen" / MODEL_FILE).exists()
    # Labels of one kind only, or too few of one kind, are refused the same way.
    g = tmp_path / "few.csv"
    pd.DataFrame({"narrative": [f"text {i}" for i in range(30)],
                  "label": ["serious"] * 3 + ["minor"] * 27}).to_csv(g, index=False)
    res = _run("screen", "train", proj, "--labels", g, "--positive", "serious")
    assert res.exit_code == 2
    assert "need at least 5 labels of each kind, found 3 serious and 27 minor" in res.output


def test_bad_label_files_are_one_clear_line(tmp_path):
    proj = _project(tmp_path)
    f = tmp_path / "x.csv"
    pd.DataFrame({"text": ["a"], "label": ["serious"]}).to_csv(f, index=False)
    res = _run("screen", "train", proj, "--labels", f)
    assert res.exit_code == 2 and f"{f}: line 1: missing column(s) narrative" in res.output
    pd.DataFrame({"narrative": ["a", "b", "c"], "label": ["serious", "minor", "minor"]}).to_csv(
        f, index=False)
    res = _run("screen", "train", proj, "--labels", f)
    assert res.exit_code == 2
    assert "labels are not yes/no (labels: minor (2), serious (1))" in res.output
    assert "--positive" in res.output
    res = _run("screen", "train", proj, "--labels", f, "--positive", "grave")
    assert res.exit_code == 2 and "--positive GRAVE is not a label in the file" in res.output


def test_rows_without_narrative_or_label_are_counted_as_excluded(tmp_path, assault_csv):
    path, d = assault_csv
    rows = d[["narrative", "label"]].copy()
    rows.iloc[:4, 0] = ""
    rows.iloc[4:7, 1] = ""
    f = tmp_path / "gappy.csv"
    rows.to_csv(f, index=False)
    proj = _project(tmp_path)
    res = _run("screen", "evaluate", proj, "--labels", f, "--positive", "serious", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)["labels"]
    assert s["excluded"] == {"no narrative": 4, "no label": 3}
    assert s["read"] == s["used"] + 7 == len(d)


def test_the_better_recipe_is_kept_and_the_reason_says_so():
    def cand(auc):
        return {"auc": {"estimate": auc}}
    chosen, why = choose({"screen": cand(0.80), "baseline": cand(0.84)})
    assert chosen == "baseline" and "0.840" in why and "0.800" in why
    assert choose({"screen": cand(0.84), "baseline": cand(0.84)})[0] == "screen"


def test_a_baseline_model_round_trips_through_the_npz_file(tmp_path, sim):
    d = sim.sample(200, random_state=4)
    m = ScreenModel("b", recipe="baseline", target={"kind": "class", "positive": "x",
                                                     "negative": "y"})
    m.fit(d.narrative.tolist(), d.call_type.tolist(), d.closing_code.tolist(),
          d.discloses_crime.to_numpy(), [None] * len(d))
    path = tmp_path / "m.npz"
    m.save(path)
    with open(path, "rb") as fh:
        assert fh.read(2) == b"PK"  # a zip of arrays, not a pickle
    again = ScreenModel.load(path)
    assert again.recipe == "baseline" and again.target == m.target
    texts = d.narrative.tolist()[:20]
    assert np.allclose(again.predict(texts, [None] * 20, [None] * 20)[0],
                       m.predict(texts, [None] * 20, [None] * 20)[0])


# Phrasing from real records: the LAPD's 2020 crime data ("Weapon Desc", "Crm Cd Desc"), and
# the way US and UK reports put shootings, stabbings and cuts.
FIREARM = ["HAND GUN", "SEMI-AUTOMATIC PISTOL", "UNKNOWN FIREARM", "REVOLVER", "SHOTGUN",
           "AIR PISTOL/REVOLVER/RIFLE/BB GUN", "DISCHARGE FIREARMS/SHOTS FIRED",
           "SHOTS FIRED AT INHABITED DWELLING", "Victim was shot in the leg by an unknown male",
           "Suspect fired two rounds at the victim's vehicle", "GSW to the abdomen",
           "suspect produced a sawn-off and pointed it at staff"]
NOT_FIREARM = ["STRONG-ARM (HANDS, FIST, FEET OR BODILY FORCE)", "FIRE", "VERBAL THREAT",
               "he was fired from his job last week", "sent a screenshot of the messages",
               "no guns or weapons seen, verbal argument only"]
STABBING = ["Victim stabbed in the back with a kitchen knife", "a stabbing outside the pub",
            "stab wounds to the chest"]
INJURY = ["sustained a laceration to the forehead", "lacerations to both hands"]


def test_rules_read_firearm_stabbing_and_injury_words_as_reports_write_them():
    book = load_rules()
    assert all("firearm" in h for h in book.match(FIREARM)), book.match(FIREARM)
    assert not any("firearm" in h for h in book.match(NOT_FIREARM))
    assert all("serious_injury" in h for h in book.match(STABBING))
    assert book.match(["threatened to stab him"]) == [[]]
    assert all("injury" in h for h in book.match(INJURY))
    assert "('laceration')" in book.explain(INJURY[0], "injury")

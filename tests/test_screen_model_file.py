"""The screen model file holds data only: loading one never runs code from it.

A project folder may be shared, so a model file is untrusted input: a crafted pickle dropped
in as the old or the new file name must be refused with one clear line and never executed, a
damaged file must say which file, and the data-only format must give the very same scores.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crimeaudit.screening.errors import ScreenError
from crimeaudit.screening.model import LEGACY_MODEL_FILE, MODEL_FILE, ScreenModel
from crimeaudit.screening.rules import load_rules
from crimeaudit.simulation import simulate
from crimeaudit.store.project import Project


class Hostile:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code in a model file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_pickle(marker: Path) -> bytes:
    return pickle.dumps(Hostile(marker), protocol=5)


def test_the_hostile_payload_is_live(tmp_path):
    """Control: the payload does run when unpickled, so the tests below prove something."""
    marker = tmp_path / "ran"
    pickle.loads(_hostile_pickle(marker)).close()
    assert marker.exists()


def _screen_run(folder: Path) -> subprocess.CompletedProcess:
    """`crimeaudit screen run` in its own process, wide enough that Rich never wraps a line."""
    env = dict(os.environ, COLUMNS="2000")
    cli = Path(sys.executable).with_name("crimeaudit")
    return subprocess.run([str(cli), "screen", "run", str(folder)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("name", [LEGACY_MODEL_FILE, MODEL_FILE])
def test_hostile_pickle_is_refused_not_run(tmp_path, name):
    folder = tmp_path / "force"
    marker = tmp_path / "pwned"
    with Project.init(folder) as p:
        (p.folder("screen") / name).write_bytes(_hostile_pickle(marker))
    res = _screen_run(folder)
    assert not marker.exists()
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert name in lines[0] and "pickled" in lines[0] and "crimeaudit screen train" in lines[0]


def test_pickle_inside_the_npz_is_refused_not_run(tmp_path):
    """An npz member holding pickled objects (an object array) is refused too."""
    marker = tmp_path / "pwned"
    path = tmp_path / MODEL_FILE
    with open(path, "wb") as f:
        np.savez(f, header=np.array([Hostile(marker)], dtype=object))
    with pytest.raises(ScreenError, match=MODEL_FILE) as e:
        ScreenModel.load(path)
    assert not marker.exists()
    assert "\n" not in str(e.value)


def _docs(tables):
    inc = tables["incidents"].to_pandas()
    return (inc.narrative.tolist(), inc.call_type.tolist(), inc.closing_code.tolist(),
            load_rules().match(inc.narrative.tolist()))


@pytest.fixture(scope="module")
def trained():
    """A model with every part the file must carry: calibrated screen and an offence SGD."""
    tables = simulate("national-2014", seed=12, n_incidents=3000).tables
    truth = tables["truth_incidents"].to_pandas().set_index("incident_id").loc[
        tables["incidents"].to_pandas().incident_id]
    narr, call, close, hits = _docs(tables)
    return ScreenModel("roundtrip", seed=3).fit(narr, call, close, truth.discloses_crime,
                                                truth.true_offence_code.tolist(), hits)


def _tiny(offence):
    """The other shapes: a plain logistic screen (one crime) and a fixed or no offence class."""
    texts = ["he punched her", "noise from party", "loud music", "dog barking", "music again"]
    crime = [True, False, False, False, False]
    return ScreenModel("tiny").fit(texts, ["X"] * 5, ["NFA"] * 5, crime,
                                   [offence if c else None for c in crime])


@pytest.mark.parametrize("which", ["trained", "constant", "none"])
def test_saved_and_loaded_model_scores_identically(tmp_path, trained, which):
    model = {"trained": trained, "constant": _tiny("105A"), "none": _tiny(None)}[which]
    path = tmp_path / MODEL_FILE
    model.save(path)
    again = ScreenModel.load(path)
    narr, call, close, hits = _docs(simulate("kent-2013", seed=8, n_incidents=1500).tables)
    p0, c0 = model.predict(narr, call, close, hits)
    p1, c1 = again.predict(narr, call, close, hits)
    np.testing.assert_allclose(p1, p0, rtol=0, atol=1e-12)
    assert c1 == c0 and again.version == model.version and again.seed == model.seed
    docs = narr[:200]
    assert (again.vectoriser.transform(docs) != model.vectoriser.transform(docs)).nnz == 0
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_file_names_the_file(tmp_path, trained):
    path = tmp_path / MODEL_FILE
    trained.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScreenError, match=f"{MODEL_FILE}.*not a readable screen model") as e:
        ScreenModel.load(path)
    assert "\n" not in str(e.value) and "crimeaudit screen train" in str(e.value)


def test_tampered_weights_are_refused(tmp_path, trained):
    """Well-formed arrays of the wrong shape fail at load, naming the file, not mid-scoring."""
    path = tmp_path / MODEL_FILE
    trained.save(path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["idf"] = arrays["idf"][:-1]
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ScreenError, match=f"{MODEL_FILE}.*vocabulary and weights"):
        ScreenModel.load(path)


def test_new_model_file_wins_over_a_stale_pickle(tmp_path, trained):
    """After retraining, a leftover pickle is ignored (and still never unpickled)."""
    from crimeaudit.screening.scoring import load_model

    marker = tmp_path / "pwned"
    with Project.init(tmp_path / "force") as p:
        (p.folder("screen") / LEGACY_MODEL_FILE).write_bytes(_hostile_pickle(marker))
        with pytest.raises(ScreenError, match="no longer read"):
            load_model(p)
        trained.save(p.folder("screen") / MODEL_FILE)
        assert load_model(p).version == "roundtrip"
    assert not marker.exists()


def test_saving_never_writes_through_a_planted_link(tmp_path):
    """A link planted at the model's name or at the name an older version used for its
    temporary file is replaced (the model is written beside it and renamed), never followed."""
    outside = tmp_path / "precious.txt"
    outside.write_text("not yours")
    folder = tmp_path / "screen"
    folder.mkdir()
    path = folder / MODEL_FILE
    path.symlink_to(outside)
    (folder / (MODEL_FILE + ".tmp")).symlink_to(outside)
    model = _tiny("105A")
    model.save(path)
    assert outside.read_text() == "not yours"
    assert not path.is_symlink()
    again = ScreenModel.load(path)
    texts = ["he punched her", "loud music"]
    assert again.predict(texts, ["X"] * 2, ["NFA"] * 2)[0].tolist() == \
        model.predict(texts, ["X"] * 2, ["NFA"] * 2)[0].tolist()

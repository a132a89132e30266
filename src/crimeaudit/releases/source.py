"""Where a release comes from: a project's store, or a folder of files read with a profile.

A project's ``crimes`` give one row per crime (a Crime ID repeated within a file is stored
once per copy, the later copies as ``<id>~copy2``...: they are read back as copies of the id);
its ``quarantine`` gives what the store could not hold (the extra copies of a repeated id
under a profile that does not keep copies, crimes a profile could not load), attributed to a
month through the file they came from. A folder of files is ingested with the profile into a
temporary project, read the same way, and the project deleted.

The published text is compared where the store keeps it: ``crimes.source_offence_description``
for the crime type, ``crimes.source_outcome_description`` (:data:`OUTCOME_TEXT`) for the
outcome; otherwise the codes (``offence_code``, ``outcome``), which the release says.

>>> import tempfile, pathlib, pandas as pd
>>> from crimeaudit.store.project import Project
>>> d = pathlib.Path(tempfile.mkdtemp()) / "p"
>>> with Project.init(d) as p:
...     p.engine.write("crimes", pd.DataFrame({
...         "crime_id": ["a"], "recorded_at": pd.to_datetime(["2020-01-01"]),
...         "offence_code": ["46"], "status": ["recorded"], "outcome": ["OC18"]}))
...     r = project_release(p, "mine")
>>> r.crimes.iloc[0]["type"], r.type_basis
('Shoplifting (46)', 'offence codes (the store keeps no published text)')
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd

from crimeaudit.errors import CrimeauditError
from crimeaudit.ingestion.profile import COPY_MARK
from crimeaudit.progress import Progress, resolve
from crimeaudit.releases.compare import Release, month_of, release_from_frame

#: The crimes column holding the published outcome text (added by the ingest profiles).
OUTCOME_TEXT = "source_outcome_description"
TYPE_TEXT = "source_offence_description"
_DUPLICATE = re.compile(r"duplicate id '([^']*)'")
_COPY = re.escape(COPY_MARK) + r"\d+$"
#: The crimes columns a release is read from.
COLUMNS = ("crime_id", "recorded_at", "offence_code", TYPE_TEXT, "outcome", OUTCOME_TEXT,
           "source")


class ReleasesError(CrimeauditError, ValueError):
    """A release cannot be read (no crimes, no profile for a folder of files)."""


def _basis(text: pd.Series, what: str) -> str:
    if text.notna().all():
        return "published text"
    if text.isna().all():
        return f"{what} codes (the store keeps no published text)"
    return f"published text where stored, else {what} codes"


def crimes_release(df: pd.DataFrame, label: str, codes=None) -> Release:
    """A release from crimes in the canonical columns (``crime_id``, ``recorded_at``,
    ``offence_code``, ``outcome``, and the published text where present), in file order.

    Where no published text is stored, the codes are compared, each with its name from the
    code lists (``Shoplifting (46)``).
    """
    from crimeaudit.model.codes import load_code_lists

    codes = codes or load_code_lists()
    none = pd.Series(None, index=df.index, dtype=object)
    type_text = df.get(TYPE_TEXT, none)
    out_text = df.get(OUTCOME_TEXT, none)
    offence_names = {k: f"{o.description} ({k})" for k, o in codes.offences.items()}
    outcome_names = {k: f"{v.get('description', k)} ({k})" for k, v in codes.outcomes.items()}
    type_codes = df["offence_code"].map(lambda c: offence_names.get(c, c))
    out_codes = df["outcome"].map(lambda c: outcome_names.get(c, c)) if "outcome" in df else none
    frame = pd.DataFrame({
        "crime_id": df["crime_id"], "month": month_of(pd.to_datetime(df["recorded_at"])),
        "type": type_text.where(type_text.notna(), type_codes),
        "outcome": out_text.where(out_text.notna(), out_codes),
        "source": df.get("source", none),
    })
    return release_from_frame(frame, label, type_basis=_basis(type_text, "offence"),
                              outcome_basis=_basis(out_text, "outcome"))


def project_release(project, label: str) -> Release:
    """The release held in an open project (see the module notes)."""
    eng = project.engine
    if not eng.has_table("crimes") or not eng.count("crimes"):
        raise ReleasesError(f"{label}: the project at {project.path} holds no crimes")
    t = eng.table("crimes")
    cols = [c for c in COLUMNS if c in t.columns]
    df = eng.to_pyarrow(t.select(cols)).to_pandas()
    # One row per crime in the store; order by month and file so "first" is deterministic.
    df = df.assign(_m=pd.to_datetime(df["recorded_at"])).sort_values(
        ["_m", "source", "crime_id"] if "source" in df else ["_m", "crime_id"], kind="stable")
    # Copies of a Crime ID repeated within a file are stored as "<id>~copy2"...: compared as
    # copies of their id (the first copy is compared, the others counted).
    df["crime_id"] = df["crime_id"].astype("string").str.replace(_COPY, "", regex=True)
    release = crimes_release(df.drop(columns="_m"), label, project.codes)
    where = pd.DataFrame({"crime_id": df["crime_id"], "month": month_of(df["_m"]),
                          "source": df.get("source")})
    copies = release.repeated  # copies kept in the store, found by release_from_frame
    release.repeated, release.quarantined = _quarantined(project, where)
    if len(copies):
        release.repeated = pd.concat([copies, release.repeated], ignore_index=True)
    return release


def _quarantined(project, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extra copies of repeated ids, and other crime rows not loaded, with their month
    (``frame``: the loaded crimes' ``crime_id``, ``month`` and ``source`` file)."""
    eng = project.engine
    empty = (pd.DataFrame({"month": [], "crime_id": [], "extra_copies": []}),
             pd.DataFrame({"month": [], "reason": [], "n": []}))
    if not eng.has_table("quarantine"):
        return empty
    q = eng.table("quarantine")
    q = q.filter(q["table"] == "crimes").select("file", "reason")
    rows = eng.to_pyarrow(q).to_pandas()
    if rows.empty:
        return empty
    dup_id = rows["reason"].str.extract(_DUPLICATE)[0]
    month_of_id = frame.drop_duplicates("crime_id").set_index("crime_id")["month"]
    dups = pd.DataFrame({"crime_id": dup_id[dup_id.notna()]})
    dups["month"] = dups["crime_id"].map(month_of_id)
    repeated = (dups.groupby(["month", "crime_id"]).size().reset_index(name="extra_copies"))
    # A quarantined row's month: the month of its file's crimes, when the file holds one.
    file_months = (frame.assign(file=frame["source"].astype("string").str.split(":").str[-1])
                   .groupby("file")["month"].unique())
    one = {f: m[0] for f, m in file_months.items() if len(m) == 1}
    other = rows[dup_id.isna()]
    other = other.assign(month=other["file"].map(lambda p: one.get(Path(str(p)).name)))
    quarantined = (other.groupby(["month", "reason"], dropna=False).size()
                   .reset_index(name="n"))
    return repeated, quarantined


def files_of(path: Path) -> list[Path]:
    """The data files of a folder (CSV and Parquet, sorted), or the file itself."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in (".csv", ".parquet"))
    if not files:
        raise ReleasesError(f"{path}: no CSV or Parquet files in this folder")
    return files


def read_release(path: str | Path, profile: str | Path | None = None, label: str | None = None,
                 progress: Progress | None = None) -> Release:
    """A release from a project folder, or from a folder of files read with ``profile``."""
    from crimeaudit.store.project import CONFIG_FILE, Project

    path = Path(path)
    label = label or path.name
    if (path / CONFIG_FILE).exists():
        with Project.open(path) as project:
            return project_release(project, label)
    if not path.exists():
        raise ReleasesError(f"{path}: no such project or folder")
    if profile is None:
        raise ReleasesError(f"{path} is not a project: give --profile to read its files "
                            "(e.g. --profile police-uk-street)")
    from crimeaudit.ingestion import ingest

    files = files_of(path)
    with (tempfile.TemporaryDirectory(prefix="crimeaudit-release-") as tmp,
          Project.init(Path(tmp) / "release", name=label) as project):
        ingest(project, profile, files, progress=_BarsOnly(resolve(progress)))
        return project_release(project, label)


class _BarsOnly(Progress):
    """The caller's progress bars without its notes: the throwaway project's notes (such as
    "keep its new pseudonym key safe") are not the user's to act on."""

    def __init__(self, inner: Progress):
        self.inner = inner

    def task(self, description: str, total: float | None = None):
        return self.inner.task(description, total)


__all__ = ["COLUMNS", "OUTCOME_TEXT", "ReleasesError", "crimes_release", "files_of",
           "project_release", "read_release"]

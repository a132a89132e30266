"""``profiles --check``: a profile read, checked against the code lists and tried on files.

A dry run ingests the files into a temporary project (deleted afterwards, outside the user's
project) and reports, per file and per canonical column, what would be loaded, excluded
(outside the profile's scope) and quarantined (and why), the source values each crosswalk does
not list (with their rows), and the ``personal:`` columns the files do not have. A profile that
cannot load a row correctly (a required field it does not map, a class or status that does not
exist, a column the files lack) is *failing*: the verb exits non-zero.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "x.csv").write_text("ref,when,code\\nA1,2024-01-05,008N\\nA2,2024-01-06,zz\\n")
>>> _ = (d / "p.yaml").write_text(
...     "name: mine\\ncrosswalks:\\n  c: {normalise: true, map: {8N: 8N}}\\ntargets:\\n"
...     "  - table: crimes\\n    columns:\\n      crime_id: {from: ref}\\n"
...     "      recorded_at: {from: when, format: '%Y-%m-%d'}\\n"
...     "      offence_code: {from: code, crosswalk: c}\\n      status: {value: recorded}\\n")
>>> r = check_profile(d / "p.yaml", [d / "x.csv"])
>>> r.ok, r.files[0]["loaded"], r.files[0]["unmapped"]
(True, 2, {'crimes.offence_code (c) -> unclassified': {'zz': 1}})
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crimeaudit.ingestion.load import ingest
from crimeaudit.ingestion.profile import Profile, load_profile, profile_problems
from crimeaudit.ingestion.quarantine import ingest_summary
from crimeaudit.ingestion.source import inspect_file
from crimeaudit.model.codes import load_code_lists


@dataclass
class ProfileCheck:
    """What ``profiles --check`` found: ``problems`` make it fail; ``files`` is the dry run."""

    profile: str
    targets: list[str]
    problems: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_profile(profile: str | Path | Profile, files: list[str | Path] = (),
                  codes_folder: str | Path | None = None) -> ProfileCheck:
    """Check ``profile`` against the code lists and, with ``files``, by a dry run on them."""
    prof = load_profile(profile)
    codes = load_code_lists(codes_folder)
    out = ProfileCheck(prof.name, [t.table for t in prof.targets] or ["canonical"])
    out.problems += profile_problems(prof, set(codes.offences))
    if not files:
        return out
    sources = [inspect_file(f, prof.format, prof.encoding, prof.delimiter) for f in files]
    runnable = []
    for src in sources:
        cols = set(src.columns or [])
        missing = sorted(prof.source_columns - cols) if not prof.canonical else []
        for t in prof.targets:
            for spec in t.columns.values():
                if spec.first_of and not spec.optional and not set(spec.first_of) & cols:
                    missing.append(" or ".join(spec.first_of))
                elif isinstance(spec.source, list) and not spec.optional and not (
                        set(spec.source) & cols):
                    missing.append(" or ".join(spec.source))
        for c in missing:
            out.problems.append(f"{src.path}: no column {c!r}, which the profile reads")
        for c in prof.personal:
            if c not in cols:
                out.problems.append(f"{src.path}: personal column {c!r} is not in the file "
                                    f"(a misspelt name would leave the real column in clear)")
        if not missing:
            runnable.append(src.path)
    if runnable:
        out.files = _dry_run(prof, runnable)
    return out


def _dry_run(prof: Profile, files: list[Path]) -> list[dict[str, Any]]:
    """Ingest ``files`` into a throwaway project and say what became of their rows."""
    from crimeaudit.store.project import Project

    every = set()
    for f in files:
        every |= set(inspect_file(f, prof.format, prof.encoding, prof.delimiter).columns or [])
    # Personal names the files lack are reported above; the dry run goes on without them.
    trial = prof.model_copy(update={"personal": [c for c in prof.personal if c in every]})
    saved = os.environ.get("CRIMEAUDIT_PSEUDONYM_KEY")
    # A key of its own, never the user's: the throwaway project's pseudonyms are never kept.
    os.environ["CRIMEAUDIT_PSEUDONYM_KEY"] = secrets.token_hex(32)
    try:
        with tempfile.TemporaryDirectory(prefix="crimeaudit-check-") as tmp, \
                Project.init(Path(tmp) / "dry-run") as project:
            report = ingest(project, trial, list(files))
            summary = ingest_summary(project)
            columns = _by_column(project)
    finally:
        if saved is None:
            os.environ.pop("CRIMEAUDIT_PSEUDONYM_KEY", None)
        else:
            os.environ["CRIMEAUDIT_PSEUDONYM_KEY"] = saved
    by_sha = {f["sha256"]: f for f in summary["files"]}
    out = []
    for rep in report.files:
        s = by_sha.get(rep.sha256, {})
        out.append({
            "file": rep.file, "read": rep.read, "loaded": rep.loaded, "tables": rep.tables,
            "excluded": rep.excluded, "quarantined": rep.quarantined,
            "excluded_reasons": s.get("excluded_reasons", []),
            "quarantine_reasons": s.get("quarantine_reasons", []),
            "unmapped": rep.unmapped,
            "columns": columns.get(rep.sha256, []),
        })
    return out


def _by_column(project: Any) -> dict[str, list[dict[str, Any]]]:
    """Per file: quarantined rows by canonical column and kind of reason (the first check a
    row failed), and excluded rows by the source column of the rule."""
    from crimeaudit.ingestion.quarantine import _QUOTED, QUARANTINE_TABLE, excluded_rows

    eng = project.engine
    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    if eng.has_table(QUARANTINE_TABLE):
        t = eng.table(QUARANTINE_TABLE)
        g = t.group_by([t.sha256, t.table, t.column,
                        t.reason.re_replace(_QUOTED, "'…'").name("reason")]
                       ).aggregate(rows=t.count())
        for q in eng.to_pyarrow(g).to_pylist():
            col = (f"{q['table']}.{q['column']}" if q["table"] and q["column"] and
                   "," not in q["table"] else q["column"] or "(whole line)")
            key = (col, "quarantined", q["reason"])
            d = out.setdefault(q["sha256"], {}).setdefault(
                key, {"column": col, "what": "quarantined", "reason": q["reason"], "rows": 0})
            d["rows"] += int(q["rows"])
    for e in excluded_rows(project):
        key = (e["column"], "excluded", e["reason"])
        d = out.setdefault(e["sha256"], {}).setdefault(
            key, {"column": e["column"], "what": "excluded", "reason": e["reason"], "rows": 0})
        d["rows"] += int(e["rows"])
    return {sha: sorted(v.values(), key=lambda d: (d["column"], -d["rows"]))
            for sha, v in out.items()}


__all__ = ["ProfileCheck", "check_profile"]

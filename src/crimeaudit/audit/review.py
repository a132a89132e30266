"""Review sheets: export what an auditor needs per sampled record, import their decisions.

A sheet has one row per sampled record: the record's facts (narrative, call and closing codes,
division, the linked crime records with class, times, status and cancellation reason) followed
by the decision columns in a fixed vocabulary (:data:`crimeaudit.audit.decisions.VOCABULARY`)::

    should_record         yes | no | cannot_tell         always
    recorded              yes | no                        when should_record = yes
    correctly_classified  yes | no                        when recorded = yes
    correct_class         an offence code                 when correctly_classified = no, or
                                                          should_record = yes and recorded = no
    within_time_limit     yes | no                        when recorded = yes
    cancellation_valid    yes | no                        when the record has a cancelled crime
    victim_told           yes | no                        when the record has a cancelled crime
    auditor               who decided (or --auditor)      always
    notes                 free text                       optional

Import checks every row and refuses the whole sheet if any is wrong (unknown value, missing
value, a row for a record not in the sample, a duplicate row, a sampled record with no row):
the error lists file, line, column, value and the allowed values, and the store is unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import ibis
import pandas as pd

from crimeaudit.audit.decisions import (
    DECISION_COLUMNS,
    VOCABULARY,
    all_decisions,
    append_decisions,
)
from crimeaudit.audit.design import Sample, load_sample
from crimeaudit.audit.errors import AuditError
from crimeaudit.linkage.pairs import linked_pairs
from crimeaudit.progress import Progress, resolve
from crimeaudit.store.files import open_for_write
from crimeaudit.store.project import project_verb

FACT_COLUMNS = (
    "sample_id", "record_type", "record_id", "stratum", "reported_at", "call_type",
    "closing_code", "division", "location", "narrative", "crime_records", "has_cancellation",
)
SHEET_COLUMNS = (*FACT_COLUMNS, *DECISION_COLUMNS, "auditor", "notes", "sheet_stamp")
#: Rows whose decision columns are all blank are "not yet reviewed": a partial sheet imports.
REVIEW_FIELDS = (*DECISION_COLUMNS, "notes")
MAX_ERRORS_SHOWN = 40


class ReviewSheetError(AuditError):
    """A decision sheet was refused; ``errors`` lists every problem found."""

    def __init__(self, path: str, errors: list[str]):
        self.path, self.errors = path, errors
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        super().__init__(
            f"{path}: sheet refused, nothing was stored ({len(errors)} problem"
            f"{'s' if len(errors) != 1 else ''}):\n  " + "\n  ".join(shown) + more
        )


@dataclass(frozen=True)
class ImportResult:
    """What an import stored."""

    sample_id: str
    source: str
    batch: str
    stored: int
    superseded: int
    not_reviewed: int = 0

    def summary(self) -> str:
        text = (f"stored {self.stored} decisions for sample {self.sample_id} from {self.source}"
                f" ({self.superseded} supersede earlier decisions)")
        if self.not_reviewed:
            text += f"; {self.not_reviewed} blank rows left as not yet reviewed"
        return text


# -- what the auditor sees ----------------------------------------------------------------------


def linked_crimes(project, sample: Sample) -> pd.DataFrame:
    """Crime records linked to each sampled record (``record_id``, ``link_method`` and
    ``match_probability`` columns added).

    An incident's crimes are those :func:`crimeaudit.linkage.linked_pairs` links to it, by
    reference or by Splink; a sampled crime record (one linked to no incident, or a cancelled
    crime) is its own record. Only the sampled records' crimes leave the engine.
    """
    eng = project.engine
    crimes = eng.table("crimes")
    recs = sample.records
    inc_ids = recs.loc[recs.record_type == "incident", "record_id"].tolist()
    crime_ids = recs.loc[recs.record_type == "crime", "record_id"].tolist()
    parts = []
    if inc_ids:
        keys = ibis.memtable({"record_id": inc_ids})
        pairs = linked_pairs(project)
        mine = pairs.join(keys, pairs.incident_id == keys.record_id)
        parts.append(eng.to_pandas(
            crimes.join(mine, crimes.crime_id == mine.crime_id).select(
                *crimes.columns, record_id=mine.record_id, link_method=mine.method,
                match_probability=mine.match_probability)
        ))
    if crime_ids:
        keys = ibis.memtable({"record_id": crime_ids})
        parts.append(eng.to_pandas(
            crimes.join(keys, crimes.crime_id == keys.record_id).select(
                *crimes.columns, record_id=keys.record_id,
                link_method=ibis.literal("itself"), match_probability=ibis.literal(1.0))
        ))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=[*crimes.columns, "record_id", "link_method",
                                     "match_probability"])
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["record_id", "recorded_at", "crime_id"], kind="stable").reset_index(
        drop=True
    )


def review_frame(project, sample: Sample) -> pd.DataFrame:
    """The review sheet of ``sample`` as a data frame (decision columns empty)."""
    eng, codes = project.engine, project.codes
    recs = sample.records
    inc = eng.table("incidents")
    ids = recs.loc[recs.record_type == "incident", "record_id"].tolist()
    incidents = pd.DataFrame(columns=inc.columns)
    if ids:
        keys = ibis.memtable({"record_id": ids})
        incidents = eng.to_pandas(inc.join(keys, inc.incident_id == keys.record_id).select(
            *inc.columns))
    by_incident = {str(r["incident_id"]): r for r in incidents.to_dict("records")}
    crimes = linked_crimes(project, sample)
    changes: dict[str, list[dict]] = {}
    if eng.has_table("classification_changes") and len(crimes):
        cc = eng.table("classification_changes")
        keys = ibis.memtable({"cid": crimes.crime_id.astype(str).tolist()})
        for ch in eng.to_pandas(cc.join(keys, cc.crime_id == keys.cid).select(*cc.columns)
                                .order_by("changed_at")).to_dict("records"):
            changes.setdefault(ch["crime_id"], []).append(ch)
    stamp = sheet_stamp(project, sample.sample_id)
    # Plain dicts: per-row pandas indexing would dominate the export of a large sample.
    groups: dict[str, list[dict]] = {}
    for c in crimes.to_dict("records"):
        groups.setdefault(str(c["record_id"]), []).append(c)
    rows = []
    for r in recs.to_dict("records"):
        mine = groups.get(r["record_id"], [])
        i = by_incident.get(r["record_id"]) if r["record_type"] == "incident" else None
        if i is not None:
            reported = i["reported_at"]
            facts = {k: i[k] for k in ("call_type", "closing_code", "division", "location",
                                       "narrative")}
        else:
            c = mine[0] if mine else {}
            reported = c.get("reported_at")
            if reported is None or pd.isna(reported):
                reported = c.get("recorded_at")
            facts = dict(call_type="", closing_code="(crime recorded without an incident)",
                         division=r["division"], location=c.get("location") or "",
                         narrative="")
        rows.append({
            "sample_id": r["sample_id"], "record_type": r["record_type"],
            "record_id": r["record_id"], "stratum": r["stratum"],
            "reported_at": _fmt_time(reported), **facts,
            "crime_records": _describe_crimes(mine, reported, changes, codes),
            "has_cancellation": "yes" if any(c["status"] == "cancelled" for c in mine) else "no",
            **{c: "" for c in DECISION_COLUMNS}, "auditor": "", "notes": "",
            "sheet_stamp": stamp,
        })
    df = pd.DataFrame(rows, columns=list(SHEET_COLUMNS))
    return df.fillna("")


def _fmt_time(t) -> str:
    if t is None or pd.isna(t):
        return ""
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")


def _text(v) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def _describe_crimes(mine: list[dict], reported, changes: dict[str, list[dict]], codes) -> str:
    if not mine:
        return "(no linked crime record)"
    lines = []
    for c in mine:
        code = c["offence_code"]
        desc = codes.offences[code].description if code in codes.offences else "unknown class"
        text = f"{c['crime_id']}: {code} {desc}; recorded {_fmt_time(c['recorded_at'])}"
        if reported is not None and pd.notna(reported) and pd.notna(c["recorded_at"]):
            hours = (pd.Timestamp(c["recorded_at"]) - pd.Timestamp(reported)).total_seconds()
            text += f" ({hours / 3600:.1f} h after report)"
        text += _how_linked(c)
        text += f"; status {c['status']}"
        if c["status"] == "cancelled":
            reason = _text(c["cancellation_reason"]) or "no reason"
            text += f" ({reason}, {_fmt_time(c['cancelled_at'])})"
        if _text(c["outcome"]):
            text += f"; outcome {c['outcome']}"
        for ch in changes.get(c["crime_id"], []):
            text += f"; reclassified {ch['from_code']}->{ch['to_code']} "
            text += _fmt_time(ch["changed_at"])
        lines.append(text)
    return "\n".join(lines)


def _how_linked(crime: dict) -> str:
    """How a crime came to this record: the auditor must know a link is an inference.

    >>> _how_linked({"link_method": "probabilistic", "match_probability": 0.99731})
    '; linked by Splink, match probability 0.9973'
    """
    method = crime.get("link_method")
    if method == "exact":
        return "; linked by reference"
    if method == "probabilistic":
        return f"; linked by Splink, match probability {float(crime['match_probability']):.4f}"
    return ""


@project_verb
def export_review(project, sample_id: str | None = None, out: str | Path | None = None,
                  progress: Progress | None = None) -> dict[str, Path]:
    """Write the review sheet as CSV and XLSX; returns {"csv": path, "xlsx": path}.

    ``out`` is a folder (default ``DIR/review``); files are named ``review-<sample_id>``.
    """
    sample = load_sample(project, sample_id)
    with resolve(progress).task(f"Preparing {len(sample)} review rows", total=None):
        df = review_frame(project, sample)
    folder = Path(out) if out else project.folder("review")
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"review-{sample.sample_id}"
    paths = {"csv": stem.with_suffix(".csv"), "xlsx": stem.with_suffix(".xlsx")}
    # Every field quoted: a bare carriage return inside a narrative would otherwise split a row.
    # Written through open_for_write: never through a link planted in the folder, never torn.
    with open_for_write(paths["csv"], newline="") as f:
        df.map(neutralise).to_csv(f, index=False, lineterminator="\n", quoting=csv.QUOTE_ALL)
    with open_for_write(paths["xlsx"], "wb") as f:
        _write_xlsx(df, f, sorted(project.codes.offences))
    project.log_run("review export", params={"sample_id": sample.sample_id},
                    counts={"rows": len(df)})
    return paths


#: A spreadsheet reads a cell starting with these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A CSV cell a spreadsheet will show as text, never run as a formula.

    A leading apostrophe is the spreadsheet convention for "this is text"; it is removed again
    when the sheet is read back (:func:`read_sheet`).

    >>> print(neutralise('=HYPERLINK("http://x")'), neutralise("-5"), neutralise("a=b"))
    '=HYPERLINK("http://x") '-5 a=b
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _restore(value: str) -> str:
    """Undo :func:`neutralise` on a cell read back from a CSV sheet."""
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def _write_xlsx(df: pd.DataFrame, path: Path | BinaryIO, offence_codes: list[str]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "review"
    ws.append(list(df.columns))
    for row in df.itertuples(index=False):
        ws.append([str(v) for v in row])
        # Every cell is text: openpyxl would store "=..." as a live formula (data from a force
        # or the public may start with "=", "+", "-" or "@"), and Excel would run it.
        for cell in ws[ws.max_row]:
            cell.data_type = "s"
    decision_fill = PatternFill("solid", fgColor="FFF2CC")
    for j, name in enumerate(df.columns, start=1):
        cell = ws.cell(row=1, column=j)
        cell.font = Font(bold=True)
        letter = cell.column_letter
        width = {"narrative": 60, "crime_records": 60}.get(name, 16)
        ws.column_dimensions[letter].width = width
        if name in DECISION_COLUMNS or name in ("auditor", "notes"):
            cell.fill = decision_fill
        allowed = VOCABULARY.get(name)
        if allowed and len(df):
            dv = DataValidation(type="list", formula1='"' + ",".join(allowed) + '"',
                                allow_blank=True)
            dv.add(f"{letter}2:{letter}{len(df) + 1}")
            ws.add_data_validation(dv)
        if name in ("narrative", "crime_records"):
            for i in range(2, len(df) + 2):
                ws.cell(row=i, column=j).alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "D2"
    codes = wb.create_sheet("offence_codes")
    codes.append(["code"])
    for c in offence_codes:
        codes.append([c])
    wb.save(path)


# -- reading a completed sheet ------------------------------------------------------------------


def read_sheet(path: str | Path) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV or XLSX sheet as (line number, {column: text}); line 1 is the header."""
    path = Path(path)
    if not path.exists():
        raise AuditError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        ws = wb["review"] if "review" in wb.sheetnames else wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(it, [])]
        out = []
        for i, values in enumerate(it, start=2):
            cells = ["" if v is None else str(v) for v in values]
            if not any(c.strip() for c in cells):
                continue
            out.append((i, dict(zip(header, cells, strict=False))))
        wb.close()
        return out
    if path.suffix.lower() != ".csv":
        raise AuditError(f"{path}: a review sheet must be .csv or .xlsx")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        out, line = [], reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            out.append((start, dict(zip(header, map(_restore, cells), strict=False))))
    return out


def validate_rows(
    rows: list[tuple[int, dict[str, str]]], sample: Sample, cancelled: set[str], codes,
    path: str, auditor: str | None = None, corrections: bool = False,
) -> pd.DataFrame:
    """Check every row; return the clean decisions or raise :class:`ReviewSheetError`.

    ``cancelled`` holds the sampled record ids with a cancelled crime. With ``corrections``
    a sheet may hold only some of the sample's records (to supersede earlier decisions).
    """
    errors: list[str] = []
    if not rows:
        raise ReviewSheetError(path, ["the sheet has no rows"])
    header = set(rows[0][1])
    missing_cols = [c for c in ("record_id", "should_record") if c not in header]
    if missing_cols:
        raise ReviewSheetError(path, [f"missing column(s): {', '.join(missing_cols)}"])
    by_id = sample.records.set_index("record_id")
    offence_lookup = {c.upper(): c for c in codes.offences}
    seen: dict[str, int] = {}
    clean = []
    blank = 0
    for line, row in rows:
        def bad(col: str, value: str, why: str, line=line) -> None:
            errors.append(f"line {line}, column {col!r}: value {value!r} {why}")

        rid = (row.get("record_id") or "").strip()
        if not rid:
            bad("record_id", rid, "is empty")
            continue
        if rid not in by_id.index:
            bad("record_id", rid, f"is not a record of sample {sample.sample_id}")
            continue
        if rid in seen:
            bad("record_id", rid, f"is a duplicate (also on line {seen[rid]})")
            continue
        seen[rid] = line
        if not any((row.get(c) or "").strip() for c in REVIEW_FIELDS):
            blank += 1  # not yet reviewed: nothing to store for this record
            continue
        sid = (row.get("sample_id") or "").strip()
        if sid and sid != sample.sample_id:
            bad("sample_id", sid, f"is not the sample being imported ({sample.sample_id})")
        val: dict[str, str | None] = {}
        for col, allowed in VOCABULARY.items():
            raw = (row.get(col) or "").strip()
            v = raw.lower()
            if v and v not in allowed:
                bad(col, raw, f"is not allowed; use one of: {', '.join(allowed)}")
                v = "?"
            val[col] = v or None
        raw_class = (row.get("correct_class") or "").strip()
        val["correct_class"] = None
        if raw_class:
            if raw_class.upper() not in offence_lookup:
                bad("correct_class", raw_class, "is not an offence code in the code list")
            else:
                val["correct_class"] = offence_lookup[raw_class.upper()]

        def need(col: str, when: str, line=line, val=val) -> None:
            if val.get(col) is None:
                errors.append(f"line {line}, column {col!r}: empty, but required {when}")

        need("should_record", "for every record")
        if val["should_record"] == "yes":
            need("recorded", "when should_record is yes")
            if val["recorded"] == "no":
                need("correct_class", "when a crime should have been recorded but was not "
                     "(the class it should have had)")
        if val["recorded"] == "yes" and val["should_record"] == "yes":
            need("correctly_classified", "when recorded is yes")
            need("within_time_limit", "when recorded is yes")
        if val["correctly_classified"] == "no":
            need("correct_class", "when correctly_classified is no")
        if rid in cancelled:
            need("cancellation_valid", "for a record with a cancelled crime")
            need("victim_told", "for a record with a cancelled crime")
        who = (row.get("auditor") or "").strip() or (auditor or "")
        if not who:
            errors.append(f"line {line}, column 'auditor': empty; fill it in or pass --auditor")
        clean.append({
            "sample_id": sample.sample_id,
            "record_type": str(by_id.loc[rid, "record_type"]),
            "record_id": rid, **val, "auditor": who,
            "notes": (row.get("notes") or "").strip() or None,
        })
    if not corrections:
        absent = [r for r in sample.records.record_id if r not in seen]
        for r in absent[:MAX_ERRORS_SHOWN]:
            errors.append(f"record {r!r} of sample {sample.sample_id} has no row")
        if len(absent) > MAX_ERRORS_SHOWN:
            errors.append(f"... {len(absent) - MAX_ERRORS_SHOWN} more sampled records have no row")
    if not errors and not clean:
        errors.append(f"every one of the {blank} rows is blank: nothing has been reviewed yet")
    if errors:
        raise ReviewSheetError(path, errors)
    out = pd.DataFrame(clean)
    out.attrs["not_reviewed"] = blank
    return out


def cancelled_records(project, sample: Sample) -> set[str]:
    """Sampled record ids with at least one cancelled crime."""
    crimes = linked_crimes(project, sample)
    return set(crimes.loc[crimes.status == "cancelled", "record_id"].astype(str))


def sheet_stamp(project, sample_id: str) -> str:
    """``<sample>@<last decision id>``: what the store held when a sheet was exported (written
    in every row's ``sheet_stamp`` column, read back on import to refuse stale sheets)."""
    d = all_decisions(project, sample_id)
    return f"{sample_id}@{int(d.decision_id.max()) if len(d) else 0}"


def _stamp_of(rows: list[tuple[int, dict[str, str]]]) -> int | None:
    stamps = {(r.get("sheet_stamp") or "").strip() for _, r in rows} - {""}
    if len(stamps) != 1:
        return None
    try:
        return int(stamps.pop().rsplit("@", 1)[1])
    except (IndexError, ValueError):
        return None


def stale_conflicts(project, clean: pd.DataFrame, stamp: int | None, batch: str) -> pd.DataFrame:
    """Decisions stored after the sheet was exported, by another import, on records the sheet
    would change: importing it would silently revert them."""
    d = all_decisions(project, str(clean.sample_id.iloc[0]))
    if d.empty:
        return d
    newer = d[(d.decision_id > (stamp or 0)) & (d.batch != batch)
              & d.record_id.isin(set(clean.record_id))]
    if newer.empty:
        return newer
    # Only a decision the sheet would change is reverted: the same answers are no conflict.
    latest = newer.sort_values("decision_id").groupby("record_id").tail(1).set_index("record_id")
    mine = clean.set_index("record_id").loc[latest.index]

    def norm(v):
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "" else v

    differs = [any(norm(latest.at[r, c]) != norm(mine.at[r, c]) for c in DECISION_COLUMNS)
               for r in latest.index]
    return latest[differs].reset_index()


@project_verb
def import_review(project, path: str | Path, sample_id: str | None = None,
                  auditor: str | None = None, corrections: bool = False,
                  progress: Progress | None = None, force: bool = False) -> ImportResult:
    """Validate a completed sheet and append its decisions; refuse it whole on any error.

    Blank rows (no decision filled in) are records not yet reviewed: a partial sheet imports.
    A sheet exported before decisions that another import has since stored on the same records
    is refused (it would revert them), naming the newer batch, unless ``force``.
    """
    sample = load_sample(project, sample_id)
    with resolve(progress).task(f"Checking {Path(path).name}", total=None):
        rows = read_sheet(path)
        if sample_id is None and rows:
            # A sheet names its sample: import into that one, not simply the latest.
            named = {(r.get("sample_id") or "").strip() for _, r in rows} - {""}
            if len(named) == 1 and (sid := named.pop()) != sample.sample_id:
                sample = load_sample(project, sid)
        clean = validate_rows(rows, sample, cancelled_records(project, sample), project.codes,
                              str(path), auditor, corrections)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    batch = f"sheet-{digest}"
    newer = stale_conflicts(project, clean, _stamp_of(rows), batch)
    if len(newer) and not force:
        batches = ", ".join(f"{b} ({src})" for b, src in
                            newer[["batch", "source"]].drop_duplicates().itertuples(index=False))
        raise AuditError(
            f"{path}: this sheet was exported before newer decisions on "
            f"{newer.record_id.nunique()} of its records ({batches}); importing it would revert "
            "them. Export a fresh sheet, or pass --force to supersede them anyway")
    result = store_decisions(project, clean, source=Path(path).name, batch=batch)
    return dataclasses.replace(result, not_reviewed=int(clean.attrs.get("not_reviewed", 0)))


def store_decisions(project, clean: pd.DataFrame, source: str, batch: str,
                    log_params: dict | None = None) -> ImportResult:
    """Append validated decisions and say how many superseded earlier ones."""
    sid = str(clean.sample_id.iloc[0])
    before = set(all_decisions(project, sid).record_id)
    n = append_decisions(project, clean, source=source, batch=batch)
    superseded = int(clean.record_id.isin(before).sum())
    project.log_run("review import",
                    params={"sample_id": sid, "source": source, **(log_params or {})},
                    counts={"stored": n, "superseded": superseded})
    return ImportResult(sid, source, batch, n, superseded)


def record_decision(project, record_id: str, auditor: str, sample_id: str | None = None,
                    notes: str = "", **decision: str) -> ImportResult:
    """Store one record's decision (e.g. a correction), checked like a sheet row.

    For example ``record_decision(project, "I-001", "auditor-2", should_record="yes",
    recorded="no", correct_class="8N")`` supersedes I-001's earlier decision.
    """
    sample = load_sample(project, sample_id)
    row = {"record_id": record_id, "auditor": auditor, "notes": notes,
           **{k: str(v) for k, v in decision.items()}}
    unknown = set(decision) - set(DECISION_COLUMNS)
    if unknown:
        raise AuditError(f"unknown decision column(s): {', '.join(sorted(unknown))}")
    clean = validate_rows([(1, row)], sample, cancelled_records(project, sample), project.codes,
                          "decision", corrections=True)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return store_decisions(project, clean, source="api", batch=f"single-{stamp}")

"""First look at the files a user names on the command line, before a stage reads them.

A stage's reader expects a file of its kind; given a folder, a UTF-16 export, a binary file or
a "CSV" with fifty thousand columns it used to fail deep inside (a traceback, a misleading
"no such file" or "binary data", or minutes of work on a header nobody meant). These checks
read at most the first few megabytes and say in one line what the file is and what to do.
Data files are checked by the ingest itself (:mod:`crimeaudit.ingestion.first_look`, so the
Python API says the same); review sheets here.
"""

from __future__ import annotations

from pathlib import Path

from crimeaudit.cli.common import UserError
from crimeaudit.ingestion.first_look import (
    HEADER_LIMIT,
    MAX_COLUMNS,
    check_data_file,
    exists,
    head_of,
    header_columns,
    utf16,
)


def check_ingest_file(path: Path) -> None:
    """Refuse, in one line, a file ``crimeaudit ingest`` cannot sensibly read: the ingest's
    own check (:func:`crimeaudit.ingestion.first_look.check_data_file`, which the Python
    ``crimeaudit.ingest`` runs too), before the project is opened."""
    check_data_file(path)


def _exists(path: Path, what: str) -> None:
    exists(path, what, UserError)


def _head(path: Path, size: int = 65536) -> bytes:
    return head_of(path, size, UserError)


def check_review_sheet(path: Path) -> None:
    """Refuse, in one line, a file that is not a CSV (UTF-8) or XLSX review sheet."""
    path = Path(path)
    _exists(path, "review sheet")
    suffix = path.suffix.lower()
    head = _head(path)
    if suffix in (".xlsx", ".xlsm"):
        if not head.startswith(b"PK\x03\x04"):
            raise UserError(f"{path}: not an XLSX workbook (its content is something else); "
                            f"export the sheet again as .xlsx or as CSV UTF-8")
        try:
            from openpyxl import load_workbook

            load_workbook(path, read_only=True).close()
        except Exception as exc:  # openpyxl raises zipfile, KeyError and its own types
            raise UserError(f"{path}: not a readable XLSX workbook ({type(exc).__name__}); "
                            f"export the sheet again as .xlsx or as CSV UTF-8") from exc
        return
    if suffix != ".csv":
        return  # the reader names the formats it takes
    if utf16(head):
        raise UserError(f"{path}: UTF-16 text; review sheets are read as UTF-8: save it as "
                        f"\"CSV UTF-8\" (Excel: File > Save As) or as .xlsx")
    if b"\x00" in head:
        raise UserError(f"{path}: binary data, not a CSV review sheet; export the sheet "
                        f"again as CSV UTF-8 or .xlsx")
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{path}: line {line}: byte {exc.start} is not UTF-8; save the "
                        f"sheet as \"CSV UTF-8\" (Excel: File > Save As)") from exc


__all__ = ["HEADER_LIMIT", "MAX_COLUMNS", "check_ingest_file", "check_review_sheet",
           "header_columns", "utf16"]

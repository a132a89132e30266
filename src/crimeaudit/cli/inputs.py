"""First look at the files a user names on the command line, before a stage reads them.

A stage's reader expects a file of its kind; given a folder, a UTF-16 export, a binary file or
a "CSV" with fifty thousand columns it used to fail deep inside (a traceback, a misleading
"no such file" or "binary data", or minutes of work on a header nobody meant). These checks
read at most the first few megabytes and say in one line what the file is and what to do.
"""

from __future__ import annotations

from pathlib import Path

from crimeaudit.cli.common import UserError

#: Most columns a CSV or Parquet file may have. Real exports have tens; a file with thousands
#: more is not a table of records (or a wide table the wrong way round), and reading its header
#: into the engine takes minutes for nothing.
MAX_COLUMNS = 10_000

#: How much of line 1 is read to count the header's columns: 10,000 names of 100 characters.
HEADER_LIMIT = 4 << 20

_UTF16_HINT = ("crimeaudit reads UTF-8 (or Windows-1252): save it as \"CSV UTF-8\" "
               "(Excel: File > Save As), or convert it with: iconv -f UTF-16 -t UTF-8")


def utf16(head: bytes) -> bool:
    """Whether ``head`` looks like UTF-16 text: a byte-order mark, or every other byte zero.

    >>> utf16("a,b\\n".encode("utf-16")), utf16("a,b\\n".encode("utf-16-le")), utf16(b"a,b\\n")
    (True, True, False)
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    sample = head[:4096]
    if len(sample) < 4:
        return False
    evens, odds = sample[0::2], sample[1::2]
    # ASCII text in UTF-16: one half of the bytes is (almost) all zero, the other half never.
    for zeros, text in ((evens, odds), (odds, evens)):
        if zeros.count(0) >= 0.9 * len(zeros) and text.count(0) <= 0.1 * len(text):
            return True
    return False


def _exists(path: Path, what: str) -> None:
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a {what}; name the file(s) inside it")
    if not path.exists():
        raise UserError(f"{path}: no such file")


def _head(path: Path, size: int = 65536) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def check_ingest_file(path: Path) -> None:
    """Refuse, in one line, a file ``crimeaudit ingest`` cannot sensibly read.

    Not refused here: anything the ingest's own reader handles (encodings it detects, bad rows
    it quarantines); this only catches what would otherwise fail without a clear message.
    """
    path = Path(path)
    _exists(path, "data file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            n = len(pq.read_schema(path).names)
        except Exception:  # a damaged file: the ingest's reader says so in its own words
            return
        if n > MAX_COLUMNS:
            raise UserError(f"{path}: {n:,} columns; crimeaudit reads files of at most "
                            f"{MAX_COLUMNS:,} columns (one column per field, one row per "
                            f"record); nothing was loaded")
        return
    head = _head(path)
    if utf16(head):
        raise UserError(f"{path}: UTF-16 text; {_UTF16_HINT}; nothing was loaded")
    n = header_columns(path)
    if n is None:
        raise UserError(f"{path}: line 1 is over {HEADER_LIMIT >> 20} MB without a line end: "
                        f"not a CSV header of at most {MAX_COLUMNS:,} columns; nothing was "
                        f"loaded")
    if n > MAX_COLUMNS:
        raise UserError(f"{path}: line 1: {n:,} columns; crimeaudit reads files of at most "
                        f"{MAX_COLUMNS:,} columns (one column per field, one row per record); "
                        f"nothing was loaded")


def header_columns(path: Path) -> int | None:
    """Columns in a CSV's first line (quotes respected), None if it has no end in sight.

    The most frequent of the usual delimiters outside quotes decides, as the reader's own
    detection would; an upper bound is all the check needs.
    """
    with path.open("rb") as f:
        data = f.read(HEADER_LIMIT + 1)
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    if not ends:
        if len(data) > HEADER_LIMIT:
            return None
        line = data
    else:
        line = data[:min(ends)]
    if b'"' not in line:
        return max(line.count(d) for d in (b",", b";", b"\t", b"|")) + 1
    counts = dict.fromkeys(b",;\t|", 0)
    quoted = False
    for byte in line:
        if byte == 0x22:
            quoted = not quoted
        elif not quoted and byte in counts:
            counts[byte] += 1
    return max(counts.values()) + 1


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

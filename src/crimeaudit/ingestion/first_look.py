"""First look at a data file before the ingest reads it: the one place the ingest refuses a
folder, a UTF-16 export or a file with absurdly many columns.

A reader expects a file of its kind; given a folder, a UTF-16 export or a "CSV" with fifty
thousand columns it used to fail deep inside (a traceback, a misleading "no such file" or
"binary data", or minutes of work on a header nobody meant). :func:`check_data_file` reads at
most the first few megabytes and raises one :class:`~crimeaudit.ingestion.errors.IngestError`
saying what the file is and what to do. :func:`crimeaudit.ingestion.source.inspect_file` calls
it first, so ``crimeaudit ingest`` and the Python ``crimeaudit.ingest(...)`` give the same
message.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "wide.csv").write_text(",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)) + "\\n")
>>> try:
...     check_data_file(d / "wide.csv")
... except IngestError as exc:
...     print(str(exc).split(": ", 1)[1][:40])
line 1: 10,001 columns; crimeaudit reads
"""

from __future__ import annotations

from pathlib import Path

from crimeaudit.ingestion.errors import IngestError

#: Most columns a CSV or Parquet file may have. Real exports have tens; a file with thousands
#: more is not a table of records (or a wide table the wrong way round), and reading its header
#: into the engine takes minutes for nothing.
MAX_COLUMNS = 10_000

#: How much of line 1 is read to count the header's columns: 10,000 names of 100 characters.
HEADER_LIMIT = 4 << 20

UTF16_HINT = ("crimeaudit reads UTF-8 (or Windows-1252): save it as \"CSV UTF-8\" "
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


def exists(path: Path, what: str, error: type[Exception] = IngestError) -> None:
    """Refuse a folder or a missing path in one line (``what``: "data file", ...)."""
    if path.is_dir():
        raise error(f"{path}: is a directory, not a {what}; name the file(s) inside it")
    if not path.exists():
        raise error(f"{path}: no such file")


def head_of(path: Path, size: int = 65536, error: type[Exception] = IngestError) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc


def check_data_file(path: str | Path) -> None:
    """Refuse, in one line, a data file the ingest cannot sensibly read.

    Not refused here: anything the ingest's own reader handles (encodings it detects, bad rows
    it quarantines); this only catches what would otherwise fail without a clear message.
    """
    path = Path(path)
    exists(path, "data file")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            n = len(pq.read_schema(path).names)
        except Exception:  # a damaged file: the ingest's reader says so in its own words
            return
        if n > MAX_COLUMNS:
            raise IngestError(f"{path}: {n:,} columns; crimeaudit reads files of at most "
                              f"{MAX_COLUMNS:,} columns (one column per field, one row per "
                              f"record); nothing was loaded")
        return
    head = head_of(path)
    if utf16(head):
        raise IngestError(f"{path}: UTF-16 text; {UTF16_HINT}; nothing was loaded")
    n = header_columns(path)
    if n is None:
        raise IngestError(f"{path}: line 1 is over {HEADER_LIMIT >> 20} MB without a line "
                          f"end: not a CSV header of at most {MAX_COLUMNS:,} columns; nothing "
                          f"was loaded")
    if n > MAX_COLUMNS:
        raise IngestError(f"{path}: line 1: {n:,} columns; crimeaudit reads files of at most "
                          f"{MAX_COLUMNS:,} columns (one column per field, one row per "
                          f"record); nothing was loaded")


def header_columns(path: str | Path) -> int | None:
    """Columns in a CSV's first line (quotes respected), None if it has no end in sight.

    The most frequent of the usual delimiters outside quotes decides, as the reader's own
    detection would; an upper bound is all the check needs.
    """
    with Path(path).open("rb") as f:
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


__all__ = ["HEADER_LIMIT", "MAX_COLUMNS", "check_data_file", "header_columns", "utf16"]

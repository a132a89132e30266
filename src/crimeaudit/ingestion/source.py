"""A cheap look at each input file before the engine reads it: readable at all, which
encoding, which delimiter, which columns.

>>> import tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
>>> _ = f.write_bytes("a;b;c\\n1;2;3\\n".encode())
>>> s = inspect_file(f)
>>> s.delimiter, s.encoding, s.columns
(';', 'utf-8', ['a', 'b', 'c'])
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from crimeaudit.ingestion.errors import IngestError

_VALID_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


@dataclass
class SourceFile:
    path: Path
    sha256: str
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: list[str] | None = None


def _detect_encoding(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # Valid multi-byte UTF-8 elsewhere in the file means a UTF-8 file with damaged lines
    # (quarantined line by line); otherwise the file is in the Windows code page.
    if _VALID_UTF8_MULTIBYTE.search(data):
        return "utf-8"
    return "windows-1252"


def _detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


CHUNK = 16 << 20  # bytes read at a time: the whole file is never held in memory


def _scan(path: Path) -> tuple[str, bytes, bool, bool]:
    """One streaming pass: SHA-256, the first chunk, whether anything but whitespace is in the
    file, and whether it is valid UTF-8 (plain ASCII chunks are not decoded at all)."""
    sha = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    head, content, utf8 = b"", False, True
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            head = head or chunk
            content = content or bool(chunk.strip())
            if utf8 and not (chunk.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return sha.hexdigest(), head, content, utf8


def inspect_file(path: str | Path, fmt: str = "auto", encoding: str = "auto",
                 delimiter: str = "auto") -> SourceFile:
    """Hash the file and detect its format, encoding and delimiter; refuse unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    sha, head, content, utf8 = _scan(path)
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    if not content:
        raise IngestError(f"{path}: the file is empty; nothing was loaded from it")
    if fmt == "parquet":
        try:
            cols = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise IngestError(
                f"{path}: not a readable Parquet file ({exc}); nothing was loaded from it"
            ) from None
        return SourceFile(path, sha, "parquet", columns=cols)
    if b"\x00" in head[:65536] or head.startswith(b"PAR1"):
        raise IngestError(f"{path}: binary data, not a text (CSV) file; nothing was loaded")
    if encoding != "auto":
        enc = encoding
    elif head.startswith(b"\xef\xbb\xbf"):
        enc = "utf-8-sig"
    elif utf8:
        enc = "utf-8"
    else:  # damaged UTF-8 or the Windows code page: look at the whole file
        enc = _detect_encoding(path.read_bytes())
    if enc == "windows-1252":
        try:
            path.read_bytes().decode("cp1252")
        except UnicodeDecodeError as exc:
            raise IngestError(
                f"{path}: byte {exc.start} is neither UTF-8 nor Windows-1252; nothing loaded"
            ) from None
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    header = first.decode("cp1252" if enc == "windows-1252" else "utf-8", errors="replace")
    header = header.lstrip("\ufeff")
    delim = _detect_delimiter(header) if delimiter == "auto" else delimiter
    cols = next(csv.reader(io.StringIO(header), delimiter=delim))
    cols = [c.strip() for c in cols]
    if len(set(cols)) != len(cols) or any(not c for c in cols):
        raise IngestError(f"{path}: line 1: the header has empty or repeated column names")
    return SourceFile(path, sha, "csv", enc, delim, cols)


def transcode_to_utf8(src: SourceFile, folder: Path) -> Path:
    """Windows-1252 files are rewritten as UTF-8 once, so the engine reads one encoding."""
    out = folder / f"{src.sha256[:16]}.utf8.csv"
    out.write_text(src.path.read_bytes().decode("cp1252"), encoding="utf-8")
    return out

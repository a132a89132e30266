"""Each input file's own account of itself, taken before any engine reads it: readable at all,
which encoding and delimiter, which columns, how many records, and whether a fast CSV reader
can be trusted with it as it is.

Why a pass of our own: an engine's CSV reader decides what a record is by itself, and on a
damaged file it decides badly (an unterminated quote on line 100 swallows the other 4,900
lines into one rejected row; a mixed line ending aborts the read; a 40 MB line vanishes). So
the file's records are defined here, by physical lines, and counted in the same streaming pass
that hashes the file:

- a record is one physical line (lines end at ``\\r\\n``, ``\\n`` or a lone ``\\r``); with a
  profile's ``multiline_fields: true`` a quoted field may continue onto the next lines, at most
  :data:`MAX_RECORD_LINES` of them;
- quoting is RFC 4180: a field that starts with ``"`` ends at a ``"`` followed by the delimiter
  or the line end (``""`` is a quote inside it); a ``"`` inside an unquoted field is a character;
- a line that cannot be one record (an unterminated quote, text after a closing quote, too few
  or too many fields, bytes that are not text, a NUL, more than :data:`MAX_LINE_BYTES`) is
  quarantined *alone*, and reading goes on at the next line; empty lines hold no record.

When the scan finds nothing a fast reader could read differently (:attr:`SourceFile.clean`),
the engine reads the file itself and its count must equal :attr:`SourceFile.records`; otherwise
:class:`RecordSplitter` splits it here and hands the engine the records as Arrow batches. Either
way nothing is copied to disk: no temporary file ever holds the file's (personal) values.

>>> import tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
>>> _ = f.write_bytes('a;b;c\\n1;2;3\\n4;"5;6\\n7;8;9\\n'.encode())
>>> s = inspect_file(f)
>>> s.delimiter, s.encoding, s.columns, s.clean
(';', 'utf-8', ['a', 'b', 'c'], False)
>>> split = RecordSplitter(s)
>>> [b.to_pydict() for b in split.batches()]
[{'__rn': [2, 4], 'a': ['1', '7'], 'b': ['2', '8'], 'c': ['3', '9']}]
>>> split.read, [(line, reason[:20]) for line, _, reason, _ in split.rejects]
(3, [(3, 'unterminated quote: ')])
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crimeaudit.ingestion.errors import IngestError
from crimeaudit.ingestion.first_look import check_data_file

_VALID_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_EOL = re.compile(rb"\r\n|\r|\n")

CHUNK = 16 << 20  # bytes read at a time: the whole file is never held in memory
#: Longest line (bytes) read as a record. No crime record needs more; a runaway quote, a binary
#: blob or a file with no line ends does, and a reader that tries to hold one loses it.
MAX_LINE_BYTES = 2 << 20
#: With ``multiline_fields``, the most physical lines one quoted field may span: enough for a
#: narrative with paragraphs, few enough that a stray quote cannot swallow the file.
MAX_RECORD_LINES = 50
RAW_CHARS = 1000  # text kept of a line that could not be split (the quarantine's raw column)
BATCH_ROWS = 50_000


@dataclass
class SourceFile:
    path: Path
    sha256: str
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: list[str] | None = None
    #: Records after the header if every line is one record (the count a reader must reach).
    records: int = 0
    #: Nothing in the file that a fast CSV reader could read otherwise than
    #: :class:`RecordSplitter` (no quote left open at a line end, no stray or badly placed
    #: quote, one line-end style, no NUL, no over-long line, no empty line between records).
    clean: bool = False
    #: Why the file is not clean (the first thing found), for messages and tests.
    problem: str = ""

    def split(self, multiline: bool = False) -> RecordSplitter:
        """This file's records split here, for an engine that cannot trust its own reader."""
        return RecordSplitter(self, multiline)


class _Shape:
    """Streaming, vectorised check of a file's lines and quotes (numpy over each chunk).

    Quotes are paired in file order: an opening quote must start a field (after the delimiter,
    a line end, or the closing quote of a ``""`` pair) and a closing one must end it (before the
    delimiter, a line end or the next quote of a pair); every line end must fall outside quotes.
    Anything else makes the file not clean. Counts lines for :attr:`SourceFile.records`.
    """

    def __init__(self, delimiter: str):
        self.d = ord(delimiter)
        self.offset = 0
        self.quotes = 0
        self.prev = 10  # the byte before the current chunk (the file starts a line)
        self.pending_close = False  # a chunk ended on a closing quote: check the next byte
        self.nl = self.cr = self.crlf = 0
        self.line = 0  # bytes of the current line so far
        self.blank_at = -1  # offset of the first empty line
        self.content_end = 0
        self.trailing_nl = 0
        self.bom = 0
        self.problem = ""

    def feed(self, chunk: bytes) -> None:
        if self.offset == 0 and chunk.startswith(b"\xef\xbb\xbf"):
            self.bom = 3
        a = np.frombuffer(chunk, np.uint8)
        nl = np.flatnonzero(a == 10)
        # the byte before each line end (a \r makes it a \r\n)
        before = a[nl - 1] if len(nl) and nl[0] > 0 else np.where(
            nl > 0, a[np.maximum(nl - 1, 0)], self.prev)
        self._ends(chunk, nl, before)
        if not self.problem:
            self._lines(chunk, a, nl, before)
        if not self.problem:
            self._quotes(chunk, a, nl)
        self.prev = chunk[-1]
        self.offset += len(chunk)

    def _ends(self, chunk: bytes, nl: np.ndarray, before: np.ndarray) -> None:
        self.nl += len(nl)
        if b"\r" in chunk:
            self.cr += chunk.count(b"\r")
            self.crlf += int(np.count_nonzero(before == 13))
        stripped = chunk.rstrip(b"\r\n")
        if stripped:
            self.content_end = self.offset + len(stripped)
            self.trailing_nl = chunk.count(b"\n", len(stripped))
        else:
            self.trailing_nl += len(nl)

    def _lines(self, chunk: bytes, a: np.ndarray, nl: np.ndarray, before: np.ndarray) -> None:
        if b"\x00" in chunk:
            self.problem = "a NUL byte"
            return
        if not len(nl):
            self.line += len(chunk)
        else:
            lengths = np.diff(nl, prepend=-1) - 1
            lengths[0] += self.line
            self.line = len(chunk) - int(nl[-1]) - 1
            if lengths.max() > MAX_LINE_BYTES:
                self.problem = "a line over the length limit"
                return
            # An empty line: nothing, or only the \r of a \r\n, before its \n.
            if self.blank_at < 0:
                blank = (lengths == 0) | ((lengths == 1) & (before == 13))
                if blank.any():
                    self.blank_at = self.offset + int(nl[np.argmax(blank)])
        if self.line > MAX_LINE_BYTES:
            self.problem = "a line over the length limit"

    def _quotes(self, chunk: bytes, a: np.ndarray, nl: np.ndarray) -> None:
        d = self.d
        if self.pending_close:
            self.pending_close = False
            if a[0] not in (d, 10, 13, 34):
                self.problem = "text after a closing quote"
                return
        if b'"' not in chunk:
            if self.quotes & 1 and len(nl):
                self.problem = "a quoted field spanning lines (or an unterminated quote)"
            return
        q = np.flatnonzero(a == 34)
        # Quotes alternate: opening, closing, opening... (a "" pair is a closing and an opening)
        first = self.quotes & 1
        opens, closes = q[first::2], q[1 - first::2]
        prev = a[opens - 1] if opens[0] > 0 else np.where(
            opens > 0, a[np.maximum(opens - 1, 0)], self.prev)
        ok = (prev == d) | (prev == 10) | (prev == 34)
        if self.offset == 0:
            ok |= opens == self.bom
        if not ok.all():
            self.problem = "a quote inside an unquoted field"
            return
        last = len(a) - 1
        nxt = a[np.minimum(closes + 1, last)]
        ok = (nxt == d) | (nxt == 10) | (nxt == 13) | (nxt == 34) | (closes == last)
        if not ok.all():
            self.problem = "text after a closing quote"
            return
        self.pending_close = bool(len(closes)) and int(closes[-1]) == last
        if len(nl) and ((np.searchsorted(q, nl) + self.quotes) & 1).any():
            self.problem = "a quoted field spanning lines (or an unterminated quote)"
            return
        self.quotes += len(q)

    def finish(self) -> tuple[int, str]:
        """(records after the header if every line is one, problem or "")."""
        problem = self.problem
        if not problem and self.quotes & 1:
            problem = "an unterminated quote"
        if not problem and self.cr and not (self.cr == self.crlf == self.nl):
            problem = "mixed or carriage-return-only line ends"
        if not problem and 0 <= self.blank_at < self.content_end:
            problem = "an empty line between records"
        if not problem and self.prev == 13:
            problem = "mixed or carriage-return-only line ends"
        return max(self.nl - self.trailing_nl, 0), problem


def _detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _first_line(head: bytes) -> bytes:
    m = _EOL.search(head)
    return head[:m.start()] if m else head


@dataclass
class _Scan:
    sha256: str
    head: bytes
    content: bool
    utf8: bool
    multibyte: bool  # valid multi-byte UTF-8 somewhere (a UTF-8 file with damaged lines)
    cp1252_bad: int  # offset of a byte Windows-1252 does not define, or -1
    shape: _Shape | None


def _scan(path: Path, delimiter: str | None) -> _Scan:
    """One streaming pass: SHA-256, the first chunk, whether anything but whitespace is in the
    file, UTF-8 validity (plain ASCII chunks are not decoded at all), the Windows-1252 check
    and, for text files, the shape of its lines and quotes."""
    sha = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    head, content, utf8, multibyte, bad = b"", False, True, False, -1
    shape: _Shape | None = None
    offset = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            if not head:
                head = chunk
                if delimiter is None and not head.startswith(b"PAR1"):
                    header = _first_line(head).decode("latin-1")
                    delimiter = _detect_delimiter(header)
                if delimiter is not None and not head.startswith(b"PAR1"):
                    shape = _Shape(delimiter)
            content = content or bool(chunk.strip())
            if not chunk.isascii() or decoder.getstate()[0]:
                if utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
                if not multibyte and _VALID_UTF8_MULTIBYTE.search(chunk):
                    multibyte = True
                if bad < 0:
                    found = [i for i in (chunk.find(b) for b in _CP1252_UNDEFINED) if i >= 0]
                    bad = offset + min(found) if found else -1
            if shape is not None:
                shape.feed(chunk)
            offset += len(chunk)
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return _Scan(sha.hexdigest(), head, content, utf8, multibyte, bad, shape)


def inspect_file(path: str | Path, fmt: str = "auto", encoding: str = "auto",
                 delimiter: str = "auto") -> SourceFile:
    """Hash the file, detect its format, encoding and delimiter, count its records and check
    its shape; refuse unreadable files (one :class:`IngestError` naming the file)."""
    path = Path(path)
    check_data_file(path)  # a folder, UTF-16, 10,000+ columns: one line, before any work
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    try:
        scan = _scan(path, None if fmt == "parquet" or delimiter == "auto" else delimiter)
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror or exc}") from None
    head = scan.head
    if not scan.content:
        raise IngestError(f"{path}: the file is empty; nothing was loaded from it")
    if fmt == "parquet":
        try:
            cols = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise IngestError(
                f"{path}: not a readable Parquet file ({exc}); nothing was loaded from it"
            ) from None
        return SourceFile(path, scan.sha256, "parquet", columns=cols, clean=True)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise IngestError(f"{path}: UTF-16 text; save it as UTF-8 (Excel: \"CSV UTF-8\") or "
                          f"convert it with iconv -f UTF-16 -t UTF-8; nothing was loaded")
    # A text file may hold a stray NUL (that line is quarantined); many mean binary data.
    if head.startswith(b"PAR1") or head[:65536].count(b"\x00") > max(8, len(head[:65536]) // 100):
        raise IngestError(f"{path}: binary data, not a text (CSV) file; nothing was loaded")
    if encoding != "auto":
        enc = encoding
    elif head.startswith(b"\xef\xbb\xbf"):
        enc = "utf-8-sig"
    elif scan.utf8 or scan.multibyte:
        # Valid multi-byte UTF-8 elsewhere in the file means a UTF-8 file with damaged lines
        # (quarantined line by line); otherwise the file is in the Windows code page.
        enc = "utf-8"
    else:
        enc = "windows-1252"
    if enc == "windows-1252" and scan.cp1252_bad >= 0:
        raise IngestError(f"{path}: byte {scan.cp1252_bad} is neither UTF-8 nor Windows-1252; "
                          f"nothing loaded")
    first = _first_line(head)
    if len(first) > MAX_LINE_BYTES:
        raise IngestError(f"{path}: line 1 is over {MAX_LINE_BYTES >> 20} MiB: not a CSV "
                          f"header; nothing was loaded")
    header = first.decode("cp1252" if enc == "windows-1252" else "utf-8", errors="replace")
    header = header.lstrip("\ufeff")
    delim = _detect_delimiter(header) if delimiter == "auto" else delimiter
    cols = next(csv.reader(io.StringIO(header), delimiter=delim), [])
    cols = [c.strip() for c in cols]
    if len(set(cols)) != len(cols) or any(not c for c in cols):
        raise IngestError(f"{path}: line 1: the header has empty or repeated column names")
    records, problem = scan.shape.finish() if scan.shape else (0, "no shape")
    if enc == "windows-1252":
        problem = problem or "Windows-1252 text"
    elif not scan.utf8:
        problem = problem or "bytes that are not UTF-8"
    return SourceFile(path, scan.sha256, "csv", enc, delim, cols, records=records,
                      clean=not problem, problem=problem)


def _physical_lines(path: Path) -> Iterator[tuple[int, bytes | int]]:
    """(line number, bytes without the line end) for every physical line; a line over
    :data:`MAX_LINE_BYTES` comes as its length instead, never held whole in memory."""
    n = 0
    carry = b""
    skipped = -1  # >= 0 while inside an over-long line: the bytes of it seen so far
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            buf = carry + chunk if carry else chunk
            # A \r at the end may be the first half of a \r\n: keep it for the next chunk.
            hold = buf.endswith(b"\r")
            parts = (_EOL.split(buf[:-1] if hold else buf) if b"\r" in buf
                     else buf.split(b"\n"))
            carry = parts.pop() + (b"\r" if hold else b"")
            for part in parts:
                n += 1
                if skipped >= 0:
                    yield n, skipped + len(part)
                    skipped = -1
                elif len(part) > MAX_LINE_BYTES:
                    yield n, len(part)
                else:
                    yield n, part
            if len(carry) > MAX_LINE_BYTES + 1:
                skipped = max(skipped, 0) + len(carry)
                carry = b""
    if carry.endswith(b"\r"):
        carry = carry[:-1]
    if skipped >= 0:
        yield n + 1, skipped + len(carry)
    elif carry:
        yield n + 1, carry


class RecordSplitter:
    """The records of a CSV file by the rules of this module, as Arrow batches of text
    (``__rn``: the record's first physical line; one column per header name), with every line
    that is not a record in :attr:`rejects` as (line, column, reason, text).

    Used when the file is not :attr:`~SourceFile.clean`: it is exact where a fast reader is
    not, at Python's speed. :attr:`read` (records + rejects) is complete once the batches are
    consumed.
    """

    def __init__(self, src: SourceFile, multiline: bool = False, batch_rows: int = BATCH_ROWS):
        self.src = src
        self.multiline = multiline
        self.batch_rows = batch_rows
        self.columns = list(src.columns or [])
        self.rejects: list[tuple[int, str, str, str]] = []
        self.read = 0
        self.encoding = "utf-8" if src.encoding == "utf-8-sig" else src.encoding
        self.decode_name = "cp1252" if self.encoding == "windows-1252" else "utf-8"
        # Python's csv refuses fields over 128 KiB by default; a record may be longer.
        csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES * MAX_RECORD_LINES))

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("__rn", pa.int64())] + [(c, pa.string()) for c in self.columns])

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def _reject(self, line: int, reason: str, raw: bytes | str = "") -> None:
        text = raw if isinstance(raw, str) else raw.decode(self.decode_name, errors="replace")
        if len(text) > RAW_CHARS:
            text = text[:RAW_CHARS] + f"... ({len(text):,} characters)"
        self.rejects.append((line, "", reason, text))
        self.read += 1

    def _text(self, n: int, line: bytes | int) -> str | None:
        """The line as text, or None after quarantining it (too long, NUL, bad bytes)."""
        if isinstance(line, int):
            self._reject(n, f"line too long: {line:,} bytes (a record may have at most "
                            f"{MAX_LINE_BYTES >> 20} MiB); the line was not read")
            return None
        if b"\x00" in line:
            self._reject(n, "damaged line: NUL byte (\\x00) in the text", line.replace(b"\0", b""))
            return None
        try:
            return line.decode(self.decode_name)
        except UnicodeDecodeError as exc:
            self._reject(n, f"bad encoding: bytes that are not valid UTF-8 (byte {exc.start + 1} "
                            f"of the line)", line)
            return None

    def _fields(self, text: str) -> list[str] | str:
        """The fields of ``text`` or the reason it is not a record ("open": quote left open)."""
        if '"' not in text:
            return text.split(self.src.delimiter)
        try:
            return next(csv.reader([text], delimiter=self.src.delimiter, strict=True))
        except csv.Error as exc:
            return "open" if "unexpected end of data" in str(exc) else (
                f"malformed quoting: {exc} (text after a closing quote)")

    def _ragged(self, fields: list[str]) -> str:
        n, want = len(fields), len(self.columns)
        return (f"ragged row: {'fewer' if n < want else 'more'} fields than the header "
                f"({n} of {want})")

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        lines = _physical_lines(self.src.path)
        pending: deque[tuple[int, bytes | int]] = deque()

        def following() -> tuple[int, bytes | int] | None:
            if pending:
                return pending.popleft()
            return next(lines, None)

        first = True
        while (item := following()) is not None:
            n, line = item
            if first:  # the header (inspect_file read it)
                first = False
                continue
            if line == b"":
                continue  # an empty line holds no record
            text = self._text(n, line)
            if text is None:
                continue
            fields = self._fields(text)
            if fields == "open" and self.multiline:
                fields, used = self._continue(text, following)
                if isinstance(fields, list):
                    if len(fields) != len(self.columns):
                        self._reject(n, self._ragged(fields) + f" (record on lines {n}-"
                                        f"{n + len(used)})", text)
                        continue
                    yield n, fields
                    continue
                pending.extendleft(reversed(used))  # read them again, on their own
            if fields == "open":
                within = f" within {MAX_RECORD_LINES} lines" if self.multiline else (
                    " on the same line (the profile does not allow fields spanning lines)")
                self._reject(n, f"unterminated quote: a quoted field starts on this line and "
                                f"does not close{within}", text)
            elif isinstance(fields, str):
                self._reject(n, fields, text)
            elif len(fields) != len(self.columns):
                self._reject(n, self._ragged(fields), text)
            else:
                yield n, fields

    def _continue(self, text: str, following) -> tuple[list[str] | str, list]:
        """Extend a record whose quote is open at the line end by the next lines."""
        used: list[tuple[int, bytes | int]] = []
        while len(used) < MAX_RECORD_LINES - 1:
            item = following()
            if item is None:
                break
            used.append(item)
            n, line = item
            if isinstance(line, int) or b"\x00" in line:
                break
            try:
                text += "\n" + line.decode(self.decode_name)
            except UnicodeDecodeError:
                break
            fields = self._fields(text)
            if fields != "open":
                return fields, used
        return "open", used

    def batches(self) -> Iterator[pa.RecordBatch]:
        rows: list[list[str]] = []
        lines: list[int] = []
        for n, fields in self._records():
            lines.append(n)
            rows.append(fields)
            if len(rows) >= self.batch_rows:
                yield self._batch(lines, rows)
                rows, lines = [], []
        if rows:
            yield self._batch(lines, rows)

    def _batch(self, lines: list[int], rows: list[list[str]]) -> pa.RecordBatch:
        self.read += len(rows)
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(self.columns)
        arrays = [pa.array(lines, pa.int64())] + [pa.array(c, pa.string()) for c in cols]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

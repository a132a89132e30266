"""Writing crimeaudit's output files safely: never through a symbolic link, never half-written.

A project folder may be shared (a team drive, a folder an inspectorate receives from a force).
Anyone who can write to it could replace ``reports/report.html`` by a link to a file elsewhere
(``~/.bashrc``, another project's store); writing with a plain ``open()`` would then overwrite
the link's target. So every output goes through this module:

- the content is written to a new temporary file beside the destination (created with
  ``O_EXCL | O_NOFOLLOW``, so no link planted under that name is followed), then moved into place
  with :func:`os.replace`, which replaces a link *itself* and never its target;
- a killed command or a full disk leaves the previous file whole (or no file), never a torn one,
  and the temporary file is removed on every exit path that Python sees;
- an append (the run log) opens with ``O_NOFOLLOW``: a link there is refused.

A failure is a :class:`WriteError` naming the file and the reason in one line ("No space left
on device", "Permission denied"), not a traceback.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> outside = d / "outside.txt"
>>> _ = outside.write_text("precious")
>>> (d / "report.html").symlink_to(outside)
>>> write_text(d / "report.html", "<html>")
>>> outside.read_text(), (d / "report.html").is_symlink(), (d / "report.html").read_text()
('precious', False, '<html>')
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from crimeaudit.errors import CrimeauditError

#: ``O_NOFOLLOW`` where the platform has it (every POSIX system; not Windows, where creating a
#: symbolic link needs administrator rights anyway).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

#: Errors that mean "this file could not be written", whoever made the write call.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


class WriteError(CrimeauditError, OSError):
    """An output file could not be written (disk full, no permission, a link in the way)."""


def describe(exc: OSError) -> str:
    """``OSError`` as the short reason a user reads: "No space left on device"."""
    return exc.strerror or str(exc) or type(exc).__name__


@contextlib.contextmanager
def open_for_write(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8",
                   newline: str | None = None) -> Iterator[IO[Any]]:
    """A file object whose content replaces ``path`` when the block ends without an error.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (bytes). Until the block ends, readers see the old
    file; if it raises, the old file stays and the temporary file is removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_for_write: mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise WriteError(f"{path}: is a directory; give a file name to write")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write: {describe(exc)}") from exc
    f = os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding=encoding,
                                                            newline=newline)
    try:
        with f:
            try:
                yield f
            except OSError as exc:
                # The caller's writes: a full disk is about this file; anything else (an input
                # it was reading, say) is the caller's own error and passes through unchanged.
                if exc.errno in WRITE_ERRNOS and not isinstance(exc, CrimeauditError):
                    raise WriteError(f"{path}: cannot write: {describe(exc)}") from exc
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, CrimeauditError):
            raise WriteError(f"{path}: cannot write: {describe(exc)}") from exc
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, atomically and without following a link there."""
    with open_for_write(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text``, atomically and without following a link there."""
    with open_for_write(path, "w", encoding=encoding) as f:
        f.write(text)


def append_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Append ``text`` to ``path`` (creating it) in one write; a link at ``path`` is refused.

    An append log is not rewritten whole on every run (two commands could otherwise lose each
    other's lines); ``O_APPEND`` puts each line at the end, ``O_NOFOLLOW`` refuses a link.
    """
    path = Path(path)
    data = text.encode(encoding)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | NOFOLLOW, 0o666)
    except OSError as exc:
        if path.is_symlink():
            raise WriteError(f"{path}: is a symbolic link; crimeaudit does not write through "
                             f"links (remove it)") from exc
        raise WriteError(f"{path}: cannot write: {describe(exc)}") from exc
    try:
        written = os.write(fd, data)
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError as exc:
        raise WriteError(f"{path}: cannot write: {describe(exc)}") from exc
    finally:
        os.close(fd)


def safe_folder(root: str | Path, name: str) -> Path:
    """``root/name`` as a real folder (created if needed), refusing a symbolic link there.

    A link in place of ``reports/`` would send every file written "inside" the project to
    wherever it points.
    """
    p = Path(root) / name
    if p.is_symlink():
        raise WriteError(f"{p}: is a symbolic link; crimeaudit writes only to real folders "
                         f"inside the project (remove the link)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise WriteError(f"{p}: exists and is not a folder") from exc
    except OSError as exc:
        raise WriteError(f"{p}: cannot create the folder: {describe(exc)}") from exc
    return p


__all__ = ["WriteError", "append_text", "describe", "open_for_write", "safe_folder",
           "write_bytes", "write_text"]

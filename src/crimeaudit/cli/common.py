"""What every CLI verb shares: the consoles, error handling, JSON output.

Two promises live here:

- **One line per failure.** A mistake the user can fix (a
  :class:`~crimeaudit.errors.CrimeauditError`, a full disk, a folder without permission) is one
  line and exit code 2; anything else is a bug, also one line ("internal error: ...") with exit
  code 1. ``crimeaudit --debug VERB`` shows the traceback of either.
- **Data is never markup.** Narratives, locations, division and file names come from forces
  and the public; Rich would read ``[/]`` in them as markup and crash, or ``[link=...]`` as a
  link. The consoles therefore print with markup off; styled words are built as
  :class:`rich.text.Text`, never by formatting data into a markup string.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperGroup

from crimeaudit.errors import CrimeauditError
from crimeaudit.progress import RichProgress

# soft_wrap: a message is one line however long (the terminal folds it for the eye), so a path
# in it can be copied whole and a script can grep it; tables still fit the terminal's width.
console = Console(markup=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, soft_wrap=True)

_state = {"debug": False}

#: Operating-system errors a user fixes (free space, permissions, the right path): one line,
#: exit code 2, like crimeaudit's own errors.
USER_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ELOOP, errno.ENAMETOOLONG,
    errno.EMFILE, errno.ENFILE,
})


def set_debug(on: bool) -> None:
    """Show tracebacks (``--debug``) or one-line errors (the default)."""
    _state["debug"] = bool(on)


def debugging() -> bool:
    """``--debug`` was given, or ``CRIMEAUDIT_DEBUG`` is set (for runs without the option)."""
    return _state["debug"] or os.environ.get("CRIMEAUDIT_DEBUG", "") not in ("", "0")


class _Progress(RichProgress):
    """Progress bars whose descriptions (file names, table names) are never read as markup."""

    def task(self, description: str, total: float | None = None) -> AbstractContextManager:
        return super().task(escape(description), total)


def progress() -> RichProgress:
    return _Progress(err_console)


class UserError(CrimeauditError):
    """A mistake the user can fix: printed as one clear message, exit code 2."""


def is_user_error(exc: BaseException) -> bool:
    """A :class:`~crimeaudit.errors.CrimeauditError` is a mistake a user can fix.

    Each stage raises its own subclass (IngestError, AuditError, ...); anything else, a bug,
    is reported as an internal error (its traceback under ``--debug``).
    """
    return isinstance(exc, CrimeauditError)


def one_line(text: str) -> str:
    """A message on one line: a terminal or a log shows it whole, a script can grep it.

    >>> one_line("a\\n  b\\n\\nc")
    'a; b; c'
    """
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _is_duckdb_environment_error(exc: BaseException) -> bool:
    """DuckDB's disk and memory errors (its own types, not OSError): the machine, not a bug."""
    kind = type(exc)
    return (kind.__module__.split(".")[0] in ("duckdb", "_duckdb")
            and kind.__name__ in ("IOException", "OutOfMemoryException"))


def error_line(exc: BaseException) -> tuple[str, str, int]:
    """(label, message, exit code) for an error reaching the command line."""
    if is_user_error(exc):
        return "error:", one_line(str(exc)), 2
    if isinstance(exc, OSError) and exc.errno in USER_ERRNOS:
        where = f"{exc.filename}: " if exc.filename else ""
        return "error:", one_line(f"{where}{exc.strerror or exc}"), 2
    if _is_duckdb_environment_error(exc):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Corrupt" in first or "checksum" in first:
            return "error:", one_line(f"the project's store is damaged ({first}); restore "
                                      f"store.duckdb from a backup"), 2
        return "error:", one_line(f"the store: {first}"), 2
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ("internal error:",
            f"{type(exc).__name__}: {message}; run with --debug for the traceback, "
            f"and please report it", 1)


def print_error(exc: BaseException) -> int:
    """Print ``exc`` as one line on standard error; return the exit code."""
    label, message, code = error_line(exc)
    err_console.print(Text.assemble((label, "bold red"), " ", message), soft_wrap=True,
                      highlight=False)
    return code


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn crimeaudit's own errors into one clear line instead of a traceback."""
    try:
        yield
    except Exception as exc:
        if debugging() or not is_user_error(exc):
            raise
        sys.exit(print_error(exc))


class CrimeauditGroup(TyperGroup):
    """The root command: every error a verb lets out becomes one line (unless ``--debug``).

    Verbs catch their own user errors with :func:`handle_errors`; this catches the rest, so an
    unexpected error, a full disk or a damaged store never prints a 60-line traceback.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # Typer's own exits and usage errors carry their exit code and message already.
            if type(exc).__module__.split(".")[0] in ("typer", "click") or debugging():
                raise
            sys.exit(print_error(exc))


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """A warning as one line ("warning: ..."), not Python's two lines with source code."""
    err_console.print(Text.assemble(("warning:", "yellow"), " ", one_line(str(message))),
                      soft_wrap=True, highlight=False)


def note(message: str) -> None:
    """A one-line notice on standard error (e.g. waiting for a busy project)."""
    err_console.print(Text.assemble(("note:", "cyan"), " ", one_line(message)),
                      soft_wrap=True, highlight=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text with some words styled, data kept literal: ``styled(("Created", "bold"), name)``."""
    return Text.assemble(*parts)


@contextmanager
def open_project(directory) -> Iterator[Any]:
    """The project in ``directory``, with crimeaudit's errors as one clear line (exit code 2).

    Every verb that works on a project opens it this way, so a missing folder or a broken store
    reads the same from every command.
    """
    from crimeaudit.store import Project

    with handle_errors(), Project.open(directory) as project:
        yield project


def print_json(data: Any) -> None:
    """Machine-readable output on standard output, nothing else on it."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def install_warning_format() -> Callable[..., None]:
    """Show warnings as one line each for the rest of this command; returns the old hook."""
    old = warnings.showwarning
    warnings.showwarning = show_warning
    return old

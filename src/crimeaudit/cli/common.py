"""What every CLI verb shares: the consoles, error handling, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from crimeaudit.errors import CrimeauditError
from crimeaudit.progress import RichProgress

console = Console()
err_console = Console(stderr=True)


def progress() -> RichProgress:
    return RichProgress(err_console)


class UserError(CrimeauditError):
    """A mistake the user can fix: printed as one clear message, exit code 2."""


def is_user_error(exc: BaseException) -> bool:
    """A :class:`~crimeaudit.errors.CrimeauditError` is a mistake a user can fix.

    Each stage raises its own subclass (IngestError, AuditError, ...); anything else, a bug,
    keeps its traceback.
    """
    return isinstance(exc, CrimeauditError)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn crimeaudit's own errors into one clear line instead of a traceback."""
    try:
        yield
    except Exception as exc:
        if not is_user_error(exc):
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


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

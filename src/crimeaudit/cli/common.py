"""What every CLI verb shares: the consoles, error handling, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from crimeaudit.progress import RichProgress

console = Console()
err_console = Console(stderr=True)


def progress() -> RichProgress:
    return RichProgress(err_console)


class UserError(Exception):
    """A mistake the user can fix: printed as one clear message, exit code 2."""


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn known errors into one clear line instead of a traceback."""
    from crimeaudit.engine import EngineError
    from crimeaudit.store import ProjectError

    known: tuple[type[BaseException], ...] = (UserError, ProjectError, EngineError)
    try:
        from crimeaudit.ingest import IngestError

        known = (*known, IngestError)
    except ImportError:  # pragma: no cover - during early development
        pass
    try:
        yield
    except known as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


def print_json(data: Any) -> None:
    """Machine-readable output on standard output, nothing else on it."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))

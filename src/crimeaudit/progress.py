"""Progress reporting that library code can use without knowing about terminals.

Library functions take ``progress: Progress | None`` and call ``progress.task(...)``;
the CLI passes a :class:`RichProgress`, the Python API a silent :class:`Progress`.

>>> p = Progress()
>>> with p.task("Simulating incidents", total=3) as advance:
...     for _ in range(3):
...         advance(1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Progress:
    """Silent progress: the default for the Python API and tests."""

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Callable[..., None]]:
        yield lambda advance=1, **_: None

    def note(self, message: str) -> None:
        """A one-line message between tasks (silent here)."""


class RichProgress(Progress):
    """Rich progress bars on standard error, for the command line."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Callable[..., None]]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import (
            Progress as _Bar,
        )

        with _Bar(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        ) as bar:
            tid = bar.add_task(description, total=total)

            def advance(n: float = 1, **fields) -> None:
                bar.update(tid, advance=n, **fields)

            yield advance
            if total is not None:
                bar.update(tid, completed=total)

    def note(self, message: str) -> None:
        self.console.print(message)


def resolve(progress: Progress | None) -> Progress:
    return progress if progress is not None else Progress()

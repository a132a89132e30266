"""One command at a time on a project folder, and a clear word when it is busy.

The store is one DuckDB file, which one process at a time may open for writing. A second
command on a busy project used to die on DuckDB's own lock with a long traceback that said
nothing about *who* held it. Now every command that opens a project first takes ``DIR/.lock``:

- the lock is an exclusive ``flock`` on that file, so the operating system releases it when
  its holder exits, however it exits (``kill -9`` included): a lock left by a dead process is
  never obeyed, only overwritten;
- the file says who holds it (pid, command line, host, since when), so the second command can
  tell the user which command to wait for;
- a second command waits up to ``wait`` seconds (default :data:`DEFAULT_WAIT`, the CLI's
  ``--wait``) and then stops with one line (:class:`ProjectBusyError`), having changed nothing;
- within one process, opening the same project again shares the lock (as DuckDB shares the
  database), so a script holding a project open can still call verbs on it.

The file is removed when its holder closes the project.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crimeaudit.errors import CrimeauditError
from crimeaudit.store.files import NOFOLLOW, WRITE_ERRNOS, describe

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: pid-based fallback below
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"

#: Seconds a command waits for a busy project before giving up (the CLI's ``--wait``).
DEFAULT_WAIT = 5.0

_POLL = 0.1
_settings: dict[str, Any] = {"wait": DEFAULT_WAIT, "on_wait": None}
_held: dict[Path, list[Any]] = {}  # folder -> [fd, times opened] for this process
_guard = threading.Lock()


class ProjectBusyError(CrimeauditError, RuntimeError):
    """Another command holds the project; the message says which, since when."""


class ProjectNotWritableError(CrimeauditError, PermissionError):
    """The project folder cannot be written (permissions, a read-only disk)."""


def set_wait(seconds: float | None = None,
             on_wait: Callable[[str], None] | None = None) -> None:
    """How long the next project opens wait for a busy project, and whom to tell they wait.

    The command line calls this once from its ``--wait`` option; ``on_wait`` receives one line
    ("waiting for ...") the first time a command has to wait.
    """
    _settings["wait"] = DEFAULT_WAIT if seconds is None else max(0.0, float(seconds))
    _settings["on_wait"] = on_wait


def _command_line() -> str:
    argv = list(sys.argv) or [""]
    program = Path(argv[0]).name
    parts = [program]
    if not program or program == "-c":  # python -c '...': say it was Python
        parts = [Path(sys.executable).name, *([program] if program else [])]
    args = [*parts, *argv[1:]]
    return shlex.join(args).replace("\n", "\\n").replace("\r", "\\r")[:500]


def _holder(fd: int) -> str:
    """Who holds the lock, as the lock file tells it, in words."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another crimeaudit command (starting up)"
    since = str(info.get("since", "?"))
    try:
        ago = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(since)
        since += f", {int(ago.total_seconds())} s ago"
    except ValueError:
        pass
    host = info.get("host")
    where = "" if not host or host == socket.gethostname() else f" on {host}"
    return f"`{info.get('command', '?')}` (pid {info['pid']}{where}, since {since})"


def _not_writable(folder: Path, exc: OSError) -> ProjectNotWritableError:
    return ProjectNotWritableError(
        f"{folder}: the project folder is not writable ({describe(exc)}); crimeaudit writes "
        f"its store, run log and lock there: fix its permissions or copy the project")


def acquire(folder: str | Path, wait: float | None = None) -> Path:
    """Take the project's lock (or share this process's), waiting up to ``wait`` seconds.

    Returns the key to give back to :func:`release` (the folder's absolute path, fixed now so
    that a later change of working directory cannot release the wrong lock).
    """
    folder = Path(folder)
    key = folder.resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return key
    wait = _settings["wait"] if wait is None else max(0.0, float(wait))
    deadline = time.monotonic() + wait
    told = False
    path = folder / LOCK_FILE
    while True:
        try:
            fd = _try_lock(path)
        except PermissionError as exc:
            raise _not_writable(folder, exc) from exc
        except OSError as exc:
            if path.is_symlink():
                raise ProjectBusyError(f"{path}: is a symbolic link; remove it (crimeaudit "
                                       f"does not write through links)") from exc
            raise _not_writable(folder, exc) from exc
        if isinstance(fd, int):
            break
        holder = fd[1]
        if time.monotonic() >= deadline:
            waited = f"waited {wait:g} s" if wait else "did not wait"
            raise ProjectBusyError(
                f"{folder} is busy: {holder} is using it ({waited}); run again when it has "
                f"finished, or wait longer with: crimeaudit --wait SECONDS ...")
        if not told and _settings["on_wait"] is not None:
            _settings["on_wait"](f"{folder} is busy: waiting up to {wait:g} s for {holder}")
            told = True
        time.sleep(_POLL)
    info = {"pid": os.getpid(), "command": _command_line(), "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
    except OSError as exc:
        # The lock holds without its note; on a full disk the command goes on to fail at the
        # write that matters, with that file's name. Other failures mean no write will work.
        if exc.errno not in WRITE_ERRNOS:
            _unlock(path, fd)
            raise _not_writable(folder, exc) from exc
    with _guard:
        _held[key] = [fd, 1]
    return key


def _try_lock(path: Path) -> int | tuple[None, str]:
    """The locked file's descriptor, or (None, who holds it)."""
    if fcntl is None:  # pragma: no cover - Windows
        return _try_lock_by_pid(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        return None, holder
    # The holder may have removed the file between our open and our lock: then we hold a lock
    # on a file nobody else will find, and must start again on the new one.
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None, "another crimeaudit command (finishing)"
    return fd


def _try_lock_by_pid(path: Path) -> int | tuple[None, str]:  # pragma: no cover - Windows
    """Without ``flock``: create the file exclusively; a file naming a dead pid is stale."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        fd = os.open(path, os.O_RDONLY)
        try:
            holder = _holder(fd)
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        finally:
            os.close(fd)
        pid = info.get("pid") if isinstance(info, dict) else None
        if isinstance(pid, int) and not _alive(pid):
            path.unlink(missing_ok=True)
        return None, holder


def _alive(pid: int) -> bool:  # pragma: no cover - Windows fallback only
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _unlock(path: Path, fd: int) -> None:
    # Remove the file first, then let go: a command that opened it meanwhile sees that the
    # path no longer names its file (see _try_lock) and starts again.
    try:
        if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
            path.unlink()
    except OSError:
        pass
    os.close(fd)


def release(key: Path) -> None:
    """Give back the lock :func:`acquire` returned ``key`` for (the last of this process's
    opens removes the file and lets the next command in)."""
    with _guard:
        held = _held.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _held[key]
    _unlock(key / LOCK_FILE, held[0])


__all__ = ["DEFAULT_WAIT", "LOCK_FILE", "ProjectBusyError", "ProjectNotWritableError",
           "acquire", "release", "set_wait"]

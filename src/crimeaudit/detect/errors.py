"""The detect stage's one error class: a mistake in how detection was asked for.

A wrong setting name, a bad setting value or an invalid targets file is something the user
can fix, so it is a :class:`~crimeaudit.errors.CrimeauditError` and the command line prints it
as one line (exit code 2) instead of a traceback.

>>> from crimeaudit.errors import CrimeauditError
>>> issubclass(DetectError, CrimeauditError)
True
"""

from __future__ import annotations

from crimeaudit.errors import CrimeauditError


class DetectError(CrimeauditError, ValueError):
    """Detection was asked for in a way that cannot work (the message says how to fix it)."""


__all__ = ["DetectError"]

"""The one base class of every mistake a user can fix.

A :class:`CrimeauditError` is printed by the command line as one clear line (file, line and
column where there are some) with exit code 2; any other exception is a bug and keeps its
traceback (shown with ``--debug``). Each stage raises its own subclass (``IngestError``,
``AuditError``, ...), so a caller can catch one stage's mistakes or all of them.

>>> from crimeaudit.audit import AuditError
>>> issubclass(AuditError, CrimeauditError)
True
"""

from __future__ import annotations


class CrimeauditError(Exception):
    """A mistake the user can fix (bad input, missing step, wrong setting): one-line message."""


__all__ = ["CrimeauditError"]

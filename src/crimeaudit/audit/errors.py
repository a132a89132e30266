"""The audit stage's one error type: a mistake the user can fix, said in one clear message."""

from __future__ import annotations

from crimeaudit.errors import CrimeauditError


class AuditError(CrimeauditError, ValueError):
    """A bad design, sheet or request; the message names the file, line and column if any."""

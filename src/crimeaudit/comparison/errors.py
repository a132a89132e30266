"""The comparison stage's one error: a mistake the user can fix (bad counts file, too few
audits, nothing in common to compare)."""

from __future__ import annotations

from crimeaudit.errors import CrimeauditError


class CompareError(CrimeauditError, ValueError):
    """Two audits cannot be compared as asked, or a counts file cannot be read.

    >>> issubclass(CompareError, CrimeauditError)
    True
    """


__all__ = ["CompareError"]

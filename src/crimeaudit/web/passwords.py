"""Password hashes for workbench accounts: scrypt from the standard library.

scrypt is memory-hard (a guessing rig pays in memory, not only in time), it is in
:mod:`hashlib`, so the workbench needs no extra dependency for it, and its parameters travel
inside each stored hash, so they can be raised later without invalidating old accounts. The
defaults are OWASP's recommended minimum for scrypt (N=2**15, r=8, p=3: 32 MiB, ~0.1 s).

>>> h = hash_password("correct horse battery")
>>> h.startswith("scrypt$32768$8$3$")
True
>>> verify_password("correct horse battery", h), verify_password("wrong", h)
(True, False)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

N, R, P = 2**15, 8, 3
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 10
# scrypt needs 128 * N * r bytes; hashlib's default ceiling (32 MiB) is just too small for N=2**15.
_MAXMEM = 128 * N * R * 2


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """``scrypt$N$r$p$salt$key`` (salt and key base64): what the users table stores."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                         maxmem=max(_MAXMEM, 128 * n * r * 2), dklen=KEY_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``, compared in constant time.

    A malformed stored value is a failed login, never an exception a caller could leak.
    """
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        n, r, p = int(n), int(r), int(p)
        want = base64.b64decode(key)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=n, r=r,
                             p=p, maxmem=max(_MAXMEM, 128 * n * r * 2), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@functools.lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash no password matches, checked for unknown user names so that a login takes as
    long for a name that does not exist as for a wrong password (no enumeration by timing)."""
    return hash_password(secrets.token_urlsafe(16))


def check_strength(password: str) -> str | None:
    """Why ``password`` is refused, or None. Length is what matters (NIST SP 800-63B).

    >>> check_strength("short"), check_strength("a long enough phrase")
    ('a password needs at least 10 characters', None)
    """
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    return None

"""Keyed pseudonyms for personal fields: HMAC-SHA256 under a project key.

The key comes from the environment variable ``CRIMEAUDIT_PSEUDONYM_KEY``, else from the file
named by ``CRIMEAUDIT_PSEUDONYM_KEY_FILE``, else from ``pseudonym.key`` in the project folder,
which is created (random, readable by the owner only) on a project's first ingest. The same key
gives the same person the same pseudonym in every file.

A key is only as good as it is secret and long: under an empty or short key anyone can
re-identify a pseudonym by trying names. So a key must have at least :data:`MIN_KEY_BYTES`
bytes, not mostly one repeated character. And a project records its key's
:func:`fingerprint` at its first ingest: a different key, or a missing key file, is refused
rather than silently starting a second set of pseudonyms (one victim, two pseudonyms).

>>> pseudonym(b"k" * 32, "John Smith")
'p:d48467c89ccba3e7a014'
>>> try:
...     check_key(b"short", "$CRIMEAUDIT_PSEUDONYM_KEY")
... except IngestError as exc:
...     print(str(exc)[:63])
pseudonym key from $CRIMEAUDIT_PSEUDONYM_KEY has 5 bytes; a key
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from crimeaudit.ingestion.errors import IngestError

KEY_ENV = "CRIMEAUDIT_PSEUDONYM_KEY"
KEY_FILE_ENV = "CRIMEAUDIT_PSEUDONYM_KEY_FILE"
KEY_FILE = "pseudonym.key"
PREFIX = "p:"
LENGTH = 20  # hex characters kept: 80 bits, collisions negligible for any force
MIN_KEY_BYTES = 16
_FINGERPRINT_LABEL = b"crimeaudit pseudonym key fingerprint v1"
_MAKE_KEY = 'python -c "import secrets; print(secrets.token_hex(32))"'


@dataclass
class PseudonymKey:
    key: bytes
    origin: str
    created: bool = False

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


def fingerprint(key: bytes) -> str:
    """A short public mark of a key (HMAC of a fixed label): tells two keys apart, reveals
    nothing of either."""
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def check_key(key: bytes, origin: str) -> bytes:
    """``key`` if it is strong enough to pseudonymise with, else one-line IngestError why."""
    if len(key) < MIN_KEY_BYTES:
        what = "is empty" if not key else f"has {len(key)} bytes"
        raise IngestError(
            f"pseudonym key from {origin} {what}; a key needs at least {MIN_KEY_BYTES} (e.g. "
            f"{_MAKE_KEY}): under a short key anyone can re-identify pseudonyms by trying names")
    if len(set(key)) < 8:
        raise IngestError(
            f"pseudonym key from {origin} has only {len(set(key))} different characters; use a "
            f"random key (e.g. {_MAKE_KEY}): a key of a few repeated characters can be guessed")
    return key


def _restore_hint(project_path: Path) -> str:
    return (f"restore the key this project was started with (the file "
            f"{project_path / KEY_FILE} from your backup, or set ${KEY_ENV} or ${KEY_FILE_ENV} "
            f"to it)")


def project_key(project_path: Path, expected: str | None = None) -> PseudonymKey:
    """The key for a project; ``expected``: the fingerprint the project recorded, if any.

    ``pseudonym.key`` is created only for a project that has no recorded key yet; otherwise a
    missing key file, or a key with another fingerprint, is an :class:`IngestError` saying how
    to restore it (the store's pseudonyms can only be continued with their own key).
    """
    if os.environ.get(KEY_ENV) is not None:
        key = PseudonymKey(check_key(os.environ[KEY_ENV].encode("utf-8"), f"${KEY_ENV}"),
                           f"environment ${KEY_ENV}")
    else:
        path = Path(os.environ.get(KEY_FILE_ENV) or project_path / KEY_FILE)
        if path.is_file():
            try:
                data = path.read_bytes().strip()
            except OSError as exc:
                raise IngestError(f"{path}: cannot read the pseudonym key: "
                                  f"{exc.strerror or exc}") from None
            key = PseudonymKey(check_key(data, str(path)), str(path))
        elif expected:
            raise IngestError(
                f"{path}: no pseudonym key, but this project's pseudonyms were made with key "
                f"{expected} (fingerprint); {_restore_hint(project_path)}. A new key would give "
                f"every person a second pseudonym")
        elif os.environ.get(KEY_FILE_ENV):
            raise IngestError(f"{path}: no such key file (named by ${KEY_FILE_ENV})")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                         0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            key = PseudonymKey(path.read_bytes().strip(), str(path), created=True)
    if expected and key.fingerprint != expected:
        raise IngestError(
            f"pseudonym key from {key.origin} is not this project's key (fingerprint "
            f"{key.fingerprint}, the project's is {expected}); {_restore_hint(project_path)}. "
            f"Mixing keys would give the same person two pseudonyms")
    return key


def pseudonym(key: bytes, value: str) -> str:
    """The pseudonym of one value (the SQL form in :func:`sql_expression` agrees)."""
    return PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:LENGTH]


def sql_expression(key: bytes, column_sql: str) -> str:
    """HMAC-SHA256 of a VARCHAR expression, set-wise inside DuckDB (no clear value leaves it)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in block).hex()
    opad = bytes(b ^ 0x5C for b in block).hex()
    inner = f"unhex(sha256(unhex('{ipad}') || encode({column_sql})))"
    return (
        f"CASE WHEN {column_sql} IS NULL THEN NULL ELSE "
        f"'{PREFIX}' || left(sha256(unhex('{opad}') || {inner}), {LENGTH}) END"
    )

"""Keyed pseudonyms for personal fields: HMAC-SHA256 under a project key.

The key comes from the environment variable ``CRIMEAUDIT_PSEUDONYM_KEY``, else from the file
named by ``CRIMEAUDIT_PSEUDONYM_KEY_FILE``, else from ``pseudonym.key`` in the project folder,
which is created (random, readable by the owner only) on first use. The same key gives the same
person the same pseudonym in every file.

>>> pseudonym(b"k" * 32, "John Smith")
'p:d48467c89ccba3e7a014'
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_ENV = "CRIMEAUDIT_PSEUDONYM_KEY"
KEY_FILE_ENV = "CRIMEAUDIT_PSEUDONYM_KEY_FILE"
KEY_FILE = "pseudonym.key"
PREFIX = "p:"
LENGTH = 20  # hex characters kept: 80 bits, collisions negligible for any force


@dataclass
class PseudonymKey:
    key: bytes
    origin: str
    created: bool = False


def project_key(project_path: Path) -> PseudonymKey:
    """The key for a project, creating ``pseudonym.key`` when none is configured."""
    if os.environ.get(KEY_ENV):
        return PseudonymKey(os.environ[KEY_ENV].encode("utf-8"), f"environment ${KEY_ENV}")
    path = Path(os.environ.get(KEY_FILE_ENV) or project_path / KEY_FILE)
    if path.is_file():
        return PseudonymKey(path.read_bytes().strip(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return PseudonymKey(path.read_bytes().strip(), str(path), created=True)


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

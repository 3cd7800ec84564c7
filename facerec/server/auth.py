"""API keys for the HTTP service: random tokens, stored only as SHA-256 digests.

A token is `frk_<prefix>_<secret>`: 8 random base32 characters of prefix and
32 random bytes (256 bits) of secret, from `secrets`. The database keeps the
prefix (to find the row with one indexed lookup) and the SHA-256 of the whole
token, never the token itself, so a copy of the gallery file does not open the
service. A plain hash (not a slow password hash) is enough because the secret
has 256 bits of entropy: there is nothing to guess from a dictionary, and the
check costs microseconds per request.

The digest is compared with `hmac.compare_digest`, and a token whose prefix is
unknown is still hashed and compared against a dummy digest, so timing tells an
attacker neither whether a prefix exists nor how much of a digest matched.
Revocation is a timestamp; it takes effect on the next request, since nothing
is cached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from facerec.errors import FacerecError
from facerec.server.tables import ApiKey
from facerec.storage import Database

TOKEN_PREFIX = "frk"
PREFIX_CHARS = 8
SECRET_BYTES = 32
MAX_KEY_NAME = 100
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}_([a-z2-7]{{{PREFIX_CHARS}}})_([A-Za-z0-9_-]{{20,100}})$")
_DUMMY_DIGEST = hashlib.sha256(b"facerec: no such key").hexdigest()


class ApiKeyError(FacerecError):
    """A key operation that cannot be done: a duplicate or unknown name, a bad name."""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key as listed: never the token or its digest."""

    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created: `token` exists only here, once, to be handed to its user."""

    info: ApiKeyInfo
    token: str


def digest(token: str) -> str:
    """Hex SHA-256 of the token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """(prefix, token): a fresh random token and its lookup prefix."""
    prefix = base64.b32encode(secrets.token_bytes(5)).decode("ascii").lower()[:PREFIX_CHARS]
    return prefix, f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


class KeyStore:
    """Creates, lists, revokes and checks API keys in `api_keys` of the gallery's `Database`.

    Holds no connection of its own: whoever opened the (migrated) database closes it.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, name: str) -> NewApiKey:
        """A new key called `name`; a revoked key of that name is replaced, an active one is not."""
        name = _check_name(name)
        prefix, token = new_token()
        now = datetime.now(UTC)
        try:
            with self.database.write() as s:
                old = s.scalar(select(ApiKey).where(ApiKey.name == name))
                if old is not None and old.revoked_at is None:
                    raise ApiKeyError(f"an active key named {name!r} exists; revoke it first")
                if old is not None:
                    s.execute(delete(ApiKey).where(ApiKey.id == old.id))
                    s.flush()
                s.add(ApiKey(name=name, prefix=prefix, hash=digest(token), created_at=now))
        except IntegrityError as exc:  # a prefix collision (1 in 2^40)
            raise ApiKeyError(f"could not create key {name!r}, try again: {exc.orig}") from exc
        return NewApiKey(ApiKeyInfo(name, prefix, now, None), token)

    def revoke(self, name: str) -> ApiKeyInfo:
        """Revoke the active key called `name` (idempotent for an already revoked one)."""
        name = _check_name(name)
        now = datetime.now(UTC)
        with self.database.write() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.name == name))
            if row is None:
                raise ApiKeyError(f"no API key named {name!r}")
            if row.revoked_at is None:
                s.execute(update(ApiKey).where(ApiKey.id == row.id).values(revoked_at=now))
                row.revoked_at = now
            return _info(row)

    def all_keys(self) -> list[ApiKeyInfo]:
        """Every key, active and revoked, by name (code-point order, whatever the database's collation)."""
        with self.database.read() as s:
            return sorted((_info(r) for r in s.scalars(select(ApiKey))), key=lambda k: k.name)

    def has_active(self) -> bool:
        with self.database.read() as s:
            return (
                s.scalar(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)) is not None
            )

    def check(self, token: str | None) -> ApiKeyInfo | None:
        """The active key `token` belongs to, or None; constant time in the token's content."""
        match = _TOKEN.match(token or "")
        prefix = match.group(1) if match else ""
        row = None
        if prefix:
            with self.database.read() as s:
                row = s.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        stored = row.hash if row is not None else _DUMMY_DIGEST
        ok = hmac.compare_digest(digest(token or ""), stored)
        if not ok or row is None or row.revoked_at is not None:
            return None
        return _info(row)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_KEY_NAME or not name.isprintable():
        raise ApiKeyError(
            f"a key name must be 1 to {MAX_KEY_NAME} printable characters, got {name!r}"
        )
    return name


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(row.name, row.prefix, row.created_at, row.revoked_at)

"""The HTTP service's table: its API keys (`api_keys`, Alembic 0003).

Kept in the gallery database, so the service has one database to open,
back up and protect. The service owns the table (only `facerec.server.auth`
reads or writes it); it shares `facerec.storage.Base` with the gallery's
tables, so one Alembic history creates both. Nothing here imports torch or
FastAPI: the Alembic CLI (`migrations/env.py`) imports this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from facerec.storage import Base


class ApiKey(Base):
    """An HTTP API key, stored as a SHA-256 digest, never in clear.

    The token is `frk_<prefix>_<secret>`; `prefix` (random, unique) finds the
    row without scanning, and the digest of the whole token is compared in
    constant time. A revoked key keeps its row (and so its name) until a new key
    of that name replaces it.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    hash: Mapped[str] = mapped_column(Text)  # hex SHA-256 of the whole token
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ApiKeyScope(Base):
    """What a key may do beyond the HTTP API (revision 0010): 'review' signs in to the review
    pages. Goes with its key (ON DELETE CASCADE), so a replaced key starts without scopes."""

    __tablename__ = "api_key_scopes"

    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(Text, primary_key=True)

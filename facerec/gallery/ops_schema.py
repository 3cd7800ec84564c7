"""Operational tables next to the gallery: the door camera's audit trail and the HTTP API keys.

They live in the gallery database (Alembic revision 0003) rather than a file of
their own for two reasons. An audit event points at the person it is about
with a foreign key, and SQLite only enforces foreign keys inside one database:
`ON DELETE CASCADE` is what makes "remove a person" also remove every audit
event (and its optional face image) about them, with no code to forget. And
one file is one thing to back up, move and protect.

The classes share `Base` (and so the naming convention) with
`facerec.gallery.schema`; importing this module adds them to `Base.metadata`.
Like the core schema, nothing here imports torch, so the Alembic CLI stays cheap.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from facerec.gallery.schema import Base

#: The two ways the door camera runs: verify one claimed person, or identify anyone.
AUDIT_MODES = ("claim", "watch")


class AuditEvent(Base):
    """One door-camera decision (an attempt), as `facerec camera` made it.

    `identity_id` is the person the event is about: the claimed person in
    claim mode, the recognised person in watch mode, NULL for an unknown face.
    Deleting that person deletes the event (cascade), image included.
    `scores` is a JSON list of the per-frame similarities the decision rests on;
    it holds no names, so a removed person's name cannot linger in another
    person's events. `image` (a JPEG of the best face) is stored only when the
    operator asked for it (`--save-images`). `reason` says why a claim was not
    accepted (e.g. "presentation attack"); `liveness` is the claim's liveness
    verdict as JSON (each cue's verdict and score, p(live) per frame; revision
    0005), NULL when liveness was off.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("mode IN ('claim', 'watch')", name="mode"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    claimed_name: Mapped[str | None] = mapped_column(Text)
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    decision: Mapped[str] = mapped_column(Text)
    best_score: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[str] = mapped_column(Text)  # JSON [similarity, ...], one per voting frame
    frames: Mapped[int] = mapped_column(Integer)  # frames processed for this decision
    latency_ms: Mapped[float | None] = mapped_column(Float)  # median per-frame processing time
    image: Mapped[bytes | None] = mapped_column(LargeBinary)  # JPEG, only with --save-images
    reason: Mapped[str | None] = mapped_column(Text)
    liveness: Mapped[str | None] = mapped_column(Text)  # JSON {verdict, reason, cues, p_real}


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

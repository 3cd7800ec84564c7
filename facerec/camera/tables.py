"""The door camera's table: its audit trail of decisions (`audit_events`, Alembic 0003, 0005).

It lives in the gallery database rather than a file of its own for two
reasons. An audit event points at the person it is about with a foreign key,
and a database only enforces foreign keys inside itself: `ON DELETE CASCADE`
is what makes "remove a person" also remove every audit event (and its
optional face image) about them, with no code to forget. And one database is
one thing to back up, move and protect.

The camera owns the table (only `facerec.camera.audit` reads or writes it);
it shares `facerec.storage.Base` with the gallery's tables, so one Alembic
history creates both. Nothing here imports torch: the Alembic CLI
(`migrations/env.py`) imports this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

import facerec.gallery.schema  # noqa: F401  (`identities`, which our foreign key points at)
from facerec.storage import Base

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

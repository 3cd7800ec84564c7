"""The audit trail of door-camera attempts, in the gallery database (`audit_events`).

Every decision is written down: when, from which source, who was claimed or
recognised, the decision and the similarities it rested on. A face image is
kept only when the operator asks for it (`--save-images`), because an audit
trail of faces is personal data in its own right.

Each row points at the person it is about with a foreign key that cascades on
delete, so `facerec remove NAME` (or `DELETE /v1/people/NAME`) also removes
every audit event and image of that person, through the same
`Gallery.remove` transaction and without code here having to take part.

The log has its own SQLite engine on the gallery file, opened with the
gallery's pragmas (`create_sqlite_engine`: foreign keys, WAL, busy timeout),
and writes with BEGIN IMMEDIATE, so it queues behind a concurrent enrolment
instead of failing. It never touches `meta.revision`: the revision stamps the
prototype index, which audit rows do not change.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from facerec.camera.events import DecisionEvent, liveness_json
from facerec.errors import GalleryError
from facerec.gallery.ops_schema import AuditEvent
from facerec.gallery.schema import Identity
from facerec.gallery.tables import SqliteTables


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit row as read back; `name` is the person it is about (None: unknown face)."""

    id: int
    time: datetime
    source: str
    mode: str
    claimed_name: str | None
    name: str | None
    decision: str
    best_score: float | None
    scores: tuple[float | None, ...]
    frames: int
    latency_ms: float | None
    has_image: bool
    reason: str | None = None
    liveness: dict[str, Any] | None = None  # as in the event's JSON (`liveness_json`)


class AuditLog(SqliteTables):
    """Writes and reads `audit_events` of one gallery database (already migrated)."""

    def record(self, event: DecisionEvent, image: bytes | None = None) -> int:
        """Store one decision (and, if given, the JPEG of the best face); returns the row id."""
        name = event.name if event.name is not None else event.claim
        try:
            with self._writes.begin() as s:
                identity_id = None
                if name is not None:
                    identity_id = s.scalar(
                        select(Identity.id).where(Identity.name == _name_key(name))
                    )
                row = AuditEvent(
                    time=event.time,
                    source=event.source,
                    mode=event.mode,
                    claimed_name=event.claim,
                    identity_id=identity_id,
                    decision=event.decision,
                    best_score=event.best_score,
                    scores=json.dumps([_finite(x) for x in event.scores]),
                    frames=event.frames,
                    latency_ms=event.latency_ms,
                    image=image,
                    reason=event.reason,
                    liveness=_liveness(event),
                )
                s.add(row)
                s.flush()
                return int(row.id)
        except OperationalError as exc:
            raise GalleryError(f"{self.path}: cannot write the audit event: {exc.orig}") from exc

    def recent(self, limit: int = 100) -> list[AuditRecord]:
        """The latest `limit` events, newest first."""
        stmt = (
            select(AuditEvent, Identity.name)
            .outerjoin(Identity, Identity.id == AuditEvent.identity_id)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        with self._reads() as s, s.begin():
            return [
                AuditRecord(
                    id=row.id,
                    time=row.time,
                    source=row.source,
                    mode=row.mode,
                    claimed_name=row.claimed_name,
                    name=name,
                    decision=row.decision,
                    best_score=row.best_score,
                    scores=tuple(json.loads(row.scores)),
                    frames=row.frames,
                    latency_ms=row.latency_ms,
                    has_image=row.image is not None,
                    reason=row.reason,
                    liveness=json.loads(row.liveness) if row.liveness else None,
                )
                for row, name in s.execute(stmt)
            ]

    def image(self, event_id: int) -> bytes | None:
        """The stored JPEG of an event, if one was saved."""
        with self._reads() as s, s.begin():
            return s.scalar(select(AuditEvent.image).where(AuditEvent.id == event_id))


def _liveness(event: DecisionEvent) -> str | None:
    data = liveness_json(event.liveness, event.liveness_scores)
    return json.dumps(data, ensure_ascii=False) if data is not None else None


def _name_key(name: str) -> str:
    """Names are stored trimmed and NFC-normalised (as `Gallery` stores them)."""
    return unicodedata.normalize("NFC", name.strip())


def _finite(x: float) -> float | None:
    return float(x) if x == x and abs(x) != float("inf") else None

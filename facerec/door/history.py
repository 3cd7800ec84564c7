"""Door events read back from the audit table: which camera saw whom, when, and what it decided.

The door service writes every decision to the gallery's audit table (the
camera's `source` column holds the camera's name). Read back, decisions are
given the same three types they were published with (`facerec.door.events`);
a claim that timed out was never an event and is not listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from facerec.camera.events import (
    ACCEPTED,
    ATTACK,
    IDENTIFIED,
    PRESENTATION_ATTACK,
    REJECTED,
    UNKNOWN,
)
from facerec.camera.tables import AuditEvent
from facerec.decisions.names import name_key
from facerec.door.events import KNOWN, TYPES
from facerec.gallery.schema import Identity
from facerec.storage import Database

#: Rows listed at most by one query.
MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class DoorRecord:
    """One door event as stored; `snapshot` says whether a JPEG was kept with it."""

    id: int
    time: datetime
    camera: str
    type: str
    name: str | None
    similarity: float | None
    liveness: str | None  # the verdict: live, attack, undecided; None when not checked
    reason: str | None
    snapshot: bool

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time.isoformat(), "camera": self.camera,
                "type": self.type, "name": self.name, "similarity": self.similarity,
                "liveness": self.liveness, "reason": self.reason, "snapshot": self.snapshot}  # fmt: skip


def _of_type(kind: str) -> ColumnElement[bool]:
    attack_claim = and_(AuditEvent.decision == REJECTED, AuditEvent.reason == PRESENTATION_ATTACK)
    if kind == KNOWN:
        return AuditEvent.decision.in_((IDENTIFIED, ACCEPTED))
    if kind == ATTACK:
        return or_(AuditEvent.decision == ATTACK, attack_claim)
    refused = and_(
        AuditEvent.decision == REJECTED,
        or_(AuditEvent.reason.is_(None), AuditEvent.reason != PRESENTATION_ATTACK),
    )
    return or_(AuditEvent.decision == UNKNOWN, refused)


def _type_of(row: AuditEvent) -> str:
    if row.decision in (IDENTIFIED, ACCEPTED):
        return KNOWN
    if row.decision == ATTACK or row.reason == PRESENTATION_ATTACK:
        return ATTACK
    return UNKNOWN


def door_events(
    database: Database,
    *,
    camera: str | None = None,
    person: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[DoorRecord]:
    """The latest door events, newest first, filtered by camera, person, type and time."""
    if kind is not None and kind not in TYPES:
        raise ValueError(f"type must be one of {', '.join(TYPES)}, got {kind!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must lie in 1..{MAX_LIMIT}, got {limit}")
    stmt = (
        select(AuditEvent, Identity.name)
        .outerjoin(Identity, Identity.id == AuditEvent.identity_id)
        .where(or_(*(_of_type(t) for t in ([kind] if kind else TYPES))))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    if camera is not None:
        stmt = stmt.where(AuditEvent.source == camera)
    if person is not None:
        stmt = stmt.where(Identity.name == name_key(person))
    if since is not None:
        stmt = stmt.where(AuditEvent.time >= since)
    with database.read() as s:
        return [
            DoorRecord(
                id=row.id,
                time=row.time,
                camera=row.source,
                type=_type_of(row),
                name=name,
                similarity=row.best_score,
                liveness=json.loads(row.liveness)["verdict"] if row.liveness else None,
                reason=row.reason,
                snapshot=row.image is not None,
            )
            for row, name in s.execute(stmt)
        ]

"""The audit trail of door-camera attempts, in the gallery database (`audit_events`).

Every decision is written down: when, from which source, who was claimed or
recognised, the decision and the similarities it rested on. A face image is
kept only when the operator asks for it (`--save-images`), because an audit
trail of faces is personal data in its own right.

Each row points at the person it is about with a foreign key that cascades on
delete, so `facerec remove NAME` (or `DELETE /v1/people/NAME`) also removes
every audit event and image of that person. An image can also show someone
else than the person its event is about: whoever claimed to be Ada at her
door. `FaceRec.forget` therefore re-embeds the saved images (the log keeps no
embeddings) and `AuditLog.forget`, in the transaction that deletes the
person, also deletes the image from any other event in which their face is
found; that event stays, for it is still a fact about the claimed person.

The log works through the gallery's `facerec.storage.Database` (SQLite or
PostgreSQL, one engine per process): each write is one `Database.write()`
transaction, queued behind a concurrent enrolment instead of failing. It
never touches `meta.revision`: the revision stamps the prototype search,
which audit rows do not change.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from facerec.camera.events import DecisionEvent, liveness_json
from facerec.camera.tables import AuditEvent
from facerec.decisions.names import name_key
from facerec.errors import GalleryError
from facerec.gallery.erasers import AuditForgotten
from facerec.gallery.forget import ForgetTarget
from facerec.gallery.schema import Identity
from facerec.storage import Database

#: Saved images read per query while they are re-embedded for `forget`.
_IMAGE_CHUNK = 64


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


class AuditLog:
    """Writes and reads `audit_events` through the gallery's `Database` (already migrated).

    Holds no connection of its own: whoever opened the database closes it.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, event: DecisionEvent, image: bytes | None = None) -> int:
        """Store one decision (and, if given, the JPEG of the best face); returns the row id."""
        name = event.name if event.name is not None else event.claim
        try:
            with self.database.write() as s:
                identity_id = None
                if name is not None:
                    identity_id = s.scalar(
                        select(Identity.id).where(Identity.name == name_key(name))
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
        except GalleryError as exc:  # locked past the timeout, connection lost
            raise GalleryError(f"cannot write the audit event: {exc}") from exc

    def recent(self, limit: int = 100) -> list[AuditRecord]:
        """The latest `limit` events, newest first."""
        stmt = (
            select(AuditEvent, Identity.name)
            .outerjoin(Identity, Identity.id == AuditEvent.identity_id)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        with self.database.read() as s:
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
        with self.database.read() as s:
            return s.scalar(select(AuditEvent.image).where(AuditEvent.id == event_id))

    def images_about_others(self, name: str) -> Iterator[tuple[int, bytes]]:
        """(event id, JPEG) of every saved image of an event that is not about `name`, by id.

        Read in small chunks, each its own snapshot: the log may be large, and
        an image saved after its chunk was read is caught by `forget`, which
        counts any image it was not given faces for as unchecked.
        """
        key = name_key(name)
        last = 0
        while True:
            stmt = (
                select(AuditEvent.id, AuditEvent.image)
                .outerjoin(Identity, Identity.id == AuditEvent.identity_id)
                .where(
                    AuditEvent.id > last,
                    AuditEvent.image.is_not(None),
                    or_(Identity.name.is_(None), Identity.name != key),
                    or_(AuditEvent.claimed_name.is_(None), AuditEvent.claimed_name != key),
                )
                .order_by(AuditEvent.id)
                .limit(_IMAGE_CHUNK)
            )
            with self.database.read() as s:
                rows = s.execute(stmt).all()
            if not rows:
                return
            for event_id, image in rows:
                if image is not None:
                    yield int(event_id), bytes(image)
            last = int(rows[-1][0])

    def purge_images(self, before: datetime, sources: Collection[str]) -> int:
        """Drop the images of `sources`' events older than `before` (the events stay); how many.

        The door's retention: a snapshot is a face, kept only as long as the
        operator said. Events of other sources (`facerec camera --save-images`)
        are left to their owner.
        """
        if not sources:
            return 0
        with self.database.write() as s:
            result = s.execute(
                update(AuditEvent)
                .where(
                    AuditEvent.image.is_not(None),
                    AuditEvent.time < before,
                    AuditEvent.source.in_(sorted(sources)),
                )
                .values(image=None)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    @staticmethod
    def forget(
        s: Session, target: ForgetTarget, faces: Mapping[int, npt.NDArray[np.float32]]
    ) -> AuditForgotten:
        """Delete `target`'s events and every image of their face, inside the caller's transaction.

        Events about them (by identity, or claiming their name) are deleted,
        image and all. `faces` maps event id to the embeddings of the faces
        found in that event's image (`images_about_others`, embedded by the
        caller): an image with a face reaching `target.threshold` against
        their prototype is deleted from its event. An image with no entry, or
        no face, is counted as unchecked.
        """
        about = or_(
            AuditEvent.identity_id == target.identity_id,
            AuditEvent.claimed_name == target.name,
        )
        events = int(s.scalar(select(func.count()).select_from(AuditEvent).where(about)) or 0)
        s.execute(delete(AuditEvent).where(about))
        theirs: list[int] = []
        unchecked = 0
        for (event_id,) in s.execute(
            select(AuditEvent.id).where(AuditEvent.image.is_not(None)).order_by(AuditEvent.id)
        ):
            found = faces.get(int(event_id))
            if found is None or len(found) == 0:
                unchecked += 1
            elif bool(target.is_them(found).any()):
                theirs.append(int(event_id))
        for start in range(0, len(theirs), 500):
            s.execute(
                update(AuditEvent)
                .where(AuditEvent.id.in_(theirs[start : start + 500]))
                .values(image=None)
            )
        return AuditForgotten(events=events, images=len(theirs), unchecked=unchecked)


def _liveness(event: DecisionEvent) -> str | None:
    data = liveness_json(event.liveness, event.liveness_scores)
    return json.dumps(data, ensure_ascii=False) if data is not None else None


def _finite(x: float) -> float | None:
    return float(x) if x == x and abs(x) != float("inf") else None

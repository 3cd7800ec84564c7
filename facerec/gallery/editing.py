"""People edited rather than enrolled: rename, move samples between people, delete samples.

These are the gallery halves of the album's corrections (a person renamed,
two people merged, a merge undone, a named cluster taken back). Each runs in
ONE gallery write transaction with the revision bump (`Gallery._commit`) and
calls `also(session, ...)` inside it, so the app that asked (the album's
correction log) writes its own rows in the same transaction: a correction is
all there or not at all. A person left without samples is deleted, as a
person without a prototype cannot exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facerec.decisions.names import name_key, validate_name
from facerec.errors import GalleryError, UnknownPersonError
from facerec.gallery.schema import Identity, Prototype, Sample
from facerec.gallery.state import GalleryState, PrototypeChange
from facerec.gallery.store import Gallery, _store_prototype

#: Called inside the gallery's transaction with the session and the names -> ids after the edit.
Also = Callable[[Session, dict[str, int]], None]


@dataclass(frozen=True, slots=True)
class SampleMove:
    """What `move_samples` did: which samples went from whom to whom, and who was emptied."""

    sample_ids: tuple[int, ...]
    sources: tuple[str, ...]
    to: str
    created: bool
    deleted: tuple[str, ...]


def nothing(s: Session, ids: dict[str, int]) -> None:
    """No app rows to write."""


def _ids(s: Session) -> dict[str, int]:
    return {n: i for i, n in s.execute(select(Identity.id, Identity.name))}


def rename(gallery: Gallery, old: str, new: str, also: Also = nothing) -> str:
    """Rename `old` to `new` (which must not be enrolled); returns the stored new name."""
    old_key, new_key = name_key(old), validate_name(new)

    def work(s: Session, state: GalleryState) -> tuple[str, PrototypeChange | None]:
        row = s.scalar(select(Identity).where(Identity.name == old_key))
        if row is None:
            raise UnknownPersonError(old_key)
        if old_key == new_key:
            return new_key, PrototypeChange()
        if s.scalar(select(Identity.id).where(Identity.name == new_key)) is not None:
            raise GalleryError(f"{new_key!r} is already enrolled; merge instead of renaming")
        s.execute(
            update(Identity)
            .where(Identity.id == row.id)
            .values(name=new_key, updated_at=datetime.now(UTC))
        )
        s.flush()
        also(s, _ids(s))
        return new_key, None  # the search caches names: rebuild

    return gallery._commit(work)


def move_samples(
    gallery: Gallery, sample_ids: Sequence[int], to: str, also: Also = nothing
) -> SampleMove:
    """Give the samples `sample_ids` to `to` (created if new); people left empty are deleted.

    A merge moves all of one person's samples; undoing it moves them back to
    the old name, which is created again.
    """
    to_key = validate_name(to)
    wanted = sorted(set(int(i) for i in sample_ids))
    if not wanted:
        raise ValueError("no samples to move")

    def work(s: Session, state: GalleryState) -> tuple[SampleMove, PrototypeChange | None]:
        rows = s.execute(
            select(Sample.id, Identity.id, Identity.name)
            .join(Identity, Identity.id == Sample.identity_id)
            .where(Sample.id.in_(wanted))
        ).all()
        if len(rows) != len(wanted):
            missing = sorted(set(wanted) - {r[0] for r in rows})
            raise GalleryError(f"no enrolled samples {missing[:5]}")
        if state.dim is None:
            raise GalleryError("the gallery has no pinned model")
        now = datetime.now(UTC)
        target = s.scalar(select(Identity).where(Identity.name == to_key))
        created = target is None
        if target is None:
            target = Identity(name=to_key, created_at=now, updated_at=now)
            s.add(target)
            s.flush()
        s.execute(update(Sample).where(Sample.id.in_(wanted)).values(identity_id=target.id))
        s.flush()
        touched = {r[1]: r[2] for r in rows if r[1] != target.id}
        deleted = []
        for ident, name in touched.items():
            left = s.scalar(
                select(func.count()).select_from(Sample).where(Sample.identity_id == ident)
            )
            if left:
                _store_prototype(s, ident, state.dim, now)
            else:
                s.execute(delete(Prototype).where(Prototype.identity_id == ident))
                s.flush()
                deleted.append(name)
        _store_prototype(s, target.id, state.dim, now)
        also(s, _ids(s))  # before the emptied people go: the app moves its rows off them first
        for name in deleted:
            s.execute(delete(Identity).where(Identity.name == name))
        move = SampleMove(
            tuple(wanted), tuple(sorted(set(touched.values()))), to_key, created, tuple(deleted)
        )
        return move, None

    return gallery._commit(work)


def delete_samples(gallery: Gallery, sample_ids: Sequence[int], also: Also = nothing) -> int:
    """Delete enrolment samples (a named cluster taken back); an emptied person goes with them."""
    wanted = sorted(set(int(i) for i in sample_ids))

    def work(s: Session, state: GalleryState) -> tuple[int, PrototypeChange | None]:
        owners = set(s.scalars(select(Sample.identity_id).where(Sample.id.in_(wanted))).all())
        n = s.execute(delete(Sample).where(Sample.id.in_(wanted))).rowcount  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        also(s, _ids(s))
        for ident in owners:
            left = s.scalar(
                select(func.count()).select_from(Sample).where(Sample.identity_id == ident)
            )
            if left and state.dim is not None:
                _store_prototype(s, ident, state.dim, now)
            else:
                s.execute(delete(Identity).where(Identity.id == ident))
        return int(n or 0), None

    return gallery._commit(work)


def sample_ids(gallery: Gallery, name: str) -> list[int]:
    """The sample ids of `name`, in id order ([] when not enrolled)."""
    with gallery.database.read() as s:
        return list(
            s.scalars(
                select(Sample.id)
                .join(Identity, Identity.id == Sample.identity_id)
                .where(Identity.name == name_key(name))
                .order_by(Sample.id)
            )
        )


@dataclass(frozen=True, slots=True)
class SampleCopy:
    """Everything a stored sample holds, to put it back after it was removed (undo)."""

    name: str
    embedding: bytes  # float32, little-endian
    crop: bytes
    crop_landmarks: str
    source: str
    content_sha256: str
    box: str
    det_score: float
    quality: str


def copy_sample(gallery: Gallery, sample_id: int) -> SampleCopy | None:
    """A sample's stored fields (None when there is no such sample)."""
    with gallery.database.read() as s:
        row = s.execute(
            select(Sample, Identity.name)
            .join(Identity, Identity.id == Sample.identity_id)
            .where(Sample.id == sample_id)
        ).first()
    if row is None:
        return None
    smp, name = row
    return SampleCopy(
        name=name,
        embedding=np.asarray(smp.embedding, np.float32).astype("<f4").tobytes(),
        crop=smp.crop,
        crop_landmarks=smp.crop_landmarks,
        source=smp.source,
        content_sha256=smp.content_sha256,
        box=smp.box,
        det_score=float(smp.det_score),
        quality=smp.quality,
    )


def put_back(gallery: Gallery, copy: SampleCopy, also: Also = nothing) -> int:
    """Store a removed sample again under its person (who must still be enrolled); its new id."""

    def work(s: Session, state: GalleryState) -> tuple[int, PrototypeChange | None]:
        ident = s.scalar(select(Identity.id).where(Identity.name == copy.name))
        if ident is None:
            raise UnknownPersonError(copy.name)
        if state.dim is None:
            raise GalleryError("the gallery has no pinned model")
        now = datetime.now(UTC)
        sample = Sample(
            identity_id=ident,
            embedding=np.frombuffer(copy.embedding, dtype="<f4").astype(np.float32),
            crop=copy.crop,
            crop_landmarks=copy.crop_landmarks,
            source=copy.source,
            content_sha256=copy.content_sha256,
            box=copy.box,
            det_score=copy.det_score,
            quality=copy.quality,
            created_at=now,
        )
        s.add(sample)
        s.flush()
        _store_prototype(s, ident, state.dim, now)
        also(s, _ids(s))
        return int(sample.id), None

    return gallery._commit(work)

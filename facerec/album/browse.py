"""Read-only views of the album for review pages: people, one person's faces, the queue, a photo.

Each view is one read transaction returning frozen rows, paged by the
database (`LIMIT`/`OFFSET`) so a person with thousands of faces or an
album of tens of thousands costs one page of rows, not the album. The web
app (`facerec.server.web`) renders them; they are the album's own reads, kept out of
`store.py`, which writes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import case, func, select

from facerec.album.store import stack_rows
from facerec.album.tables import MATCH_AUTO, MATCH_CONFIRMED, AlbumFace, AlbumPhoto
from facerec.decisions.names import name_key
from facerec.gallery.schema import Identity, Sample
from facerec.storage import Database


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person on the people page: samples enrolled, album faces, one face to show."""

    name: str
    samples: int
    faces: int
    confirmed: int
    thumb_face: int | None


@dataclass(frozen=True, slots=True)
class FaceRow:
    """An album face as review pages show it; `score` is what the page sorts by."""

    id: int
    photo_id: int
    path: str
    person: str | None
    kind: str | None
    folded: bool
    similarity: float | None
    score: float | None


@dataclass(frozen=True, slots=True)
class PhotoFace:
    id: int
    box: tuple[float, float, float, float]
    person: str | None
    kind: str | None
    cluster: int | None
    ignored: bool


@dataclass(frozen=True, slots=True)
class PhotoPage:
    id: int
    path: str
    content_sha256: str
    width: int
    height: int
    faces: tuple[PhotoFace, ...]


def people(database: Database, query: str = "") -> list[PersonRow]:
    """Everyone enrolled, most album faces first, filtered by a case-insensitive substring."""
    with database.read() as s:
        samples = dict(
            s.execute(
                select(Identity.name, func.count(Sample.id))
                .join(Sample, Sample.identity_id == Identity.id)
                .group_by(Identity.name)
            ).all()
        )
        faces: dict[str, list[int]] = {}
        for name, n, confirmed, first in s.execute(
            select(
                Identity.name,
                func.count(AlbumFace.id),
                func.sum(case((AlbumFace.match_kind == MATCH_CONFIRMED, 1), else_=0)),
                func.min(AlbumFace.id),
            )
            .join(AlbumFace, AlbumFace.identity_id == Identity.id)
            .group_by(Identity.name)
        ):
            faces[name] = [int(n), int(confirmed or 0), int(first)]
    q = query.strip().casefold()
    rows = [
        PersonRow(n, int(k), *(faces.get(n, [0, 0, None])))
        for n, k in samples.items()
        if q in n.casefold()
    ]
    return sorted(rows, key=lambda r: (-r.faces, r.name))


def person_faces(
    database: Database,
    name: str,
    prototype: npt.NDArray[np.float32],
    *,
    offset: int = 0,
    limit: int = 200,
) -> tuple[list[FaceRow], int]:
    """A person's album faces by similarity to their prototype, lowest (likeliest mistake) first.

    Returns one page and the total.
    """
    with database.read() as s:
        rows = s.execute(
            select(
                AlbumFace.id, AlbumFace.photo_id, AlbumPhoto.path, AlbumFace.match_kind,
                AlbumFace.folded, AlbumFace.similarity, AlbumFace.embedding,
            )
            .join(AlbumPhoto, AlbumPhoto.id == AlbumFace.photo_id)
            .join(Identity, Identity.id == AlbumFace.identity_id)
            .where(Identity.name == name_key(name))
        ).all()  # fmt: skip
    if not rows:
        return [], 0
    scores = stack_rows([r[6] for r in rows]) @ np.asarray(prototype, np.float32)
    order = np.argsort(scores, kind="stable")[offset : offset + limit]
    out = [
        FaceRow(
            id=rows[i][0], photo_id=rows[i][1], path=rows[i][2], person=name_key(name),
            kind=rows[i][3], folded=bool(rows[i][4]), similarity=rows[i][5],
            score=float(scores[i]),
        )
        for i in order.tolist()
    ]  # fmt: skip
    return out, len(rows)


def review_queue(
    database: Database, threshold: float, margin: float, *, limit: int = 200
) -> list[FaceRow]:
    """Automatic matches within `margin` above the threshold, and folded ones, weakest first."""
    with database.read() as s:
        rows = s.execute(
            select(
                AlbumFace.id, AlbumFace.photo_id, AlbumPhoto.path, Identity.name,
                AlbumFace.match_kind, AlbumFace.folded, AlbumFace.similarity,
            )
            .join(AlbumPhoto, AlbumPhoto.id == AlbumFace.photo_id)
            .join(Identity, Identity.id == AlbumFace.identity_id)
            .where(
                AlbumFace.match_kind == MATCH_AUTO,
                (AlbumFace.similarity < threshold + margin) | AlbumFace.folded.is_(True),
            )
            .order_by(AlbumFace.similarity, AlbumFace.id)
            .limit(limit)
        ).all()  # fmt: skip
    return [
        FaceRow(f, p, path, n, k, bool(fo), sim, sim)
        for f, p, path, n, k, fo, sim in rows
    ]  # fmt: skip


def photo(database: Database, photo_id: int) -> PhotoPage | None:
    """A photo with every face box, its person or cluster, and whether it was ignored."""
    from facerec.album.corrections import IGNORED

    with database.read() as s:
        p = s.get(AlbumPhoto, photo_id)
        if p is None:
            return None
        faces = s.execute(
            select(
                AlbumFace.id, AlbumFace.box, Identity.name, AlbumFace.match_kind,
                AlbumFace.cluster_id, AlbumFace.quality_reasons,
            )
            .outerjoin(Identity, Identity.id == AlbumFace.identity_id)
            .where(AlbumFace.photo_id == photo_id)
            .order_by(AlbumFace.face_index)
        ).all()  # fmt: skip
        out = PhotoPage(
            id=p.id,
            path=os.fsdecode(p.path_bytes),
            content_sha256=p.content_sha256,
            width=int(p.width or 0),
            height=int(p.height or 0),
            faces=tuple(
                PhotoFace(f, _box(b), n, k if n else None, c, r == IGNORED)
                for f, b, n, k, c, r in faces
            ),
        )
    return out


def person_version(database: Database, name: str) -> str:
    """A digest of what a person is now: samples and album faces (with their kinds).

    A form carries the version it was rendered with; a correction whose
    version no longer matches is refused (HTTP 409) instead of overwriting
    what someone else changed meanwhile.
    """
    with database.read() as s:
        ident = s.scalar(select(Identity.id).where(Identity.name == name_key(name)))
        samples = list(s.scalars(select(Sample.id).where(Sample.identity_id == ident)))
        # Aggregates, not rows: a person with thousands of faces costs one index range scan.
        faces = s.execute(
            select(
                func.count(AlbumFace.id),
                func.sum(AlbumFace.id),
                func.sum(AlbumFace.id * AlbumFace.id),
                func.sum(case((AlbumFace.match_kind == MATCH_CONFIRMED, AlbumFace.id), else_=0)),
            ).where(AlbumFace.identity_id == ident)
        ).one()
    text = json.dumps([ident, sorted(samples), [int(v or 0) for v in faces]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _box(text: str) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in json.loads(text))
    return x1, y1, x2, y2


def face_people(database: Database, face_ids: list[int]) -> dict[int, str | None]:
    """Face id -> the person it is matched or confirmed to now (None: unknown)."""
    with database.read() as s:
        return {
            f: n
            for f, n in s.execute(
                select(AlbumFace.id, Identity.name)
                .outerjoin(Identity, Identity.id == AlbumFace.identity_id)
                .where(AlbumFace.id.in_(face_ids))
            )
        }


def clusters(database: Database, *, limit: int = 100) -> list[tuple[int, list[int]]]:
    """Unknown-face clusters, biggest first: (cluster id, face ids)."""
    with database.read() as s:
        rows = s.execute(
            select(AlbumFace.cluster_id, AlbumFace.id)
            .where(AlbumFace.cluster_id.is_not(None), AlbumFace.identity_id.is_(None))
            .order_by(AlbumFace.id)
        ).all()
    groups: dict[int, list[int]] = {}
    for c, f in rows:
        groups.setdefault(int(c or 0), []).append(int(f))
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]


def names(database: Database) -> list[str]:
    """Every enrolled name, in code-point order (for move/merge choices)."""
    with database.read() as s:
        return sorted(s.scalars(select(Identity.name)))

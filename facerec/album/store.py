"""Album rows in the gallery database: the only module that reads or writes the album tables.

The album shares the gallery's database (so a face's match is a real
foreign key to a person) and its `facerec.storage.Database` (one engine per
process), but not the `Gallery` object's transactions: the Gallery owns
people, samples and prototypes and its revision counter stamps the prototype
search, which album writes must not move. `AlbumStore` reads `identities`
only to translate names and ids, and never writes a gallery table.

Every write is one `Database.write()` transaction, queued behind any other
facerec writer (a second scanner waits instead of failing). A scan commits
each batch of photos together with their faces, so a scan killed at any
point leaves whole photos or none, and the UNIQUE keys (content hash; photo +
face position) make a rerun unable to add a second copy. Nothing here is
particular to SQLite or PostgreSQL; orderings that a database's text
collation would decide are made in Python, so both list the same album alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from facerec.album.correction_forget import forget_people
from facerec.album.records import (
    AlbumView,
    ClusterView,
    FaceView,
    PersonView,
    PhotoView,
)
from facerec.album.tables import (
    MATCH_AUTO,
    MATCH_CONFIRMED,
    PHOTO_ERROR,
    PHOTO_OK,
    PHOTO_SKIPPED,
    AlbumCluster,
    AlbumFace,
    AlbumForgottenFace,
    AlbumNegative,
    AlbumPhoto,
    AlbumPhotoPath,
)
from facerec.errors import GalleryError
from facerec.gallery.erasers import AlbumForgotten
from facerec.gallery.forget import ForgetTarget
from facerec.gallery.schema import Identity
from facerec.models.base import ModelIdentity
from facerec.paths import display_path, path_bytes
from facerec.storage import Database
from facerec.storage import insert as upsert

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class KnownPhoto:
    """What a rerun needs to know about a path already in the album to decide to skip it.

    One per path: a photo found at several paths (copies) is known at each.
    `primary` marks the path the album reads the photo from. Paths are `str`
    as Python spells file names (undecodable bytes as surrogates, PEP 383),
    read back from the stored bytes (`path_bytes`), so they open the very
    file that was scanned.
    """

    path: str
    content_sha256: str
    size_bytes: int
    mtime_ns: int
    ok: bool
    model: ModelIdentity | None
    primary: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class NewFace:
    """A detected face to store, in the photo's own pixel coordinates."""

    face_index: int
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    det_score: float
    quality: Mapping[str, float]
    quality_reasons: tuple[str, ...]
    embedding: Vectors
    thumbnail: bytes | None


@dataclass(frozen=True, slots=True, eq=False)
class NewPhoto:
    """A scanned file with its faces; `error` set (and no faces) when it could not be used.

    `skipped`: the path is not a regular file and was never opened (`error`
    says what it is). `damage`: the photo decoded with errors and its faces
    were used all the same.
    """

    path: str
    content_sha256: str
    size_bytes: int
    mtime_ns: int
    width: int | None
    height: int | None
    error: str | None
    model: ModelIdentity | None
    faces: tuple[NewFace, ...] = ()
    damage: str | None = None
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class Relocation:
    """Content already in the album found at a path (new, or with a new mtime): record the path.

    `gone` lists paths of the same content that no longer exist on disk (the
    file was moved or the copy deleted); they are dropped, and if the album
    read the photo from one of them it reads it from `path` from now on.
    """

    content_sha256: str
    path: str
    size_bytes: int
    mtime_ns: int
    gone: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class FaceTable:
    """The album's usable faces (quality gate passed, embedded by one model) as arrays.

    Row i describes face `face_ids[i]`; `kinds[i]` is the match kind or None.
    """

    face_ids: npt.NDArray[np.int64]
    photo_ids: npt.NDArray[np.int64]
    embeddings: Vectors
    identities: tuple[int | None, ...]
    kinds: tuple[str | None, ...]
    folded: tuple[bool, ...]
    clusters: tuple[int | None, ...]
    similarities: tuple[float | None, ...]

    def __len__(self) -> int:
        return len(self.face_ids)


@dataclass(frozen=True, slots=True)
class FaceUpdate:
    """A refresh's decision for one face; `cluster` is an index into the new groups or None."""

    face_id: int
    identity: int | None
    similarity: float | None
    kind: str | None
    folded: bool
    cluster: int | None


@dataclass(frozen=True, slots=True, eq=False)
class ClusterFace:
    """A face of a cluster with what enrolment needs: where the photo is and where the face is."""

    face_id: int
    photo_path: str
    content_sha256: str
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    det_score: float
    quality: Mapping[str, float]
    embedding: Vectors
    model: ModelIdentity | None


@dataclass(frozen=True, slots=True, eq=False)
class FaceImage:
    """A face's stored thumbnail, or where to cut one from when none was stored."""

    face_id: int
    thumbnail: bytes | None
    photo_path: str
    content_sha256: str
    box: tuple[float, float, float, float]


class AlbumStore:
    """The album tables of one gallery database, through the gallery's `Database` (migrated).

    Holds no connection of its own: whoever opened the database closes it.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- scanning -------------------------------------------------------------------------------
    def known(self) -> list[KnownPhoto]:
        """Every path's key facts, for a rerun to skip what it has seen."""
        stmt = select(
            AlbumPhotoPath.path_bytes,
            AlbumPhoto.content_sha256,
            AlbumPhotoPath.size_bytes,
            AlbumPhotoPath.mtime_ns,
            AlbumPhoto.status,
            AlbumPhoto.model_name,
            AlbumPhoto.model_sha256,
            AlbumPhoto.path_bytes,
        ).join(AlbumPhoto, AlbumPhoto.id == AlbumPhotoPath.photo_id)
        with self.database.read() as s:
            return [
                KnownPhoto(
                    path=os.fsdecode(p),
                    content_sha256=sha,
                    size_bytes=size,
                    mtime_ns=mtime,
                    ok=status == PHOTO_OK,
                    model=ModelIdentity(mn, ms) if mn is not None and ms is not None else None,
                    primary=p == primary,
                )
                for p, sha, size, mtime, status, mn, ms, primary in s.execute(stmt)
            ]

    def write(self, photos: Sequence[NewPhoto], relocations: Sequence[Relocation] = ()) -> None:
        """Store a batch of scanned photos and their faces in ONE transaction.

        A photo whose content is already in the album (a rescan after a model
        change) keeps its row and gets new faces; a path that held other
        content (the file was edited or replaced) is taken from that content,
        which leaves the album once no path of it is left. So a content hash is
        in the album once and a path belongs to one content. Faces overlapping
        a forgotten face's box (`forget`) are not stored again.
        """
        now = datetime.now(UTC)
        with self.database.write() as s:
            for p in photos:
                _write_photo(s, p, now)
            for r in relocations:
                _relocate(s, r)

    def prune(self, gone: Sequence[str]) -> int:
        """Forget the files named `gone` (deleted from disk), in one transaction.

        A photo with no path left leaves the album with its faces, embeddings
        and thumbnails; one with a copy elsewhere stays, read from the copy.
        Returns how many photos left the album.
        """
        if not gone:
            return 0
        with self.database.write() as s:
            return sum(_drop_path(s, path_bytes(p)) for p in gone)

    # -- forgetting -----------------------------------------------------------------------------
    @staticmethod
    def forget(s: Session, target: ForgetTarget) -> AlbumForgotten:
        """Delete every album face of `target` inside the caller's transaction `s`.

        A face is theirs when it is matched or confirmed to them (folded
        faces included, so their album prototype goes too) or when its
        embedding reaches `target.threshold` against their prototype, whoever
        it is matched to now and whatever the quality gate said. Each such
        face's row (embedding, thumbnail, landmarks) is deleted and its box is
        recorded against the photo's content, so a rescan of the photo does
        not store the face again; the photo itself stays. Their "not NAME"
        records go, and clusters left empty. `FaceRec.forget` calls this in
        the transaction that deletes the person.
        """
        doomed, unchecked = _their_faces(s, target)
        negatives = int(
            s.scalar(
                select(func.count())
                .select_from(AlbumNegative)
                .where(AlbumNegative.identity_id == target.identity_id)
            )
            or 0
        )
        s.execute(delete(AlbumNegative).where(AlbumNegative.identity_id == target.identity_id))
        forget_people(s, target.name)  # the correction log names them too
        _erase_faces(s, doomed)
        return AlbumForgotten(
            faces=len(doomed),
            photos=len({d[1] for d in doomed}),
            negatives=negatives,
            unchecked=unchecked,
        )

    # -- matching and clustering ----------------------------------------------------------------
    def usable_faces(self, model: ModelIdentity | None) -> FaceTable:
        """Faces that passed the quality gate in readable photos embedded by `model`."""
        stmt = (
            select(
                AlbumFace.id,
                AlbumFace.photo_id,
                AlbumFace.embedding,
                AlbumFace.identity_id,
                AlbumFace.match_kind,
                AlbumFace.folded,
                AlbumFace.cluster_id,
                AlbumFace.similarity,
            )
            .join(AlbumPhoto, AlbumPhoto.id == AlbumFace.photo_id)
            .where(AlbumFace.quality_reasons.is_(None), AlbumPhoto.status == PHOTO_OK)
            .order_by(AlbumFace.id)
        )
        if model is not None:
            stmt = stmt.where(
                AlbumPhoto.model_name == model.name, AlbumPhoto.model_sha256 == model.weights_sha256
            )
        with self.database.read() as s:
            rows = s.execute(stmt).all()
        if not rows:
            return FaceTable(
                np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32),
                (), (), (), (), (),
            )  # fmt: skip
        embeddings = stack_rows([r[2] for r in rows])
        return FaceTable(
            face_ids=np.array([r[0] for r in rows], dtype=np.int64),
            photo_ids=np.array([r[1] for r in rows], dtype=np.int64),
            embeddings=embeddings,
            identities=tuple(r[3] for r in rows),
            kinds=tuple(r[4] for r in rows),
            folded=tuple(bool(r[5]) for r in rows),
            clusters=tuple(r[6] for r in rows),
            similarities=tuple(r[7] for r in rows),
        )

    def latest_model(self) -> ModelIdentity | None:
        """The model of the most recently scanned photo (what to match with before anyone is enrolled)."""
        stmt = (
            select(AlbumPhoto.model_name, AlbumPhoto.model_sha256)
            .where(AlbumPhoto.model_name.is_not(None), AlbumPhoto.model_sha256.is_not(None))
            .order_by(AlbumPhoto.scanned_at.desc(), AlbumPhoto.id.desc())
            .limit(1)
        )
        with self.database.read() as s:
            row = s.execute(stmt).first()
        if row is None or row[0] is None or row[1] is None:
            return None
        return ModelIdentity(row[0], row[1])

    def negatives(self) -> set[tuple[int, int]]:
        """Every (face id, identity id) pair a user said does not match."""
        with self.database.read() as s:
            return {
                (f, i)
                for f, i in s.execute(select(AlbumNegative.face_id, AlbumNegative.identity_id))
            }

    def identities(self) -> dict[str, int]:
        """Enrolled names -> identity ids (read-only use of the gallery's table)."""
        with self.database.read() as s:
            return {n: i for i, n in s.execute(select(Identity.id, Identity.name))}

    def folded_embeddings(self) -> dict[int, Vectors]:
        """Identity id -> embeddings of the album faces folded into that person's prototype."""
        stmt = (
            select(AlbumFace.identity_id, AlbumFace.embedding)
            .where(AlbumFace.folded.is_(True), AlbumFace.identity_id.is_not(None))
            .order_by(AlbumFace.id)
        )
        groups: dict[int, list[Vectors]] = {}
        with self.database.read() as s:
            for identity_id, vector in s.execute(stmt):
                if identity_id is not None:
                    groups.setdefault(identity_id, []).append(vector)
        return {k: stack_rows(v) for k, v in groups.items()}

    def apply(self, updates: Sequence[FaceUpdate], group_ids: Sequence[int | None]) -> int:
        """Write a refresh in one transaction; returns how many faces changed.

        `group_ids[g]` is the cluster id group g keeps, or None for a new one;
        new clusters are created here and clusters left without faces deleted.
        Only rows that differ are written.
        """
        now = datetime.now(UTC)
        with self.database.write() as s:
            ids: list[int] = []
            for gid in group_ids:
                if gid is None:
                    gid = s.execute(
                        insert(AlbumCluster).values(created_at=now).returning(AlbumCluster.id)
                    ).scalar_one()
                ids.append(int(gid))
            wanted = {
                u.face_id: (
                    u.identity,
                    u.similarity,
                    u.kind,
                    u.folded,
                    ids[u.cluster] if u.cluster is not None else None,
                )
                for u in updates
            }
            current = {
                int(fid): (ident, sim, kind, bool(folded), cl)
                for fid, ident, sim, kind, folded, cl in s.execute(
                    select(
                        AlbumFace.id,
                        AlbumFace.identity_id,
                        AlbumFace.similarity,
                        AlbumFace.match_kind,
                        AlbumFace.folded,
                        AlbumFace.cluster_id,
                    )
                )
            }
            changed = {fid: v for fid, v in wanted.items() if fid in current and current[fid] != v}
            if changed:
                s.execute(
                    update(AlbumFace),
                    [
                        {
                            "id": fid,
                            "identity_id": v[0],
                            "similarity": v[1],
                            "match_kind": v[2],
                            "folded": v[3],
                            "cluster_id": v[4],
                        }
                        for fid, v in changed.items()
                    ],
                )
            n_changed = sum(
                1
                for fid, v in changed.items()
                if current[fid][0] != v[0] or current[fid][4] != v[4]
            )
            s.execute(
                delete(AlbumCluster).where(
                    ~select(AlbumFace.id).where(AlbumFace.cluster_id == AlbumCluster.id).exists()
                )
            )
            return n_changed

    # -- user decisions -------------------------------------------------------------------------
    def cluster_faces(
        self, cluster_id: int | None, face_ids: Sequence[int] = ()
    ) -> list[ClusterFace]:
        """The faces of one cluster (or, with None, the faces `face_ids`) with their photos, in
        face id order."""
        stmt = (
            select(AlbumFace, AlbumPhoto)
            .join(AlbumPhoto, AlbumPhoto.id == AlbumFace.photo_id)
            .where(
                AlbumFace.cluster_id == cluster_id
                if cluster_id is not None
                else AlbumFace.id.in_(list(face_ids))
            )
            .order_by(AlbumFace.id)
        )
        with self.database.read() as s:
            return [
                ClusterFace(
                    face_id=f.id,
                    photo_path=os.fsdecode(p.path_bytes),
                    content_sha256=p.content_sha256,
                    box=_box(json.loads(f.box)),
                    landmarks=tuple((float(x), float(y)) for x, y in json.loads(f.landmarks)),
                    det_score=f.det_score,
                    quality={str(k): float(v) for k, v in json.loads(f.quality).items()},
                    embedding=stack_rows([f.embedding])[0],
                    model=ModelIdentity(p.model_name, p.model_sha256)
                    if p.model_name is not None and p.model_sha256 is not None
                    else None,
                )
                for f, p in s.execute(stmt)
            ]

    def has_face(self, face_id: int) -> bool:
        with self.database.read() as s:
            return s.scalar(select(AlbumFace.id).where(AlbumFace.id == face_id)) is not None

    def confirm(self, face_ids: Sequence[int], identity_id: int) -> int:
        """Mark faces as confirmed to be `identity_id` (a named cluster); they leave their cluster."""
        if not face_ids:
            return 0
        with self.database.write() as s:
            result = s.execute(
                update(AlbumFace)
                .where(AlbumFace.id.in_(list(face_ids)))
                .values(
                    identity_id=identity_id,
                    match_kind=MATCH_CONFIRMED,
                    folded=False,
                    cluster_id=None,
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def add_negative(self, face_id: int, identity_id: int) -> bool:
        """Record "face is not identity"; undo a current match to it. True if one was undone."""
        with self.database.write() as s:
            stmt = upsert(s, AlbumNegative).values(
                face_id=face_id, identity_id=identity_id, created_at=datetime.now(UTC)
            )
            s.execute(stmt.on_conflict_do_nothing())
            result = s.execute(
                update(AlbumFace)
                .where(AlbumFace.id == face_id, AlbumFace.identity_id == identity_id)
                .values(identity_id=None, match_kind=None, folded=False, similarity=None)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def unfold(self, identity_id: int) -> int:
        """Take every folded face of `identity_id` back out of the album prototype."""
        with self.database.write() as s:
            result = s.execute(
                update(AlbumFace)
                .where(AlbumFace.identity_id == identity_id, AlbumFace.folded.is_(True))
                .values(folded=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- reports --------------------------------------------------------------------------------
    def view(self) -> AlbumView:
        """Photos, faces, people and clusters from one snapshot, photos in path order."""
        with self.database.read() as s:
            # Sorted here, not by the database: PostgreSQL's text order follows its collation
            # (locale); Python's code-point order is SQLite's (BINARY, UTF-8 bytes) everywhere.
            photos = sorted(
                s.execute(select(AlbumPhoto)).scalars().all(), key=lambda p: (p.path, p.id)
            )
            face_rows = s.execute(
                select(AlbumFace.id, AlbumFace.photo_id, AlbumFace.face_index, AlbumFace.box,
                       AlbumFace.det_score, AlbumFace.quality_reasons, Identity.name,
                       AlbumFace.similarity, AlbumFace.match_kind, AlbumFace.folded,
                       AlbumFace.cluster_id)
                .outerjoin(Identity, Identity.id == AlbumFace.identity_id)
                .order_by(AlbumFace.photo_id, AlbumFace.face_index)
            ).all()  # fmt: skip
            paths_by_photo: dict[int, list[tuple[str, bytes]]] = {}
            for pid, path, raw in sorted(
                s.execute(
                    select(AlbumPhotoPath.photo_id, AlbumPhotoPath.path, AlbumPhotoPath.path_bytes)
                ),
                key=lambda r: (r[1], r[2]),
            ):
                paths_by_photo.setdefault(pid, []).append((path, raw))
            forgotten = dict(
                s.execute(
                    select(AlbumForgottenFace.content_sha256, func.count()).group_by(
                        AlbumForgottenFace.content_sha256
                    )
                ).all()
            )
        faces_by_photo = _faces_by_photo(face_rows)
        photo_views = tuple(
            _photo_view(p, faces_by_photo.get(p.id, ()), paths_by_photo.get(p.id, ()), forgotten)
            for p in photos
        )
        people, clusters = _people_and_clusters(photo_views)
        return AlbumView(photos=photo_views, people=people, clusters=clusters)

    def face_images(self, face_ids: Sequence[int]) -> Iterator[FaceImage]:
        """Thumbnails (or where to cut them) for the given faces, streamed in id order."""
        wanted = sorted(set(face_ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            with self.database.read() as s:
                rows = s.execute(
                    select(AlbumFace.id, AlbumFace.thumbnail, AlbumPhoto.path_bytes,
                           AlbumPhoto.content_sha256, AlbumFace.box)
                    .join(AlbumPhoto, AlbumPhoto.id == AlbumFace.photo_id)
                    .where(AlbumFace.id.in_(chunk))
                    .order_by(AlbumFace.id)
                ).all()  # fmt: skip
            for fid, thumb, raw, sha, box in rows:
                yield FaceImage(fid, thumb, os.fsdecode(raw), sha, _box(json.loads(box)))

    def forgotten_boxes(self) -> dict[str, list[tuple[float, float, float, float]]]:
        """Content hash -> boxes of the faces forgotten in that photo (to hide them in previews)."""
        out: dict[str, list[tuple[float, float, float, float]]] = {}
        with self.database.read() as s:
            for sha, box in s.execute(
                select(AlbumForgottenFace.content_sha256, AlbumForgottenFace.box)
            ):
                out.setdefault(sha, []).append(_box(json.loads(box)))
        return out

    def counts(self) -> dict[str, int]:
        """Row counts per album table (for `info`-style summaries and tests)."""
        with self.database.read() as s:
            return {
                "photos": int(s.scalar(select(func.count()).select_from(AlbumPhoto)) or 0),
                "faces": int(s.scalar(select(func.count()).select_from(AlbumFace)) or 0),
                "clusters": int(s.scalar(select(func.count()).select_from(AlbumCluster)) or 0),
                "negatives": int(s.scalar(select(func.count()).select_from(AlbumNegative)) or 0),
                "paths": int(s.scalar(select(func.count()).select_from(AlbumPhotoPath)) or 0),
                "forgotten": int(
                    s.scalar(select(func.count()).select_from(AlbumForgottenFace)) or 0
                ),
                "auto": int(
                    s.scalar(
                        select(func.count())
                        .select_from(AlbumFace)
                        .where(
                            and_(
                                AlbumFace.match_kind == MATCH_AUTO,
                                AlbumFace.identity_id.is_not(None),
                            )
                        )
                    )
                    or 0
                ),
            }


def _write_photo(s: Session, p: NewPhoto, now: datetime) -> None:
    """One scanned photo: its row (new, or the same content's refreshed), its path, its faces."""
    raw = path_bytes(p.path)
    _release_path(s, raw, p.content_sha256)
    values = {
        "path": display_path(p.path),
        "path_bytes": raw,
        "size_bytes": p.size_bytes,
        "mtime_ns": p.mtime_ns,
        "width": p.width,
        "height": p.height,
        "status": PHOTO_SKIPPED if p.skipped else PHOTO_OK if p.error is None else PHOTO_ERROR,
        "error": p.error,
        "damage": p.damage,
        "model_name": p.model.name if p.model else None,
        "model_sha256": p.model.weights_sha256 if p.model else None,
        "scanned_at": now,
    }
    photo_id = s.scalar(select(AlbumPhoto.id).where(AlbumPhoto.content_sha256 == p.content_sha256))
    if photo_id is None:
        photo_id = s.execute(
            insert(AlbumPhoto)
            .values(content_sha256=p.content_sha256, **values)
            .returning(AlbumPhoto.id)
        ).scalar_one()
    else:
        s.execute(delete(AlbumFace).where(AlbumFace.photo_id == photo_id))
        s.execute(update(AlbumPhoto).where(AlbumPhoto.id == photo_id).values(**values))
    _set_path(s, photo_id, raw, p.size_bytes, p.mtime_ns)
    forgotten = _forgotten_boxes(s, p.content_sha256)
    faces = [f for f in p.faces if not any(_same_face(f.box, b) for b in forgotten)]
    if faces:
        s.execute(insert(AlbumFace), [_face_row(photo_id, f) for f in faces])


def _face_row(photo_id: int, f: NewFace) -> dict[str, Any]:
    return {
        "photo_id": photo_id,
        "face_index": f.face_index,
        "box": json.dumps([float(v) for v in f.box]),
        "landmarks": json.dumps([[float(x), float(y)] for x, y in f.landmarks]),
        "det_score": float(f.det_score),
        "quality": json.dumps({str(k): float(v) for k, v in f.quality.items()}, sort_keys=True),
        "quality_reasons": "; ".join(f.quality_reasons) or None,
        "embedding": np.asarray(f.embedding, np.float32),
        "thumbnail": f.thumbnail,
        "folded": False,
    }


def _relocate(s: Session, r: Relocation) -> None:
    """A known content found at a new path; the paths it left (`gone`) go."""
    photo_id = s.scalar(select(AlbumPhoto.id).where(AlbumPhoto.content_sha256 == r.content_sha256))
    if photo_id is None:
        return
    raw = path_bytes(r.path)
    _release_path(s, raw, r.content_sha256)
    _set_path(s, photo_id, raw, r.size_bytes, r.mtime_ns)
    if r.gone:
        gone = [path_bytes(g) for g in r.gone]
        s.execute(
            delete(AlbumPhotoPath).where(
                AlbumPhotoPath.photo_id == photo_id, AlbumPhotoPath.path_bytes.in_(gone)
            )
        )
        s.execute(
            update(AlbumPhoto)
            .where(AlbumPhoto.id == photo_id, AlbumPhoto.path_bytes.in_(gone))
            .values(
                path=display_path(r.path),
                path_bytes=raw,
                size_bytes=r.size_bytes,
                mtime_ns=r.mtime_ns,
            )
        )


def _their_faces(s: Session, target: ForgetTarget) -> tuple[list[tuple[int, int, str, str]], int]:
    """The album faces of `target`, as (face id, photo id, content, box), and how many faces of
    other models could not be checked against them."""
    stmt = (
        select(
            AlbumFace.id,
            AlbumFace.photo_id,
            AlbumFace.box,
            AlbumFace.embedding,
            AlbumFace.identity_id,
            AlbumPhoto.content_sha256,
            AlbumPhoto.model_name,
            AlbumPhoto.model_sha256,
        )
        .join(AlbumPhoto, AlbumPhoto.id == AlbumFace.photo_id)
        .order_by(AlbumFace.id)
        .execution_options(yield_per=1024)
    )
    model = (target.model.name, target.model.weights_sha256)
    doomed: list[tuple[int, int, str, str]] = []  # face id, photo id, content, box
    unchecked = 0
    chunk: list[tuple[int, int, str, Vectors, int | None, str, str | None, str | None]] = []

    def judge() -> None:
        nonlocal unchecked
        same = [r for r in chunk if (r[6], r[7]) == model]
        unchecked += sum(1 for r in chunk if (r[6], r[7]) != model and r[4] != target.identity_id)
        close = set()
        if same:
            vectors = [r[3] for r in same]
            if len({len(v) for v in vectors}) == 1:
                hits = target.is_them(stack_rows(vectors))
                close = {r[0] for r, hit in zip(same, hits.tolist(), strict=True) if hit}
        doomed.extend(
            (r[0], r[1], r[5], r[2]) for r in chunk if r[4] == target.identity_id or r[0] in close
        )
        chunk.clear()

    for row in s.execute(stmt):
        chunk.append(tuple(row))  # type: ignore[arg-type]
        if len(chunk) >= 1024:
            judge()
    judge()
    return doomed, unchecked


def _erase_faces(s: Session, doomed: list[tuple[int, int, str, str]]) -> None:
    """Delete the faces, remember their boxes against the content, drop clusters left empty."""
    if not doomed:
        return
    now = datetime.now(UTC)
    s.execute(
        insert(AlbumForgottenFace),
        [{"content_sha256": sha, "box": box, "forgotten_at": now} for _, _, sha, box in doomed],
    )
    ids = [d[0] for d in doomed]
    for start in range(0, len(ids), 500):
        s.execute(delete(AlbumFace).where(AlbumFace.id.in_(ids[start : start + 500])))
    s.execute(
        delete(AlbumCluster).where(
            ~select(AlbumFace.id).where(AlbumFace.cluster_id == AlbumCluster.id).exists()
        )
    )


def _faces_by_photo(rows: Sequence[Sequence[Any]]) -> dict[int, list[FaceView]]:
    faces: dict[int, list[FaceView]] = {}
    for fid, pid, idx, box, score, reasons, name, sim, kind, folded, cl in rows:
        faces.setdefault(pid, []).append(
            FaceView(
                id=fid,
                photo_id=pid,
                face_index=idx,
                box=_box(json.loads(box)),
                det_score=score,
                quality_reasons=tuple(reasons.split("; ")) if reasons else (),
                person=name,
                similarity=sim,
                match_kind=kind if name is not None else None,
                folded=bool(folded) and name is not None,
                cluster=cl if name is None else None,
            )
        )
    return faces


def _photo_view(
    p: AlbumPhoto,
    faces: Sequence[FaceView],
    paths: Sequence[tuple[str, bytes]],
    forgotten: Mapping[str, int],
) -> PhotoView:
    return PhotoView(
        id=p.id,
        path=p.path,
        content_sha256=p.content_sha256,
        status=p.status,
        error=p.error,
        damage=p.damage,
        width=p.width,
        height=p.height,
        scanned_at=p.scanned_at,
        faces=tuple(faces),
        # Other files by their exact names: two may print alike (revision 0007).
        paths=(p.path, *(x for x, raw in paths if raw != p.path_bytes)),
        forgotten=int(forgotten.get(p.content_sha256, 0)),
        raw_paths=(p.path_bytes, *(raw for _, raw in paths if raw != p.path_bytes)),
    )


def _people_and_clusters(
    photos: Sequence[PhotoView],
) -> tuple[tuple[PersonView, ...], tuple[ClusterView, ...]]:
    """The faces grouped by person and by cluster, the largest group first."""
    people: dict[str, list[FaceView]] = {}
    clusters: dict[int, list[FaceView]] = {}
    for photo in photos:
        for f in photo.faces:
            if f.person is not None:
                people.setdefault(f.person, []).append(f)
            elif f.cluster is not None:
                clusters.setdefault(f.cluster, []).append(f)
    return (
        tuple(
            PersonView(name, len({f.photo_id for f in fs}), tuple(f.id for f in fs))
            for name, fs in sorted(people.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ),
        tuple(
            ClusterView(cid, len({f.photo_id for f in fs}), tuple(f.id for f in fs))
            for cid, fs in sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        ),
    )


def stack_rows(vectors: Sequence[npt.ArrayLike]) -> Vectors:
    """Stack equal-length stored embeddings into an (N, D) float32 array."""
    if not vectors:
        return np.zeros((0, 0), np.float32)
    rows = [np.asarray(v, dtype=np.float32).reshape(-1) for v in vectors]
    if len({r.shape[0] for r in rows}) != 1:
        raise GalleryError("album face embeddings of different lengths in one table")
    return np.stack(rows)


def _box(values: Sequence[float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


def _release_path(s: Session, raw: bytes, content_sha256: str) -> None:
    """The file named `raw` now holds `content_sha256`: take it from any other content.

    Content left with no path leaves the album (its faces with it), as an
    edited or replaced file always did; content still found elsewhere stays
    and is read from one of its other paths.
    """
    _drop_path(s, raw, AlbumPhoto.content_sha256 != content_sha256)


def _drop_path(s: Session, raw: bytes, *where: Any) -> int:
    """Take the file named `raw` from the photos matching `where`; returns photo rows deleted.

    A photo left with no path leaves the album, its faces and thumbnails with it
    (ON DELETE CASCADE); one still found elsewhere is read from another path.
    """
    rows = s.execute(
        select(AlbumPhotoPath.id, AlbumPhotoPath.photo_id)
        .join(AlbumPhoto, AlbumPhoto.id == AlbumPhotoPath.photo_id)
        .where(AlbumPhotoPath.path_bytes == raw, *where)
    ).all()
    # A photo row whose own path is `path` but which lost its path row cannot exist, except
    # in an album written before paths were kept; treat its path columns as its path row.
    stray = s.scalars(select(AlbumPhoto.id).where(AlbumPhoto.path_bytes == raw, *where)).all()
    s.execute(delete(AlbumPhotoPath).where(AlbumPhotoPath.id.in_([r[0] for r in rows])))
    deleted = 0
    for photo_id in {r[1] for r in rows} | set(stray):
        # The first remaining path in code-point order, chosen here rather than by the
        # database's collation, so SQLite and PostgreSQL pick the same one.
        other = min(
            s.execute(
                select(
                    AlbumPhotoPath.path,
                    AlbumPhotoPath.path_bytes,
                    AlbumPhotoPath.size_bytes,
                    AlbumPhotoPath.mtime_ns,
                ).where(AlbumPhotoPath.photo_id == photo_id)
            ),
            key=lambda r: (r[0], r[1]),
            default=None,
        )
        if other is None:
            s.execute(delete(AlbumFace).where(AlbumFace.photo_id == photo_id))
            s.execute(delete(AlbumPhoto).where(AlbumPhoto.id == photo_id))
            deleted += 1
        else:
            s.execute(
                update(AlbumPhoto)
                .where(AlbumPhoto.id == photo_id, AlbumPhoto.path_bytes == raw)
                .values(path=other[0], path_bytes=other[1], size_bytes=other[2], mtime_ns=other[3])
            )
    return deleted


def _set_path(s: Session, photo_id: int, raw: bytes, size_bytes: int, mtime_ns: int) -> None:
    """Record that `photo_id`'s content is at the file named `raw` (with these stat facts)."""
    values = {"photo_id": photo_id, "size_bytes": size_bytes, "mtime_ns": mtime_ns}
    stmt = upsert(s, AlbumPhotoPath).values(path=display_path(raw), path_bytes=raw, **values)
    s.execute(stmt.on_conflict_do_update(index_elements=[AlbumPhotoPath.path_bytes], set_=values))
    s.execute(
        update(AlbumPhoto)
        .where(AlbumPhoto.id == photo_id, AlbumPhoto.path_bytes == raw)
        .values(size_bytes=size_bytes, mtime_ns=mtime_ns)
    )


def _forgotten_boxes(s: Session, content_sha256: str) -> list[tuple[float, float, float, float]]:
    boxes = s.scalars(
        select(AlbumForgottenFace.box).where(AlbumForgottenFace.content_sha256 == content_sha256)
    ).all()
    return [_box(json.loads(b)) for b in boxes]


def _same_face(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two boxes of one photo show the same face: each one's centre lies inside the other.

    Tolerant of a different detector or model drawing the box a little
    larger or shifted, and still strict enough that a neighbour's face, whose
    centre lies outside this face's box, is never taken for it.
    """

    def inside(p: tuple[float, float], box: Sequence[float]) -> bool:
        return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]

    centre_a = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    centre_b = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    return inside(centre_a, b) and inside(centre_b, a)

"""The album tables (Alembic revisions 0002, 0004, 0006, 0007): photos and their paths, faces,
clusters, negatives, and where forgotten faces were.

They live in the gallery database, next to the people they are matched to, so
a face's match can point at an identity with a real foreign key, and so that
forgetting a person (`FaceRec.remove`) deletes their album faces in the same
transaction as the person. A person deleted without that (`--keep-album`)
leaves their album matches as unknown faces (ON DELETE SET NULL) instead of
dangling names; removing a photo takes its faces with it (ON DELETE CASCADE).

Two UNIQUE constraints make an interrupted scan safe to rerun: a photo is
keyed by the SHA-256 of its content, and a face by (photo, position in the
photo), so a batch committed twice cannot create a second copy of anything.

The album owns these tables (only `facerec.album.store` reads or writes
them); they share `facerec.storage.Base` with the gallery's, so one Alembic
history creates both. Nothing here imports torch or FAISS: the Alembic CLI
(`migrations/env.py`) imports this module.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

import facerec.gallery.schema  # noqa: F401  (`identities`, which our foreign keys point at)
from facerec.storage import Base, Embedding
from facerec.storage.types import BigInt

#: `AlbumPhoto.status` values: used, unreadable, not a regular file (never opened).
PHOTO_OK = "ok"
PHOTO_ERROR = "error"
PHOTO_SKIPPED = "skipped"

#: `AlbumFace.match_kind` values: 'auto' was decided by matching and is redone
#: on every refresh; 'confirmed' was said by a person (naming a cluster) and is kept.
MATCH_AUTO = "auto"
MATCH_CONFIRMED = "confirmed"


class AlbumPhoto(Base):
    """One scanned file, keyed by the SHA-256 of its bytes (the photo itself is never copied).

    `size_bytes` and `mtime_ns` let a rerun skip an unchanged path without
    reading it; `model_name`/`model_sha256` name the model that embedded the
    faces, so a rerun after `facerec reembed` redoes photos of the old model.
    A photo that could not be read has status 'error' and the reason in `error`;
    a path that is not a regular file (a FIFO, a device) has status 'skipped'
    and is keyed by a hash of its path, having no content (revision 0006).

    File names are bytes on Linux and need not be UTF-8 (revision 0006):
    `path_bytes` holds them exactly and is what a rescan matches on and what
    reopens the file; `path` is the same name for people (undecodable bytes
    as backslash escapes, `facerec.paths.display_path`). `damage` is set when
    the photo decoded with errors and its faces were used all the same.
    """

    __tablename__ = "album_photos"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, index=True)
    # Revision 0006 gives the column an empty default only to add it to existing rows (and
    # fills it); every row written since names its bytes, so the model declares no default.
    path_bytes: Mapped[bytes] = mapped_column(LargeBinary, index=True)
    content_sha256: Mapped[str] = mapped_column(Text, unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInt)
    mtime_ns: Mapped[int] = mapped_column(BigInt)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    damage: Mapped[str | None] = mapped_column(Text)
    model_name: Mapped[str | None] = mapped_column(Text)
    model_sha256: Mapped[str | None] = mapped_column(Text)
    scanned_at: Mapped[datetime]


class AlbumCluster(Base):
    """A group of unknown faces that look alike. AUTOINCREMENT: ids are what users type in
    `facerec album name CLUSTER NAME`, so an id must never come back for another group."""

    __tablename__ = "album_clusters"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime]


class AlbumFace(Base):
    """One detected face of a scanned photo, in the photo's own pixel coordinates.

    AUTOINCREMENT: face ids are what users type in `facerec album not FACE NAME`.
    `folded` marks an automatic match whose embedding is folded into the
    person's prototype for album matching (`scan --fold-confident`), undone by
    `facerec album unfold NAME`.
    """

    __tablename__ = "album_faces"
    __table_args__ = (
        UniqueConstraint("photo_id", "face_index"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("album_photos.id", ondelete="CASCADE"), index=True
    )
    face_index: Mapped[int] = mapped_column(Integer)
    box: Mapped[str] = mapped_column(Text)  # JSON [x1, y1, x2, y2]
    landmarks: Mapped[str] = mapped_column(Text)  # JSON [[x, y] * 5]
    det_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[str] = mapped_column(Text)  # JSON {metric: value}
    quality_reasons: Mapped[str | None] = mapped_column(Text)  # "; "-joined; NULL: accepted
    # float32 little-endian bytes on SQLite, pgvector `vector` on PostgreSQL.
    embedding: Mapped[npt.NDArray[np.float32]] = mapped_column(Embedding)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)  # JPEG
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"), index=True
    )
    similarity: Mapped[float | None] = mapped_column(Float)
    match_kind: Mapped[str | None] = mapped_column(Text)
    folded: Mapped[bool] = mapped_column(Boolean, server_default=false())
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("album_clusters.id", ondelete="SET NULL"), index=True
    )


class AlbumPhotoPath(Base):
    """Every path at which a photo's content was found (revision 0004).

    A photo is one row per content, but the same file may sit in several
    folders (a copy in `misc/`, an export, a backup): each path gets a row
    here, with the stat facts a rerun compares, so every copy is listed in the
    reports and skipped unread by the next scan. `AlbumPhoto.path` is the one
    the album reads the photo from (cutting crops, thumbnails); it is always
    one of these. As in `AlbumPhoto`, `path_bytes` is the exact file name
    (what a rescan matches on and what reopens the file) and `path` its
    printable form (revision 0006).
    """

    __tablename__ = "album_photo_paths"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("album_photos.id", ondelete="CASCADE"), index=True
    )
    # Printable, so not unique: two exact names may print alike (revision 0007).
    path: Mapped[str] = mapped_column(Text, index=True)
    # As in `AlbumPhoto`: 0006's empty default only served to add the column.
    path_bytes: Mapped[bytes] = mapped_column(LargeBinary, index=True, unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInt)
    mtime_ns: Mapped[int] = mapped_column(BigInt)


class AlbumForgottenFace(Base):
    """Where a forgotten person's face was in a photo, so that no rescan brings it back (0004).

    `facerec remove NAME` deletes the album faces of that person (embedding,
    thumbnail, landmarks) but keeps the photo, which may show other people.
    The photo's content hash and the face's box are all that is kept: no
    name, no pixels, no embedding. A rescan that detects the photo again (after
    a model change) drops a face overlapping one of these boxes before it is
    stored. Keyed by content, not by photo row, so it survives the photo row
    being rewritten and covers every copy of the file.
    """

    __tablename__ = "album_forgotten_faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_sha256: Mapped[str] = mapped_column(Text, index=True)
    box: Mapped[str] = mapped_column(Text)  # JSON [x1, y1, x2, y2], photo pixels
    forgotten_at: Mapped[datetime]


class AlbumNegative(Base):
    """ "This face is not that person" (`facerec album not FACE NAME`): matching never pairs them."""

    __tablename__ = "album_negatives"

    face_id: Mapped[int] = mapped_column(
        ForeignKey("album_faces.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime]


class AlbumCorrection(Base):
    """One correction a person made (revision 0010): append-only, so every change can be undone.

    `kind` names the verb (rename, merge, move, not, name, split, ignore,
    confirm, undo); `data` is JSON holding what the correction changed and
    what was there before, by name rather than by id where a person is meant
    (an undone merge brings the person back under a new id). Undoing appends
    a row of kind 'undo' whose `undoes` is the row it took back; no row is
    updated, so the table is the album's whole history of human decisions,
    except that forgetting a person (`facerec remove`) deletes every row whose
    `people` names them: their name must not outlive them here.
    """

    __tablename__ = "album_corrections"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)  # JSON
    people: Mapped[str] = mapped_column(Text)  # JSON list of the names it mentions
    undoes: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime]


class AlbumCannotLink(Base):
    """Two unknown faces a person split apart (revision 0010): clustering never joins them."""

    __tablename__ = "album_cannot_links"

    face_a: Mapped[int] = mapped_column(
        ForeignKey("album_faces.id", ondelete="CASCADE"), primary_key=True
    )
    face_b: Mapped[int] = mapped_column(
        ForeignKey("album_faces.id", ondelete="CASCADE"), primary_key=True, index=True
    )

"""The gallery's tables (SQLAlchemy 2 declarative).

These classes describe the schema that Alembic revision 0001 creates; the
migrations, not `create_all`, build the database, and a test compares the two
so they cannot drift. Nothing here imports torch or FAISS, so the Alembic CLI
(`migrations/env.py`) can import it cheaply.

The declarative `Base`, the column types and the engine set-up live in
`facerec.storage`. The apps' tables live with their apps (`facerec.album.tables`,
`facerec.camera.tables`, `facerec.server.tables`) on the same `Base`.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from facerec.storage.types import NAMING_CONVENTION, Base, Embedding, UTCDateTime

__all__ = [
    "META_DETECTOR",
    "META_EMBEDDING_DIM",
    "META_MODEL_NAME",
    "META_MODEL_SHA256",
    "META_REVISION",
    "META_TOMBSTONES_FROM",
    "NAMING_CONVENTION",
    "PROTOTYPE_HNSW_INDEX",
    "Base",
    "Identity",
    "Meta",
    "Prototype",
    "PrototypeTombstone",
    "Sample",
    "Threshold",
    "UTCDateTime",
]

#: The pgvector HNSW index on `prototypes` (PostgreSQL only). Not in the ORM: it is
#: created when a gallery pins its dimension, for that dimension (see
#: `facerec.gallery.pgvector_search`), so schema comparisons leave it out.
PROTOTYPE_HNSW_INDEX = "ix_prototypes_vector_hnsw"

#: Meta keys.
META_REVISION = "revision"
META_MODEL_NAME = "model_name"
META_MODEL_SHA256 = "model_sha256"
META_EMBEDDING_DIM = "embedding_dim"
#: The detector whose landmarks cut the enrolled faces (absent in galleries made
#: before it was recorded: those were MTCNN's, the only default there was).
META_DETECTOR = "detector"
#: From which gallery revision on every deleted prototype has its tombstone (migration 0011):
#: a search cache stamped earlier cannot patch itself and rebuilds.
META_TOMBSTONES_FROM = "tombstones_from"


class Meta(Base):
    """Key/value facts about the whole gallery: the write revision and the pinned model."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Threshold(Base):
    """A cosine threshold calibrated for one model (`facerec calibrate`)."""

    __tablename__ = "thresholds"

    model_name: Mapped[str] = mapped_column(Text, primary_key=True)
    threshold: Mapped[float] = mapped_column(Float)
    target_far: Mapped[float | None] = mapped_column(Float)
    calibrated_at: Mapped[datetime]


class Identity(Base):
    """A person. AUTOINCREMENT: ids are FAISS ids and never reused, so a stale cache cannot
    attribute one person's vector to the next person created."""

    __tablename__ = "identities"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Sample(Base):
    """One enrolled face. AUTOINCREMENT: `reembed` keys new embeddings by sample id, so an id
    must never come back for a different crop."""

    __tablename__ = "samples"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )
    embedding: Mapped[npt.NDArray[np.float32]] = mapped_column(Embedding)
    crop: Mapped[bytes] = mapped_column(LargeBinary)  # PNG of the aligned crop
    crop_landmarks: Mapped[str] = mapped_column(Text)  # JSON [[x, y], ...]
    source: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(Text)
    box: Mapped[str] = mapped_column(Text)  # JSON [x1, y1, x2, y2]
    det_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[str] = mapped_column(Text)  # JSON {metric: value}
    created_at: Mapped[datetime]


class Prototype(Base):
    """A person's prototype: the normalised mean of their normalised sample embeddings.

    `revision` is the gallery revision of the write that last changed the row,
    set by a trigger (migration 0011) so that no writer can forget it: a search
    cache at revision r catches up by reading the rows above r.
    """

    __tablename__ = "prototypes"

    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[npt.NDArray[np.float32]] = mapped_column(Embedding)
    n_samples: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    revision: Mapped[int] = mapped_column(Integer, index=True, server_default=text("0"))


class PrototypeTombstone(Base):
    """A deleted prototype: whose (identity id) and at which gallery revision; never a vector.

    Written by a trigger on every deletion from `prototypes` (a cascade from
    `identities` included), so a search cache elsewhere drops the person when
    it catches up. Identity ids are never reused, so one row per id suffices.
    """

    __tablename__ = "prototype_tombstones"

    identity_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(Integer, index=True)

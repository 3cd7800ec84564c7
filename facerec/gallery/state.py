"""The gallery's `meta` facts as read inside a transaction, and what one write did to the prototypes.

Shared by the `Gallery` (which writes them) and the prototype searches (which
follow them): the FAISS cache is stamped with the revision, and the pgvector
search casts to the pinned dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from facerec.errors import GalleryError
from facerec.gallery.schema import (
    META_DETECTOR,
    META_EMBEDDING_DIM,
    META_MODEL_NAME,
    META_MODEL_SHA256,
    META_REVISION,
    META_TOMBSTONES_FROM,
    Meta,
)
from facerec.models.base import ModelIdentity

#: What enrolled the faces of a gallery pinned before the detector was recorded.
LEGACY_DETECTOR = "mtcnn"


@dataclass(frozen=True, slots=True)
class GalleryState:
    """The `meta` table, parsed: the write counter, the pinned model and its dimension."""

    revision: int
    model: ModelIdentity | None
    dim: int | None
    detector: str | None = None  # see META_DETECTOR; "mtcnn" for older galleries with a model
    tombstones_from: int = 0  # see META_TOMBSTONES_FROM: a cache older than this rebuilds


@dataclass(frozen=True, slots=True, eq=False)
class PrototypeChange:
    """What one committed write did to the prototypes, so a cache can follow without a rebuild."""

    upserts: tuple[
        tuple[int, str, npt.NDArray[np.float32]], ...
    ] = ()  # (identity id, name, vector)
    removed: tuple[int, ...] = ()


def read_state(s: Session) -> GalleryState:
    """The `meta` facts as this transaction sees them."""
    meta = dict(s.execute(select(Meta.key, Meta.value)).all())
    name, sha = meta.get(META_MODEL_NAME), meta.get(META_MODEL_SHA256)
    dim = meta.get(META_EMBEDDING_DIM)
    return GalleryState(
        revision=int(meta.get(META_REVISION, "0")),
        model=ModelIdentity(name, sha) if name is not None and sha is not None else None,
        dim=int(dim) if dim is not None else None,
        detector=meta.get(META_DETECTOR, LEGACY_DETECTOR if name is not None else None),
        tombstones_from=int(meta.get(META_TOMBSTONES_FROM, "0")),
    )


def checked(v: npt.NDArray[np.float32], dim: int | None, what: str) -> npt.NDArray[np.float32]:
    """A stored vector `v`, or GalleryError if its length is not the gallery's dimension."""
    if dim is not None and v.shape[0] != dim:
        raise GalleryError(
            f"{what} has {v.shape[0]} values stored, the gallery's dimension is {dim}"
        )
    return v

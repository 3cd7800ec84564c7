"""The stores besides the gallery that hold faces in its database, and how each forgets a person.

The album (its faces and thumbnails) and the door camera's audit log (its
saved images) live in the gallery's database, so `FaceRec.remove` must
delete from them in the transaction that deletes the person. They belong to
apps, which sit above the core: the core names here what it needs of them
(`Erasers`, and the records they report), and the package root
(`facerec/__init__.py`, which every import of a facerec module runs first)
hands it the apps' functions through `compose`. No core module imports an
app, and no import order can leave a store out: without the root's
composition `erasers()` raises instead of forgetting less.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facerec.errors import GalleryError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sqlalchemy.orm import Session

    from facerec.gallery.forget import ForgetTarget
    from facerec.storage import Database


@dataclass(frozen=True, slots=True)
class AlbumForgotten:
    """What forgetting a person took out of the album.

    `faces` were deleted (embedding, thumbnail, landmarks) and their boxes
    recorded so rescans skip them; `photos` is how many photos they were in
    (the photos stay: they may show other people); `negatives` counts "not
    NAME" records; `unchecked` counts faces embedded by another model, which
    cannot be compared with the person's prototype until a rescan.
    """

    faces: int = 0
    photos: int = 0
    negatives: int = 0
    unchecked: int = 0


@dataclass(frozen=True, slots=True)
class AuditForgotten:
    """What forgetting a person took out of the audit log.

    `events` about them (claimed or recognised) were deleted with their
    images; `images` of their face were deleted from events about someone
    else (the events stay); `unchecked` images of other events could not be
    compared with them (no face found in the image, or the model that would
    embed it differs from the gallery's) and were left.
    """

    events: int = 0
    images: int = 0
    unchecked: int = 0


@dataclass(frozen=True, slots=True)
class Erasers:
    """How each store forgets: the album's and the audit log's, as the apps implement them.

    `album` and `audit` run inside the forgetting transaction. The audit log
    keeps no embeddings, so `audit_images` first lists the saved images of
    events about others, (event id, JPEG), for the caller to embed; `audit`
    gets their faces' embeddings by event id.
    """

    album: Callable[[Session, ForgetTarget], AlbumForgotten]
    audit_images: Callable[[Database, str], Iterator[tuple[int, bytes]]]
    audit: Callable[[Session, ForgetTarget, Mapping[int, npt.NDArray[np.float32]]], AuditForgotten]


_build: Callable[[], Erasers] | None = None
_built: Erasers | None = None


def compose(build: Callable[[], Erasers]) -> None:
    """Say how to build the erasers (the package root does, once); built on first use."""
    global _build, _built
    _build, _built = build, None


def erasers() -> Erasers:
    """The stores' erasers; GalleryError when none were composed (never a partial forget)."""
    global _built
    if _built is None:
        if _build is None:
            raise GalleryError(
                "no erasers for the album and the audit log: import facerec, whose root composes them"
            )
        _built = _build()
    return _built

"""The records that cross the gallery's boundary.

Callers never see ORM objects or rows: an ORM object is tied to a session that
the `Gallery` owns and closes, and a dict has no contract. These frozen,
slotted dataclasses are plain values that stay valid after the session is gone
and that the CLI can serialise field by field.

Records holding a numpy array use `eq=False`: the generated `__eq__` would
compare arrays element-wise and raise, and an array field makes the record
unhashable anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facerec.models.base import ModelIdentity


@dataclass(frozen=True, slots=True, eq=False)
class NewSample:
    """One face to enrol: its embedding plus everything needed to re-embed it later.

    The aligned crop (`crop_png`, with `crop_landmarks` in crop pixels) is kept
    so `facerec reembed` can recompute the embedding with another model without
    the original photo; `content_sha256` (of the source file) lets `enroll`
    skip a photo that is already enrolled for the same person.
    """

    embedding: npt.NDArray[np.float32]
    crop_png: bytes
    crop_landmarks: tuple[tuple[float, float], ...]
    source: str
    content_sha256: str
    box: tuple[float, float, float, float]
    det_score: float
    quality: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Person:
    """An enrolled identity; times are timezone-aware UTC."""

    name: str
    n_samples: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, eq=False)
class StoredSample:
    """A sample as stored, with its database id (the key `Gallery.reembed` expects).

    `embedding` is read-only: it is a copy of the stored bytes, and writing to
    it would silently change nothing in the gallery.
    """

    id: int
    name: str
    embedding: npt.NDArray[np.float32]
    crop_png: bytes
    crop_landmarks: tuple[tuple[float, float], ...]
    source: str
    content_sha256: str
    box: tuple[float, float, float, float]
    det_score: float
    quality: Mapping[str, float]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Hit:
    """One candidate of a 1:N search: cosine similarity to the person's prototype."""

    name: str
    similarity: float


@dataclass(frozen=True, slots=True)
class EnrollResult:
    """What an enrolment did: samples already present for the person are skipped, not duplicated.

    `lookalike` is set when a new name's photos already match someone enrolled
    (a warning: maybe the same person under a second name); `ignored_faces`
    counts, per photo, the other faces that were not the subject.
    """

    person: Person
    added: int
    skipped: int
    lookalike: Hit | None = None
    ignored_faces: tuple[int, ...] = ()


#: What a person's stored samples were when an enrolment check read them: None for a name
#: nobody holds, else the identity row and its samples' (id, photo digest) pairs. Row ids
#: alone could repeat after a delete (SQLite reuses the highest rowid); a digest cannot
#: match a different photo.
PersonVersion = tuple[int, tuple[tuple[int, str], ...]] | None


@dataclass(frozen=True, slots=True, eq=False)
class PersonSnapshot:
    """One name as an enrolment check saw it, read in one transaction.

    The check compares new photos with `prototype`; the write then passes
    `version` back (`Gallery.enroll(expect=...)`) and is refused if the
    person's samples changed in between, so two enrolments racing for one
    new name cannot both pass a check that saw nobody.
    """

    name: str
    version: PersonVersion
    prototype: npt.NDArray[np.float32] | None


@dataclass(frozen=True, slots=True)
class GalleryInfo:
    """A snapshot of the gallery for `facerec info`.

    `revision` counts committed writes (it stamps the index); `schema_revision`
    is the Alembic revision of the database schema. `model` is None until the
    first enrolment pins one; `threshold` is the calibrated threshold for the
    pinned model, if any.
    """

    path: Path | None  # the SQLite file; None on PostgreSQL
    index_path: Path | None  # the FAISS index file; None on PostgreSQL (searched in the database)
    database: str  # the database for people: the path, or the URL without its password
    model: ModelIdentity | None
    revision: int
    schema_revision: str | None
    n_people: int
    n_samples: int
    threshold: float | None

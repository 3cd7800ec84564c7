"""The records the album hands out: plain frozen values, never ORM rows.

A scan, a refresh and a report each return one of these, so the CLI can
print or serialise them field by field and tests can assert on them without
a database session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What matching and clustering over the whole album concluded.

    `matched` and `unknown` count faces that passed the quality gate (refused
    faces are neither); `changed` counts faces whose person or cluster moved.
    `threshold` is the 1:N match threshold they were decided at (it follows
    the gallery's size and largest prototype, as `identify`'s does).
    """

    matched: int
    unknown: int
    clusters: int
    folded: int
    changed: int
    threshold: float


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """One scan: what the folder held, what was (re)processed, and the album afterwards.

    `unchanged` photos were skipped on size and mtime alone; `duplicates`
    were read and hashed but their content was already in the album (a copy
    or a moved file); `processed` went through detection and embedding;
    `errors` could not be read or decoded and are recorded with the reason;
    `skipped` are not regular files (FIFOs, devices, dangling links), recorded
    with what they are and never opened; `pruned` photos were deleted from
    disk since the last scan and left the album, their faces with them.
    """

    root: str
    found: int
    unchanged: int
    duplicates: int
    processed: int
    errors: int
    faces: int
    seconds: float
    refresh: RefreshResult
    skipped: int = 0
    pruned: int = 0

    @property
    def photos_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class NameResult:
    """A cluster enrolled as a person: samples added to the gallery, and faces left out.

    `missing` lists face ids whose photo is gone, changed or damaged on disk (the
    enrolment needs the photo to cut the stored aligned crop); `excluded`
    lists face ids that carry a "not this person" record for the name.
    """

    cluster: int
    name: str
    added: int
    skipped: int
    confirmed: int
    missing: tuple[int, ...]
    excluded: tuple[int, ...]
    refresh: RefreshResult


@dataclass(frozen=True, slots=True)
class NotResult:
    """A "not this person" record; `was_matched` says whether it undid a current match."""

    face: int
    name: str
    was_matched: bool
    refresh: RefreshResult


@dataclass(frozen=True, slots=True)
class UnfoldResult:
    """Folded matches of one person taken back out of their album prototype."""

    name: str
    unfolded: int
    refresh: RefreshResult


@dataclass(frozen=True, slots=True)
class FaceView:
    """One face as the report shows it.

    `person` is the matched name (None: unknown or refused); `similarity` is
    the cosine to that person, or for an unknown face to the nearest person.
    """

    id: int
    photo_id: int
    face_index: int
    box: tuple[float, float, float, float]
    det_score: float
    quality_reasons: tuple[str, ...]
    person: str | None
    similarity: float | None
    match_kind: str | None
    folded: bool
    cluster: int | None

    @property
    def usable(self) -> bool:
        """Passed the quality gate, so it was matched or clustered."""
        return not self.quality_reasons


@dataclass(frozen=True, slots=True)
class PhotoView:
    """One scanned photo with its faces (none for a photo that could not be read).

    `path` is where the album reads it from; `paths` is every path its
    content was found at (copies included), `path` first. `forgotten` counts
    faces deleted from it by `facerec remove` (the photo stays for the others).
    `path` is for people (undecodable bytes escaped); `status` is 'ok',
    'error' (unreadable, `error` says why) or 'skipped' (not a regular file);
    `damage` is set when an 'ok' photo decoded with errors. `raw_paths` are
    the exact file names of `paths` (bytes, same order), for links that open
    the very file; they are left out of JSON exports (`as_jsonable`).
    """

    id: int
    path: str
    content_sha256: str
    status: str
    error: str | None
    width: int | None
    height: int | None
    scanned_at: datetime
    faces: tuple[FaceView, ...]
    paths: tuple[str, ...] = ()
    forgotten: int = 0
    damage: str | None = None
    raw_paths: tuple[bytes, ...] = field(default=(), repr=False, metadata={"json": False})


@dataclass(frozen=True, slots=True)
class PersonView:
    """A person found in the album: how many photos and faces, and which faces."""

    name: str
    n_photos: int
    face_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClusterView:
    """A group of unknown faces, the id to pass to `facerec album name`."""

    id: int
    n_photos: int
    face_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlbumView:
    """Everything a report shows, read from one database snapshot."""

    photos: tuple[PhotoView, ...]
    people: tuple[PersonView, ...]
    clusters: tuple[ClusterView, ...]


@dataclass(frozen=True, slots=True)
class CorrectionResult:
    """A correction (or an undo) written to the log, and the album's refresh after it."""

    id: int
    kind: str
    summary: str
    refresh: RefreshResult

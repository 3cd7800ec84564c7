"""The JSON form of results: one schema for `facerec ... --json` and the HTTP API.

A script that parses `facerec identify --json` and a client of `/v1/identify`
read the same fields, because both front ends build their output here from
the core's frozen records. The types are `TypedDict`s: they cost the CLI no
import (no pydantic at startup), mypy checks the builders against them, and
FastAPI turns them into the OpenAPI schema as they stand.

Identification, per photo (the CLI prints a list of these, one per photo; the
HTTP API returns one for the upload):

    {"source": "party.jpg",
     "faces": [{"box": [x1, y1, x2, y2], "score": 0.999,
                "usable": true, "reasons": [],
                "quality": {"face_px": 118.0, "blur": 412.3, "roll_deg": -2.1,
                            "yaw": 0.04, "pitch": 0.52},
                "name": "Ada Lovelace",        # null: unknown, or refused (usable false)
                "similarity": 0.951,           # best cosine; null when nothing was compared
                "threshold": 0.905,
                "p_unknown": 0.17,             # the open-set softmax's unknown class
                "candidates": [{"name": "Ada Lovelace", "similarity": 0.951,
                                "probability": 0.83}]}],
     "error": null,                           # or an error object: the photo was unreadable
     "damage": null}                          # or why the photo decoded with errors

An error is `{"message": ..., "kind": "NoFaceError", "source": ...}`; the CLI
prints `{"error": {..., "exit_code": 2}}` on stdout when a command fails.
JSON has no infinity, so a similarity that does not exist is null. `damage`
(identification and verification) says the photo decoded with errors (corrupt
JPEG data): its faces were still used, but the result may be unreliable.
"""

# No `from __future__ import annotations`: TypedDict must see NotRequired[...] unevaluated
# as a type, not as a string, or it counts every key as required.
import math
from typing import NotRequired

# pydantic (FastAPI's response models) needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

from facerec.api import Forgotten, IdentifiedFace, ImageIdentification
from facerec.decisions.decision import Candidate, Verification
from facerec.gallery import EnrollResult, Person


class ErrorJSON(TypedDict):
    """Why a command, a request or one photo of a batch failed."""

    message: str
    kind: str  # the error's class: ImageError, NoFaceError, UsageError, ...
    source: NotRequired[str]  # the photo or upload at fault, when there is one
    exit_code: NotRequired[int]  # the CLI's exit code (2), on a failed command


class ErrorEnvelopeJSON(TypedDict):
    """What a failed CLI command prints on stdout under --json."""

    error: ErrorJSON


class CandidateJSON(TypedDict):
    name: str
    similarity: float
    probability: float


class QualityJSON(TypedDict):
    """The quality gate's measurements (see `facerec.faces.quality`)."""

    face_px: float
    blur: float
    roll_deg: float
    yaw: float
    pitch: float


class FaceJSON(TypedDict):
    """One face. `name` null: unknown, or refused by the quality gate (`usable` false, `reasons`)."""

    box: list[float]
    score: float
    usable: bool
    reasons: list[str]
    quality: QualityJSON
    name: str | None
    similarity: float | None
    threshold: float | None
    far: float | None  # of one comparison at `threshold` (null when not measured)
    fpir: float | None  # chance a stranger is given a name, for this gallery's size
    threshold_source: str | None  # where the threshold came from
    p_unknown: float | None
    candidates: list[CandidateJSON]


class ImageJSON(TypedDict):
    """Every face of one photo, or why the photo could not be read."""

    source: str
    faces: list[FaceJSON]
    error: ErrorJSON | None
    damage: str | None  # the photo decoded with errors; its faces were still identified


class VerificationJSON(TypedDict):
    name: str
    accepted: bool
    similarity: float
    threshold: float
    far: float | None  # the false-accept rate the threshold was set for (null when not measured)
    threshold_source: str  # where the threshold came from
    ignored_faces: int  # other faces in the photo, not the subject
    damage: str | None  # the photo decoded with errors; the decision may be unreliable


class PersonJSON(TypedDict):
    """An enrolled person; times are ISO 8601 in UTC."""

    name: str
    n_samples: int
    created_at: str
    updated_at: str


class LookalikeJSON(TypedDict):
    """An enrolled person a new name's photos already match (a warning)."""

    name: str
    similarity: float


class EnrollmentJSON(TypedDict):
    person: PersonJSON
    added: int
    skipped: int
    lookalike: LookalikeJSON | None
    ignored_faces: list[int]  # per photo: other faces, not the subject


class RemovalJSON(TypedDict):
    """What was forgotten of a person, per kind (see `FaceRec.remove`)."""

    name: str
    samples_removed: int
    album_kept: bool
    album_faces_removed: int
    album_photos_affected: int
    album_negatives_removed: int
    album_faces_unchecked: int
    audit_events_removed: int
    audit_images_removed: int
    audit_images_unchecked: int
    compacted: bool


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def error_json(
    message: str, kind: str, *, source: str | None = None, exit_code: int | None = None
) -> ErrorJSON:
    out = ErrorJSON(message=message, kind=kind)
    if source is not None:
        out["source"] = source
    if exit_code is not None:
        out["exit_code"] = exit_code
    return out


def candidate_json(c: Candidate) -> CandidateJSON:
    return CandidateJSON(name=c.name, similarity=float(c.similarity), probability=c.probability)


def face_json(f: IdentifiedFace) -> FaceJSON:
    q, ident = f.quality, f.identification
    return FaceJSON(
        box=[float(v) for v in f.box],
        score=float(f.score),
        usable=q.ok,
        reasons=list(q.reasons),
        quality=QualityJSON(
            face_px=float(q.face_px),
            blur=float(q.blur),
            roll_deg=float(q.roll_deg),
            yaw=float(q.yaw),
            pitch=float(q.pitch),
        ),
        name=ident.name if ident else None,
        similarity=_finite(ident.similarity) if ident else None,
        threshold=ident.threshold if ident else None,
        far=ident.far if ident else None,
        fpir=ident.fpir if ident else None,
        threshold_source=ident.source if ident else None,
        p_unknown=ident.p_unknown if ident else None,
        candidates=[candidate_json(c) for c in ident.candidates] if ident else [],
    )


def image_json(r: ImageIdentification) -> ImageJSON:
    """One photo's identification; an unreadable photo carries its error (the batch went on)."""
    error = None
    if r.error is not None:
        # identify_many records only photos that failed to load, as ImageError.
        error = error_json(f"{r.source}: {r.error}", "ImageError", source=r.source)
    return ImageJSON(
        source=r.source, faces=[face_json(f) for f in r.faces], error=error, damage=r.damage
    )


def verification_json(v: Verification, damage: str | None = None) -> VerificationJSON:
    """`damage`: the probe photo's (`LoadedImage.damage`), which `Verification` does not carry."""
    return VerificationJSON(
        name=v.name,
        accepted=v.accepted,
        similarity=float(v.similarity),
        threshold=v.threshold,
        far=v.far,
        threshold_source=v.source,
        ignored_faces=v.ignored_faces,
        damage=damage,
    )


def person_json(p: Person) -> PersonJSON:
    return PersonJSON(
        name=p.name,
        n_samples=p.n_samples,
        created_at=p.created_at.isoformat(),
        updated_at=p.updated_at.isoformat(),
    )


def enrollment_json(r: EnrollResult) -> EnrollmentJSON:
    look = r.lookalike
    return EnrollmentJSON(
        person=person_json(r.person),
        added=r.added,
        skipped=r.skipped,
        lookalike=LookalikeJSON(name=look.name, similarity=float(look.similarity))
        if look
        else None,
        ignored_faces=list(r.ignored_faces),
    )


def removal_json(f: Forgotten) -> RemovalJSON:
    return RemovalJSON(
        name=f.name,
        samples_removed=f.samples,
        album_kept=f.album_kept,
        album_faces_removed=f.album.faces,
        album_photos_affected=f.album.photos,
        album_negatives_removed=f.album.negatives,
        album_faces_unchecked=f.album.unchecked,
        audit_events_removed=f.audit.events,
        audit_images_removed=f.audit.images,
        audit_images_unchecked=f.audit.unchecked,
        compacted=f.compacted,
    )

"""The HTTP API's response bodies (pydantic models: they are the OpenAPI schema).

These are the wire format only; they are filled from the core's frozen
records by the `from_*` constructors, so the core never depends on pydantic.
Non-finite similarities (an empty gallery has no best match) become null,
because JSON has no infinity.
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel

from facerec.api import IdentifiedFace
from facerec.decision import Verification
from facerec.gallery import EnrollResult, Person


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


class ErrorOut(BaseModel):
    """Every 4xx/5xx body: a one-line reason and the kind of error."""

    detail: str
    error: str


class PersonOut(BaseModel):
    name: str
    n_samples: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_person(cls, p: Person) -> PersonOut:
        return cls(
            name=p.name, n_samples=p.n_samples, created_at=p.created_at, updated_at=p.updated_at
        )


class EnrollOut(BaseModel):
    person: PersonOut
    added: int
    skipped: int

    @classmethod
    def from_result(cls, r: EnrollResult) -> EnrollOut:
        return cls(person=PersonOut.from_person(r.person), added=r.added, skipped=r.skipped)


class VerifyOut(BaseModel):
    """`damage`: the photo decoded with errors (corrupt JPEG data); the decision may be unreliable."""

    name: str
    accepted: bool
    similarity: float
    threshold: float
    damage: str | None = None

    @classmethod
    def from_verification(cls, v: Verification, damage: str | None = None) -> VerifyOut:
        return cls(
            name=v.name,
            accepted=v.accepted,
            similarity=v.similarity,
            threshold=v.threshold,
            damage=damage,
        )


class CandidateOut(BaseModel):
    name: str
    similarity: float
    probability: float


class FaceOut(BaseModel):
    """One face: `name` null means unknown (or refused by the quality gate: see `reasons`)."""

    box: list[float]
    score: float
    usable: bool
    reasons: list[str]
    name: str | None
    similarity: float | None
    threshold: float | None
    candidates: list[CandidateOut]

    @classmethod
    def from_face(cls, f: IdentifiedFace) -> FaceOut:
        ident = f.identification
        return cls(
            box=[float(v) for v in f.box],
            score=float(f.score),
            usable=f.quality.ok,
            reasons=list(f.quality.reasons),
            name=ident.name if ident else None,
            similarity=_finite(ident.similarity) if ident else None,
            threshold=ident.threshold if ident else None,
            candidates=[
                CandidateOut(name=c.name, similarity=c.similarity, probability=c.probability)
                for c in (ident.candidates if ident else ())
            ],
        )


class IdentifyOut(BaseModel):
    """`damage`: the photo decoded with errors (corrupt JPEG data); faces were still identified."""

    faces: list[FaceOut]
    damage: str | None = None


class PeopleOut(BaseModel):
    people: list[PersonOut]


class RemovedOut(BaseModel):
    name: str
    samples_removed: int


class HealthOut(BaseModel):
    status: str
    model: str
    version: str

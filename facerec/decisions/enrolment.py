"""Does a new photo belong to the person it is being enrolled under? Checked before anything is written.

A prototype is the mean of a person's samples, so one wrong photo moves it
towards someone else for good: `facerec enroll "Barack Obama" obama.jpg
biden.jpg` used to succeed silently, and afterwards Biden verified as Obama.
The same threshold that opens the door decides whether a photo belongs:

- a person already enrolled: each new photo must reach the threshold against
  their current prototype;
- a new person enrolled from several photos: each photo must reach it against
  the mean of the other photos of the same call (leave-one-out; with two photos
  that is their pairwise similarity), so a stray photo stands out even when it
  is the first;
- any photo that matches another enrolled person better than its own person is
  refused too: it would pull the two prototypes together;
- a new name whose photos already match someone enrolled (at or above the
  threshold) is probably that person under a second name: a warning, or a
  refusal when the caller asks for strict enrolment.

These are refusals by default because the cost is asymmetric: a refused
genuine photo costs the user a retry or `--force`; an accepted wrong one opens
the door to a stranger until someone notices. With a verification threshold
set for a low false-accept rate, two genuine photos of one person fall below
it about as often as that threshold rejects genuine pairs (its false-reject
rate); `scripts/bench_face_selection.py` reports both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facerec.decisions.prototypes import normalised_mean
from facerec.detectors import DetectedFace
from facerec.errors import FacerecError
from facerec.faces.images import LoadedImage
from facerec.faces.pipeline import storage_crop
from facerec.gallery.records import Hit, NewSample

#: Two leave-one-out similarities closer than this count as a tie (float rounding).
_TIE = 1e-6


class EnrolmentError(FacerecError):
    """A photo refused by the enrolment checks; nothing was written. `--force` overrides."""


class PhotoMismatchError(EnrolmentError):
    """A photo that does not match the person (their prototype, or the call's other photos)."""

    def __init__(self, source: str, name: str, similarity: float, threshold: float, against: str):
        self.source = source
        self.name = name
        self.similarity = similarity
        self.threshold = threshold
        super().__init__(
            f"{source}: does not look like {name!r}: similarity {similarity:.4f} to {against} "
            f"is below the threshold {threshold:.4f}; nothing was enrolled "
            "(use --force if it really is them)"
        )


class LooksLikeOtherError(EnrolmentError):
    """A photo that matches another enrolled person better than the one it is enrolled under."""

    def __init__(self, source: str, name: str, similarity: float, other: Hit):
        self.source = source
        self.name = name
        self.similarity = similarity
        self.other = other
        super().__init__(
            f"{source}: looks more like enrolled {other.name!r} (similarity "
            f"{other.similarity:.4f}) than like {name!r} ({similarity:.4f}); nothing was enrolled "
            "(use --force if it really is them)"
        )


class AlreadyEnrolledError(EnrolmentError):
    """Strict enrolment of a new name whose photos already match someone enrolled."""

    def __init__(self, name: str, lookalike: Hit, threshold: float):
        self.name = name
        self.lookalike = lookalike
        self.threshold = threshold
        super().__init__(
            f"{name!r} is not enrolled yet, but its photos match enrolled {lookalike.name!r} "
            f"(similarity {lookalike.similarity:.4f} >= threshold {threshold:.4f}); "
            "the same person under two names makes identification ambiguous; nothing was enrolled"
        )


@dataclass(frozen=True, slots=True)
class PhotoCheck:
    """One photo of an enrolment: how well it matches its own person and the nearest other one.

    `similarity` is to the person's current prototype, or (new person, several
    photos) to the mean of the call's other photos; None for the single photo
    of a new person, which has nothing of its own to be compared with.
    """

    source: str
    similarity: float | None
    nearest_other: Hit | None


@dataclass(frozen=True, slots=True)
class EnrolmentCheck:
    """The verdict on one enrolment call, before anything is written."""

    name: str
    threshold: float
    existing: bool
    photos: tuple[PhotoCheck, ...]
    lookalike: Hit | None  # new name only: the enrolled person its photos already match

    def refusal(self, *, strict: bool = False) -> EnrolmentError | None:
        """The reason to refuse, if any: the worst mismatch first, then a lookalike, then (strict) a duplicate."""
        scored = [p for p in self.photos if p.similarity is not None]
        if scored:
            # The lowest similarity is the stray; on a tie (two photos) the later one is named.
            worst = min(reversed(scored), key=lambda p: _rounded(p.similarity))
            assert worst.similarity is not None
            if worst.similarity < self.threshold:
                others = [p.source for p in self.photos if p is not worst]
                against = (
                    "their enrolled samples"
                    if self.existing
                    else "the other photo(s) of this enrolment ("
                    + ", ".join(others[:3])
                    + (", ..." if len(others) > 3 else "")
                    + ")"
                )
                return PhotoMismatchError(
                    worst.source, self.name, worst.similarity, self.threshold, against
                )
        for p in scored:
            assert p.similarity is not None
            if p.nearest_other is not None and p.nearest_other.similarity > p.similarity:
                return LooksLikeOtherError(p.source, self.name, p.similarity, p.nearest_other)
        if strict and self.lookalike is not None:
            return AlreadyEnrolledError(self.name, self.lookalike, self.threshold)
        return None


NearestOthers = Callable[[npt.NDArray[np.float32]], Sequence[Hit | None]]


def check_enrolment(
    name: str,
    embeddings: npt.NDArray[np.float32],
    sources: Sequence[str],
    *,
    prototype: npt.NDArray[np.float32] | None,
    threshold: float,
    nearest_others: NearestOthers,
) -> EnrolmentCheck:
    """Score each new photo against its own person and the nearest other enrolled person.

    `embeddings` are the new photos' unit vectors (n, D); `prototype` is the
    person's current prototype (None for a new name); `nearest_others(q)`
    gives, per row of q, the best-matching enrolled person other than `name`.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(sources) or x.shape[0] == 0:
        raise ValueError(f"need one embedding per photo, got {x.shape} for {len(sources)} photo(s)")
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    own: list[float | None]
    if prototype is not None:
        own = [float(v) for v in x @ _unit(prototype)]
    elif len(x) > 1:
        own = [_leave_one_out(x, i) for i in range(len(x))]
    else:
        own = [None]
    mean = normalised_mean(x)
    others = list(nearest_others(np.vstack([x, mean]).astype(np.float32)))
    photos = tuple(
        PhotoCheck(src, s, o) for src, s, o in zip(sources, own, others[:-1], strict=True)
    )
    lookalike = others[-1] if prototype is None else None
    if lookalike is not None and lookalike.similarity < threshold:
        lookalike = None
    return EnrolmentCheck(name, threshold, prototype is not None, photos, lookalike)


def _leave_one_out(x: npt.NDArray[np.float64], i: int) -> float:
    """Cosine of photo i with the normalised mean of the other photos (-1 if they cancel out)."""
    try:
        return float(x[i] @ normalised_mean(np.delete(x, i, axis=0)))
    except ValueError:
        return -1.0


def _unit(v: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(v, dtype=np.float64)
    return a / max(float(np.linalg.norm(a)), 1e-12)


def _rounded(s: float | None) -> float:
    return round((s if s is not None else 0.0) / _TIE) * _TIE


def new_sample(
    image: LoadedImage,
    detection: DetectedFace,
    embedding: npt.NDArray[np.float32],
    quality: Mapping[str, float],
) -> NewSample:
    """What the gallery keeps of one face to enrol: its embedding and the wide aligned crop.

    The crop is cut from `image` now, so `reembed` can later compute another
    model's embedding without the photo; a face enrolled from a new photo and
    one named in the album (a stored embedding, the photo read again) are
    stored alike.
    """
    crop = storage_crop(image, detection)
    return NewSample(
        embedding=embedding,
        crop_png=crop.png,
        crop_landmarks=crop.landmarks,
        source=image.source,
        content_sha256=image.sha256,
        box=detection.box,
        det_score=detection.score,
        quality=quality,
    )

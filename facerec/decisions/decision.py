"""Decisions on embeddings: 1:1 verification and 1:N identification with unknown rejection.

Both compare cosine similarities of unit vectors with one threshold per
model. Identification adds the cosine-similarity softmax of prototypical /
cosine classifiers, p_j = softmax(s · M q)_j, with one extra, virtual
"unknown" class whose logit is s · threshold (derived in `identify`): a
softmax over the gallery alone sums to one even for a stranger, so with one
person enrolled every face would be that person with probability 1. The
*decision* to say "unknown" still rests on the best cosine against the
threshold, the rule whose false-accept rate was measured.

Every decision carries the threshold it used *and what is known about it*:
where it came from and the false-accept rate it was set for (1:1) or the
false-positive identification rate it implies for this gallery (1:N), so a
door that opens can always say how likely a stranger was to open it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class ThresholdSource(StrEnum):
    """Where a threshold came from, in the order they take precedence."""

    EXPLICIT = "explicit"  # the caller's (--threshold, Settings.threshold)
    CALIBRATED = "calibrated"  # `facerec calibrate` on the user's own labelled photos
    OPERATING_POINT = "operating point"  # shipped with the model, measured at a target FAR
    MODEL_DEFAULT = "model default"  # the registry's value: no measured FAR behind it


@dataclass(frozen=True, slots=True)
class DecisionThreshold:
    """A cosine threshold with what is known about its error rates.

    `far` is the estimated false-accept rate of *one* comparison at `value`
    (a stranger's photo against one person), measured on `evidence` (e.g.
    "LFW (23,951,128 impostor pairs)"); None when nothing was measured for
    these weights (or the threshold lies below the measured table, which
    `evidence` then says). `target_far` is the FAR an operating point was chosen for.
    For 1:N, `gallery_size` is the number of people a face is compared with
    and `fpir` the estimated chance that a stranger is given a name:
    N x FAR, the union bound, which errs on the side of more false names.
    """

    value: float
    source: ThresholdSource = ThresholdSource.EXPLICIT
    far: float | None = None
    evidence: str = ""
    target_far: float | None = None
    gallery_size: int | None = None
    fpir: float | None = None

    def describe(self) -> str:
        """One line for people: where the threshold came from and what its FAR rests on."""
        if self.source is ThresholdSource.OPERATING_POINT and self.target_far is not None:
            text = f"operating point FAR<={format_rate(self.target_far)}"
            if self.gallery_size is not None:
                n = self.gallery_size
                text += f" (1:N, {n} {'person' if n == 1 else 'people'})"
            return f"{text} on {self.evidence}" if self.evidence else text
        text = str(self.source)
        if self.source is ThresholdSource.CALIBRATED:
            text += " in the gallery"
        if self.far is None:
            return f"{text}, {self.evidence or 'FAR unknown'}"
        return f"{text}, FAR estimated on {self.evidence}" if self.evidence else text


def format_rate(rate: float, digits: int = 2) -> str:
    """A rate the way people read it, to `digits` significant digits: 1e-4, 2.3e-5, 0.012."""
    if rate == 0:
        return "0"
    if rate >= 0.01:
        return f"{rate:.{digits + 1}g}"
    mantissa, exponent = f"{rate:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


@dataclass(frozen=True, slots=True)
class Verification:
    """`far` is the estimated false-accept rate of `threshold` (None: unknown); `source`
    says where the threshold came from and what that estimate rests on."""

    name: str
    accepted: bool
    similarity: float
    threshold: float
    far: float | None = None
    source: str = ThresholdSource.EXPLICIT.value
    ignored_faces: int = 0  # other faces in the photo, not the subject (set by FaceRec.verify)


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    similarity: float
    probability: float


@dataclass(frozen=True, slots=True)
class Identification:
    """`name` is None for an unknown face; candidates are best first.

    `p_unknown` is the probability of the virtual unknown class: it and the
    probabilities of every person in the softmax pool sum to one.
    """

    name: str | None
    similarity: float
    threshold: float
    candidates: tuple[Candidate, ...]
    p_unknown: float
    far: float | None = None  # of one comparison at `threshold`
    fpir: float | None = None  # for the gallery size the threshold was set for
    source: str = ThresholdSource.EXPLICIT.value

    @property
    def known(self) -> bool:
        return self.name is not None


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity, renormalising defensively."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    return float(x @ y / max(float(np.linalg.norm(x) * np.linalg.norm(y)), 1e-12))


def _threshold(threshold: float | DecisionThreshold) -> DecisionThreshold:
    """A bare number is the caller's own threshold, with nothing known about its FAR."""
    if isinstance(threshold, DecisionThreshold):
        return threshold
    return DecisionThreshold(float(threshold))


def verify(
    name: str,
    query: npt.ArrayLike,
    prototype: npt.ArrayLike,
    threshold: float | DecisionThreshold,
) -> Verification:
    """Accept when the cosine to the claimed person's prototype reaches the threshold."""
    t = _threshold(threshold)
    s = cosine(query, prototype)
    return Verification(
        name=name,
        accepted=s >= t.value,
        similarity=s,
        threshold=t.value,
        far=t.far,
        source=t.describe(),
    )


@dataclass(frozen=True, slots=True, eq=False)
class Claim:
    """1:1 against one person, fixed once: their prototype and the threshold set for it.

    A door verifies frame after frame against the same person; reading the
    prototype and resolving the threshold once keeps each frame's decision
    exactly `verify`, the rule `FaceRec.verify` applies to a photo.
    """

    name: str
    prototype: npt.NDArray[np.float32]
    threshold: DecisionThreshold

    def verify(self, query: npt.ArrayLike) -> Verification:
        """Is `query` (one embedding) this person?"""
        return verify(self.name, query, self.prototype, self.threshold)


def softmax(scores: npt.ArrayLike, scale: float) -> npt.NDArray[np.float64]:
    z = scale * np.asarray(scores, dtype=np.float64)
    z -= z.max(initial=-np.inf) if z.size else 0.0
    e = np.exp(z)
    return e / e.sum() if e.size else e


def identify(
    names: Sequence[str],
    similarities: npt.ArrayLike,
    threshold: float | DecisionThreshold,
    *,
    scale: float = 30.0,
    top_k: int = 5,
) -> Identification:
    """Decide from the similarities of one face to (the nearest part of) the gallery.

    `names`/`similarities` are the people considered for the softmax: all of
    the gallery, or its nearest few hundred from the index, whose omitted
    terms are negligible at the scales used.

    Probabilities are an open-set softmax: besides each person j with logit
    s·c_j (c_j their cosine) there is a virtual "unknown" class u with logit
    s·t, t the threshold, as if every stranger sat exactly on the threshold:

        p_j = e^(s·c_j) / Z,   p_u = e^(s·t) / Z,   Z = e^(s·t) + Σ_k e^(s·c_k).

    Why t: with one person enrolled, p_person = 1 / (1 + e^(-s·(c - t))), the
    logistic of the margin over the threshold. It is exactly 1/2 at the
    threshold, so "more likely this person than no one" agrees with the
    verification rule whose false-accept rate was set, and it grows (falls)
    with the margin at a rate set by s: 0.05 above t gives 0.82 at s = 30,
    0.05 below gives 0.18. Whenever the best cosine reaches t, e^(s·c_best) ≥
    e^(s·t) in Z, so a face that gets a name never has p_u above 1/2. The
    converse is not exact: n people each within ln(n)/s under t can together
    outweigh u; the face is still called unknown (no single person passed the
    threshold), and p_u under 1/2 says it is probably one of those few.
    """
    t = _threshold(threshold)
    sims = np.asarray(similarities, dtype=np.float64)
    if sims.size == 0:
        return Identification(
            None,
            float("-inf"),
            t.value,
            (),
            p_unknown=1.0,
            far=t.far,
            fpir=t.fpir,
            source=t.describe(),
        )
    order = np.argsort(-sims, kind="stable")
    probs = softmax(np.append(sims, t.value), scale)  # the last term is "unknown"
    cands = tuple(
        Candidate(names[i], float(sims[i]), float(probs[i])) for i in order[: max(1, top_k)]
    )
    best = cands[0]
    return Identification(
        name=best.name if best.similarity >= t.value else None,
        similarity=best.similarity,
        threshold=t.value,
        candidates=cands,
        p_unknown=float(probs[-1]),
        far=t.far,
        fpir=t.fpir,
        source=t.describe(),
    )

"""Decisions on embeddings: 1:1 verification and 1:N identification with unknown rejection.

Both compare cosine similarities of unit vectors with one threshold per
model. Identification adds the cosine-similarity softmax of prototypical /
cosine classifiers, p_j = softmax(s · M q)_j, which turns similarities into
a distribution over the gallery; the *decision* to say "unknown" still rests
on the best cosine against the threshold, because a softmax always sums to
one even for a stranger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Verification:
    name: str
    accepted: bool
    similarity: float
    threshold: float
    ignored_faces: int = 0  # other faces in the photo, not the subject (set by FaceRec.verify)


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    similarity: float
    probability: float


@dataclass(frozen=True, slots=True)
class Identification:
    """`name` is None for an unknown face; candidates are best first."""

    name: str | None
    similarity: float
    threshold: float
    candidates: tuple[Candidate, ...]

    @property
    def known(self) -> bool:
        return self.name is not None


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity, renormalising defensively."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    return float(x @ y / max(float(np.linalg.norm(x) * np.linalg.norm(y)), 1e-12))


def verify(
    name: str, query: npt.ArrayLike, prototype: npt.ArrayLike, threshold: float
) -> Verification:
    """Accept when the cosine to the claimed person's prototype reaches the threshold."""
    s = cosine(query, prototype)
    return Verification(name=name, accepted=s >= threshold, similarity=s, threshold=threshold)


def softmax(scores: npt.ArrayLike, scale: float) -> npt.NDArray[np.float64]:
    z = scale * np.asarray(scores, dtype=np.float64)
    z -= z.max(initial=-np.inf) if z.size else 0.0
    e = np.exp(z)
    return e / e.sum() if e.size else e


def identify(
    names: Sequence[str],
    similarities: npt.ArrayLike,
    threshold: float,
    *,
    scale: float = 30.0,
    top_k: int = 5,
) -> Identification:
    """Decide from the similarities of one face to (the nearest part of) the gallery.

    `names`/`similarities` are the people considered for the softmax: all of
    the gallery, or its nearest few hundred from the index, whose omitted
    terms are negligible at the scales used.
    """
    sims = np.asarray(similarities, dtype=np.float64)
    if sims.size == 0:
        return Identification(None, float("-inf"), threshold, ())
    order = np.argsort(-sims, kind="stable")
    probs = softmax(sims, scale)
    cands = tuple(
        Candidate(names[i], float(sims[i]), float(probs[i])) for i in order[: max(1, top_k)]
    )
    best = cands[0]
    return Identification(
        name=best.name if best.similarity >= threshold else None,
        similarity=best.similarity,
        threshold=threshold,
        candidates=cands,
    )

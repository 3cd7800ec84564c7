"""Decisions on embeddings: 1:1 verification and 1:N identification with unknown rejection.

Both compare cosine similarities of unit vectors with one threshold per
model. Identification adds the cosine-similarity softmax of prototypical /
cosine classifiers, p_j = softmax(s · M q)_j, with one extra, virtual
"unknown" class whose logit is s · threshold (derived in `identify`): a
softmax over the gallery alone sums to one even for a stranger, so with one
person enrolled every face would be that person with probability 1. The
*decision* to say "unknown" still rests on the best cosine against the
threshold, the rule whose false-accept rate was measured.
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
    sims = np.asarray(similarities, dtype=np.float64)
    if sims.size == 0:
        return Identification(None, float("-inf"), threshold, (), p_unknown=1.0)
    order = np.argsort(-sims, kind="stable")
    probs = softmax(np.append(sims, threshold), scale)  # the last term is "unknown"
    cands = tuple(
        Candidate(names[i], float(sims[i]), float(probs[i])) for i in order[: max(1, top_k)]
    )
    best = cands[0]
    return Identification(
        name=best.name if best.similarity >= threshold else None,
        similarity=best.similarity,
        threshold=threshold,
        candidates=cands,
        p_unknown=float(probs[-1]),
    )

"""Joint assignment of a photo's faces to people: nobody appears twice in one photo.

Matching each face to its nearest prototype on its own gives the failure
users report most in group photos: two similar-looking siblings both called
by the same name. A person can be in a photo at most once, so the faces of a
photo are assigned *jointly*: a maximum-weight bipartite matching between
faces and people (the Hungarian method, `facerec.album.hungarian`,
Kuhn 1955 / Munkres 1957), where pairing face i with person j is worth
s_ij - t (cosine minus threshold) and is allowed only when s_ij >= t. Each
face also gets its own "unknown" option worth 0, so a face stays unknown
rather than take a person below the threshold, and a second face that
resembles an already-taken person falls back to its next candidate above the
threshold or to unknown.

Summing margins over the threshold prefers the assignment whose matches are,
together, the most convincing: in a photo of A and B where both faces are
close to A, the face closer to A gets A and the other gets B if it clears the
threshold for B.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facerec.album.hungarian import max_weight_assignment

#: Weight of a forbidden pairing: finite (the solver needs finite weights), far below any margin.
_FORBIDDEN = -1.0e9


@dataclass(frozen=True, slots=True)
class Assignment:
    """The decision for one face.

    `identity` is None for an unknown face. `similarity` is the cosine to
    the assigned person, or for an unknown face to its nearest allowed
    candidate (None when it had none), so a report can say how close it came.
    """

    identity: int | None
    similarity: float | None


def assign(
    similarities: npt.ArrayLike,
    threshold: float,
    allowed: npt.ArrayLike | None = None,
) -> tuple[int | None, ...]:
    """Column (person) index per row (face), or None; no column is used twice.

    `similarities` is (faces, people); `allowed` (same shape, bool) removes
    pairs outright, e.g. "this face is not that person". NaN similarities are
    treated as not allowed.
    """
    s = np.asarray(similarities, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"similarities must be 2-D (faces, people), got shape {s.shape}")
    n, m = s.shape
    if n == 0:
        return ()
    ok = np.isfinite(s) & (s >= threshold)
    if allowed is not None:
        mask = np.asarray(allowed, dtype=bool)
        if mask.shape != s.shape:
            raise ValueError(f"allowed has shape {mask.shape}, similarities {s.shape}")
        ok &= mask
    weights = np.full((n, m + n), _FORBIDDEN)
    weights[:, :m] = np.where(ok, s - threshold, _FORBIDDEN)
    weights[np.arange(n), m + np.arange(n)] = 0.0  # each face's own "unknown"
    rows, cols = max_weight_assignment(weights)
    out: list[int | None] = [None] * n
    for r, c in zip(rows, cols, strict=True):
        if c < m and ok[r, c]:
            out[r] = c
    return tuple(out)


def match_photo(
    candidates: Sequence[Mapping[int, float]],
    threshold: float,
    fixed: Mapping[int, int] | None = None,
) -> tuple[Assignment, ...]:
    """Assign every face of one photo from its candidate people.

    `candidates[i]` maps identity id -> cosine for face i (its nearest people,
    with any "not this person" identities already left out). `fixed` maps a
    face position to an identity a person confirmed: that face keeps it, and
    no other face of the photo may take it.
    """
    fixed = dict(fixed or {})
    taken = set(fixed.values())
    free = [i for i in range(len(candidates)) if i not in fixed]
    people = sorted({p for i in free for p in candidates[i] if p not in taken})
    column = {p: j for j, p in enumerate(people)}
    sims = np.full((len(free), len(people)), np.nan)
    for row, i in enumerate(free):
        for p, sim in candidates[i].items():
            if p in column:
                sims[row, column[p]] = sim
    chosen = assign(sims, threshold)
    out: list[Assignment] = []
    decided = dict(zip(free, chosen, strict=True))
    for i, cands in enumerate(candidates):
        if i in fixed:
            p = fixed[i]
            out.append(Assignment(p, cands.get(p)))
            continue
        col = decided[i]
        if col is not None:
            p = people[col]
            out.append(Assignment(p, float(candidates[i][p])))
            continue
        allowed = [sim for p, sim in cands.items() if p not in taken]
        out.append(Assignment(None, float(max(allowed)) if allowed else None))
    return tuple(out)

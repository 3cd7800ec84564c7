"""A person's prototype: the normalised mean of their normalised embeddings, computed in one place.

The gallery decides 1:1 and 1:N against one vector per person (Snell et al.
2017, "Prototypical Networks", with cosine instead of squared Euclidean
distance). Each row is normalised before averaging so every photo counts
equally whatever its norm, and the mean is normalised again so a similarity
to a prototype is a cosine, comparable with the thresholds measured on pairs.
The gallery's stored prototypes, the album's prototypes with folded faces and
the enrolment checks' leave-one-out means must be the same function, or a
face would score differently against "the same" person depending on which app
asked; hence this module, numpy only, below the gallery and the apps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def prototype(embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """`normalised_mean` as the gallery stores and searches it: float32."""
    return normalised_mean(embeddings).astype(np.float32)


def normalised_mean(embeddings: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Normalised mean of the normalised rows of `embeddings` (n, D), in float64.

    The rows are re-normalised here: inputs are not trusted. ValueError for
    no rows, a zero or non-finite row, or rows that cancel out (their mean
    has no direction). Float64 for callers that compare similarities with
    each other rather than with a threshold (the enrolment checks' ties).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"a prototype needs a non-empty (n, D) array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not (np.all(np.isfinite(norms)) and np.all(norms > 0)):
        raise ValueError("an embedding is all zeros or not finite; it has no direction")
    mean = (x / norms).mean(axis=0)
    norm = np.linalg.norm(mean)
    if norm < 1e-12:
        raise ValueError("the samples' embeddings cancel out; their mean has no direction")
    return mean / norm

"""Pairwise distances between embeddings, safe to back-propagate through.

Every loss and miner in `facerec.training` measures distances through this one
module, so "euclidean" means the same thing everywhere (the role the
`distances/` package plays in pytorch-metric-learning).

Why the care with the square root: d = sqrt(s) has derivative 1 / (2 sqrt(s)),
which is infinite at s = 0. A batch always contains zero distances (each
embedding to itself, and duplicates when a PK batch repeats an image), and a
single infinite/NaN gradient poisons the whole update. We therefore take the
root of max(s, eps) and select exactly 0 wherever s <= eps (the "double where"
trick): the value is exact, the gradient there is 0 (the correct one-sided
limit of the subgradient of a norm at its minimum) and never NaN.

The squared euclidean matrix is computed from the Gram matrix,
|x|^2 + |y|^2 - 2 x.y, after centring the batch: distances are translation
invariant and centring reduces the cancellation error of that formula when the
embeddings sit far from the origin.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

Distance = Literal["euclidean", "squared_euclidean", "cosine"]
"""Supported metrics: L2, squared L2, and cosine distance 1 - cos(x, y) in [0, 2]."""

DISTANCES: tuple[str, ...] = get_args(Distance)

EPS = 1e-12
"""Squared distances at or below this are treated as exactly zero (see module docstring)."""


def check_distance(metric: str) -> Distance:
    """Validate a metric name; raises ValueError naming the accepted values."""
    if metric not in DISTANCES:
        raise ValueError(f"unknown distance {metric!r}; expected one of {', '.join(DISTANCES)}")
    return metric  # type: ignore[return-value]


def safe_sqrt(squared: Tensor, eps: float = EPS) -> Tensor:
    """sqrt with an exact 0 and a zero (not NaN) gradient where `squared <= eps`."""
    positive = squared > eps
    return torch.where(positive, squared.clamp_min(eps).sqrt(), torch.zeros_like(squared))


def _check_matrix(emb: Tensor) -> None:
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a (N, D) matrix, got shape {tuple(emb.shape)}")
    if not emb.is_floating_point():
        raise ValueError(f"embeddings must be floating point, got {emb.dtype}")


def pairwise_distances(emb: Tensor, metric: Distance = "euclidean") -> Tensor:
    """All-pairs distance matrix (N, N) of the rows of `emb` (N, D).

    The diagonal is exactly 0 for every metric and the matrix is symmetric up to
    rounding. Gradients are finite everywhere, including between identical rows.
    """
    _check_matrix(emb)
    check_distance(metric)
    n = emb.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=emb.device)
    if metric == "cosine":
        unit = F.normalize(emb, dim=1)
        dist = (1.0 - unit @ unit.T).clamp(0.0, 2.0)
        return dist.masked_fill(eye, 0.0)
    centred = emb - emb.mean(dim=0, keepdim=True).detach()
    sq_norms = (centred * centred).sum(dim=1)
    squared = sq_norms[:, None] + sq_norms[None, :] - 2.0 * (centred @ centred.T)
    squared = squared.clamp_min(0.0).masked_fill(eye, 0.0)
    if metric == "squared_euclidean":
        return squared
    return safe_sqrt(squared)


def paired_distances(a: Tensor, b: Tensor, metric: Distance = "euclidean") -> Tensor:
    """Row-wise distances (N,) between `a[i]` and `b[i]`; same conventions as `pairwise_distances`."""
    _check_matrix(a)
    _check_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"paired embeddings differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    check_distance(metric)
    if metric == "cosine":
        return (1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)).clamp(0.0, 2.0)
    diff = a - b
    squared = (diff * diff).sum(dim=1)
    if metric == "squared_euclidean":
        return squared
    return safe_sqrt(squared)

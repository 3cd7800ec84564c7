"""Batch-all triplet loss (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss").

The triplet loss of FaceNet (Schroff et al. 2015) asks, for an anchor a, a
positive p (same identity) and a negative n (another identity), that
d(a, p) + margin <= d(a, n). "Batch-all" forms every valid triplet of a batch
rather than mining a few: with a PK batch (P identities x K images) that is
P K (K - 1) (P K - K) triplets from P K embeddings computed once.

Most of those triplets are already satisfied and contribute 0; averaging over
all of them would shrink the loss (and the gradient) as training succeeds, so
the mean is taken over the triplets with a positive loss only, as Hermans et
al. recommend (pytorch-metric-learning's `AvgNonZeroReducer`). The fraction of
positive triplets is the natural progress signal and is kept in `last_stats`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from facerec.training.distances import Distance, check_distance, pairwise_distances


@dataclass(frozen=True, slots=True)
class TripletStats:
    """What the last forward pass of a triplet loss saw.

    `n_triplets` counts the triplets (or anchors / anchor-positive pairs, for the
    mined losses) that entered the loss; `n_positive` those with a loss > 0.
    """

    n_triplets: int
    n_positive: int

    @property
    def fraction_positive(self) -> float:
        """n_positive / n_triplets; 0.0 when there was no triplet at all."""
        return self.n_positive / self.n_triplets if self.n_triplets else 0.0


def check_batch(embeddings: Tensor, labels: Tensor) -> None:
    """Raise ValueError unless `embeddings` is (N, D) float and `labels` is (N,)."""
    if embeddings.ndim != 2 or not embeddings.is_floating_point():
        raise ValueError(
            f"embeddings must be a float (N, D) matrix, got {embeddings.dtype} "
            f"{tuple(embeddings.shape)}"
        )
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels must have shape ({embeddings.shape[0]},), got {tuple(labels.shape)}"
        )


def check_margin(margin: float) -> float:
    """Margins are finite and non-negative (a negative margin rewards violations)."""
    margin = float(margin)
    if not (margin >= 0.0 and margin != float("inf")):
        raise ValueError(f"margin must be finite and >= 0, got {margin}")
    return margin


def triplet_mask(labels: Tensor) -> Tensor:
    """Boolean (N, N, N) mask, True at [a, p, n] for every valid triplet.

    Valid: a != p, label[a] == label[p], label[a] != label[n]. Memory is N^3
    bytes, fine for the batch sizes triplet training uses (N <= 256: 16 MiB).
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    return positive[:, :, None] & ~same[:, None, :]


class BatchAllTripletLoss(nn.Module):
    """Mean of max(0, d(a,p) - d(a,n) + margin) over all valid triplets with a positive loss.

    Returns an exact 0 (still attached to the graph, so `backward()` works) when
    no triplet violates the margin or the batch has none at all. After each call
    `last_stats` holds a `TripletStats` for logging.
    """

    def __init__(self, margin: float = 0.2, distance: Distance = "euclidean") -> None:
        super().__init__()
        self.margin = check_margin(margin)
        self.distance: Distance = check_distance(distance)
        self._last_stats: TripletStats | None = None

    @property
    def last_stats(self) -> TripletStats | None:
        """Statistics of the most recent forward pass (None before the first)."""
        return self._last_stats

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_batch(embeddings, labels)
        dist = pairwise_distances(embeddings, self.distance)
        valid = triplet_mask(labels)
        # losses[a, p, n] = d(a, p) - d(a, n) + margin, zeroed outside valid triplets.
        losses = torch.relu(dist[:, :, None] - dist[:, None, :] + self.margin)
        losses = losses * valid
        positive = losses > 0
        n_positive = int(positive.sum())
        self._last_stats = TripletStats(n_triplets=int(valid.sum()), n_positive=n_positive)
        return losses.sum() / max(n_positive, 1)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}"

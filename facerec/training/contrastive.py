"""Contrastive loss for Siamese pairs (Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by Learning an Invariant Mapping").

For a pair at distance d with Y = 1 when both show the same identity:

    L = Y d^2 + (1 - Y) max(0, margin - d)^2

Same-identity pairs are pulled together; different identities are pushed apart
only until they are `margin` away, so negatives that are already far cost
nothing (the "hinge" keeps the embedding from expanding without bound). The
loss is the mean over pairs. With `distance="squared_euclidean"` d is the
squared distance and is then squared again, as the formula says; the usual
choice is "euclidean".

pytorch-metric-learning's `ContrastiveLoss` is parametrised differently
(pos_margin / neg_margin on unsquared distances), which is why the tests
check this one against the formula above rather than against it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from facerec.training.distances import Distance, check_distance, paired_distances
from facerec.training.triplet import check_batch, check_margin


def all_pairs(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every unordered pair i < j of a labelled batch: (i_idx, j_idx, same).

    `same[k]` is True when labels[i_idx[k]] == labels[j_idx[k]]. A PK batch
    yields far more different-identity than same-identity pairs (for P=8, K=4:
    48 vs 448); weight or subsample the negatives if that imbalance matters.
    """
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
    i, j = torch.triu_indices(labels.shape[0], labels.shape[0], offset=1, device=labels.device)
    return i, j, labels[i] == labels[j]


class ContrastiveLoss(nn.Module):
    """Mean over pairs of Y d^2 + (1 - Y) max(0, margin - d)^2 (Hadsell et al. 2006)."""

    def __init__(self, margin: float = 1.0, distance: Distance = "euclidean") -> None:
        super().__init__()
        self.margin = check_margin(margin)
        self.distance: Distance = check_distance(distance)

    def forward(self, emb_a: Tensor, emb_b: Tensor, same: Tensor) -> Tensor:
        """Loss of pairs (emb_a[i], emb_b[i]); `same` (N,) is bool or 0/1."""
        if same.shape != emb_a.shape[:1]:
            raise ValueError(f"same must have shape ({emb_a.shape[0]},), got {tuple(same.shape)}")
        d = paired_distances(emb_a, emb_b, self.distance)
        y = same.to(d.dtype)
        losses = y * d.pow(2) + (1.0 - y) * torch.relu(self.margin - d).pow(2)
        if losses.numel() == 0:
            return (emb_a.sum() + emb_b.sum()) * 0.0
        return losses.mean()

    def forward_batch(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The loss over all pairs of a labelled batch (see `all_pairs`)."""
        check_batch(embeddings, labels)
        i, j, same = all_pairs(labels)
        return self(embeddings[i], embeddings[j], same)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}"

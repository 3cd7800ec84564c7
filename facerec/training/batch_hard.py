"""Batch-hard triplet loss and miner (Hermans, Beyer & Leibe 2017), with optional semi-hard negatives.

Batch-hard: for every anchor of a PK batch take its *hardest positive* (the
same-identity embedding farthest away) and its *hardest negative* (the
other-identity embedding closest), and penalise max(0, d+ - d- + margin). One
triplet per anchor, but the most informative one; Hermans et al. found it
trains face/person re-identification embeddings better than batch-all.
The loss is the plain mean over anchors that have at least one positive and
one negative (anchors alone of their identity in the batch are skipped).

Semi-hard (FaceNet, Schroff, Kalenichenko & Philbin 2015): every
anchor-positive pair (a, p) is used, and its negative is chosen among the
semi-hard ones, d(a, p) < d(a, n) < d(a, p) + margin -- farther than the
positive, so they do not push the embedding towards collapse early in
training, but still inside the margin, so the loss is positive. Exactly:

    n*(a, p) = argmin_n { d(a, n) : label[n] != label[a], d(a, p) < d(a, n) < d(a, p) + margin }

and when that set is empty, n*(a, p) = argmin_n { d(a, n) : label[n] != label[a] },
the anchor's hardest negative. (TensorFlow Addons' `TripletSemiHardLoss`
falls back to the *easiest* negative instead; ours keeps a learning signal for
pairs whose every negative already violates the positive distance.) The loss is
the mean over all such (a, p) pairs of anchors with at least one negative.

The miners return index triplets `(anchor, positive, negative)` so that any
triplet loss, ours or pytorch-metric-learning's, can consume them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from facerec.training.distances import Distance, check_distance, pairwise_distances
from facerec.training.triplet import TripletStats, check_batch, check_margin

Triplets = tuple[Tensor, Tensor, Tensor]
"""(anchor_idx, positive_idx, negative_idx), three int64 tensors of equal length."""


def _masks(dist: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist must be a square (N, N) matrix, got {tuple(dist.shape)}")
    if labels.ndim != 1 or labels.shape[0] != dist.shape[0]:
        raise ValueError(f"labels must have shape ({dist.shape[0]},), got {tuple(labels.shape)}")
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _hardest_negatives(dist: Tensor, neg_mask: Tensor) -> Tensor:
    return dist.masked_fill(~neg_mask, float("inf")).argmin(dim=1)


@torch.no_grad()
def batch_hard_mine(dist: Tensor, labels: Tensor) -> Triplets:
    """One (anchor, hardest positive, hardest negative) triplet per eligible anchor.

    `dist` is an (N, N) distance matrix (larger = farther), `labels` (N,).
    Anchors without a positive or without a negative in the batch are left out.
    Ties are broken by the lowest index.
    """
    pos_mask, neg_mask = _masks(dist, labels)
    anchors = torch.nonzero(pos_mask.any(dim=1) & neg_mask.any(dim=1)).flatten()
    hardest_pos = dist.masked_fill(~pos_mask, float("-inf")).argmax(dim=1)
    hardest_neg = _hardest_negatives(dist, neg_mask)
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


@torch.no_grad()
def semi_hard_mine(dist: Tensor, labels: Tensor, margin: float) -> Triplets:
    """One triplet per anchor-positive pair, with the hardest semi-hard negative.

    See the module docstring for the exact definition and the fallback to the
    hardest negative when a pair has no semi-hard negative.
    """
    pos_mask, neg_mask = _masks(dist, labels)
    pairs = pos_mask & neg_mask.any(dim=1, keepdim=True)
    anchors, positives = torch.nonzero(pairs, as_tuple=True)
    d_ap = dist[anchors, positives][:, None]
    rows = dist[anchors]
    band = neg_mask[anchors] & (rows > d_ap) & (rows < d_ap + margin)
    semi = rows.masked_fill(~band, float("inf")).argmin(dim=1)
    fallback = _hardest_negatives(dist, neg_mask)[anchors]
    negatives = torch.where(band.any(dim=1), semi, fallback)
    return anchors, positives, negatives


class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss; `semi_hard=True` switches to FaceNet's semi-hard negatives.

    Returns the mean of max(0, d(a,p) - d(a,n) + margin) over the mined
    triplets, an exact 0 attached to the graph when nothing can be mined.
    `last_stats` counts mined triplets and those with a positive loss.
    """

    def __init__(
        self, margin: float = 0.2, distance: Distance = "euclidean", semi_hard: bool = False
    ) -> None:
        super().__init__()
        self.margin = check_margin(margin)
        self.distance: Distance = check_distance(distance)
        self.semi_hard = bool(semi_hard)
        self._last_stats: TripletStats | None = None

    @property
    def last_stats(self) -> TripletStats | None:
        """Statistics of the most recent forward pass (None before the first)."""
        return self._last_stats

    def mine(self, dist: Tensor, labels: Tensor) -> Triplets:
        """The triplets this loss uses for a distance matrix and labels."""
        if self.semi_hard:
            return semi_hard_mine(dist, labels, self.margin)
        return batch_hard_mine(dist, labels)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        check_batch(embeddings, labels)
        dist = pairwise_distances(embeddings, self.distance)
        a, p, n = self.mine(dist.detach(), labels)
        if a.numel() == 0:
            self._last_stats = TripletStats(n_triplets=0, n_positive=0)
            return dist.sum() * 0.0
        losses = torch.relu(dist[a, p] - dist[a, n] + self.margin)
        self._last_stats = TripletStats(
            n_triplets=int(a.numel()), n_positive=int((losses > 0).sum())
        )
        return losses.mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}, semi_hard={self.semi_hard}"

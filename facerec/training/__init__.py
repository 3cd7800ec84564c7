"""Metric learning for face embeddings: distances, triplet and contrastive losses, miners, PK sampling.

One loss or miner per module, composable through index triplets and a shared
distance function, in the spirit of pytorch-metric-learning:

* `distances`: pairwise / paired distances with gradients safe at zero distance;
* `triplet`: batch-all triplet loss (and `TripletStats`);
* `batch_hard`: batch-hard and semi-hard mining and their triplet loss;
* `contrastive`: the Siamese contrastive loss and an all-pairs helper;
* `sampler`: the P identities x K images batch sampler these losses need.

The names are re-exported lazily (PEP 562), as in `facerec.gallery`: every
`facerec` command imports `facerec.training.cli`, and only `facerec train`
should pay for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facerec.util.lazy import lazy_exports

if TYPE_CHECKING:
    from facerec.training.batch_hard import BatchHardTripletLoss, batch_hard_mine, semi_hard_mine
    from facerec.training.contrastive import ContrastiveLoss, all_pairs
    from facerec.training.distances import Distance, paired_distances, pairwise_distances
    from facerec.training.sampler import PKSampler
    from facerec.training.triplet import BatchAllTripletLoss, TripletStats

_EXPORTS = {
    "BatchAllTripletLoss": "facerec.training.triplet",
    "BatchHardTripletLoss": "facerec.training.batch_hard",
    "ContrastiveLoss": "facerec.training.contrastive",
    "Distance": "facerec.training.distances",
    "PKSampler": "facerec.training.sampler",
    "TripletStats": "facerec.training.triplet",
    "all_pairs": "facerec.training.contrastive",
    "batch_hard_mine": "facerec.training.batch_hard",
    "paired_distances": "facerec.training.distances",
    "pairwise_distances": "facerec.training.distances",
    "semi_hard_mine": "facerec.training.batch_hard",
}

__all__ = [
    "BatchAllTripletLoss",
    "BatchHardTripletLoss",
    "ContrastiveLoss",
    "Distance",
    "PKSampler",
    "TripletStats",
    "all_pairs",
    "batch_hard_mine",
    "paired_distances",
    "pairwise_distances",
    "semi_hard_mine",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

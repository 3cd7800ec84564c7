"""Metric learning for face embeddings: distances, triplet and contrastive losses, miners, PK sampling.

One loss or miner per module, composable through index triplets and a shared
distance function, in the spirit of pytorch-metric-learning:

* `distances`: pairwise / paired distances with gradients safe at zero distance;
* `triplet`: batch-all triplet loss (and `TripletStats`);
* `batch_hard`: batch-hard and semi-hard mining and their triplet loss;
* `contrastive`: the Siamese contrastive loss and an all-pairs helper;
* `sampler`: the P identities x K images batch sampler these losses need.
"""

from facerec.training.batch_hard import BatchHardTripletLoss, batch_hard_mine, semi_hard_mine
from facerec.training.contrastive import ContrastiveLoss, all_pairs
from facerec.training.distances import Distance, paired_distances, pairwise_distances
from facerec.training.sampler import PKSampler
from facerec.training.triplet import BatchAllTripletLoss, TripletStats

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

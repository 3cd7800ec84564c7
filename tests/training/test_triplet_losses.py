"""Distances, triplet and contrastive losses: hand-computed cases, a brute-force reference,
and numerical agreement with pytorch-metric-learning."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from facerec.training import (
    BatchAllTripletLoss,
    BatchHardTripletLoss,
    ContrastiveLoss,
    all_pairs,
    batch_hard_mine,
    paired_distances,
    pairwise_distances,
    semi_hard_mine,
)
from facerec.training.distances import Distance

METRICS: tuple[Distance, ...] = ("euclidean", "squared_euclidean", "cosine")


def pk_batch(
    p: int, k: int, dim: int, *, seed: int, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(p).repeat_interleave(k)
    centres = torch.randn(p, dim, generator=g, dtype=dtype)
    emb = centres[labels] + 1.5 * torch.randn(p * k, dim, generator=g, dtype=dtype)
    return emb, labels


def line(*xs: float) -> torch.Tensor:
    """1-D embeddings as an (N, 1) matrix that requires grad."""
    return torch.tensor([[x] for x in xs], dtype=torch.float64, requires_grad=True)


# --- distances ---------------------------------------------------------------------------


def test_pairwise_distances_match_direct_formulas() -> None:
    emb, _ = pk_batch(4, 3, 8, seed=0)
    emb = emb + 5.0  # far from the origin: the centring keeps the Gram formula accurate
    euclid = pairwise_distances(emb, "euclidean")
    torch.testing.assert_close(euclid, torch.cdist(emb, emb), atol=1e-10, rtol=0)
    torch.testing.assert_close(pairwise_distances(emb, "squared_euclidean"), euclid**2)
    cos = 1 - F.cosine_similarity(emb[:, None, :], emb[None, :, :], dim=-1)
    torch.testing.assert_close(pairwise_distances(emb, "cosine"), cos.fill_diagonal_(0.0))
    for metric in METRICS:
        d = pairwise_distances(emb, metric)
        assert torch.all(d.diagonal() == 0)
        torch.testing.assert_close(paired_distances(emb[:-1], emb[1:], metric), d[:-1].diagonal(1))


def test_euclidean_distances_stay_accurate_far_from_the_origin() -> None:
    # float32 Gram-matrix distances of points ~20 from the origin: centring gives ~1e-6 error,
    # the textbook |x|^2 + |y|^2 - 2 x.y formula ~1e-3.
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(16, 64, generator=g) + 20.0
    ref = torch.cdist(emb.double(), emb.double())
    assert (pairwise_distances(emb).double() - ref).abs().max() < 2e-5


@pytest.mark.parametrize("metric", METRICS)
def test_distance_gradients_are_finite_at_zero_distance(metric: Distance) -> None:
    emb = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], requires_grad=True)
    d = pairwise_distances(emb, metric)
    assert d[0, 1].item() == pytest.approx(0.0, abs=1e-6)  # exact for the L2 metrics
    (d.sum() + paired_distances(emb[:2], emb[[1, 0]], metric).sum()).backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all()


def test_unknown_distance_and_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown distance"):
        pairwise_distances(torch.zeros(3, 2), "manhattan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown distance"):
        BatchAllTripletLoss(distance="l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin"):
        BatchHardTripletLoss(margin=-0.1)
    with pytest.raises(ValueError, match="labels"):
        BatchAllTripletLoss()(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="matrix"):
        pairwise_distances(torch.zeros(3))


# --- hand-computed 1-D cases -------------------------------------------------------------
# Labels [0, 0, 1, 1] at x = [0, 0.5, 0.6, 3], margin 0.2. Distances: d01=.5 d02=.6 d03=3
# d12=.1 d13=2.5 d23=2.4. The 8 triplets (a, p, n) and their losses:
#   (0,1,2) .1   (0,1,3) 0   (1,0,2) .6   (1,0,3) 0   (2,3,0) 2.0   (2,3,1) 2.5   (3,2,0) 0   (3,2,1) .1
HAND_X = (0.0, 0.5, 0.6, 3.0)
HAND_LABELS = torch.tensor([0, 0, 1, 1])


def test_batch_all_averages_only_the_positive_triplets() -> None:
    loss_fn = BatchAllTripletLoss(margin=0.2)
    loss = loss_fn(line(*HAND_X), HAND_LABELS)
    # 5 positive triplets summing to 5.3; the mean over all 8 would be 0.6625.
    assert loss.item() == pytest.approx(5.3 / 5)
    stats = loss_fn.last_stats
    assert stats is not None
    assert (stats.n_triplets, stats.n_positive) == (8, 5)
    assert stats.fraction_positive == pytest.approx(0.625)


def test_batch_hard_uses_hardest_positive_and_negative_per_anchor() -> None:
    emb = line(*HAND_X)
    a, p, n = batch_hard_mine(pairwise_distances(emb.detach()), HAND_LABELS)
    assert a.tolist() == [0, 1, 2, 3]
    assert p.tolist() == [1, 0, 3, 2]
    assert n.tolist() == [2, 2, 1, 1]
    # per anchor: .5-.6+.2, .5-.1+.2, 2.4-.1+.2, 2.4-2.5+.2  -> mean over the 4 anchors
    assert BatchHardTripletLoss(margin=0.2)(emb, HAND_LABELS).item() == pytest.approx(3.3 / 4)


def test_zero_loss_when_every_negative_is_beyond_the_margin() -> None:
    emb = line(0.0, 0.1, 1.0, 1.1)  # d+ = 0.1, every d- >= 0.9 >= d+ + 0.2
    labels = HAND_LABELS
    for loss_fn in (
        BatchAllTripletLoss(margin=0.2),
        BatchHardTripletLoss(margin=0.2),
        BatchHardTripletLoss(margin=0.2, semi_hard=True),
    ):
        loss = loss_fn(emb, labels)
        assert loss.item() == 0.0
        loss.backward()  # the graph is intact even though nothing is positive
        assert emb.grad is not None and torch.all(emb.grad == 0)
        emb.grad = None
    # ... and a margin just above the gap makes the hardest triplets active again
    # anchors: .1-1+1, .1-.9+1, .1-.9+1, .1-1+1
    assert BatchHardTripletLoss(margin=1.0)(emb, labels).item() == pytest.approx(0.6 / 4)


def test_semi_hard_picks_the_closest_negative_inside_the_band_else_the_hardest() -> None:
    # anchor 0 at 0, positive 1 at 0.5; negatives at -0.3 (hard) and 0.6 (semi-hard:
    # 0.5 < 0.6 < 0.5 + 0.2). Every other pair has no semi-hard negative -> hardest.
    emb = line(0.0, 0.5, -0.3, 0.6)
    dist = pairwise_distances(emb.detach())
    a, p, n = semi_hard_mine(dist, HAND_LABELS, margin=0.2)
    triplets = sorted(zip(a.tolist(), p.tolist(), n.tolist(), strict=True))
    assert triplets == [(0, 1, 3), (1, 0, 3), (2, 3, 0), (3, 2, 1)]
    # losses: .5-.6+.2=.1, .5-.1+.2=.6, .9-.3+.2=.8, .9-.1+.2=1.0
    loss = BatchHardTripletLoss(margin=0.2, semi_hard=True)(emb, HAND_LABELS)
    assert loss.item() == pytest.approx(2.5 / 4)
    # batch-hard takes the hard negative (index 2) for anchor 0 instead
    assert batch_hard_mine(dist, HAND_LABELS)[2][0].item() == 2


def reference_semi_hard(
    dist: torch.Tensor, labels: torch.Tensor, margin: float
) -> list[tuple[int, int, int]]:
    """The documented definition, written as loops."""
    n = len(labels)
    out = []
    for a, p in itertools.permutations(range(n), 2):
        if labels[a] != labels[p]:
            continue
        negs = [j for j in range(n) if labels[j] != labels[a]]
        if not negs:
            continue
        band = [j for j in negs if dist[a, p] < dist[a, j] < dist[a, p] + margin]
        pool = band or negs
        out.append((a, p, min(pool, key=lambda j: dist[a, j].item())))
    return sorted(out)


@pytest.mark.parametrize("seed", range(3))
def test_semi_hard_mining_matches_its_definition(seed: int) -> None:
    emb, labels = pk_batch(4, 4, 3, seed=seed)
    dist = pairwise_distances(emb)
    a, p, n = semi_hard_mine(dist, labels, margin=0.5)
    mined = sorted(zip(a.tolist(), p.tolist(), n.tolist(), strict=True))
    assert mined == reference_semi_hard(dist, labels, 0.5)


@pytest.mark.parametrize("metric", METRICS)
def test_gradients_are_finite_for_identical_embeddings(metric: Distance) -> None:
    emb = torch.ones(6, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    losses = [
        BatchAllTripletLoss(margin=0.2, distance=metric),
        BatchHardTripletLoss(margin=0.2, distance=metric),
        BatchHardTripletLoss(margin=0.2, distance=metric, semi_hard=True),
    ]
    for loss_fn in losses:
        loss = loss_fn(emb, labels)
        assert loss.item() == pytest.approx(0.2)  # every triplet is 0 - 0 + margin
        loss.backward()
        assert emb.grad is not None and torch.isfinite(emb.grad).all()
        emb.grad = None
    contrastive = ContrastiveLoss(distance=metric).forward_batch(emb, labels)
    contrastive.backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all()


def test_batches_without_positives_or_negatives_give_zero_loss_with_a_graph() -> None:
    emb = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.zeros(4, dtype=torch.long), torch.arange(4)):
        for loss_fn in (BatchAllTripletLoss(), BatchHardTripletLoss()):
            loss = loss_fn(emb, labels)
            assert loss.item() == 0.0 and loss.requires_grad
            loss.backward()
            stats = loss_fn.last_stats
            assert stats is not None and stats.n_triplets == 0 and stats.fraction_positive == 0.0


# --- agreement with pytorch-metric-learning ----------------------------------------------
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")


def pml_triplet_loss(margin: float, *, reducer: object, cosine: bool = False) -> Any:
    """TripletMarginLoss made apples-to-apples: no swap, no softplus, no regulariser,
    no hidden normalisation (pml's LpDistance normalises by default)."""
    distance = (
        pml_distances.CosineSimilarity()
        if cosine
        else pml_distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    )
    return pml_losses.TripletMarginLoss(
        margin=margin,
        swap=False,
        smooth_loss=False,
        triplets_per_anchor="all",
        distance=distance,
        reducer=reducer,
        embedding_regularizer=None,
    )


def value_and_grad(
    loss_fn: object, emb: torch.Tensor, *args: object
) -> tuple[torch.Tensor, torch.Tensor]:
    x = emb.detach().clone().requires_grad_(True)
    loss = loss_fn(x, *args)  # type: ignore[operator]
    loss.backward()
    assert x.grad is not None
    return loss.detach(), x.grad


CASES = [(4, 4, 0.2, 0), (8, 4, 1.0, 1), (16, 2, 0.2, 2), (8, 4, 0.5, 3)]  # (P, K, margin, seed)


@pytest.mark.parametrize("normalise", [False, True], ids=["raw", "unit"])
@pytest.mark.parametrize(("p", "k", "margin", "seed"), CASES)
def test_batch_all_agrees_with_pml_triplet_margin_loss(
    p: int, k: int, margin: float, seed: int, normalise: bool
) -> None:
    emb, labels = pk_batch(p, k, 16, seed=seed)
    if normalise:
        emb = F.normalize(emb, dim=1)
    ours, ours_grad = value_and_grad(BatchAllTripletLoss(margin=margin), emb, labels)
    ref = pml_triplet_loss(margin, reducer=pml_reducers.AvgNonZeroReducer())
    theirs, theirs_grad = value_and_grad(ref, emb, labels)
    assert ours.item() > 0
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    torch.testing.assert_close(ours_grad, theirs_grad, atol=1e-10, rtol=0)


def test_batch_all_cosine_agrees_with_pml_cosine_similarity() -> None:
    # pml's margin for a similarity is s(a,n) - s(a,p) = d(a,p) - d(a,n) for d = 1 - s.
    emb, labels = pk_batch(8, 4, 16, seed=3)
    ours, ours_grad = value_and_grad(BatchAllTripletLoss(0.3, "cosine"), emb, labels)
    ref = pml_triplet_loss(0.3, reducer=pml_reducers.AvgNonZeroReducer(), cosine=True)
    theirs, theirs_grad = value_and_grad(ref, emb, labels)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    torch.testing.assert_close(ours_grad, theirs_grad, atol=1e-10, rtol=0)


def test_batch_all_float32_agrees_with_pml() -> None:
    emb, labels = pk_batch(16, 4, 128, seed=4, dtype=torch.float32)
    ours = BatchAllTripletLoss(0.2)(emb, labels)
    theirs = pml_triplet_loss(0.2, reducer=pml_reducers.AvgNonZeroReducer())(emb, labels)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("normalise", [False, True], ids=["raw", "unit"])
@pytest.mark.parametrize(("p", "k", "margin", "seed"), CASES)
def test_batch_hard_agrees_with_pml_batch_hard_miner(
    p: int, k: int, margin: float, seed: int, normalise: bool
) -> None:
    emb, labels = pk_batch(p, k, 16, seed=seed)  # continuous random values: no ties
    labels = labels.clone()
    labels[-1] = p  # one anchor without a positive: both must skip it
    if normalise:
        emb = F.normalize(emb, dim=1)
    miner = pml_miners.BatchHardMiner(
        distance=pml_distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    )
    theirs_idx = miner(emb, labels)
    ours_idx = batch_hard_mine(pairwise_distances(emb), labels)
    assert len(ours_idx[0]) == p * k - (1 if k > 2 else 2)  # k = 2: its partner is alone too
    for mine, ref in zip(ours_idx, theirs_idx, strict=True):
        assert torch.equal(mine, ref)

    ref_loss = pml_triplet_loss(margin, reducer=pml_reducers.MeanReducer())
    ours, ours_grad = value_and_grad(BatchHardTripletLoss(margin=margin), emb, labels)
    theirs, theirs_grad = value_and_grad(
        lambda x, lab: ref_loss(x, lab, indices_tuple=theirs_idx),
        emb,
        labels,
    )
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    torch.testing.assert_close(ours_grad, theirs_grad, atol=1e-10, rtol=0)


# --- contrastive -------------------------------------------------------------------------


def test_contrastive_one_dimensional_value() -> None:
    a = line(0.0, 0.0, 0.0)
    b = line(0.5, 0.3, 2.0)
    same = torch.tensor([True, False, False])
    # 0.5^2 (same) + (1 - 0.3)^2 (different, inside the margin) + 0 (beyond it)
    loss = ContrastiveLoss(margin=1.0)(a, b, same)
    assert loss.item() == pytest.approx((0.25 + 0.49 + 0.0) / 3)


@pytest.mark.parametrize("metric", METRICS)
def test_contrastive_matches_the_hand_formula(metric: Distance) -> None:
    g = torch.Generator().manual_seed(7)
    a = torch.randn(64, 8, generator=g, dtype=torch.float64)
    b = a + 0.7 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    same = torch.rand(64, generator=g) < 0.5
    if metric == "cosine":
        d = 1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    else:
        d = ((a - b) ** 2).sum(1)
        d = d if metric == "squared_euclidean" else d.sqrt()
    y = same.double()
    expected = (y * d**2 + (1 - y) * (1.5 - d).clamp(min=0) ** 2).mean()
    got = ContrastiveLoss(margin=1.5, distance=metric)(a, b, same)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_all_pairs_and_batch_contrastive() -> None:
    labels = torch.tensor([3, 3, 5, 7, 5])
    i, j, same = all_pairs(labels)
    assert len(i) == 10 and bool((i < j).all())
    assert {(x, y) for x, y, s in zip(i.tolist(), j.tolist(), same.tolist(), strict=True) if s} == {
        (0, 1),
        (2, 4),
    }
    emb = torch.randn(5, 4, dtype=torch.float64)
    loss_fn = ContrastiveLoss(margin=2.0)
    torch.testing.assert_close(loss_fn.forward_batch(emb, labels), loss_fn(emb[i], emb[j], same))

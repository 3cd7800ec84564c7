"""Episodic heads on synthetic people: each learns, Gaussian prototypes generalise the prototype rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import multivariate_normal

from facerec.evaluation.fewshot import sample_episodes
from facerec.evaluation.fewshot_heads import (
    Episodes,
    EpisodicHead,
    EpisodicTraining,
    FinetunedCosineHead,
    GaussianPrototypes,
    LearnedHead,
    MatchingNetwork,
    PrototypeHead,
    RelationNetwork,
    train_episodic,
)

DIM = 16


def people(
    n: int, per_person: int, *, seed: int, nuisance: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian people whose identity lives in 8 dimensions and whose photos also vary,
    more, in 8 others (pose, light): cosine on the raw vectors is mostly nuisance, so a
    head that learns which directions matter has something to learn."""
    rng = np.random.default_rng(seed)
    half = DIM // 2
    centres = np.concatenate([rng.normal(size=(n, 1, half)), np.zeros((n, 1, half))], axis=-1)
    spread = np.concatenate(
        [
            0.5 * rng.normal(size=(n, per_person, half)),
            nuisance * rng.normal(size=(n, per_person, half)),
        ],
        axis=-1,
    )
    x = (centres + spread).reshape(-1, DIM).astype(np.float32)
    return x, np.repeat(np.arange(n), per_person)


TRAIN = people(60, 10, seed=0)
TEST = people(40, 10, seed=1)
QUICK = EpisodicTraining(steps=60, batch=8, lr=1e-2)


def accuracy(head: EpisodicHead, k_shot: int, data: tuple[np.ndarray, np.ndarray] = TEST) -> float:
    x, y = data
    idx = sample_episodes(
        y, int(y.max()) + 1, n_way=5, k_shot=k_shot, n_query=5, episodes=100,
        rng=np.random.default_rng(3),
    )  # fmt: skip
    eps = Episodes.from_indices(torch.as_tensor(x), idx, n_way=5, k_shot=k_shot)
    with torch.no_grad():
        right = (head.scores(eps).argmax(-1) == eps.query_labels) & eps.query_mask
    return float(right.sum() / eps.query_mask.sum())


def learned(kind: str) -> LearnedHead:
    gen = torch.Generator().manual_seed(0)
    if kind == "relation":
        return RelationNetwork(DIM, generator=gen)
    return MatchingNetwork(DIM, fce=kind == "matching+fce", generator=gen)


@pytest.mark.parametrize("kind", ["relation", "matching", "matching+fce"])
@pytest.mark.parametrize("k_shot", [1, 5])
def test_learned_heads_learn_from_other_people(kind: str, k_shot: int) -> None:
    head = learned(kind)
    before = accuracy(head, k_shot)
    losses = train_episodic(head, *TRAIN, k_shot=k_shot, seed=0, config=QUICK)
    after = accuracy(head, k_shot)
    assert len(losses) == QUICK.steps and np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    # chance is 20%; prototypes get ~38% (1-shot) and ~61% (5-shot) here
    assert after > 0.7, (before, after)
    assert after > before + 0.2, (before, after)  # evaluated on people it never saw


def test_untrained_matching_network_is_the_prototype_rule_at_one_shot() -> None:
    """Identity map, no FCE: one-shot scores are scale * cosine, the prototypes' ranking."""
    x, y = TEST
    idx = sample_episodes(
        y, 40, n_way=5, k_shot=1, n_query=5, episodes=20, rng=np.random.default_rng(0)
    )
    eps = Episodes.from_indices(torch.as_tensor(x), idx, n_way=5, k_shot=1)
    head = MatchingNetwork(DIM, fce=False, scale=7.0)
    with torch.no_grad():
        torch.testing.assert_close(head.scores(eps), 7.0 * PrototypeHead().scores(eps))


def test_training_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b = learned("relation"), learned("relation")
    la = train_episodic(a, *TRAIN, k_shot=1, seed=5, config=EpisodicTraining(steps=5, batch=4))
    lb = train_episodic(b, *TRAIN, k_shot=1, seed=5, config=EpisodicTraining(steps=5, batch=4))
    assert la == lb
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert torch.equal(torch.get_rng_state(), state)
    c = learned("relation")
    lc = train_episodic(c, *TRAIN, k_shot=1, seed=6, config=EpisodicTraining(steps=5, batch=4))
    assert lc != la  # other episodes


def test_gaussian_prototypes_learn_which_directions_matter() -> None:
    gauss = GaussianPrototypes.fit(*TRAIN)
    for k_shot in (1, 5):
        proto, g = accuracy(PrototypeHead(), k_shot), accuracy(gauss, k_shot)
        assert g > proto + 0.2, (k_shot, proto, g)  # ~0.38 -> 0.83 at one shot


def test_fixed_heads_beat_chance_clearly_on_easy_people() -> None:
    easy = people(40, 10, seed=2, nuisance=0.3)
    for head in (PrototypeHead(), FinetunedCosineHead()):
        assert accuracy(head, 1, easy) > 0.8
        assert accuracy(head, 5, easy) > 0.9


def isotropic(scale: float, kappa: float) -> GaussianPrototypes:
    eye = torch.eye(DIM)
    return GaussianPrototypes(torch.zeros(DIM), scale * eye, eye, kappa=kappa)


@pytest.mark.parametrize(("k_shot", "kappa"), [(1, 3.0), (5, 1e9)])
def test_isotropic_gaussian_prototypes_are_the_nearest_prototype_rule(
    k_shot: int, kappa: float
) -> None:
    """With W = s^2 I and every person's spread equal (one shot, or all weight on W)
    the log-likelihood ratio ranks people by Euclidean distance to the unit prototype,
    which for unit queries is 2 - 2 cos: the nearest prototype."""
    x, y = TEST
    idx = sample_episodes(
        y, 40, n_way=5, k_shot=k_shot, n_query=5, episodes=50, rng=np.random.default_rng(1)
    )
    eps = Episodes.from_indices(torch.as_tensor(x), idx, n_way=5, k_shot=k_shot)
    with torch.no_grad():
        g = isotropic(0.3, kappa).scores(eps)
        p = PrototypeHead().scores(eps)
    assert torch.equal(g.argmax(-1), p.argmax(-1))
    # and more than the ranking: per query, score differences are cosine differences / (s^2 alpha)
    alpha = (1 + 1 / k_shot) * kappa / (k_shot - 1 + kappa)
    torch.testing.assert_close(
        g - g[..., :1], (p - p[..., :1]) / (0.3 * alpha), rtol=1e-4, atol=1e-4
    )


def test_gaussian_scores_are_the_dense_log_likelihood_ratio() -> None:
    """The Woodbury shortcut against scipy's dense Gaussian densities."""
    gauss = GaussianPrototypes.fit(*TRAIN, kappa=4.0)
    x, y = TEST
    idx = sample_episodes(
        y, 40, n_way=3, k_shot=4, n_query=2, episodes=2, rng=np.random.default_rng(7)
    )
    eps = Episodes.from_indices(torch.as_tensor(x), idx, n_way=3, k_shot=4)
    fast = gauss.scores(eps).double().numpy()
    within = gauss.within.double().numpy()
    background = multivariate_normal(gauss.mean.double().numpy(), gauss.total.double().numpy())
    for e in range(2):
        for c in range(3):
            sup = F.normalize(eps.support[e, c].double(), dim=-1).numpy()
            dev = sup - sup.mean(0)
            spread = (dev.T @ dev + 4.0 * within) / (4 - 1 + 4.0)
            centre = sup.mean(0) / np.linalg.norm(sup.mean(0))
            person = multivariate_normal(centre, (1 + 1 / 4) * spread)
            for q in range(eps.queries.shape[1]):
                v = F.normalize(eps.queries[e, q].double(), dim=0).numpy()
                expected = person.logpdf(v) - background.logpdf(v)
                assert fast[e, q, c] == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_spread_shrinks_toward_the_pooled_one_for_few_photos() -> None:
    gauss = GaussianPrototypes.fit(*TRAIN, kappa=8.0)
    w = gauss.within.double()
    one = torch.as_tensor(TEST[0][:1])
    torch.testing.assert_close(gauss.spread(one), w)  # one photo: nothing of its own
    rng = np.random.default_rng(0)
    own = torch.as_tensor(rng.normal(size=(2000, DIM)) * np.linspace(0.01, 0.05, DIM))
    photos = F.normalize(torch.as_tensor(np.r_[[10.0] + [0.0] * (DIM - 1)]) + own, dim=-1)
    unit = photos - photos.mean(0)
    sample_cov = unit.T @ unit / (len(unit) - 1)
    many = gauss.spread(photos)
    assert torch.linalg.norm(many - sample_cov) < 0.01 * torch.linalg.norm(w - sample_cov)
    few = gauss.spread(photos[:3])  # two degrees of freedom against kappa = 8: mostly W
    assert torch.linalg.norm(few - w) < torch.linalg.norm(few - sample_cov)
    assert torch.allclose(
        GaussianPrototypes(gauss.mean, gauss.within, gauss.total, kappa=1e9).spread(photos[:3]), w
    )


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="support must be"):
        Episodes(torch.zeros(2, 3, 4), torch.zeros(2, 1, 4), torch.zeros(2, 1), torch.ones(2, 1))
    with pytest.raises(ValueError, match="query_labels and query_mask"):
        Episodes(torch.zeros(2, 3, 1, 4), torch.zeros(2, 5, 4), torch.zeros(2, 4), torch.ones(2, 5))
    with pytest.raises(ValueError, match="kappa"):
        isotropic(1.0, 0.0)
    with pytest.raises(ValueError, match="2\\+ people with 2\\+ photos"):
        GaussianPrototypes.fit(np.eye(4, dtype=np.float32), np.arange(4))
    with pytest.raises(ValueError, match="steps"):
        EpisodicTraining(steps=-1)
    with pytest.raises(ValueError, match="embeddings but"):
        train_episodic(learned("relation"), TRAIN[0], TRAIN[1][:-1], k_shot=1, seed=0)

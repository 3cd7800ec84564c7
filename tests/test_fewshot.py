"""Few-shot head: prototypes, cosine classifier, transductive fine-tuning, episode evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facerec.evaluation.fewshot import (
    CosineClassifier,
    EpisodeResult,
    FinetuneConfig,
    _sample_episodes,
    finetune_batched,
    finetune_on_support,
    prototype_logits,
    prototype_predict,
    prototypes,
    run_episodes,
)


def clusters(
    n_classes: int, per_class: int, dim: int, noise: float, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    emb = centres[:, None, :] + noise * rng.normal(size=(n_classes, per_class, dim))
    return emb.reshape(-1, dim).astype(np.float32), np.repeat(np.arange(n_classes), per_class)


def entropy(logits: torch.Tensor) -> float:
    log_p = torch.log_softmax(logits, dim=1)
    return float(-(log_p.exp() * log_p).sum(dim=1).mean())


def test_prototypes_are_normalised_means_of_normalised_embeddings() -> None:
    support = torch.tensor([[2.0, 0.0], [0.0, 5.0], [0.0, -3.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    protos = prototypes(support, labels, 2)
    # class 0: mean of (1, 0) and (0, 1) -> (1, 1)/sqrt 2; the norms 2 and 5 do not matter
    expected0 = torch.tensor([1.0, 1.0]) / 2**0.5
    mean1 = (torch.tensor([0.0, -1.0]) + torch.tensor([1.0, 1.0]) / 2**0.5) / 2
    torch.testing.assert_close(protos[0], expected0)
    torch.testing.assert_close(protos[1], mean1 / mean1.norm())
    with pytest.raises(ValueError, match=r"classes \[2\] have no support"):
        prototypes(support, labels, 3)
    with pytest.raises(ValueError, match="integer"):
        prototypes(support, labels.float(), 2)


def test_prototype_logits_and_probabilities() -> None:
    protos = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), dim=1)
    queries = torch.tensor([[3.0, 0.1], [-2.0, 0.5]])
    logits = prototype_logits(queries, protos, scale=7.0)
    cos = F.normalize(queries, dim=1) @ protos.T
    torch.testing.assert_close(logits, 7.0 * cos)
    probs = prototype_predict(queries, protos, scale=7.0)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))
    assert probs.argmax(dim=1).tolist() == [0, 2]
    torch.testing.assert_close(probs, torch.softmax(logits, dim=1))


def test_cosine_classifier_from_prototypes_equals_the_prototype_classifier() -> None:
    emb, labels = clusters(5, 4, 16, 1.0, seed=0)
    support, y = torch.from_numpy(emb), torch.from_numpy(labels)
    protos = prototypes(support, y, 5)
    rng_state = torch.get_rng_state()
    head = CosineClassifier.from_prototypes(protos, scale=12.0)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG stream is untouched
    torch.testing.assert_close(head(support), prototype_logits(support, protos, 12.0))
    assert torch.equal(head.bias.detach(), torch.zeros(5))
    # zero fine-tuning steps leaves the head at the prototypes
    untouched = finetune_on_support(support, y, support, steps=0, scale=12.0)
    torch.testing.assert_close(untouched(support), head(support))


def one_shot_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """5 separable classes, one off-centre shot each: prototypes err on some queries."""
    emb, labels = clusters(5, 41, 32, 1.9, seed=4)
    x, y = torch.from_numpy(emb), torch.from_numpy(labels)
    first = torch.arange(0, 5 * 41, 41)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[first] = False
    return x[first], y[first], x[mask], y[mask]


def test_finetuning_reaches_at_least_the_prototype_accuracy() -> None:
    support, y_support, queries, y_queries = one_shot_problem()
    protos = prototypes(support, y_support, 5)
    proto_acc = (prototype_logits(queries, protos).argmax(1) == y_queries).float().mean().item()
    head = finetune_on_support(support, y_support, queries)
    with torch.no_grad():
        tuned_acc = (head(queries).argmax(1) == y_queries).float().mean().item()
        assert (head(support).argmax(1) == y_support).all()
    assert proto_acc < 0.95  # the problem is not trivial for one shot ...
    assert tuned_acc >= proto_acc  # ... and the transductive head does no worse (here: better)


def test_entropy_term_lowers_query_entropy() -> None:
    support, y_support, queries, _ = one_shot_problem()
    protos = prototypes(support, y_support, 5)
    with torch.no_grad():
        initial = entropy(prototype_logits(queries, protos))
        without = entropy(
            finetune_on_support(support, y_support, queries, entropy_weight=0.0)(queries)
        )
        with_term = entropy(
            finetune_on_support(support, y_support, queries, entropy_weight=1.0)(queries)
        )
    assert with_term < 0.7 * initial  # 0.84 -> 0.44 here
    assert with_term < 0.7 * without  # and not just because the support loss sharpened it


def test_batched_finetuning_equals_one_episode_at_a_time() -> None:
    emb, _ = clusters(6, 6, 8, 1.0, seed=2)
    x = torch.from_numpy(emb).reshape(6, 6, 8)
    cfg = FinetuneConfig(steps=10)
    # two episodes: classes 0-2 and 3-5, 1 shot, 5 queries per class (the second has 2 padded)
    sup = torch.stack([x[0:3, 0], x[3:6, 0]])
    qry = torch.stack([x[0:3, 1:].reshape(-1, 8), x[3:6, 1:].reshape(-1, 8)])
    mask = torch.ones(2, 15, dtype=torch.bool)
    mask[1, -2:] = False
    labels_s = torch.tensor([[0, 1, 2], [0, 1, 2]])
    protos = torch.stack([prototypes(s, labels_s[0], 3) for s in sup])
    w, b = finetune_batched(protos, sup, labels_s, qry, mask, cfg)
    for e in range(2):
        alone = finetune_on_support(sup[e], labels_s[e], qry[e][mask[e]], steps=10)
        torch.testing.assert_close(w[e], alone.weight.detach())
        torch.testing.assert_close(b[e], alone.bias.detach())


def test_episode_sampling_respects_the_protocol() -> None:
    # class c has 2 + c images; k_shot=2 leaves c queries (0 for class 0: ineligible)
    labels = np.concatenate([np.full(2 + c, c) for c in range(6)])
    support, query, mask = _sample_episodes(
        labels, 6, n_way=3, k_shot=2, n_query=3, episodes=50, rng=np.random.default_rng(0)
    )
    for s, q, m in zip(support, query, mask, strict=True):
        classes = labels[s].reshape(3, 2)
        assert (classes == classes[:, :1]).all() and len(set(classes[:, 0])) == 3
        assert 0 not in classes
        for way in range(3):
            c = classes[way, 0]
            qw, mw = q[way * 3 : (way + 1) * 3], m[way * 3 : (way + 1) * 3]
            assert mw.sum() == min(3, c)  # min(n_query, available - k_shot)
            assert (labels[qw[mw]] == c).all()
            assert not set(qw[mw]) & set(s)
    with pytest.raises(ValueError, match="need 6 classes with at least 3 images, found 5"):
        run_episodes(np.ones((len(labels), 4)), labels, n_way=6, k_shot=2, seed=0)


@pytest.mark.parametrize("finetune", [False, True])
def test_well_separated_clusters_are_classified_perfectly(finetune: bool) -> None:
    emb, labels = clusters(20, 12, 32, 0.1, seed=1)
    result = run_episodes(emb, labels, k_shot=1, episodes=40, finetune=finetune, seed=0)
    assert result == EpisodeResult(
        mean_accuracy=result.mean_accuracy,
        ci95=result.ci95,
        episodes=40,
        n_way=5,
        k_shot=1,
        finetune=finetune,
    )
    assert result.mean_accuracy >= 0.99


@pytest.mark.parametrize("finetune", [False, True])
def test_random_labels_give_chance_accuracy(finetune: bool) -> None:
    emb, labels = clusters(20, 20, 32, 1.0, seed=2)
    shuffled = np.random.default_rng(0).permutation(labels)
    result = run_episodes(emb, shuffled, n_way=5, k_shot=5, episodes=100, finetune=finetune, seed=1)
    assert abs(result.mean_accuracy - 0.2) < 0.04
    assert result.ci95 < 0.03


def test_confidence_interval_shrinks_and_seeds_reproduce() -> None:
    emb, labels = clusters(30, 10, 16, 1.6, seed=3)
    labels_str = np.array([f"person-{c}" for c in labels])  # any hashable label works
    few = run_episodes(emb, labels_str, episodes=50, seed=0)
    many = run_episodes(emb, labels_str, episodes=800, seed=0)
    assert 0.3 < many.mean_accuracy < 0.95  # a problem with real spread
    assert many.ci95 < 0.5 * few.ci95  # ~ 1 / sqrt(16)
    assert run_episodes(emb, labels_str, episodes=50, seed=0) == few
    assert run_episodes(emb, labels_str, episodes=50, seed=1) != few
    assert "5-way 1-shot" in str(few)

"""Few-shot classification on fixed face embeddings: prototypes, a cosine head, transductive fine-tuning.

Enrolling a person from one to five photos is a few-shot problem, and the
literature's simple baselines are the right tools:

* **Prototypes** (Snell, Swersky & Zemel 2017, "Prototypical Networks"): each
  class is the mean of its support embeddings; a query goes to the nearest
  prototype. We average *unit* embeddings and renormalise, so every photo
  counts equally whatever its norm, and compare by cosine, the metric our
  face embeddings are trained for.
* **Cosine classifier** (Chen et al. 2019, "A Closer Look at Few-shot
  Classification", Baseline++; Gidaris & Komodakis 2018): logits
  s * cos(W_c, q) + b_c. Initialised with W = prototypes and b = 0 it is
  exactly the prototype classifier, which makes it a safe starting point for
  fine-tuning; the scale s sets how peaked the softmax is (cosines live in
  [-1, 1], so without it the softmax stays almost uniform).
* **Transductive fine-tuning** (Dhillon, Chaudhari, Ravichandran & Soatto 2020,
  "A Baseline for Few-Shot Image Classification"): fit the head by
  cross-entropy on the labelled support *plus* the entropy of its predictions
  on the unlabelled queries. The entropy term moves decision boundaries away
  from dense regions of query embeddings, which is where one or five support
  shots are least informative. Only the head is trained; the embeddings are
  fixed tensors (the face model is never touched).

`run_episodes` evaluates either on N-way K-shot episodes drawn from a labelled
embedding set and reports mean accuracy with a 95% confidence interval, the
protocol of the papers above (600 episodes, 15 queries per class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_SCALE = 10.0
"""Cosine-logit scale: 10 turns a cosine gap of 0.1 into ~2.7x odds."""


@dataclass(frozen=True, slots=True)
class FinetuneConfig:
    """Hyper-parameters of `finetune_on_support`.

    Full-batch Adam on the head only, `steps` updates of step size ~`lr` per
    weight. Few steps are deliberate: the head starts at the prototype
    classifier and the support set is too small to fit C x D weights without
    overfitting, so fine-tuning should nudge, not retrain. On synthetic 5-way
    1- and 5-shot episodes (128-d and 512-d Gaussian classes) 25 to 50 steps at
    lr 3e-3 to 1e-2 gave the same accuracy (and 1e-3 for 50 steps fell short),
    so the cheapest is the default. `entropy_weight` = 1 is Dhillon et al.'s.
    """

    scale: float = DEFAULT_SCALE
    steps: int = 25
    lr: float = 1e-2
    entropy_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.entropy_weight >= 0:
            raise ValueError(f"entropy_weight must be >= 0, got {self.entropy_weight}")


_DEFAULTS = FinetuneConfig()


@dataclass(frozen=True, slots=True)
class EpisodeResult:
    """Mean episode accuracy and its 95% confidence half-width (1.96 std / sqrt(episodes))."""

    mean_accuracy: float
    ci95: float
    episodes: int
    n_way: int
    k_shot: int
    finetune: bool

    def __str__(self) -> str:
        head = "fine-tuned cosine head" if self.finetune else "nearest prototype"
        return (
            f"{self.n_way}-way {self.k_shot}-shot, {head}: "
            f"{100 * self.mean_accuracy:.2f}% +- {100 * self.ci95:.2f} ({self.episodes} episodes)"
        )


def _check_embeddings(x: Tensor, name: str) -> None:
    if x.ndim != 2 or not x.is_floating_point():
        raise ValueError(f"{name} must be a float (N, D) matrix, got {x.dtype} {tuple(x.shape)}")


def _check_labels(labels: Tensor, n: int, n_classes: int) -> None:
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.unique().tolist()}")


def prototypes(support: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """Class prototypes (C, D): the normalised mean of each class's normalised support embeddings.

    `labels` are integer class indices in [0, n_classes). Raises ValueError if
    a class has no support example (it would have no prototype).
    """
    _check_embeddings(support, "support")
    _check_labels(labels, support.shape[0], n_classes)
    counts = torch.bincount(labels, minlength=n_classes)
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"classes {empty} have no support example")
    unit = F.normalize(support, dim=1)
    sums = torch.zeros(n_classes, support.shape[1], dtype=unit.dtype, device=unit.device)
    sums = sums.index_add(0, labels, unit)
    return F.normalize(sums / counts[:, None].to(unit.dtype), dim=1)


def prototype_logits(queries: Tensor, protos: Tensor, scale: float = DEFAULT_SCALE) -> Tensor:
    """Cosine logits s * M q (Q, C) of queries (Q, D) against prototypes M (C, D)."""
    _check_embeddings(queries, "queries")
    _check_embeddings(protos, "protos")
    return scale * F.normalize(queries, dim=1) @ F.normalize(protos, dim=1).T


def prototype_predict(queries: Tensor, protos: Tensor, scale: float = DEFAULT_SCALE) -> Tensor:
    """Class probabilities softmax(s * M q) (Q, C); the argmax is the nearest prototype."""
    return torch.softmax(prototype_logits(queries, protos, scale), dim=1)


class CosineClassifier(nn.Module):
    """Linear head on the unit sphere: logits_c = s * cos(W_c, q) + b_c (Chen et al. 2019).

    The scale s is fixed, not learned: with a handful of labelled examples a
    learnable scale simply grows to drive the support loss to zero.
    """

    def __init__(
        self,
        n_classes: int,
        dim: int,
        scale: float = DEFAULT_SCALE,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if n_classes < 1 or dim < 1:
            raise ValueError(f"need n_classes >= 1 and dim >= 1, got {n_classes}, {dim}")
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.randn(n_classes, dim, generator=generator) / dim**0.5)
        self.bias = nn.Parameter(torch.zeros(n_classes))

    @classmethod
    def from_prototypes(cls, protos: Tensor, scale: float = DEFAULT_SCALE) -> CosineClassifier:
        """The head that reproduces `prototype_logits(., protos, scale)`: W = M, b = 0."""
        _check_embeddings(protos, "protos")
        # A private generator: overwriting a random init must not advance the global RNG.
        head = cls(protos.shape[0], protos.shape[1], scale, generator=torch.Generator())
        with torch.no_grad():
            head.weight.copy_(protos.detach())
        return head.to(device=protos.device, dtype=protos.dtype)

    def forward(self, queries: Tensor) -> Tensor:
        return self.scale * F.normalize(queries, dim=-1) @ F.normalize(self.weight, dim=-1).T + (
            self.bias
        )

    def extra_repr(self) -> str:
        n_classes, dim = self.weight.shape
        return f"n_classes={n_classes}, dim={dim}, scale={self.scale}"


def finetune_batched(
    weight: Tensor,
    support: Tensor,
    support_labels: Tensor,
    queries: Tensor,
    query_mask: Tensor,
    config: FinetuneConfig,
) -> tuple[Tensor, Tensor]:
    """Fine-tune E independent cosine heads at once; returns (W (E, C, D), b (E, C)).

    Shapes: weight (E, C, D) initial W, support (E, S, D), support_labels (E, S),
    queries (E, Q, D) padded, query_mask (E, Q) True for real queries. The
    objective is the *sum* over episodes of each episode's mean support
    cross-entropy + entropy_weight * mean query entropy; the heads share no
    parameter and Adam is element-wise, so each episode is optimised exactly as
    it would be alone (batching is only for speed).
    """
    n_episodes, n_classes, _ = weight.shape
    n_support = support.shape[1]
    w = weight.detach().clone().requires_grad_(True)
    b = torch.zeros(n_episodes, n_classes, dtype=w.dtype, device=w.device, requires_grad=True)
    use_queries = config.entropy_weight > 0 and queries.shape[1] > 0
    # Support and queries go through one bmm per step: tiny ops, so fewer is faster.
    inputs = torch.cat([support, queries], dim=1) if use_queries else support
    inputs = F.normalize(inputs.detach(), dim=-1)
    weights = query_mask.to(w.dtype)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
    optimizer = torch.optim.Adam([w, b], lr=config.lr)
    with torch.enable_grad():
        for _ in range(config.steps):
            optimizer.zero_grad(set_to_none=True)
            unit_w = F.normalize(w, dim=-1).transpose(1, 2)
            log_p = torch.log_softmax(config.scale * torch.bmm(inputs, unit_w) + b[:, None], -1)
            # mean support cross-entropy per episode, summed over episodes
            nll = -log_p[:, :n_support].gather(2, support_labels[..., None])
            loss = nll.sum() / n_support
            if use_queries:
                log_q = log_p[:, n_support:]
                entropy = -(log_q.exp() * log_q).sum(dim=-1)
                loss = loss + config.entropy_weight * (entropy * weights).sum()
            loss.backward()
            optimizer.step()
    return w.detach(), b.detach()


def finetune_on_support(
    support: Tensor,
    support_labels: Tensor,
    queries: Tensor,
    *,
    n_classes: int | None = None,
    scale: float = _DEFAULTS.scale,
    steps: int = _DEFAULTS.steps,
    lr: float = _DEFAULTS.lr,
    entropy_weight: float = _DEFAULTS.entropy_weight,
) -> CosineClassifier:
    """A cosine head initialised at the prototypes and fine-tuned transductively (Dhillon et al. 2020).

    Minimises mean cross-entropy on (support, support_labels) plus
    `entropy_weight` times the mean prediction entropy on the unlabelled
    `queries` (pass an empty (0, D) tensor, or entropy_weight=0, for plain
    inductive fine-tuning), with full-batch Adam for `steps` steps. Only W and b
    are trained. There is no randomness (full batch, deterministic
    initialisation), so the result is reproducible without a seed.
    `n_classes` defaults to max(support_labels) + 1.
    """
    config = FinetuneConfig(scale=scale, steps=steps, lr=lr, entropy_weight=entropy_weight)
    _check_embeddings(support, "support")
    _check_embeddings(queries, "queries")
    if queries.shape[1] != support.shape[1]:
        raise ValueError(f"queries have dim {queries.shape[1]}, support has {support.shape[1]}")
    if n_classes is None:
        n_classes = int(support_labels.max()) + 1 if support_labels.numel() else 0
    support_labels = support_labels.long()
    protos = prototypes(support, support_labels, n_classes)
    w, b = finetune_batched(
        protos[None],
        support[None],
        support_labels[None],
        queries[None],
        torch.ones(1, queries.shape[0], dtype=torch.bool, device=queries.device),
        config,
    )
    head = CosineClassifier.from_prototypes(w[0], scale)
    with torch.no_grad():
        head.bias.copy_(b[0])
    return head


_CHUNK_ELEMENTS = 1 << 24
"""Episodes are processed together up to ~this many query-embedding floats (64 MiB in float32):
one batched optimisation instead of many small ones (per-op overhead dominates tiny episodes)."""


@dataclass(frozen=True, slots=True, eq=False)
class EpisodeIndices:
    """Row indices into a labelled embedding set for E episodes, padded to fixed widths.

    Within an episode, class `way` owns support columns way*k_shot.. and query
    columns way*n_query..; `query_mask` is False on padding (a class with
    fewer than k_shot + n_query images). `unknown` holds queries of people
    outside the support set (open-set episodes; width 0 when there are none),
    `unknown_mask` its padding.
    """

    support: npt.NDArray[np.intp]  # (E, n_way * k_shot)
    query: npt.NDArray[np.intp]  # (E, n_way * n_query)
    query_mask: npt.NDArray[np.bool_]
    unknown: npt.NDArray[np.intp]  # (E, n_unknown * n_query)
    unknown_mask: npt.NDArray[np.bool_]


def sample_episodes(
    labels: npt.NDArray[np.intp],
    n_classes: int,
    *,
    n_way: int,
    k_shot: int,
    n_query: int,
    episodes: int,
    rng: np.random.Generator,
    n_unknown: int = 0,
) -> EpisodeIndices:
    """Draw N-way K-shot episodes, optionally with `n_unknown` people outside the support.

    Known classes are drawn among those with at least k_shot + 1 images; each
    gives `k_shot` support and min(n_query, available - k_shot) query images,
    without overlap. Unknown people are drawn among the remaining classes with
    any image and give min(n_query, available) queries each. The unknown draws
    come after an episode's known draws, so with n_unknown = 0 the episodes are
    exactly those of earlier releases for the same seed.
    """
    members = [np.flatnonzero(labels == c) for c in range(n_classes)]
    eligible = np.array([c for c in range(n_classes) if len(members[c]) >= k_shot + 1])
    if len(eligible) < n_way:
        raise ValueError(
            f"{n_way}-way {k_shot}-shot episodes need {n_way} classes with at least "
            f"{k_shot + 1} images, found {len(eligible)}"
        )
    present = np.array([c for c in range(n_classes) if len(members[c])])
    if n_unknown and len(present) < n_way + n_unknown:
        raise ValueError(
            f"open-set episodes with {n_way} known and {n_unknown} unknown people need "
            f"{n_way + n_unknown} people, found {len(present)}"
        )
    support = np.empty((episodes, n_way * k_shot), dtype=np.intp)
    query = np.zeros((episodes, n_way * n_query), dtype=np.intp)
    mask = np.zeros((episodes, n_way * n_query), dtype=bool)
    unknown = np.zeros((episodes, n_unknown * n_query), dtype=np.intp)
    unknown_mask = np.zeros((episodes, n_unknown * n_query), dtype=bool)
    for e in range(episodes):
        known = rng.choice(eligible, size=n_way, replace=False)
        for way, c in enumerate(known):
            perm = rng.permutation(members[c])
            q = perm[k_shot : k_shot + n_query]
            support[e, way * k_shot : (way + 1) * k_shot] = perm[:k_shot]
            query[e, way * n_query : way * n_query + len(q)] = q
            mask[e, way * n_query : way * n_query + len(q)] = True
        if n_unknown:
            others = np.setdiff1d(present, known)
            for slot, c in enumerate(rng.choice(others, size=n_unknown, replace=False)):
                q = rng.permutation(members[c])[:n_query]
                unknown[e, slot * n_query : slot * n_query + len(q)] = q
                unknown_mask[e, slot * n_query : slot * n_query + len(q)] = True
    return EpisodeIndices(support, query, mask, unknown, unknown_mask)


def _sample_episodes(
    labels: npt.NDArray[np.intp],
    n_classes: int,
    *,
    n_way: int,
    k_shot: int,
    n_query: int,
    episodes: int,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Closed-set index arrays: support (E, n_way*k_shot), queries (E, n_way*n_query) padded with 0, mask."""
    idx = sample_episodes(
        labels,
        n_classes,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        episodes=episodes,
        rng=rng,
    )
    return idx.support, idx.query, idx.query_mask


def run_episodes(
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 15,
    episodes: int = 600,
    finetune: bool = False,
    seed: int,
    config: FinetuneConfig | None = None,
) -> EpisodeResult:
    """Mean accuracy over random N-way K-shot episodes drawn from a labelled embedding set.

    Each episode picks `n_way` distinct classes among those with at least
    k_shot + 1 images, takes `k_shot` support and min(n_query, available - k_shot)
    query images per class (without overlap), and classifies the queries by the
    nearest prototype (cosine) or, with `finetune=True`, by the transductively
    fine-tuned cosine head (`config`, default `FinetuneConfig()`). Episodes are
    reproducible from `seed`; fine-tuning runs all episodes of a chunk as one
    batched optimisation. The 95% interval is 1.96 * std / sqrt(episodes), std
    being the population standard deviation of per-episode accuracies, as in
    the papers' evaluation code.
    """
    if n_way < 2 or k_shot < 1 or n_query < 1 or episodes < 1:
        raise ValueError(
            f"need n_way >= 2, k_shot >= 1, n_query >= 1, episodes >= 1; got "
            f"{n_way}, {k_shot}, {n_query}, {episodes}"
        )
    emb = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    _check_embeddings(emb, "embeddings")
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    inverse = inverse.reshape(-1)
    if inverse.shape[0] != emb.shape[0]:
        raise ValueError(f"{emb.shape[0]} embeddings but {inverse.shape[0]} labels")
    rng = np.random.default_rng(seed)
    support_idx, query_idx, query_mask = _sample_episodes(
        inverse.astype(np.intp),
        int(inverse.max()) + 1 if inverse.size else 0,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        episodes=episodes,
        rng=rng,
    )
    cfg = config or _DEFAULTS
    unit = F.normalize(emb, dim=1)
    # Within an episode, class `way` owns support slots way*k_shot.. and query slots way*n_query..
    support_labels = torch.arange(n_way).repeat_interleave(k_shot).expand(episodes, -1)
    query_labels = torch.arange(n_way).repeat_interleave(n_query).expand(episodes, -1)
    accuracies = np.empty(episodes)
    chunk = max(1, _CHUNK_ELEMENTS // (query_idx.shape[1] * emb.shape[1]))
    for start in range(0, episodes, chunk):
        sl = slice(start, min(start + chunk, episodes))
        sup = unit[torch.as_tensor(support_idx[sl])]  # (E, n_way*k_shot, D)
        qry = unit[torch.as_tensor(query_idx[sl])]
        mask = torch.as_tensor(query_mask[sl])
        e, _, dim = sup.shape
        protos = F.normalize(sup.reshape(e, n_way, k_shot, dim).mean(dim=2), dim=-1)
        if finetune:
            w, b = finetune_batched(protos, sup, support_labels[sl], qry, mask, cfg)
            logits = torch.bmm(qry, F.normalize(w, dim=-1).transpose(1, 2)) * cfg.scale
            logits = logits + b[:, None, :]
        else:
            logits = torch.bmm(qry, protos.transpose(1, 2))
        correct = (logits.argmax(dim=-1) == query_labels[sl]) & mask
        accuracies[sl] = (correct.sum(dim=1) / mask.sum(dim=1)).numpy()
    return EpisodeResult(
        mean_accuracy=float(accuracies.mean()),
        ci95=float(1.96 * accuracies.std() / np.sqrt(episodes)),
        episodes=episodes,
        n_way=n_way,
        k_shot=k_shot,
        finetune=finetune,
    )

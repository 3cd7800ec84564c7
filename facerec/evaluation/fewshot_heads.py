"""Episodic few-shot heads on frozen face embeddings, scored side by side with the prototypes.

`facerec.evaluation.fewshot` has the two heads enrolment uses (nearest prototype, and a
cosine head fine-tuned on the support set). The few-shot literature offers
heads that *learn how to compare* from episodes of other people; on a strong
face embedding the question is whether any of them still adds something, at
closed-set accuracy and, what a door needs, at rejecting strangers. Every
head here maps a batch of episodes to scores (E, Q, C) whose argmax is the
predicted person and whose max is the confidence that the query is that
person (thresholded for open-set identification), and none touches the face
model: its embeddings are fixed unit vectors.

* **Relation network** (Sung et al. 2018, "Learning to Compare: Relation
  Network for Few-Shot Learning"): a small learned similarity g(c, q) in
  [0, 1] between a class representation c and a query q, trained on episodes
  by mean squared error to 1 for the query's class and 0 for the others, as
  in the paper. Two departures, both because the inputs are fixed unit
  vectors rather than feature maps: g reads the pair's element-wise product
  and absolute difference (symmetric in the pair, and cosine is the sum of
  the product, so g can start from what the embedding was trained for)
  instead of their concatenation; and a K-shot class is its prototype (the
  normalised mean) instead of the sum of its K feature maps, so one g serves
  every K.
* **Matching network** (Vinyals et al. 2016, "Matching Networks for One Shot
  Learning"): a query's class probability is the softmax attention over the
  support photos, summed per class. Without full-context embeddings (FCE)
  the learned part is a linear map of the embedding, initialised at the
  identity (so the untrained head is soft nearest-neighbour by cosine), and
  the attention temperature; with FCE, a bidirectional LSTM reads the whole
  support set (g) and an attention LSTM re-reads it for each query for
  `steps` steps (f), each with a skip connection, as in the paper's appendix.
* **Gaussian prototypes**: each person is a Gaussian around their prototype.
  Their spread is the scatter of their own photos shrunk toward the pooled
  within-person covariance W of the training people, with the weight of
  `kappa` pseudo-photos: (S_c + kappa W) / (n_c - 1 + kappa), which is W
  itself for a one-shot person. The predictive spread of a new photo adds
  the uncertainty of a mean of n_c photos (factor 1 + 1/n_c), and the score
  is the log-likelihood ratio of that Gaussian against the population
  (a person drawn at random: mean m, covariance T of the training photos,
  every person weighted once), the quantity a threshold on "is this anyone
  enrolled" should rest on. With W = s^2 I and equal photo counts it ranks
  people exactly as the nearest prototype does (the Mahalanobis distance is
  then the Euclidean one, 2 - 2 cos for unit vectors).

The learned heads are trained only on people other than those they are
evaluated on (`train_episodic`, `GaussianPrototypes.fit`): the evaluation
decides which, see `facerec.evaluation.episodes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facerec.evaluation.fewshot import (
    DEFAULT_SCALE,
    EpisodeIndices,
    FinetuneConfig,
    finetune_batched,
    sample_episodes,
)


class HeadKind(StrEnum):
    """The heads compared on episodes, in the order they are reported."""

    PROTOTYPES = "prototypes"
    FINETUNED = "fine-tuned cosine"
    RELATION = "relation network"
    MATCHING = "matching network"
    MATCHING_FCE = "matching network + FCE"
    GAUSSIAN = "Gaussian prototypes"

    @property
    def learned(self) -> bool:
        """Trained on episodes of other people (the Gaussian head is fitted to them)."""
        return self in (HeadKind.RELATION, HeadKind.MATCHING, HeadKind.MATCHING_FCE)


@dataclass(frozen=True, slots=True, eq=False)
class Episodes:
    """E episodes as tensors: support (E, C, K, D) class-major, queries (E, Q, D).

    `query_labels` (E, Q) is each query's class in [0, C), or -1 for a
    person outside the support set (open-set); `query_mask` (E, Q) is False
    on padding, which every head ignores.
    """

    support: Tensor
    queries: Tensor
    query_labels: Tensor
    query_mask: Tensor

    def __post_init__(self) -> None:
        if self.support.ndim != 4 or self.queries.ndim != 3:
            raise ValueError(
                f"support must be (E, C, K, D) and queries (E, Q, D), got "
                f"{tuple(self.support.shape)} and {tuple(self.queries.shape)}"
            )
        e, _, _, d = self.support.shape
        if self.queries.shape[0] != e or self.queries.shape[2] != d:
            raise ValueError(
                f"queries {tuple(self.queries.shape)} do not match support {tuple(self.support.shape)}"
            )
        q = self.queries.shape[:2]
        if self.query_labels.shape != q or self.query_mask.shape != q:
            raise ValueError(f"query_labels and query_mask must have shape {tuple(q)}")

    @property
    def n_way(self) -> int:
        return int(self.support.shape[1])

    @property
    def k_shot(self) -> int:
        return int(self.support.shape[2])

    @classmethod
    def from_indices(
        cls,
        embeddings: Tensor,
        indices: EpisodeIndices,
        *,
        n_way: int,
        k_shot: int,
        rows: slice = slice(None),
    ) -> Episodes:
        """Gather `rows` of sampled episodes from an (N, D) embedding matrix (normalised here).

        Known queries come first, then the unknown ones (label -1).
        """
        unit = F.normalize(embeddings, dim=-1)
        sup = unit[torch.as_tensor(indices.support[rows])]
        e = sup.shape[0]
        sup = sup.reshape(e, n_way, k_shot, -1)
        n_query = indices.query.shape[1] // n_way
        known = torch.arange(n_way).repeat_interleave(n_query).expand(e, -1)
        query_idx = np.concatenate([indices.query[rows], indices.unknown[rows]], axis=1)
        mask = np.concatenate([indices.query_mask[rows], indices.unknown_mask[rows]], axis=1)
        unknown = torch.full((e, indices.unknown.shape[1]), -1, dtype=torch.long)
        return cls(
            support=sup,
            queries=unit[torch.as_tensor(query_idx)],
            query_labels=torch.cat([known, unknown], dim=1),
            query_mask=torch.as_tensor(mask),
        )


class EpisodicHead(Protocol):
    """Anything that scores the queries of a batch of episodes against their classes."""

    def scores(self, episodes: Episodes) -> Tensor:
        """(E, Q, C): the argmax is the predicted class, the max the confidence in it."""
        ...


def episode_prototypes(support: Tensor) -> Tensor:
    """(E, C, D): the normalised mean of each class's unit support embeddings."""
    return F.normalize(F.normalize(support, dim=-1).mean(dim=2), dim=-1)


class PrototypeHead:
    """Nearest prototype by cosine (`facerec.evaluation.fewshot`): what identification does today."""

    def scores(self, episodes: Episodes) -> Tensor:
        protos = episode_prototypes(episodes.support)
        return torch.bmm(F.normalize(episodes.queries, dim=-1), protos.transpose(1, 2))


@dataclass(frozen=True, slots=True)
class FinetunedCosineHead:
    """The transductively fine-tuned cosine head (`facerec.evaluation.fewshot.finetune_on_support`).

    Its queries include every query of the episode, unknown people too: a
    transductive head cannot tell them apart. Scores are logits s cos + b.
    """

    config: FinetuneConfig = field(default_factory=FinetuneConfig)

    def scores(self, episodes: Episodes) -> Tensor:
        e, c, k, d = episodes.support.shape
        support = F.normalize(episodes.support.reshape(e, c * k, d), dim=-1)
        labels = torch.arange(c).repeat_interleave(k).expand(e, -1)
        queries = F.normalize(episodes.queries, dim=-1)
        protos = episode_prototypes(episodes.support)
        w, b = finetune_batched(protos, support, labels, queries, episodes.query_mask, self.config)
        logits = torch.bmm(queries, F.normalize(w, dim=-1).transpose(1, 2)) * self.config.scale
        return logits + b[:, None, :]


class LearnedHead(nn.Module):
    """A head whose parameters are learned from episodes of other people (`train_episodic`)."""

    def scores(self, episodes: Episodes) -> Tensor:
        raise NotImplementedError

    def loss(self, episodes: Episodes) -> Tensor:
        """The training objective on episodes whose queries are all known people."""
        raise NotImplementedError


def _known_queries(episodes: Episodes) -> tuple[Tensor, Tensor]:
    """The mask of real, known queries and their labels (unknowns and padding set to 0)."""
    keep = episodes.query_mask & (episodes.query_labels >= 0)
    return keep, episodes.query_labels.clamp_min(0)


class RelationNetwork(LearnedHead):
    """g(c, q) = sigmoid(MLP([c * q, |c - q|])), trained by MSE to one-hot (Sung et al. 2018)."""

    def __init__(self, dim: int, hidden: int = 64, *, generator: torch.Generator | None = None):
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError(f"need dim >= 1 and hidden >= 1, got {dim}, {hidden}")
        with torch.random.fork_rng(devices=[]):  # PyTorch's own init draws from the global RNG
            self.g = nn.Sequential(
                nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
            )
            self.out = nn.Linear(hidden, 1)
        _init_weights(self, generator)

    def relation(self, classes: Tensor, queries: Tensor) -> Tensor:
        """Relation scores in [0, 1] of broadcastable (..., D) class and query embeddings."""
        classes, queries = torch.broadcast_tensors(classes, queries)
        pair = torch.cat([classes * queries, (classes - queries).abs()], dim=-1)
        return torch.sigmoid(self.out(self.g(pair))).squeeze(-1)

    def scores(self, episodes: Episodes) -> Tensor:
        protos = episode_prototypes(episodes.support)  # (E, C, D)
        queries = F.normalize(episodes.queries, dim=-1)
        return self.relation(protos[:, None, :, :], queries[:, :, None, :])

    def loss(self, episodes: Episodes) -> Tensor:
        keep, labels = _known_queries(episodes)
        target = F.one_hot(labels, episodes.n_way).to(episodes.queries.dtype)
        err = ((self.scores(episodes) - target) ** 2).sum(dim=-1)
        return (err * keep).sum() / keep.sum().clamp_min(1)


class MatchingNetwork(LearnedHead):
    """Attention over the support set (Vinyals et al. 2016), with or without FCE.

    The class score is log(mean over the class's support photos of
    exp(tau cos(f(q), g(x_i)))): its softmax over classes is the paper's
    attention summed per class, and for one shot it is tau cos, so the
    untrained head without FCE ranks and thresholds exactly as the prototypes.
    """

    def __init__(
        self,
        dim: int,
        *,
        fce: bool,
        steps: int = 3,
        scale: float = DEFAULT_SCALE,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if dim < 1 or steps < 1 or not scale > 0:
            raise ValueError(f"need dim >= 1, steps >= 1, scale > 0; got {dim}, {steps}, {scale}")
        self.fce = fce
        self.steps = steps
        with torch.random.fork_rng(devices=[]):  # PyTorch's own init draws from the global RNG
            self.embed = nn.Linear(dim, dim)
            self.support_lstm = (
                nn.LSTM(dim, dim, batch_first=True, bidirectional=True) if fce else None
            )
            self.query_lstm = nn.LSTMCell(dim, dim) if fce else None
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        _init_weights(self, generator)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(dim))
            self.embed.bias.zero_()

    def _encode(self, episodes: Episodes) -> tuple[Tensor, Tensor]:
        """(g (E, S, D) support, f (E, Q, D) queries), both unit vectors."""
        e, c, k, d = episodes.support.shape
        g = self.embed(F.normalize(episodes.support.reshape(e, c * k, d), dim=-1))
        f = self.embed(F.normalize(episodes.queries, dim=-1))
        if self.support_lstm is not None and self.query_lstm is not None:
            both, _ = self.support_lstm(g)
            g = g + both[..., :d] + both[..., d:]
            g = F.normalize(g, dim=-1)
            q = f.shape[1]
            flat_f = f.reshape(e * q, d)
            h, cell = flat_f, torch.zeros_like(flat_f)
            for _ in range(self.steps):
                attention = torch.softmax(
                    self.log_scale.exp() * torch.bmm(F.normalize(h, dim=-1).view(e, q, d), g.mT), -1
                )
                read = torch.bmm(attention, g).reshape(e * q, d)
                h_hat, cell = self.query_lstm(flat_f, (h + read, cell))
                h = h_hat + flat_f
            f = h.view(e, q, d)
        return F.normalize(g, dim=-1), F.normalize(f, dim=-1)

    def scores(self, episodes: Episodes) -> Tensor:
        e, c, k, _ = episodes.support.shape
        g, f = self._encode(episodes)
        logits = self.log_scale.exp() * torch.bmm(f, g.mT)  # (E, Q, C*K), class-major
        return torch.logsumexp(logits.view(e, -1, c, k), dim=-1) - math.log(k)

    def loss(self, episodes: Episodes) -> Tensor:
        keep, labels = _known_queries(episodes)
        log_p = torch.log_softmax(self.scores(episodes), dim=-1)
        nll = -log_p.gather(-1, labels[..., None]).squeeze(-1)
        return (nll * keep).sum() / keep.sum().clamp_min(1)


def _init_weights(module: nn.Module, generator: torch.Generator | None) -> None:
    """Draw every weight from a private generator (uniform +-1/sqrt(fan-in), PyTorch's default
    range; biases 0), so the generator alone fixes the initial head."""
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("log_scale"):
                continue
            if "bias" in name.rsplit(".", 1)[-1]:
                p.zero_()
            else:
                fan_in = p.shape[-1]
                bound = 1.0 / math.sqrt(fan_in)
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)


@dataclass(frozen=True, slots=True)
class EpisodicTraining:
    """How a learned head is trained: `steps` Adam updates on batches of `batch` episodes.

    Episodes are 5-way with up to `n_query` queries per person, K as in the
    evaluation, drawn from the training people only. Fixed length, no early
    stopping: there is no held-out set of training people to stop on, and the
    heads are small (tens of thousands of parameters against thousands of
    photos).
    """

    steps: int = 300
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    n_way: int = 5
    n_query: int = 5

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch < 1 or self.n_way < 2 or self.n_query < 1:
            raise ValueError(
                f"need steps >= 0, batch >= 1, n_way >= 2, n_query >= 1; got {self.steps}, "
                f"{self.batch}, {self.n_way}, {self.n_query}"
            )
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(
                f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )


def train_episodic(
    head: LearnedHead,
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    k_shot: int,
    seed: int,
    config: EpisodicTraining | None = None,
) -> list[float]:
    """Train `head` in place on `config.steps` batches of episodes; returns the loss per step.

    `labels` name the people of `embeddings` (any hashable values); they must
    be other people than those the head will be evaluated on. Reproducible
    from `seed` (the episodes are drawn from it; the head's initial weights
    come from its own generator).
    """
    cfg = config or EpisodicTraining()
    emb = F.normalize(torch.as_tensor(np.asarray(embeddings, dtype=np.float32)), dim=-1)
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.intp)
    if inverse.shape[0] != emb.shape[0]:
        raise ValueError(f"{emb.shape[0]} embeddings but {inverse.shape[0]} labels")
    indices = sample_episodes(
        inverse,
        int(inverse.max()) + 1 if inverse.size else 0,
        n_way=cfg.n_way,
        k_shot=k_shot,
        n_query=cfg.n_query,
        episodes=cfg.steps * cfg.batch,
        rng=np.random.default_rng(seed),
    )
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    losses = []
    head.train(True)
    with torch.enable_grad():
        for step in range(cfg.steps):
            rows = slice(step * cfg.batch, (step + 1) * cfg.batch)
            batch = Episodes.from_indices(emb, indices, n_way=cfg.n_way, k_shot=k_shot, rows=rows)
            optimizer.zero_grad(set_to_none=True)
            loss = head.loss(batch)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    head.train(False)
    return losses


@dataclass(frozen=True, slots=True, eq=False)
class GaussianPrototypes:
    """People as Gaussians around their prototypes; scores are log-likelihood ratios (see the module docstring).

    `mean` (D,) and `total` (D, D) describe the population (a random person's
    photo), `within` (D, D) the spread of one person's photos; `kappa` is the
    weight of `within` in pseudo-photos when a person's own spread is
    estimated. Build one with `fit` from training people.
    """

    mean: Tensor
    within: Tensor
    total: Tensor
    kappa: float = 8.0

    def __post_init__(self) -> None:
        d = self.mean.shape[0]
        if self.mean.ndim != 1 or self.within.shape != (d, d) or self.total.shape != (d, d):
            raise ValueError("mean must be (D,), within and total (D, D)")
        if not self.kappa > 0:
            raise ValueError(f"kappa must be > 0, got {self.kappa}")

    @classmethod
    def fit(
        cls,
        embeddings: npt.ArrayLike,
        labels: npt.ArrayLike,
        *,
        kappa: float = 8.0,
        ridge: float = 1e-2,
    ) -> GaussianPrototypes:
        """Population mean and covariance, pooled within-person covariance, from training people.

        Every person weighs the same in the population statistics (LFW has
        one person with 530 photos and hundreds with one). `within` pools the
        scatter of people with two or more photos about their own means.
        Both covariances get `ridge` times their mean variance added to the
        diagonal: unit vectors have almost no spread along themselves, and
        a few thousand photos leave the smallest of 128 eigenvalues noisy.
        """
        x = torch.as_tensor(np.asarray(embeddings, dtype=np.float64))
        x = F.normalize(x, dim=-1)
        _, inverse = np.unique(np.asarray(labels), return_inverse=True)
        people = torch.as_tensor(inverse.reshape(-1))
        if people.shape[0] != x.shape[0]:
            raise ValueError(f"{x.shape[0]} embeddings but {people.shape[0]} labels")
        n_people = int(people.max()) + 1 if people.numel() else 0
        counts = torch.bincount(people, minlength=n_people).to(x.dtype)
        if int((counts >= 2).sum()) < 2:
            raise ValueError("fitting a within-person spread needs 2+ people with 2+ photos")
        d = x.shape[1]
        means = torch.zeros(n_people, d, dtype=x.dtype).index_add(0, people, x) / counts[:, None]
        dev = x - means[people]
        keep = counts[people] >= 2
        within = dev[keep].T @ dev[keep] / float(keep.sum() - int((counts >= 2).sum()))
        weight = (1.0 / counts[people])[:, None] / n_people  # every person sums to 1 / n_people
        mean = (weight * x).sum(dim=0)
        centred = x - mean
        total = (weight * centred).T @ centred
        eye = torch.eye(d, dtype=x.dtype)
        within = within + ridge * float(torch.diagonal(within).mean()) * eye
        total = total + ridge * float(torch.diagonal(total).mean()) * eye
        return cls(mean.float(), within.float(), total.float(), kappa)

    def spread(self, support: Tensor) -> Tensor:
        """(..., D, D) estimated covariance of each class's photos, support (..., K, D) of one class each."""
        x = F.normalize(support.to(torch.float64), dim=-1)
        dev = x - x.mean(dim=-2, keepdim=True)
        scatter = dev.mT @ dev
        k = x.shape[-2]
        return (scatter + self.kappa * self.within.to(scatter.dtype)) / (k - 1 + self.kappa)

    def scores(self, episodes: Episodes) -> Tensor:
        """(E, Q, C) log N(q; mu_c, (1 + 1/K) Sigma_c) - log N(q; m, T), in float64 internally.

        Everything is computed in coordinates whitened by W, where a class
        covariance is (kappa I + U U^T) / (K - 1 + kappa) with U the K
        centred support photos: its inverse and determinant come from K x K
        matrices (Woodbury), never a D x D one per class.
        """
        f64 = torch.float64
        chol = torch.linalg.cholesky(self.within.to(f64))

        def whiten(v: Tensor) -> Tensor:
            flat = v.reshape(-1, v.shape[-1]).T
            return torch.linalg.solve_triangular(chol, flat, upper=False).T.reshape(v.shape)

        e, _, k, d = episodes.support.shape
        sup = F.normalize(episodes.support.to(f64), dim=-1)
        z_sup = whiten(sup)  # (E, C, K, D)
        z_mu = whiten(F.normalize(sup.mean(dim=2), dim=-1))  # (E, C, D)
        z_q = whiten(F.normalize(episodes.queries.to(f64), dim=-1))  # (E, Q, D)
        v = (z_sup - z_sup.mean(dim=2, keepdim=True)) / math.sqrt(self.kappa)  # (E, C, K, D)
        alpha = (1 + 1 / k) * self.kappa / (k - 1 + self.kappa)
        # |q - mu|^2 and V^T (q - mu), without forming (E, Q, C, D)
        sq = (
            (z_q**2).sum(-1)[:, :, None]
            - 2 * torch.bmm(z_q, z_mu.mT)
            + (z_mu**2).sum(-1)[:, None, :]
        )  # (E, Q, C)
        vq = (
            torch.einsum("eqd,eckd->eqck", z_q, v) - torch.einsum("ecd,eckd->eck", z_mu, v)[:, None]
        )
        gram = torch.eye(k, dtype=f64) + v @ v.mT  # (E, C, K, K)
        solved = torch.linalg.solve(gram[:, None], vq[..., None]).squeeze(-1)  # (E, Q, C, K)
        maha = (sq - (vq * solved).sum(-1)) / alpha
        logdet = d * math.log(alpha) + torch.logdet(gram)[:, None, :]  # (E, 1, C)
        log_class = -0.5 * (maha + logdet)
        # the population, in the same coordinates (the Jacobians of whitening cancel)
        total_w = whiten(whiten(self.total.to(f64)).T)  # L^-1 T L^-T
        total_chol = torch.linalg.cholesky(total_w)
        dq = (z_q - whiten(self.mean.to(f64))).reshape(-1, d).T
        bg = torch.linalg.solve_triangular(total_chol, dq, upper=False)
        log_bg = -0.5 * ((bg**2).sum(0) + 2 * torch.log(torch.diagonal(total_chol)).sum())
        return (log_class - log_bg.view(e, -1)[:, :, None]).to(episodes.queries.dtype)

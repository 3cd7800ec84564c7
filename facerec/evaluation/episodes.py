"""Every few-shot head on the same episodes, closed-set and open-set, on people none was trained on.

Protocol (`compare_heads`):

* **People.** The learned heads (relation and matching networks) are trained,
  and the Gaussian prototypes fitted, on *training* people only; every head
  is evaluated on episodes drawn from other, *evaluated* people. Which people
  are which is the caller's choice (`split_people` halves one set by identity
  with a seed; `facerec evaluate --train-on` trains on another set).
* **Closed set.** N-way K-shot episodes exactly as `facerec.evaluation.fewshot.run_episodes`
  draws them for the same seed (so the prototype and fine-tuned rows repeat
  its figures on the same people): N people with K + 1 photos or more, K
  support photos each, up to `n_query` query photos each. Accuracy is the
  mean over episodes with a 95% interval 1.96 std / sqrt(episodes).
* **Open set.** Separately drawn episodes (another stream of the same seed)
  that add the queries of `n_unknown` further people, outside the support
  set. A head's confidence in a query is its best class score; one threshold
  per head, pooled over all of its open-set episodes, lets through a fraction
  `fpir` of the unknown queries (at most that, as in
  `report.one_shot_identification`), and DIR is the fraction of known queries
  above it *and* given the right person. The pooled threshold is chosen on
  the evaluated episodes themselves, the same oracle for every head: it
  compares how well each head separates people from strangers, not how well a
  threshold carries over. The 95% interval is a percentile bootstrap over
  episodes, the threshold re-chosen in each resample.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from facerec.evaluation.fewshot import EpisodeIndices, FinetuneConfig, sample_episodes
from facerec.evaluation.fewshot_heads import (
    Episodes,
    EpisodicHead,
    EpisodicTraining,
    FinetunedCosineHead,
    GaussianPrototypes,
    HeadKind,
    MatchingNetwork,
    PrototypeHead,
    RelationNetwork,
    train_episodic,
)

#: Episodes scored at a time (bounds memory: the FCE head runs an LSTM per query).
SCORE_CHUNK = 100
BOOTSTRAP = 1000


@dataclass(frozen=True, slots=True)
class ClosedSet:
    accuracy: float
    ci95: float


@dataclass(frozen=True, slots=True)
class OpenSet:
    """DIR at the pooled threshold; `fpir` is the fraction of unknown queries it actually let through."""

    dir: float
    ci_low: float
    ci_high: float
    threshold: float
    fpir: float
    known_queries: int
    unknown_queries: int


@dataclass(frozen=True, slots=True)
class HeadResult:
    head: str
    k_shot: int
    closed: ClosedSet
    open_set: OpenSet | None  # None: too few people or unknown queries for the target FPIR
    train_seconds: float  # training or fitting on the training people (0 for the fixed heads)


@dataclass(frozen=True, slots=True)
class HeadsReport:
    n_way: int
    n_query: int
    n_unknown: int
    target_fpir: float
    episodes: int
    seed: int
    evaluated_people: int
    training_people: int
    results: tuple[HeadResult, ...]

    def result(self, head: HeadKind, k_shot: int) -> HeadResult | None:
        for r in self.results:
            if r.head == head.value and r.k_shot == k_shot:
                return r
        return None

    @property
    def shots(self) -> tuple[int, ...]:
        return tuple(sorted({r.k_shot for r in self.results}))

    def table(self) -> str:
        """The side-by-side table: closed-set accuracy per K, then open-set DIR per K."""
        shots = self.shots
        fpir = f"{self.target_fpir:.0e}"  # as the one-shot report writes FAR
        header = ["head"] + [f"{self.n_way}-way {k}-shot" for k in shots]
        header += [f"open {k}-shot DIR@FPIR={fpir}" for k in shots]
        rows = [header]
        for head in HeadKind:
            found = [self.result(head, k) for k in shots]
            row = [head.value]
            row += [
                "-" if r is None else f"{100 * r.closed.accuracy:.2f} ± {100 * r.closed.ci95:.2f}%"
                for r in found
            ]
            row += [
                "-"
                if r is None or r.open_set is None
                else f"{100 * r.open_set.dir:.2f}% [{100 * r.open_set.ci_low:.2f}, "
                f"{100 * r.open_set.ci_high:.2f}]"
                for r in found
            ]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        return "\n".join(
            f"{r[0]:<{widths[0]}}"
            + "".join(f"  {c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True))
            for r in rows
        )


@dataclass(frozen=True, slots=True, eq=False)
class EpisodeSets:
    """Embeddings and person names of the evaluated and the training people, and who they are in words."""

    evaluated: npt.NDArray[np.float32]
    evaluated_labels: npt.NDArray[np.str_]
    training: npt.NDArray[np.float32]
    training_labels: npt.NDArray[np.str_]
    evaluated_text: str
    trained_text: str


def split_people(names: Sequence[str], seed: int) -> tuple[frozenset[str], frozenset[str]]:
    """(training, evaluated): a seeded half of the people each (the evaluated half rounds down)."""
    order = sorted(names)
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return frozenset(order[half:]), frozenset(order[:half])


def _encode(labels: npt.ArrayLike) -> tuple[npt.NDArray[np.intp], int]:
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.intp)
    return inverse, int(inverse.max()) + 1 if inverse.size else 0


@dataclass(frozen=True, slots=True, eq=False)
class _Scored:
    """Per query (E, Q): best score, predicted class, true class (-1: unknown person), real or padding."""

    best: npt.NDArray[np.float64]
    pred: npt.NDArray[np.intp]
    labels: npt.NDArray[np.intp]
    mask: npt.NDArray[np.bool_]


def _score(
    head: EpisodicHead, embeddings: torch.Tensor, indices: EpisodeIndices, n_way: int, k_shot: int
) -> _Scored:
    """Score sampled episodes, `SCORE_CHUNK` at a time."""
    parts = []
    with torch.no_grad():
        for start in range(0, indices.support.shape[0], SCORE_CHUNK):
            rows = slice(start, start + SCORE_CHUNK)
            eps = Episodes.from_indices(embeddings, indices, n_way=n_way, k_shot=k_shot, rows=rows)
            top = head.scores(eps).max(dim=-1)
            parts.append((top.values, top.indices, eps.query_labels, eps.query_mask))
    best, pred, labels, mask = (torch.cat(p).numpy() for p in zip(*parts, strict=True))
    return _Scored(best.astype(np.float64), pred.astype(np.intp), labels.astype(np.intp), mask)


def _closed_set(scored: _Scored) -> ClosedSet:
    mask = scored.mask
    acc = ((scored.pred == scored.labels) & mask).sum(axis=1) / mask.sum(axis=1)
    return ClosedSet(float(acc.mean()), float(1.96 * acc.std() / np.sqrt(len(acc))))


def _pooled_threshold(unknown: npt.NDArray[np.float64], fpir: float) -> float:
    """The score that at most a fraction `fpir` of the unknown queries exceed (accept: score > it)."""
    i = int(np.floor(len(unknown) * fpir))
    return float(-np.partition(-unknown, i)[i])  # the (i+1)-th largest


def open_set_dir(
    best: npt.NDArray[np.float64],
    pred: npt.NDArray[np.intp],
    labels: npt.NDArray[np.intp],
    mask: npt.NDArray[np.bool_],
    *,
    fpir: float,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> OpenSet | None:
    """DIR at the threshold pooled over episodes (see the module docstring), with a bootstrap interval.

    Arrays are (E, Q): each query's best score and predicted class, its true
    class (-1: a person outside the support set) and whether it is real
    (not padding). None when the unknown queries are too few to resolve
    `fpir` (fewer than 1 / fpir).
    """
    known = mask & (labels >= 0)
    unknown = mask & (labels < 0)
    if unknown.sum() * fpir < 1 or not known.any():
        return None
    hit = known & (pred == labels)

    def dir_of(rows: npt.NDArray[np.intp]) -> tuple[float, float, float]:
        u = best[rows][unknown[rows]]
        th = _pooled_threshold(u, fpir)
        k = known[rows]
        return float(((best[rows] > th) & hit[rows]).sum() / k.sum()), th, float((u > th).mean())

    everything = np.arange(best.shape[0])
    value, threshold, measured = dir_of(everything)
    rng = np.random.default_rng(seed)
    draws = [dir_of(rng.integers(0, len(everything), len(everything)))[0] for _ in range(bootstrap)]
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (value, value)
    return OpenSet(
        dir=value,
        ci_low=float(low),
        ci_high=float(high),
        threshold=threshold,
        fpir=measured,
        known_queries=int(known.sum()),
        unknown_queries=int(unknown.sum()),
    )


def _heads_for(
    k_shot: int,
    dim: int,
    train_emb: npt.NDArray[np.float32],
    train_labels: npt.NDArray[np.intp],
    gaussian: GaussianPrototypes,
    gaussian_seconds: float,
    *,
    seed: int,
    training: EpisodicTraining,
    finetune: FinetuneConfig,
) -> list[tuple[HeadKind, EpisodicHead, float]]:
    """Every head, the learned ones trained for this K (seconds spent training alongside)."""
    heads: list[tuple[HeadKind, EpisodicHead, float]] = [
        (HeadKind.PROTOTYPES, PrototypeHead(), 0.0),
        (HeadKind.FINETUNED, FinetunedCosineHead(finetune), 0.0),
    ]
    for kind in (HeadKind.RELATION, HeadKind.MATCHING, HeadKind.MATCHING_FCE):
        gen = torch.Generator().manual_seed(seed)
        head: RelationNetwork | MatchingNetwork
        if kind is HeadKind.RELATION:
            head = RelationNetwork(dim, generator=gen)
        else:
            head = MatchingNetwork(dim, fce=kind is HeadKind.MATCHING_FCE, generator=gen)
        start = time.perf_counter()
        train_episodic(head, train_emb, train_labels, k_shot=k_shot, seed=seed, config=training)
        heads.append((kind, head, time.perf_counter() - start))
    heads.append((HeadKind.GAUSSIAN, gaussian, gaussian_seconds))
    return heads


def _check_protocol(episodes: int, n_way: int, n_query: int, n_unknown: int, fpir: float) -> None:
    if episodes < 1 or n_way < 2 or n_query < 1 or n_unknown < 0 or not 0 < fpir < 1:
        raise ValueError(
            f"need episodes >= 1, n_way >= 2, n_query >= 1, n_unknown >= 0, 0 < fpir < 1; got "
            f"{episodes}, {n_way}, {n_query}, {n_unknown}, {fpir}"
        )


def _evaluated(
    ev_names: npt.NDArray[Any], tr_names: npt.NDArray[Any], shots: Sequence[int], n_way: int
) -> tuple[npt.NDArray[np.intp], int, npt.NDArray[np.intp], list[int]]:
    """The evaluated people's labels, their number and photo counts, and the K they allow.

    Refuses a person both evaluated and trained on, and a set with no usable K.
    """
    shared = set(ev_names.tolist()) & set(tr_names.tolist())
    if shared:
        raise ValueError(
            f"{len(shared)} people are both evaluated and trained on (e.g. {sorted(shared)[:3]}): "
            "the heads must be evaluated on people they were not trained on"
        )
    ev_labels, n_classes = _encode(ev_names)
    counts = np.bincount(ev_labels, minlength=n_classes)
    usable = [k for k in shots if (counts >= k + 1).sum() >= n_way]
    if not usable:
        k = min(shots)
        raise ValueError(
            f"{n_way}-way episodes need {n_way} evaluated people with at least {k + 1} photos, "
            f"found {(counts >= k + 1).sum()}"
        )
    return ev_labels, n_classes, counts, usable


def _episode_indices(
    labels: npt.NDArray[np.intp],
    n_classes: int,
    counts: npt.NDArray[np.intp],
    k_shot: int,
    *,
    n_way: int,
    n_query: int,
    n_unknown: int,
    episodes: int,
    seed: int,
) -> tuple[EpisodeIndices, EpisodeIndices | None]:
    """The closed-set episodes for K, and the open-set ones (None: too few people for unknowns).

    Each from its own seeded generator, so a K's episodes do not depend on the other K's.
    """
    closed = sample_episodes(
        labels,
        n_classes,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        episodes=episodes,
        rng=np.random.default_rng(seed),
    )
    if not (n_unknown and (counts > 0).sum() >= n_way + n_unknown):
        return closed, None
    return closed, sample_episodes(
        labels,
        n_classes,
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        episodes=episodes,
        rng=np.random.default_rng([seed, 1]),
        n_unknown=n_unknown,
    )


def compare_heads(
    evaluated: npt.ArrayLike,
    evaluated_labels: npt.ArrayLike,
    training: npt.ArrayLike,
    training_labels: npt.ArrayLike,
    *,
    episodes: int,
    seed: int,
    shots: Sequence[int] = (1, 5),
    n_way: int = 5,
    n_query: int = 15,
    n_unknown: int = 5,
    fpir: float = 1e-2,
    train_config: EpisodicTraining | None = None,
    finetune: FinetuneConfig | None = None,
    bootstrap: int = BOOTSTRAP,
) -> HeadsReport:
    """Train the learned heads on the training people, then score every head on the evaluated people.

    The two label sets must name different people (checked when the labels
    are comparable: a name in both is refused). A K for which fewer than
    `n_way` evaluated people have K + 1 photos is left out; open-set results
    are None where fewer than n_way + n_unknown people exist.
    """
    _check_protocol(episodes, n_way, n_query, n_unknown, fpir)
    ev = np.asarray(evaluated, dtype=np.float32)
    tr = np.asarray(training, dtype=np.float32)
    ev_names, tr_names = np.asarray(evaluated_labels), np.asarray(training_labels)
    ev_labels, n_classes, counts, usable = _evaluated(ev_names, tr_names, shots, n_way)
    train_labels, _ = _encode(tr_names)
    cfg = train_config or EpisodicTraining(n_way=n_way)
    ft = finetune or FinetuneConfig()
    start = time.perf_counter()
    gaussian = GaussianPrototypes.fit(tr, train_labels)
    gaussian_seconds = time.perf_counter() - start
    emb = torch.as_tensor(ev)
    results = []
    for k in usable:
        closed_idx, open_idx = _episode_indices(
            ev_labels,
            n_classes,
            counts,
            k,
            n_way=n_way,
            n_query=n_query,
            n_unknown=n_unknown,
            episodes=episodes,
            seed=seed,
        )
        heads = _heads_for(
            k,
            ev.shape[1],
            tr,
            train_labels,
            gaussian,
            gaussian_seconds,
            seed=seed,
            training=cfg,
            finetune=ft,
        )
        for kind, head, seconds in heads:
            closed = _closed_set(_score(head, emb, closed_idx, n_way, k))
            open_set = None
            if open_idx is not None:
                o = _score(head, emb, open_idx, n_way, k)
                open_set = open_set_dir(
                    o.best, o.pred, o.labels, o.mask, fpir=fpir, bootstrap=bootstrap, seed=seed
                )
            results.append(HeadResult(kind.value, k, closed, open_set, seconds))
    return HeadsReport(
        n_way=n_way,
        n_query=n_query,
        n_unknown=n_unknown,
        target_fpir=fpir,
        episodes=episodes,
        seed=seed,
        evaluated_people=n_classes,
        training_people=len(set(tr_names.tolist())),
        results=tuple(results),
    )


def labelled(
    people: Mapping[str, Sequence[Path]],
    vectors: Mapping[Path, npt.NDArray[np.float32]],
    names: frozenset[str] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.str_]]:
    """(embeddings (N, D), person name per row) of `names` (default: everyone) in `people`."""
    chosen = sorted(people if names is None else names)
    rows = [(vectors[p], n) for n in chosen for p in people[n]]
    if not rows:
        raise ValueError("no photos")
    return np.stack([v for v, _ in rows]), np.array([n for _, n in rows])

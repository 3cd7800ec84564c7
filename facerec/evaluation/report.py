"""Evaluation reports: verification on pairs, one-shot identification, few-shot episodes.

Each report is a frozen record that prints as a table and serialises to
JSON, so every published figure comes with the command that made it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facerec.evaluation.metrics import Roc, auc, eer, kfold_accuracy, roc, tar_at_far
from facerec.evaluation.pairs import Pair


@dataclass(frozen=True, slots=True)
class VerificationReport:
    pairs: int
    positives: int
    negatives: int
    folds: int
    accuracy: float
    accuracy_std: float
    threshold: float  # mean of the fold-wise thresholds
    auc: float
    eer: float
    tar_at_far: Mapping[str, float]  # "1e-02" -> TAR, only where enough negatives
    threshold_at_far: Mapping[str, float]


def verification_report(
    pairs: Sequence[Pair], vectors: Mapping[Path, npt.NDArray[np.float32]]
) -> tuple[VerificationReport, Roc]:
    s = np.array([float(vectors[p.a] @ vectors[p.b]) for p in pairs])
    y = np.array([p.same for p in pairs])
    f = np.array([p.fold for p in pairs])
    r = roc(s, y)
    k = kfold_accuracy(s, y, f)
    negatives = int((~y).sum())
    tars, ths = {}, {}
    for far in (1e-2, 1e-3):
        if negatives * far >= 1:  # meaningless unless at least one false accept is allowed
            tar, th = tar_at_far(r, far)
            tars[f"{far:.0e}"], ths[f"{far:.0e}"] = tar, th
    report = VerificationReport(
        pairs=len(pairs),
        positives=int(y.sum()),
        negatives=negatives,
        folds=len(set(f.tolist())),
        accuracy=k.mean,
        accuracy_std=k.std,
        threshold=float(np.mean(k.thresholds)),
        auc=auc(r),
        eer=eer(r),
        tar_at_far=tars,
        threshold_at_far=ths,
    )
    return report, r


@dataclass(frozen=True, slots=True)
class IdentificationReport:
    people: int
    probes: int
    rank1: float
    rank5: float
    dir_at_far: Mapping[str, float]  # open-set detection-and-identification rate


def one_shot_identification(
    people: Mapping[str, Sequence[Path]],
    vectors: Mapping[Path, npt.NDArray[np.float32]],
    *,
    seed: int = 0,
    far: float = 1e-2,
) -> IdentificationReport:
    """One random photo per person is the gallery; every other photo is a probe.

    Open-set DIR@FAR: half of the people (seeded) are left out of the gallery;
    their probes set the threshold that accepts a fraction `far` of them, and
    DIR is the fraction of enrolled probes that pass it *and* are ranked 1.
    """
    rng = random.Random(seed)
    names = sorted(n for n, ps in people.items() if len(ps) >= 2)
    if len(names) < 2:
        raise ValueError("one-shot identification needs at least 2 people with 2+ photos")
    gallery = {n: rng.choice(list(people[n])) for n in names}
    m = np.stack([vectors[gallery[n]] for n in names])
    probes = [(n, p) for n in names for p in people[n] if p != gallery[n]]
    q = np.stack([vectors[p] for _, p in probes])
    sims = q @ m.T
    truth = np.array([names.index(n) for n, _ in probes])
    order = np.argsort(-sims, axis=1)
    rank_of = np.argmax(order == truth[:, None], axis=1)
    # Open set: enrolled = a seeded half of the people; the others' probes are impostors.
    enrolled = set(rng.sample(names, max(1, len(names) // 2)))
    cols = [i for i, n in enumerate(names) if n in enrolled]
    sub = sims[:, cols]
    best = sub.max(axis=1)
    best_col = np.array(cols)[sub.argmax(axis=1)]
    is_enrolled = np.array([n in enrolled for n, _ in probes])
    dirs = {}
    impostor = np.sort(best[~is_enrolled])[::-1]
    if len(impostor) * far >= 1:
        th = impostor[int(np.floor(len(impostor) * far))]  # accepts at most `far` of impostors
        hit = (best > th) & (best_col == truth)
        dirs[f"{far:.0e}"] = float(hit[is_enrolled].mean())
    return IdentificationReport(
        people=len(names),
        probes=len(probes),
        rank1=float((rank_of == 0).mean()),
        rank5=float((rank_of < 5).mean()),
        dir_at_far=dirs,
    )


def plot_roc(r: Roc, path: Path, title: str) -> None:
    """ROC on a log FAR axis, the way face verification is read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    far = np.clip(r.far, 1e-4, 1)
    ax.plot(far, r.tar, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)

"""Verification metrics from similarity scores: ROC, AUC, EER, TAR@FAR, k-fold accuracy.

Written in numpy (and tested against scikit-learn) so evaluation needs no
extra dependency. Scores are similarities: higher means "same person".
Accuracy follows the LFW protocol: for each fold, the threshold that
maximises accuracy on the other folds is applied to the held-out fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Roc:
    far: Array  # false accept rate, increasing
    tar: Array  # true accept rate
    thresholds: Array  # accept when score >= threshold


def roc(scores: npt.ArrayLike, same: npt.ArrayLike) -> Roc:
    """Exact ROC over every distinct score (ties grouped), starting at (0, 0)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("ROC needs both positive and negative pairs")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    tar = np.r_[0.0, tp / y.sum()]
    far = np.r_[0.0, fp / (~y).sum()]
    return Roc(far=far, tar=tar, thresholds=np.r_[np.inf, s[last]])


def auc(r: Roc) -> float:
    return float(np.trapezoid(r.tar, r.far))


def eer(r: Roc) -> float:
    """Equal error rate: where FAR = 1 - TAR, linearly interpolated."""
    frr = 1.0 - r.tar
    i = int(np.argmax(r.far >= frr))
    if i == 0:
        return float(r.far[0])
    x0, x1 = r.far[i - 1] - frr[i - 1], r.far[i] - frr[i]
    t = x0 / (x0 - x1) if x0 != x1 else 0.0
    return float(r.far[i - 1] + t * (r.far[i] - r.far[i - 1]))


def tar_at_far(r: Roc, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the largest operating point with FAR <= `far`."""
    ok = np.nonzero(r.far <= far + 1e-12)[0]
    i = int(ok[-1])
    return float(r.tar[i]), float(r.thresholds[i])


def best_threshold(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy, the threshold midway between neighbours."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    cand = np.unique(s)
    mids = np.r_[cand[0] - 1e-6, (cand[:-1] + cand[1:]) / 2, cand[-1] + 1e-6]
    acc = ((s[None, :] >= mids[:, None]) == y[None, :]).mean(axis=1)
    i = int(np.argmax(acc))
    return float(mids[i]), float(acc[i])


@dataclass(frozen=True, slots=True)
class KFold:
    accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


def kfold_accuracy(scores: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike) -> KFold:
    """LFW-protocol accuracy: threshold chosen on the other folds, applied to each fold."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    f = np.asarray(folds)
    accs, ths = [], []
    for k in np.unique(f):
        train, test = f != k, f == k
        th, _ = best_threshold(s[train], y[train])
        accs.append(float(((s[test] >= th) == y[test]).mean()))
        ths.append(th)
    return KFold(tuple(accs), tuple(ths))

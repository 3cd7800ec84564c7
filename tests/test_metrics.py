"""Our metrics against scikit-learn on random data."""

from __future__ import annotations

import numpy as np
import pytest

from facerec.evaluation.metrics import auc, best_threshold, eer, kfold_accuracy, roc, tar_at_far

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture(params=[0, 1, 2])
def data(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(request.param)
    y = rng.random(2000) < 0.5
    s = rng.normal(0, 1, 2000) + 1.5 * y
    s[:50] = np.round(s[:50], 1)  # some ties
    return s, y


def test_roc_and_auc_match_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = data
    r = roc(s, y)
    fpr, tpr, _ = sklearn_metrics.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(r.far, fpr)
    np.testing.assert_allclose(r.tar, tpr)
    assert auc(r) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)


def test_tar_at_far_matches_sklearn_curve(data: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = data
    fpr, tpr, thr = sklearn_metrics.roc_curve(y, s, drop_intermediate=False)
    for target in (1e-3, 1e-2, 1e-1):
        i = np.nonzero(fpr <= target)[0][-1]
        tar, th = tar_at_far(roc(s, y), target)
        assert tar == pytest.approx(tpr[i]) and th == pytest.approx(thr[i])
        # Applying the threshold really gives that FAR.
        assert ((s >= th) & ~y).sum() / (~y).sum() <= target


def test_eer_where_far_meets_frr(data: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = data
    e = eer(roc(s, y))
    fpr, tpr, _ = sklearn_metrics.roc_curve(y, s)
    i = np.argmin(np.abs(fpr - (1 - tpr)))
    assert e == pytest.approx((fpr[i] + 1 - tpr[i]) / 2, abs=0.01)


def test_best_threshold_and_kfold(data: tuple[np.ndarray, np.ndarray]) -> None:
    s, y = data
    th, acc = best_threshold(s, y)
    assert acc == pytest.approx(sklearn_metrics.accuracy_score(y, s >= th))
    brute = max(sklearn_metrics.accuracy_score(y, s >= t) for t in np.unique(s))
    assert acc >= brute - 1e-12
    k = kfold_accuracy(s, y, np.arange(len(s)) % 5)
    assert len(k.accuracies) == 5 and 0.7 < k.mean < 0.85


def test_perfect_separation() -> None:
    s = np.r_[np.linspace(0.6, 1, 10), np.linspace(0, 0.4, 10)]
    y = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    r = roc(s, y)
    assert auc(r) == 1.0 and eer(r) == 0.0 and tar_at_far(r, 0.0)[0] == 1.0
    assert kfold_accuracy(s, y, np.arange(20) % 2).mean == 1.0
    with pytest.raises(ValueError):
        roc(s[:10], y[:10])

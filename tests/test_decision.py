from __future__ import annotations

import numpy as np
import pytest

from facerec.decision import cosine, identify, softmax, verify


def test_verify_accepts_at_threshold_and_rejects_below() -> None:
    q = np.array([1.0, 0.0])
    p = np.array([np.cos(0.5), np.sin(0.5)])
    s = float(np.cos(0.5))
    assert verify("a", q, p, s).accepted
    assert not verify("a", q, p, s + 1e-6).accepted
    assert verify("a", q, p, 0.5).similarity == pytest.approx(s)


def test_cosine_renormalises() -> None:
    assert cosine([3.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([3.0, 4.0], [6.0, 8.0]) == pytest.approx(1.0)


def test_softmax_is_scaled_and_stable() -> None:
    p = softmax([0.9, 0.5, 0.1], scale=30.0)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[1] == pytest.approx(np.exp(30 * 0.4))
    assert np.isfinite(softmax([1000.0, 999.0], scale=50.0)).all()


def test_identify_names_the_best_or_unknown() -> None:
    names = ["alice", "bob", "carol"]
    res = identify(names, [0.2, 0.93, 0.5], threshold=0.8, top_k=2)
    assert res.name == "bob" and res.known
    assert [c.name for c in res.candidates] == ["bob", "carol"]
    assert res.candidates[0].probability > 0.99
    unknown = identify(names, [0.2, 0.6, 0.5], threshold=0.8)
    assert unknown.name is None and not unknown.known
    assert unknown.candidates[0].name == "bob"  # still says who was nearest


def test_identify_on_empty_gallery() -> None:
    res = identify([], [], threshold=0.5)
    assert res.name is None and res.candidates == ()


def test_probabilities_sum_to_one_over_the_pool() -> None:
    rng = np.random.default_rng(1)
    sims = rng.uniform(-1, 1, 50)
    res = identify([f"p{i}" for i in range(50)], sims, 0.5, top_k=50)
    assert sum(c.probability for c in res.candidates) == pytest.approx(1.0)

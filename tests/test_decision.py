from __future__ import annotations

import numpy as np
import pytest

from facerec.decisions.decision import cosine, identify, softmax, verify


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
    assert res.candidates[0].probability > 0.97 and res.p_unknown < 0.03
    unknown = identify(names, [0.2, 0.6, 0.5], threshold=0.8)
    assert unknown.name is None and not unknown.known
    assert unknown.candidates[0].name == "bob"  # still says who was nearest


def test_identify_on_empty_gallery() -> None:
    res = identify([], [], threshold=0.5)
    assert res.name is None and res.candidates == () and res.p_unknown == 1.0


def test_probabilities_sum_to_one_over_the_pool() -> None:
    rng = np.random.default_rng(1)
    sims = rng.uniform(-1, 1, 50)
    res = identify([f"p{i}" for i in range(50)], sims, 0.5, top_k=50)
    assert sum(c.probability for c in res.candidates) + res.p_unknown == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [10.0, 30.0, 64.0])
def test_lone_person_is_even_with_unknown_at_the_threshold(scale: float) -> None:
    """One enrolled person: p is the logistic of the margin over the threshold, 1/2 on it."""
    t = 0.9
    on = identify(["ada"], [t], t, scale=scale)
    assert on.candidates[0].probability == pytest.approx(0.5)
    assert on.p_unknown == pytest.approx(0.5)
    for margin in (-0.2, -0.03, 0.01, 0.08):
        res = identify(["ada"], [t + margin], t, scale=scale)
        p = res.candidates[0].probability
        assert p == pytest.approx(1 / (1 + np.exp(-scale * margin)))
        assert res.p_unknown == pytest.approx(1 - p)
        assert (p > 0.5) == res.known == (margin > 0)


def test_a_stranger_is_not_the_only_enrolled_person() -> None:
    """Without the unknown term one enrolled person gets p = 1.0 for every face."""
    res = identify(["ada"], [0.86], threshold=0.905)
    assert not res.known
    assert res.candidates[0].probability < 0.25 < 0.75 < res.p_unknown


def test_a_named_face_never_has_p_unknown_over_half() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        sims = rng.uniform(0.6, 1.0, int(rng.integers(1, 20)))
        res = identify([f"p{i}" for i in range(sims.size)], sims, 0.9, top_k=1)
        if res.known:
            assert res.p_unknown <= 0.5

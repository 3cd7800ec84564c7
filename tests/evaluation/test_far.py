"""All-pairs FAR/TAR counts on the threshold grid, against brute force and a hand-computed set."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from facerec.decisions.operating import CurveProvenance, clopper_pearson
from facerec.evaluation.far import cross_counts, pair_counts, prototype_counts


def unit(angle_deg: float) -> list[float]:
    a = np.deg2rad(angle_deg)
    return [float(np.cos(a)), float(np.sin(a))]


def test_hand_computed_set() -> None:
    # Person A at 0° and 10°, person B at 55° and 72° on the unit circle.
    # Genuine cosines: cos 10° = 0.9848, cos 17° = 0.9563.
    # Impostor cosines: cos 72° = 0.3090, cos 62° = 0.4695, cos 55° = 0.5736, cos 45° = 0.7071.
    e = np.array([unit(0), unit(10), unit(55), unit(72)])
    c = pair_counts(e, [0, 0, 1, 1], chunk=2)  # a chunk smaller than the set: the loop runs
    assert c.impostor_pairs == 4 and c.genuine_pairs == 2
    p = c.at(0.6)
    assert (p.false_accepts, p.far, p.tar) == (1, 0.25, 1.0)
    assert (p.far_low, p.far_high) == pytest.approx(clopper_pearson(1, 4))
    assert (c.at(0.96).false_accepts, c.at(0.96).tar) == (0, 0.5)
    # The smallest grid threshold with FAR <= target: one step above the last refused score.
    assert (c.for_far(0.5).threshold, c.for_far(0.5).false_accepts) == (0.4695, 2)
    assert (c.for_far(0.25).threshold, c.for_far(0.25).false_accepts) == (0.5736, 1)
    assert (c.for_far(0.01).threshold, c.for_far(0.01).false_accepts) == (0.7072, 0)
    assert c.at(0.5735).false_accepts == 2  # 0.573576 is still accepted one step lower


def test_counts_match_brute_force() -> None:
    rng = np.random.default_rng(7)
    e = rng.normal(size=(60, 8))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = rng.integers(0, 12, size=60)
    c = pair_counts(e, labels, chunk=16)
    imp, gen = [], []
    for i, j in itertools.combinations(range(60), 2):
        (gen if labels[i] == labels[j] else imp).append(float(e[i] @ e[j]))
    imp_a, gen_a = np.array(imp), np.array(gen)
    assert c.impostor_pairs == len(imp) and c.genuine_pairs == len(gen)
    for t in (-0.5, 0.0, 0.1234, 0.3, 0.5, 0.7):
        p = c.at(t)
        assert p.false_accepts == int((imp_a >= t).sum()), t
        assert p.tar == pytest.approx((gen_a >= t).mean()), t
    for target in (0.3, 0.1, 0.05, 0.01):
        q = c.for_far(target)
        assert q.far <= target
        # one grid step lower would break the target: it is the smallest complying threshold
        below = q.threshold - 1e-4
        assert (imp_a >= below).sum() > target * len(imp) or q.threshold <= -1.0


def test_curve_from_counts() -> None:
    rng = np.random.default_rng(3)
    e = rng.normal(size=(200, 6))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = np.repeat(np.arange(40), 5)
    c = pair_counts(e, labels)
    prov = CurveProvenance(
        "RND", "random", 200, 40, c.impostor_pairs, c.genuine_pairs, "2024-01-01", "test"
    )
    curve = c.curve("m", "00" * 32, prov, ceiling=0.1)
    assert curve.false_accepts[0] <= 0.1 * c.impostor_pairs
    assert c.at(curve.first - 1e-4).far > 0.1  # the row before the table is above the ceiling
    assert curve.false_accepts[-1] == 0
    for target in (0.1, 0.05, 0.01, 1e-3):
        assert curve.for_far(target).threshold == pytest.approx(c.for_far(target).threshold)
    with pytest.raises(ValueError, match="provenance"):
        c.curve("m", "00" * 32, CurveProvenance("R", "r", 1, 1, 5, 5, "d", "c"))


def test_pair_counts_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        pair_counts(np.ones((3, 2)), [0, 1])
    with pytest.raises(ValueError):
        pair_counts(np.ones((1, 2)), [0])


def test_prototype_counts_against_brute_force() -> None:
    rng = np.random.default_rng(11)
    e = rng.normal(size=(40, 5))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = np.repeat(np.arange(10), [1, 2, 3, 4, 5, 6, 5, 4, 6, 4])
    c = prototype_counts(e, labels, enrol=3, chunk=2)
    imp, gen = [], []
    for person in np.unique(labels):
        rows = np.flatnonzero(labels == person)
        if len(rows) <= 3:
            continue
        m = e[rows[:3]].mean(axis=0)
        m /= np.linalg.norm(m)
        imp += [float(m @ e[j]) for j in np.flatnonzero(labels != person)]
        gen += [float(m @ e[j]) for j in rows[3:]]
    assert c.impostor_pairs == len(imp) and c.genuine_pairs == len(gen)
    for t in (-0.2, 0.0, 0.3, 0.6):
        assert c.at(t).false_accepts == sum(s >= t for s in imp)
        assert c.at(t).tar == pytest.approx(np.mean([s >= t for s in gen]))
    with pytest.raises(ValueError, match="more than 6"):
        prototype_counts(e, labels, enrol=6)


def test_cross_counts_count_every_probe_against_every_gallery_photo() -> None:
    rng = np.random.default_rng(3)
    g = rng.normal(size=(30, 8))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    p = np.vstack([g[:5], rng.normal(size=(4, 8))])  # five copies of gallery photos, four new
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    yg = np.arange(30) % 7
    yp = np.concatenate([yg[:5], [0, 1, 2, 3]])
    copy = np.zeros((9, 30), dtype=bool)
    copy[np.arange(5), np.arange(5)] = True
    counts = cross_counts(p, yp, g, yg, same_photo=copy)
    sims = p @ g.T
    same = yp[:, None] == yg[None, :]
    assert counts.impostor_pairs == int((~same).sum())
    assert counts.genuine_pairs == int((same & ~copy).sum())  # a copy is no genuine pair
    for t in (-0.2, 0.0, 0.3):
        point = counts.at(t)
        assert point.false_accepts == int(((sims >= t) & ~same).sum())
        assert point.tar == pytest.approx(((sims >= t) & same & ~copy).sum() / (same & ~copy).sum())

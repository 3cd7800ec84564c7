"""Clustering unknown faces: threshold, k-NN graph, never two faces of one photo, stable ids."""

from __future__ import annotations

import numpy as np

from facerec.album.clustering import carry_ids, cluster


def people(rng: np.random.Generator, n_people: int, dim: int = 128) -> np.ndarray:
    c = rng.normal(size=(n_people, dim))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def noisy(rng: np.random.Generator, centre: np.ndarray, n: int, noise: float) -> np.ndarray:
    x = centre + noise * rng.normal(size=(n, centre.shape[0])) / np.sqrt(centre.shape[0])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_groups_people_apart() -> None:
    rng = np.random.default_rng(1)
    centres = people(rng, 3)
    x = np.concatenate([noisy(rng, c, 5, 0.2) for c in centres])
    groups = cluster(x, list(range(15)), threshold=0.9)
    assert groups == [list(range(0, 5)), list(range(5, 10)), list(range(10, 15))]


def test_below_threshold_stays_apart_and_empty_input() -> None:
    rng = np.random.default_rng(2)
    x = people(rng, 4)
    assert cluster(x, [0, 1, 2, 3], threshold=0.9) == [[0], [1], [2], [3]]
    assert cluster(np.zeros((0, 128)), [], threshold=0.9) == []


def test_two_faces_of_one_photo_never_share_a_cluster() -> None:
    rng = np.random.default_rng(3)
    c = people(rng, 1)[0]
    x = noisy(rng, c, 4, 0.05)  # four near-identical faces
    # Faces 0 and 1 are in photo 10; 2 and 3 each in their own photos. A chain 0-2-1 must not form.
    groups = cluster(x, [10, 10, 11, 12], threshold=0.9)
    for g in groups:
        assert not {0, 1} <= set(g)
    assert sorted(len(g) for g in groups) == [1, 3] or sorted(len(g) for g in groups) == [2, 2]
    assert sum(len(g) for g in groups) == 4


def test_large_group_through_knn_graph() -> None:
    rng = np.random.default_rng(4)
    c = people(rng, 1)[0]
    x = noisy(rng, c, 60, 0.2)  # more faces than neighbours per face: still one group
    assert cluster(x, list(range(60)), threshold=0.9, neighbours=5) == [list(range(60))]


def test_carry_ids_keeps_ids_of_unchanged_groups() -> None:
    previous = {1: 100, 2: 100, 3: 200, 4: 200, 5: 300}
    groups = [[1, 2, 9], [3], [4, 5], [6]]
    # [1,2,9] keeps 100; [3] and [4,5] both overlap 200 by one: the first in order wins, the
    # other takes 300 (its remaining overlap); [6] is new.
    assert carry_ids(previous, groups) == [100, 200, 300, None]
    assert carry_ids({}, [[1]]) == [None]

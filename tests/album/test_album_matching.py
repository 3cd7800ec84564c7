"""Joint assignment: nobody twice in a photo, unknown below the threshold, negatives, confirmations."""

from __future__ import annotations

import numpy as np
import pytest

from facerec.album.matching import Assignment, assign, match_photo

T = 0.9


def test_two_faces_never_get_the_same_person() -> None:
    # Both faces are closest to person 0; on their own both would be called 0.
    sims = np.array([[0.97, 0.93], [0.95, 0.80]])
    assert assign(sims, T) == (1, 0)  # total margin 0.03 + 0.05 beats 0.07 + nothing


def test_a_face_stays_unknown_rather_than_take_a_person_below_threshold() -> None:
    sims = np.array([[0.97, 0.50], [0.95, 0.85]])
    assert assign(sims, T) == (0, None)


def test_empty_and_no_people() -> None:
    assert assign(np.zeros((0, 3)), T) == ()
    assert assign(np.zeros((2, 0)), T) == (None, None)


def test_allowed_mask_and_nan() -> None:
    sims = np.array([[0.99, 0.95], [np.nan, 0.92]])
    assert assign(sims, T, allowed=[[False, True], [True, True]]) == (1, None)
    with pytest.raises(ValueError, match="shape"):
        assign(sims, T, allowed=[[True]])
    with pytest.raises(ValueError, match="2-D"):
        assign([0.9, 0.8], T)


def test_more_faces_than_people() -> None:
    sims = np.array([[0.91], [0.99], [0.95]])
    assert assign(sims, T) == (None, 0, None)


def test_random_photos_are_valid_and_optimal() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(1, 5), rng.integers(0, 5)
        sims = rng.uniform(0.8, 1.0, size=(n, m))
        chosen = assign(sims, T)
        taken = [c for c in chosen if c is not None]
        assert len(taken) == len(set(taken))
        assert all(c is None or sims[i, c] >= T for i, c in enumerate(chosen))
        # No better assignment exists (brute force over all injective partial maps).
        best = _brute(sims)
        got = sum(sims[i, c] - T for i, c in enumerate(chosen) if c is not None)
        assert got == pytest.approx(best)


def _brute(sims: np.ndarray) -> float:
    n, m = sims.shape

    def go(i: int, used: frozenset[int]) -> float:
        if i == n:
            return 0.0
        best = go(i + 1, used)
        for j in range(m):
            if j not in used and sims[i, j] >= T:
                best = max(best, sims[i, j] - T + go(i + 1, used | {j}))
        return best

    return go(0, frozenset())


def test_match_photo_with_candidates_fixed_and_negatives_left_out() -> None:
    # Face 0 was confirmed as 7 by a person; face 1 resembles 7 most but cannot be 7 too.
    cands = [{7: 0.80}, {7: 0.98, 8: 0.93}, {9: 0.99}, {}]
    out = match_photo(cands, T, fixed={0: 7})
    assert out == (
        Assignment(7, 0.80),
        Assignment(8, 0.93),
        Assignment(9, 0.99),
        Assignment(None, None),
    )
    # Without the confirmation, 7 goes to face 1 and face 0 stays unknown (nearest 0.80).
    out = match_photo(cands, T)
    assert out[0] == Assignment(None, 0.80) and out[1] == Assignment(7, 0.98)

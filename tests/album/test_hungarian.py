"""Our assignment solver against SciPy's on random and tie-heavy matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from facerec.album.hungarian import max_weight_assignment


@pytest.mark.parametrize("seed", range(40))
def test_same_optimum_as_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    m = n + int(rng.integers(0, 8))
    w = rng.normal(size=(n, m))
    if seed % 3 == 0:  # ties and forbidden pairs, as the album's matrices have
        w = np.round(w, 1)
        w[rng.random((n, m)) < 0.4] = -1e9
    rows, cols = max_weight_assignment(w)
    assert rows == list(range(n)) and len(set(cols)) == n
    r, c = linear_sum_assignment(w, maximize=True)
    assert w[rows, cols].sum() == pytest.approx(w[r, c].sum(), rel=1e-12, abs=1e-9)


def test_refuses_what_it_cannot_solve() -> None:
    assert max_weight_assignment(np.zeros((0, 3))) == ([], [])
    with pytest.raises(ValueError, match="columns"):
        max_weight_assignment(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        max_weight_assignment([[np.inf, 0.0]])
    assert max_weight_assignment([[1.0, 5.0], [2.0, 4.0]]) == ([0, 1], [1, 0])

"""The assignment problem (Kuhn 1955, Munkres 1957) for the small matrices of one photo.

A photo has a handful of faces and a handful of candidate people, so the
textbook O(n^2 m) shortest-augmenting-path form with potentials (as in
Jonker and Volgenant, 1987) is plenty, and keeps SciPy (140 MB) out of the
light install. `tests/album/test_hungarian.py` checks it against
`scipy.optimize.linear_sum_assignment` on random matrices.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def max_weight_assignment(weights: npt.ArrayLike) -> tuple[list[int], list[int]]:
    """Rows and their columns maximising the total weight, every row of an (n, m) matrix, n <= m.

    The same contract as ``linear_sum_assignment(weights, maximize=True)`` for
    finite weights and at least as many columns as rows: `rows` is 0..n-1 and
    `cols[i]` the distinct column of row i.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D, got shape {w.shape}")
    n, m = w.shape
    if n > m:
        raise ValueError(f"need at least as many columns as rows, got {n} x {m}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite")
    if n == 0:
        return [], []
    cost = (w.max() - w).tolist()  # minimise non-negative costs
    inf = float("inf")
    # 1-based potentials u (rows), v (columns); owner[j]: the row holding column j (0: none).
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)
    for row in range(1, n + 1):
        owner[0] = row
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = owner[j0], inf, 0
            crow = cost[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    reduced = crow[j - 1] - u[i0] - v[j]
                    if reduced < minv[j]:
                        minv[j], way[j] = reduced, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            cols[owner[j] - 1] = j - 1
    return list(range(n)), cols

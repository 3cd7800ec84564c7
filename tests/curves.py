"""Reading the shipped operating curves straight from their JSON, independently of facerec.decisions.operating.

Tests that pin a threshold compute the expected value here, from the raw
file, so that a break in the code that reads the curves cannot also move
the expectation.
"""

from __future__ import annotations

import json
from pathlib import Path

OPERATING_POINTS = Path(__file__).resolve().parents[1] / "facerec" / "models" / "operating_points"


def upper_bound(k: int, n: int) -> float:
    """The exact (Clopper-Pearson) 95% upper bound of k in n, by SciPy."""
    from scipy.stats import beta

    return 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))


def shipped_threshold(curve_file: str, far: float) -> float:
    """The threshold the README's rule ships for `far`, read from the raw JSON.

    The smallest grid threshold whose measured FAR <= `far` and, where the
    curve carries folds of people, at which every fold's exact 95% upper
    bound is <= `far`; where `far` is below what they can vouch for (10 false
    accepts overall, 2 in a fold), each is held to that and the stricter wins.
    """
    data = json.loads((OPERATING_POINTS / curve_file).read_text())
    pairs = data["provenance"]["impostor_pairs"]
    first, step = data["grid"]["first"], data["grid"]["resolution"]
    folds = data.get("people_folds", [])
    pooled = max(far, 10 / pairs) * pairs
    i = next(i for i, k in enumerate(data["false_accepts"]) if k <= pooled)
    if folds:
        rate = max([far] + [upper_bound(2, f["impostor_pairs"]) for f in folds])
        i = max(
            i,
            next(
                j
                for j in range(len(data["false_accepts"]))
                if all(
                    upper_bound(f["false_accepts"][j], f["impostor_pairs"]) <= rate for f in folds
                )
            ),
        )
    return round(first + i * step, 4)

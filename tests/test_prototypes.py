"""The prototype rule: every photo counts equally whatever its norm, and no direction is no prototype."""

from __future__ import annotations

import numpy as np
import pytest

from facerec.decisions.prototypes import normalised_mean, prototype


def test_each_row_counts_equally_whatever_its_norm() -> None:
    x = np.array([[10.0, 0.0], [0.0, 0.1]])  # unnormalised: a plain mean would be ~(1, 0)
    p = prototype(x)
    assert p.dtype == np.float32
    assert np.allclose(p, [2**-0.5, 2**-0.5])
    assert normalised_mean(x).dtype == np.float64


@pytest.mark.parametrize(
    "rows",
    [
        np.zeros((0, 3)),  # nothing to average
        np.array([[1.0, 0.0], [0.0, 0.0]]),  # a zero row has no direction
        np.array([[1.0, np.nan]]),
        np.array([[1.0, 0.0], [-2.0, 0.0]]),  # they cancel out
        np.ones(3),  # not (n, D)
    ],
)
def test_rows_without_a_direction_are_refused(rows: np.ndarray) -> None:
    with pytest.raises(ValueError):
        prototype(rows)

from __future__ import annotations

import math

import numpy as np
import pytest

from facerec.faces.alignment import (
    ARCFACE_TEMPLATE,
    FitDirection,
    Template,
    alignment_error,
    alignment_matrix,
    similarity_transform,
    transform_points,
    warp_to_template,
)


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array(
        [
            [scale * math.cos(a), -scale * math.sin(a), tx],
            [scale * math.sin(a), scale * math.cos(a), ty],
        ]
    )


def test_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, size=(5, 2))
    truth = _similarity(0.7, 23.0, 15.0, -4.0)
    dst = transform_points(truth, src)
    np.testing.assert_allclose(similarity_transform(src, dst), truth, atol=1e-9)


def test_never_reflects() -> None:
    src = np.array([[0, 0], [10, 0], [5, 5], [2, 9], [8, 9]], float)
    mirrored = src * [-1, 1]
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0  # a similarity keeps handedness


def test_degenerate_points_refused() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), np.zeros((5, 2)))


@pytest.mark.parametrize("scale", [0.3, 1.0, 2.5])  # 0.3 exercises the area-downscale path
def test_warp_puts_points_where_the_matrix_says(scale: float) -> None:
    """Draw blobs at five landmarks, warp, and find the blobs in the chip."""
    size = 150
    template = Template(size, ((50, 60), (100, 60), (75, 90), (55, 115), (95, 115)))
    inv = _similarity(1 / scale, 10.0, 0, 0)
    lm = transform_points(inv, template.as_array())
    lm += 400 - lm.mean(axis=0)
    sigma = max(1.0, 2.0 / scale)  # smooth blobs: their centroid is exact at any sub-pixel offset
    yy, xx = np.mgrid[:800, :800]
    blobs = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in lm)
    img = np.repeat((np.clip(blobs, 0, 1) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    chip = warp_to_template(img, lm, template).astype(float)[:, :, 0]
    for tx, ty in template.points:
        win = chip[int(ty) - 6 : int(ty) + 7, int(tx) - 6 : int(tx) + 7]
        ys, xs = np.mgrid[int(ty) - 6 : int(ty) + 7, int(tx) - 6 : int(tx) + 7]
        cx, cy = (win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()
        assert math.hypot(cx - tx, cy - ty) < 0.5


def test_alignment_error_zero_for_exact_fit() -> None:
    t = Template(112, ((38, 51), (73, 51), (56, 71), (41, 92), (70, 92)))
    lm = transform_points(_similarity(2.0, -30, 100, 50), t.as_array())
    assert alignment_error(lm, t).max() < 1e-9


def test_template_scaled() -> None:
    t = Template(100, ((10, 20), (30, 20), (20, 30), (12, 40), (28, 40)))
    assert t.scaled(200).points[0] == (20, 40)
    with pytest.raises(ValueError):
        Template(100, ((1, 2),))


def test_fit_direction_is_declared_by_the_template() -> None:
    """Both fits map an exact similarity the same; on noisy landmarks the direct fit shrinks."""
    dlib_way = ARCFACE_TEMPLATE
    arcface_way = ARCFACE_TEMPLATE.fitted(FitDirection.LANDMARKS_ONTO_TEMPLATE)
    assert dlib_way.fit is FitDirection.TEMPLATE_ONTO_LANDMARKS  # the default
    assert arcface_way.scaled(224).fit is FitDirection.LANDMARKS_ONTO_TEMPLATE

    exact = transform_points(_similarity(2.0, 10, 40, 30), ARCFACE_TEMPLATE.as_array())
    np.testing.assert_allclose(
        alignment_matrix(exact, dlib_way), alignment_matrix(exact, arcface_way), atol=1e-9
    )
    noisy = exact + np.random.default_rng(0).normal(0, 6, exact.shape)
    direct = alignment_matrix(noisy, arcface_way)
    np.testing.assert_allclose(direct, similarity_transform(noisy, ARCFACE_TEMPLATE.as_array()))

    def scale(m: np.ndarray) -> float:
        return float(np.hypot(m[0, 0], m[0, 1]))

    assert scale(direct) < scale(alignment_matrix(noisy, dlib_way))

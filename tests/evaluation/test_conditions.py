"""The door-camera conditions of `scripts/bench_conditions.py`, on a real LFW photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facerec.evaluation.conditions import (
    CONDITIONS,
    IR_FLOOR,
    IR_SPAN,
    condition,
    probe_rng,
)
from facerec.faces.images import load_image
from facerec.faces.quality import blur_score

from ..conftest import shared_file

PHOTO = "lfw/images/Colin_Powell/Colin_Powell_0001.jpg"
#: The face box of PHOTO is about this wide (YuNet), in the 250-px photo.
FACE_PX = 100.0


@pytest.fixture(scope="module")
def pixels(shared: Path) -> np.ndarray:
    return load_image(shared_file(shared, PHOTO)).pixels


def _apply(name: str, pixels: np.ndarray, index: int = 0) -> np.ndarray:
    degrade = condition(name).degrade
    assert degrade is not None
    return degrade(pixels, FACE_PX, probe_rng(0, index, name))


def test_every_condition_is_a_same_sized_frame_and_the_same_on_every_run(
    pixels: np.ndarray,
) -> None:
    for c in CONDITIONS:
        if c.degrade is None:
            continue
        out = _apply(c.name, pixels)
        assert out.shape == pixels.shape and out.dtype == np.uint8, c.name
        assert np.array_equal(out, _apply(c.name, pixels)), c.name
        assert not np.array_equal(out, pixels), c.name


def test_noise_differs_between_probes(pixels: np.ndarray) -> None:
    assert not np.array_equal(_apply("dark", pixels, 0), _apply("dark", pixels, 1))


def test_a_smaller_face_carries_less_detail(pixels: np.ndarray) -> None:
    sharpness = [blur_score(_apply(f"face {w} px", pixels)) for w in (24, 32, 48, 64)]
    assert sharpness == sorted(sharpness)
    assert sharpness[-1] < blur_score(pixels)


def test_infrared_is_grey_and_flat_dark_is_dark(pixels: np.ndarray) -> None:
    ir = _apply("infrared-like", pixels)
    assert (ir[..., 0] == ir[..., 1]).all() and (ir[..., 1] == ir[..., 2]).all()
    assert ir.min() >= IR_FLOOR and ir.max() <= IR_FLOOR + 255 * IR_SPAN + 1
    assert _apply("dark", pixels).mean() < 0.5 * pixels.mean()


def test_yaw_is_chosen_not_synthesised() -> None:
    yaw = condition("yaw > 30 deg")
    assert yaw.degrade is None and yaw.min_abs_yaw is not None and 0.2 < yaw.min_abs_yaw < 0.3

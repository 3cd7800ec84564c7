"""What a door camera does to a face, applied to a clean photo: the probes of
`scripts/bench_conditions.py`.

A door's gallery is enrolled from good photos, but the probe is a frame from
a cheap camera at 2-3 m: few pixels on the face, motion blur, dusk or
infrared light, a starved encoder. Each condition turns one clean photo into
such a frame, deterministically (the noise is seeded per photo), so a
benchmark rerun sees the same pixels and a test can rebuild one case.

Face width is simulated the way a camera pipeline produces it: the photo is
shrunk until the face box is that many pixels wide (all the detail a face of
that size carries), then scaled back up (a decoder's or a digital zoom's
bilinear upscale). The pipeline warps a small face up to its chip size in the
same way, so the embedding is close to the one of a face shown at that width.

Head pose is not simulated (a 2-D warp of a frontal photo is not a turned
head): the yaw condition picks photos whose landmarks already show a turn.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from facerec.faces.images import RGBImage

#: |yaw| (`quality.pose_from_landmarks`: the nose's offset from the eye midpoint over the eye
#: distance) of a head turned 30 degrees: a nose tip about 0.4 eye distances in front of the
#: eyes moves 0.4 x tan(30 deg) = 0.23 eye distances sideways.
YAW_30_DEG = 0.23

#: Gamma and Gaussian noise (standard deviation, 8-bit levels) of the dark condition.
DARK_GAMMA = 2.5
DARK_NOISE = 8.0
#: The infrared-like condition maps grey levels 0..255 to IR_FLOOR..IR_FLOOR + 255 * IR_SPAN.
IR_FLOOR = 64.0
IR_SPAN = 0.5
JPEG_QUALITY = 15

Degrade = Callable[[RGBImage, float, np.random.Generator], RGBImage]


@dataclass(frozen=True, slots=True)
class Condition:
    """One probe condition: `degrade(pixels, face_px, rng)` makes the frame (None: the photo as
    it is), and `min_abs_yaw` restricts probes to photos turned at least that far."""

    name: str
    description: str
    degrade: Degrade | None = None
    min_abs_yaw: float | None = None


def face_width(width: int) -> Degrade:
    """Shrink so the face box is `width` px wide, then scale back up (bilinear)."""

    def degrade(pixels: RGBImage, face_px: float, rng: np.random.Generator) -> RGBImage:
        h, w = pixels.shape[:2]
        scale = min(1.0, width / face_px)
        small = (max(1, round(w * scale)), max(1, round(h * scale)))
        shrunk = cv2.resize(pixels, small, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(cv2.resize(shrunk, (w, h), interpolation=cv2.INTER_LINEAR))

    return degrade


def motion_blur(length: int) -> Degrade:
    """A horizontal linear motion blur of `length` px (someone walking across the view)."""

    def degrade(pixels: RGBImage, face_px: float, rng: np.random.Generator) -> RGBImage:
        kernel = np.full((1, length), 1.0 / length, dtype=np.float32)
        return np.ascontiguousarray(cv2.filter2D(pixels, -1, kernel))

    return degrade


def dark(pixels: RGBImage, face_px: float, rng: np.random.Generator) -> RGBImage:
    """Dusk: gamma `DARK_GAMMA` (mid-grey 128 becomes 23), then the sensor's Gaussian noise."""
    x = (pixels.astype(np.float64) / 255.0) ** DARK_GAMMA * 255.0
    x += rng.normal(0.0, DARK_NOISE, size=x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def infrared(pixels: RGBImage, face_px: float, rng: np.random.Generator) -> RGBImage:
    """Night with an IR illuminator: grey, and a flat, lifted contrast."""
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float64)
    flat = np.clip(np.rint(IR_FLOOR + grey * IR_SPAN), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(flat[:, :, None], 3, axis=2))


def jpeg(pixels: RGBImage, face_px: float, rng: np.random.Generator) -> RGBImage:
    """A starved encoder: JPEG at quality `JPEG_QUALITY`."""
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return np.ascontiguousarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", "the photo as it is (reference)"),
    *(
        Condition(f"face {w} px", f"face box {w} px wide, scaled back up", face_width(w))
        for w in (24, 32, 48, 64)
    ),
    *(
        Condition(f"motion blur {n} px", f"horizontal linear motion blur, {n} px", motion_blur(n))
        for n in (5, 9)
    ),
    Condition("dark", f"gamma {DARK_GAMMA} + Gaussian noise sigma {DARK_NOISE:g}", dark),
    Condition("infrared-like", "grey, contrast halved and lifted", infrared),
    Condition(f"JPEG q{JPEG_QUALITY}", f"JPEG at quality {JPEG_QUALITY}", jpeg),
    Condition(
        "yaw > 30 deg",
        f"photos whose landmarks show |yaw| >= {YAW_30_DEG} (about 30 deg), not synthetic",
        min_abs_yaw=YAW_30_DEG,
    ),
)


def condition(name: str) -> Condition:
    """The condition called `name`."""
    for c in CONDITIONS:
        if c.name == name:
            return c
    raise KeyError(name)


def probe_rng(seed: int, index: int, name: str) -> np.random.Generator:
    """The noise of one probe under one condition: the same on every run."""
    return np.random.default_rng([seed, index, zlib.crc32(name.encode())])

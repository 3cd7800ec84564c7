"""Is this face good enough to enrol or to decide on? Accept, or say why not.

An embedding of a 20-pixel, motion-blurred, three-quarter-profile face is
close to *everyone*: enrolling one poisons a prototype, and deciding on one
produces the false matches users complain about most. The gate measures four
things, each with a limit in `QualityLimits`, and returns every failed check
with its measured value so a user can see why a photo was refused.

- size: the detector box's shorter side, in source pixels;
- detector score: the detector's confidence, on that detector's own scale;
- blur: variance of the Laplacian (Pech-Pacheco et al., 2000) on the aligned
  chip resized to 112 px grey, so the number does not depend on the source
  resolution;
- pose from the five landmarks: roll is the eye line's angle (alignment
  removes it, but a steep roll often means a landmark mistake); yaw is the
  nose's horizontal offset from the eye midpoint over the eye distance
  (0 frontal, about ±0.5 in profile); pitch is where the nose sits between the
  eye line and the mouth line (about 0.5 frontal).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from facerec.detectors import DetectedFace
from facerec.faces.images import RGBImage

BLUR_PROBE_SIZE = 112


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """Acceptance limits. Defaults were set on the shared photo sets: they keep
    every LFW/AT&T/face_recognition portrait and refuse partial or tiny faces."""

    min_face_px: float = 24.0
    #: None: the detector's own score for a face it is sure of (`Detector.sure_score`),
    #: filled in by `for_detector`, because scores are not comparable between detectors.
    min_score: float | None = None
    min_blur: float = 10.0
    max_abs_roll_deg: float = 45.0
    max_abs_yaw: float = 0.40
    pitch_range: tuple[float, float] = (0.15, 0.85)

    def for_detector(self, sure_score: float) -> QualityLimits:
        """These limits, with the detector's own score floor unless one was set."""
        if self.min_score is not None:
            return self
        return dataclasses.replace(self, min_score=sure_score)


@dataclass(frozen=True, slots=True)
class Quality:
    """Measured values and the reasons (empty when accepted)."""

    face_px: float
    score: float
    blur: float
    roll_deg: float
    yaw: float
    pitch: float
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, float]:
        return {
            "face_px": self.face_px,
            "score": self.score,
            "blur": self.blur,
            "roll_deg": self.roll_deg,
            "yaw": self.yaw,
            "pitch": self.pitch,
        }


def pose_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(roll in degrees, yaw ratio, pitch ratio) from MTCNN's five points."""
    le, re, nose, ml, mr = (np.asarray(p, dtype=np.float64) for p in landmarks)
    d = re - le
    eye_dist = float(np.hypot(*d))
    if eye_dist < 1e-6:
        return 0.0, 1.0, 0.0
    roll = math.degrees(math.atan2(d[1], d[0]))
    # Rotate into the eye-line frame so yaw/pitch do not mix with roll.
    c, s = d / eye_dist
    rot = np.array([[c, s], [-s, c]])
    eye_mid = (le + re) / 2
    n = rot @ (nose - eye_mid)
    m = rot @ ((ml + mr) / 2 - eye_mid)
    yaw = float(n[0] / eye_dist)
    pitch = float(n[1] / m[1]) if abs(m[1]) > 1e-6 else 0.0
    return roll, yaw, pitch


def blur_score(chip: RGBImage) -> float:
    """Variance of the Laplacian on a fixed-size grey version of the aligned chip."""
    import cv2  # deferred: the limits are part of Settings, which cheap commands build too

    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    if grey.shape[0] != BLUR_PROBE_SIZE:
        grey = cv2.resize(grey, (BLUR_PROBE_SIZE, BLUR_PROBE_SIZE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def assess(face: DetectedFace, chip: RGBImage, limits: QualityLimits) -> Quality:
    """Measure one face and list every limit it breaks.

    The score is only checked against a set floor: resolve the limits with
    `QualityLimits.for_detector` first (the `Pipeline` does).
    """
    face_px = min(face.width, face.height)
    blur = blur_score(chip)
    roll, yaw, pitch = pose_from_landmarks(face.landmarks_array())
    reasons = []
    if face_px < limits.min_face_px:
        v, lim = _apart(face_px, limits.min_face_px, 0)
        reasons.append(f"face too small ({v} px < {lim} px)")
    if limits.min_score is not None and face.score < limits.min_score:
        v, lim = _apart(face.score, limits.min_score, 3)
        reasons.append(f"low detector score ({v} < {lim})")
    if blur < limits.min_blur:
        v, lim = _apart(blur, limits.min_blur, 1)
        reasons.append(f"too blurry (sharpness {v} < {lim})")
    if abs(roll) > limits.max_abs_roll_deg:
        v, lim = _apart(abs(roll), limits.max_abs_roll_deg, 0)
        reasons.append(f"head tilted too far (roll {_sign(roll)}{v} deg, limit ±{lim} deg)")
    if abs(yaw) > limits.max_abs_yaw:
        v, lim = _apart(abs(yaw), limits.max_abs_yaw, 2)
        reasons.append(f"face turned too far sideways (yaw {_sign(yaw)}{v}, limit ±{lim})")
    lo, hi = limits.pitch_range
    if pitch < lo:
        v, lim = _apart(pitch, lo, 2)
        reasons.append(f"face tilted too far up or down (pitch {v} < {lim})")
    elif not pitch <= hi:  # NaN too
        v, lim = _apart(pitch, hi, 2)
        reasons.append(f"face tilted too far up or down (pitch {v} > {lim})")
    return Quality(face_px, face.score, blur, roll, yaw, pitch, tuple(reasons))


def _apart(value: float, limit: float, decimals: int) -> tuple[str, str]:
    """`value` and `limit` written with the fewest decimals (at least `decimals`) that tell them apart.

    A refusal that reads "24 px < 24 px" (23.6 rounded) looks like a bug; rounding
    is monotone, so enough decimals always show the true order.
    """
    for d in range(decimals, decimals + 7):
        a, b = f"{value:.{d}f}", f"{limit:.{d}f}"
        if a != b:
            return a, b
    return repr(value), repr(limit)


def _sign(x: float) -> str:
    return "-" if x < 0 else "+"

"""The geometric cue: does the face move like a picture of a face?

A printed photo or a phone held up to the camera is a plane. However it is
tilted, turned or carried around, one projective map of the plane explains
where every facial point lands in every frame. A head is not flat: the nose
tip stands about 0.4-0.5 eye distances in front of the plane through the eyes
and mouth corners, so when the head turns (or the camera sees it from a new
direction) the nose shifts against that plane. This module measures that
shift, the *parallax of the nose*, from MTCNN's five landmarks alone; no
model, no pixels.

The fit. Five points against a homography (8 degrees of freedom) leave two
spare equations per frame, and a homography fitted to all five points would
absorb part of the nose's parallax into its perspective terms. So the four
nearly coplanar points (eyes, mouth corners) alone define the face plane in
each frame, and the nose is expressed in that plane's own coordinates:

    nose_t = c_t + A_t u_t,   (c_t, A_t) = least-squares affine map of a fixed
                                            frontal quad onto frame t's quad

For a plane, u_t is the same in every frame; for a head it moves with the
view. The residual is the RMS of u_t about its mean over the frames, in eye
distances: the residual of the best single planar model fitted to all frames
jointly (the mean is the least-squares nose position on the plane). An affine
map rather than a homography: at a door (face a few tens of centimetres away,
eye distance a tenth of the distance or less) perspective bends the quad's
interior by about (point offset / distance)^2, roughly 0.01-0.02 eye distances
even for a photo tilted by 30 degrees, below MTCNN's landmark noise; and the
4-point homography inverse is unstable where the affine least squares is not.
`scripts/bench_liveness.py` measures the residual of synthetic planes rendered
with full perspective.

How much motion is enough. Small residuals mean "planar" only if the plane
was seen from views that differ enough for a head to have shown parallax.
The view change is measured on the quad itself: a plane turned by theta is
foreshortened by cos(theta) along one axis, so the anisotropy of the quad's
affine shape (log of the ratio of its singular values, rotation and scale
removed) between two views is |log cos theta|: 0.06 at 20 degrees, 0.14 at
30. A head turned that far shows nose parallax of 0.15 eye distances or more,
well above `live_residual`. The anisotropy is second order in the angle and
noisy frame by frame (four points), so shapes are averaged over three
consecutive frames before the range is taken, and small motions leave the
cue `UNDECIDED`, never "passed".

What this cue cannot see (so the passive CNN and the turn challenge exist):
a *video* of the person replayed on a screen (the face inside the video moves
in 3-D even though the screen is flat), a slideshow of different photos of
the person, a photo bent around a cylinder, and a 3-D mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facerec.liveness.verdict import Cue, CueResult, Verdict

FloatArray = npt.NDArray[np.float64]

#: A frontal eyes + mouth-corners quad with eye distance 1 (the proportions of
#: ArcFace's 112x112 template). Its exact shape only fixes the units of u_t:
#: eye distances, measured along the face plane.
FACE_PLANE_QUAD: FloatArray = np.array(
    [(-0.5, -0.578), (0.5, -0.578), (-0.415, 0.578), (0.415, 0.578)], dtype=np.float64
)
_QUAD_ROWS = (0, 1, 3, 4)  # MTCNN's order: left eye, right eye, nose, left mouth, right mouth
_NOSE = 2
#: Consecutive frames whose quad shapes are averaged before measuring the view change.
SMOOTHING = 3


@dataclass(frozen=True, slots=True)
class ParallaxLimits:
    """When the track is evidence, and which residuals mean "a head" or "a plane"."""

    min_frames: int = 4
    min_eye_px: float = 32.0  # smaller faces: landmark noise swamps the parallax
    live_residual: float = 0.08  # RMS nose parallax (eye distances) no plane produces
    planar_residual: float = 0.05  # at most this, after enough view change: a plane
    min_view_change: float = 0.08  # quad anisotropy range (about 23 degrees of turn)


@dataclass(frozen=True, slots=True)
class ParallaxMeasure:
    """The nose's parallax against the eyes-mouth plane over a landmark track."""

    frames: int
    residual: float  # RMS of the nose's plane coordinates about their mean, in eye distances
    view_change: float  # range of the quad's affine shape (anisotropy), 3-frame averages
    eye_px: float  # median eye distance in pixels


def face_plane_coords(landmarks: npt.ArrayLike) -> tuple[FloatArray, FloatArray] | None:
    """(u, A): the nose in the face plane's coordinates and the plane's affine map, or None.

    None for a degenerate quad (the four points on a line), which no face gives.
    """
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    quad = lm[list(_QUAD_ROWS)]
    design = np.hstack([FACE_PLANE_QUAD, np.ones((4, 1))])
    sol, *_ = np.linalg.lstsq(design, quad, rcond=None)  # (3, 2): quad = design @ sol
    a = sol[:2].T
    if abs(np.linalg.det(a)) < 1e-9 * max(float(np.abs(a).max()), 1e-12) ** 2:
        return None
    u = np.linalg.solve(a, lm[_NOSE] - sol[2])
    return np.asarray(u, dtype=np.float64), np.asarray(a, dtype=np.float64)


def _log_shape(a: FloatArray) -> FloatArray:
    """log of the quad's affine shape A^T A / |det A|: rotation and scale removed."""
    g = a.T @ a / abs(np.linalg.det(a))
    w, v = np.linalg.eigh(g)
    return np.asarray((v * np.log(np.maximum(w, 1e-12))) @ v.T)


def measure(track: Sequence[npt.ArrayLike]) -> ParallaxMeasure:
    """Nose parallax and view change over a track of five-point landmarks (one per frame)."""
    coords, shapes, eyes = [], [], []
    for lm in track:
        fit = face_plane_coords(lm)
        if fit is None:
            continue
        u, a = fit
        coords.append(u)
        shapes.append(_log_shape(a))
        pts = np.asarray(lm, dtype=np.float64).reshape(5, 2)
        eyes.append(float(np.hypot(*(pts[1] - pts[0]))))
    n = len(coords)
    if n == 0:
        return ParallaxMeasure(0, 0.0, 0.0, 0.0)
    u = np.asarray(coords)
    residual = float(np.sqrt(((u - u.mean(axis=0)) ** 2).sum(axis=1).mean()))
    # Single-frame shapes carry the landmark noise of four points (at 40 px between the eyes,
    # pairs of still frames differ by up to 0.1); a deliberate turn lasts longer than a few
    # frames, so shapes are averaged over SMOOTHING consecutive frames before taking the range.
    k = SMOOTHING
    smoothed = [np.mean(shapes[i : i + k], axis=0) for i in range(n - k + 1)]
    view = 0.0
    for i, si in enumerate(smoothed):
        for sj in smoothed[i + 1 :]:
            # |log G|_F / sqrt(2) = log(s1 / s2); a plane turned by theta: |log cos theta|.
            view = max(view, float(np.linalg.norm(si - sj) / math.sqrt(2.0)))
    return ParallaxMeasure(n, residual, view, float(np.median(eyes)))


def judge(m: ParallaxMeasure, limits: ParallaxLimits, *, required: bool = True) -> CueResult:
    """The cue's verdict: live (non-planar), attack (planar after enough motion), or undecided."""
    what = f"nose parallax {m.residual:.3f} eye distances, view change {m.view_change:.3f}"
    if m.frames < limits.min_frames:
        verdict, why = Verdict.UNDECIDED, f"{m.frames} frame(s), need {limits.min_frames}"
    elif m.eye_px < limits.min_eye_px:
        verdict, why = (
            Verdict.UNDECIDED,
            f"face too small for landmarks to show parallax ({m.eye_px:.0f} px between the eyes)",
        )
    elif m.residual >= limits.live_residual:
        verdict, why = Verdict.LIVE, f"moves in depth ({what})"
    elif m.residual <= limits.planar_residual and m.view_change >= limits.min_view_change:
        verdict, why = Verdict.ATTACK, f"moves as a flat picture ({what})"
    else:
        verdict, why = Verdict.UNDECIDED, f"too little head movement to tell ({what})"
    return CueResult(Cue.PARALLAX, verdict, m.residual, why, required)

"""The planar-motion cue, the turn challenge and their fusion, on landmarks of known geometry.

A synthetic head (five points in 3-D, the nose 0.45 eye distances in front
of the eyes-mouth plane) and a photo of it (the same five points flattened
onto a plane) are turned in front of a pinhole camera at door distance, and
the projected landmarks get MTCNN-sized noise. The cue must tell them apart
when the view changes enough, and say "undecided" when it does not.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from facerec.faces.quality import pose_from_landmarks
from facerec.liveness import parallax
from facerec.liveness.challenge import Turn, TurnLimits, judge_turn
from facerec.liveness.continuity import appearance
from facerec.liveness.parallax import ParallaxLimits, face_plane_coords, measure
from facerec.liveness.policy import FrameEvidence, LivenessPolicy, assess
from facerec.liveness.verdict import Cue, CueResult, Verdict, fuse

#: A head in eye distances: x right, y down, z towards the camera.
HEAD = np.array(
    [(-0.5, -0.55, 0.0), (0.5, -0.55, 0.0), (0.0, 0.1, 0.45), (-0.42, 0.6, -0.05),
     (0.42, 0.6, -0.05)]
)  # fmt: skip
PHOTO = HEAD * np.array([1.0, 1.0, 0.0])  # the same face, printed flat
EYE_PX = 80.0  # eye distance in pixels at the reference distance
DISTANCE = 9.0  # eye distances to the camera (about 55 cm)


def rotation(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    a, b = np.deg2rad([yaw_deg, pitch_deg])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return ry @ rx


def track(
    points: np.ndarray,
    yaws: list[float],
    pitches: list[float] | None = None,
    noise_px: float = 1.0,
    seed: int = 0,
    shift_px: float = 20.0,
) -> list[np.ndarray]:
    """Five-point landmarks of `points` turned by each yaw, projected, with pixel noise and drift."""
    rng = np.random.default_rng(seed)
    f = EYE_PX * DISTANCE
    out = []
    for i, yaw in enumerate(yaws):
        pitch = pitches[i] if pitches else 0.0
        p = points @ rotation(yaw, pitch).T
        z = DISTANCE - p[:, 2]  # the camera looks along -z at the face
        uv = f * p[:, :2] / z[:, None] + np.array([320.0, 240.0])
        uv += rng.normal(0, shift_px, size=2) + rng.normal(0, noise_px, size=uv.shape)
        out.append(uv)
    return out


SWEEP = [0, 8, 16, 24, 16, 8, 0, -8, -16, -24, -16, -8]


def test_a_turning_head_shows_parallax() -> None:
    m = measure(track(HEAD, SWEEP))
    assert m.frames == len(SWEEP) and m.residual > 0.12
    assert parallax.judge(m, ParallaxLimits()).verdict is Verdict.LIVE


def test_a_turning_photo_moves_as_a_plane_even_in_perspective() -> None:
    yaws = [30 * np.sin(2 * np.pi * i / 12) for i in range(12)]
    pitches = [15 * np.cos(2 * np.pi * i / 12) for i in range(12)]
    for seed in range(5):
        m = measure(track(PHOTO, yaws, pitches, seed=seed))
        assert m.residual < 0.03 and m.view_change > 0.1
        assert parallax.judge(m, ParallaxLimits()).verdict is Verdict.ATTACK


def test_without_enough_motion_the_cue_is_undecided() -> None:
    limits = ParallaxLimits()
    still_head = measure(track(HEAD, [0] * 12))
    still_photo = measure(track(PHOTO, [0] * 12))
    for m in (still_head, still_photo):
        assert m.residual < limits.live_residual
        assert parallax.judge(m, limits).verdict is Verdict.UNDECIDED
    few = measure(track(HEAD, SWEEP[:3]))
    assert parallax.judge(few, limits).verdict is Verdict.UNDECIDED
    assert "3 frame(s)" in parallax.judge(few, limits).reason
    far = measure([lm * 0.3 for lm in track(HEAD, SWEEP)])  # eye distance 24 px
    assert parallax.judge(far, limits).verdict is Verdict.UNDECIDED


def test_the_nose_coordinates_ignore_any_affine_motion() -> None:
    lm = track(HEAD, [10], noise_px=0.0)[0]
    u, _ = face_plane_coords(lm)  # type: ignore[misc]
    a = np.array([[0.7, 0.3], [-0.2, 1.1]])
    moved = lm @ a.T + np.array([50.0, -20.0])
    u2, _ = face_plane_coords(moved)  # type: ignore[misc]
    assert np.allclose(u, u2)
    assert face_plane_coords(np.zeros((5, 2))) is None  # a degenerate quad


def test_the_turn_challenge_needs_frontal_then_the_asked_side() -> None:
    limits = TurnLimits()
    yaws = [pose_from_landmarks(lm)[1] for lm in track(HEAD, [0, 10, 20, 30], noise_px=0)]
    assert yaws[-1] > limits.turned_yaw  # turning to the person's left is a positive yaw
    assert judge_turn(Turn.LEFT, yaws, limits).verdict is Verdict.LIVE
    assert judge_turn(Turn.RIGHT, yaws, limits).verdict is Verdict.UNDECIDED
    assert judge_turn(Turn.LEFT, yaws[2:], limits).verdict is Verdict.UNDECIDED  # never frontal
    assert judge_turn(Turn.RIGHT, [-y for y in yaws], limits).verdict is Verdict.LIVE
    with pytest.raises(ValueError):
        TurnLimits(frontal_yaw=0.3, turned_yaw=0.2)


def cue(c: Cue, v: Verdict, required: bool = True) -> CueResult:
    return CueResult(c, v, None, v.value, required)


def test_fusion_any_attack_refuses_and_every_required_cue_must_pass() -> None:
    live, attack, und = Verdict.LIVE, Verdict.ATTACK, Verdict.UNDECIDED
    p, x = Cue.PASSIVE, Cue.PARALLAX
    assert fuse([cue(p, live), cue(x, live)]).verdict is live
    assert fuse([cue(p, live), cue(x, attack)]).verdict is attack
    assert fuse([cue(p, attack), cue(x, live)]).verdict is attack
    assert fuse([cue(p, live), cue(x, und)]).verdict is und
    assert fuse([cue(p, live), cue(x, und, required=False)]).verdict is live
    assert fuse([cue(p, live), cue(x, attack, required=False)]).verdict is attack
    assert fuse([]).verdict is und


def appearances(n: int, turn_deg: float, mirror_every: int = 0) -> list[np.ndarray]:
    """A face-like grey texture that changes smoothly, `turn_deg` of "rotation" between two
    smooth random textures per frame (consecutive correlation about cos(turn_deg): a moving face
    for the continuity cue, one no shift or turn of the image explains), mirrored on every
    `mirror_every`-th frame if asked."""
    rng = np.random.default_rng(0)
    a, b = (cv2.GaussianBlur(rng.normal(0, 1, (112, 112)), (0, 0), 4) for _ in range(2))
    out = []
    for i in range(n):
        angle = np.deg2rad(turn_deg * i)
        mix = np.cos(angle) * a + np.sin(angle) * b
        grey = cv2.normalize(mix, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        if mirror_every and i % mirror_every == mirror_every - 1:
            grey = grey[:, ::-1]
        out.append(appearance(np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))))
    return out


def evidence(
    landmarks: list[np.ndarray], p_real: float, looks: list[np.ndarray] | None = None
) -> list[FrameEvidence]:
    looks = looks if looks is not None else appearances(len(landmarks), 20.0)
    return [
        FrameEvidence(i * 0.2, p_real, tuple(map(tuple, lm)), pose_from_landmarks(lm)[1], look)  # type: ignore[arg-type]
        for i, (lm, look) in enumerate(zip(landmarks, looks, strict=True))
    ]


def test_the_policy_needs_every_cue_by_default() -> None:
    moving = track(HEAD, SWEEP)
    still = track(HEAD, [0] * 12)
    assert assess(evidence(moving, 0.95), LivenessPolicy()).verdict is Verdict.LIVE
    assert assess(evidence(moving, 0.2), LivenessPolicy()).verdict is Verdict.ATTACK
    assert assess(evidence(still, 0.95, appearances(12, 0.0)), LivenessPolicy()).verdict is (
        Verdict.UNDECIDED
    )
    cnn_only = LivenessPolicy(require_motion=False)
    assert assess(evidence(still, 0.95, appearances(12, 0.0)), cnn_only).verdict is Verdict.LIVE
    turned = assess(evidence(moving, 0.95), LivenessPolicy(challenge=Turn.RIGHT))
    assert turned.verdict is Verdict.LIVE and turned.cue(Cue.CHALLENGE) is not None
    # Parallax and CNN satisfied, but the face flips to its mirror image: refused, even when
    # motion is not required (the continuity cue can still veto).
    flipped = evidence(moving, 0.95, appearances(len(moving), 20.0, mirror_every=3))
    for policy in (LivenessPolicy(), cnn_only):
        verdict = assess(flipped, policy)
        assert verdict.verdict is Verdict.ATTACK and "mirror image" in verdict.reason
        assert verdict.cue(Cue.PARALLAX).verdict is not Verdict.ATTACK  # type: ignore[union-attr]
    # Frames without an appearance (a caller with no face chip) leave the cue waiting.
    bare = [dataclasses.replace(f, appearance=None) for f in evidence(moving, 0.95)]
    assert assess(bare, LivenessPolicy()).verdict is Verdict.UNDECIDED
    with pytest.raises(ValueError, match="threshold"):
        LivenessPolicy(min_real=1.5)

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facerec.detectors import SURE_SCORE, DetectedFace, DetectorKind
from facerec.faces.quality import QualityLimits, assess, blur_score, pose_from_landmarks

FRONTAL = ((40.0, 50.0), (80.0, 50.0), (60.0, 70.0), (45.0, 90.0), (75.0, 90.0))
LIMITS = QualityLimits().for_detector(SURE_SCORE[DetectorKind.MTCNN])


def _face(landmarks=FRONTAL, box=(10.0, 10.0, 110.0, 130.0), score=0.999) -> DetectedFace:  # type: ignore[no-untyped-def]
    return DetectedFace(box=box, score=score, landmarks=landmarks)


@pytest.fixture()
def sharp_chip() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)


def test_frontal_pose() -> None:
    roll, yaw, pitch = pose_from_landmarks(np.asarray(FRONTAL))
    assert roll == pytest.approx(0.0) and yaw == pytest.approx(0.0) and pitch == pytest.approx(0.5)


def test_roll_does_not_leak_into_yaw() -> None:
    a = np.radians(30)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    roll, yaw, pitch = pose_from_landmarks(np.asarray(FRONTAL) @ rot.T)
    assert roll == pytest.approx(30.0) and yaw == pytest.approx(0.0, abs=1e-9)
    assert pitch == pytest.approx(0.5)


def test_good_face_passes(sharp_chip: np.ndarray) -> None:
    q = assess(_face(), sharp_chip, LIMITS)
    assert q.ok and q.reasons == ()


def test_each_rejection_carries_its_reason(sharp_chip: np.ndarray) -> None:
    blurred = cv2.GaussianBlur(sharp_chip, (0, 0), 6)
    profile = ((40.0, 50.0), (80.0, 50.0), (82.0, 70.0), (45.0, 90.0), (75.0, 90.0))
    cases = {
        "too small": (_face(box=(0, 0, 12, 14)), sharp_chip),
        "detector score": (_face(score=0.5), sharp_chip),
        "blurry": (_face(), blurred),
        "sideways": (_face(landmarks=profile), sharp_chip),
    }
    for words, (face, chip) in cases.items():
        q = assess(face, chip, LIMITS)
        assert not q.ok
        assert len(q.reasons) == 1 and words in q.reasons[0], (words, q.reasons)


def test_score_floor_is_the_detectors_unless_set() -> None:
    assert QualityLimits().for_detector(0.85).min_score == 0.85
    assert QualityLimits(min_score=0.5).for_detector(0.85).min_score == 0.5


def test_blur_is_resolution_independent(sharp_chip: np.ndarray) -> None:
    big = cv2.resize(sharp_chip, (300, 300), interpolation=cv2.INTER_NEAREST)
    assert blur_score(big) == pytest.approx(blur_score(sharp_chip), rel=0.5)
    assert blur_score(cv2.GaussianBlur(sharp_chip, (0, 0), 3)) < blur_score(sharp_chip) / 10


@pytest.mark.parametrize(
    ("face", "expected"),
    [
        (_face(box=(0.0, 0.0, 23.6, 30.0)), "face too small (23.6 px < 24.0 px)"),
        (_face(box=(0.0, 0.0, 23.996, 30.0)), "face too small (23.996 px < 24.000 px)"),
        (_face(box=(0.0, 0.0, 12.0, 30.0)), "face too small (12 px < 24 px)"),
        (_face(score=0.9496), "low detector score (0.9496 < 0.9500)"),
    ],
)
def test_a_refusal_never_reads_as_equal_to_its_limit(
    face: DetectedFace, expected: str, sharp_chip: np.ndarray
) -> None:
    """Rounded for display, 23.6 px read '24 px < 24 px': enough decimals show the true order."""
    # min_score is the detector's own floor, filled in by the pipeline; MTCNN's is 0.95.
    assert assess(face, sharp_chip, QualityLimits(min_score=0.95)).reasons == (expected,)


def test_pose_refusals_state_the_limit(sharp_chip: np.ndarray) -> None:
    profile = ((40.0, 50.0), (80.0, 50.0), (56.2, 70.0), (45.0, 90.0), (75.0, 90.0))  # yaw -0.095
    limits = QualityLimits(max_abs_yaw=0.09)
    (reason,) = assess(_face(landmarks=profile), sharp_chip, limits).reasons
    assert reason == "face turned too far sideways (yaw -0.095, limit ±0.090)"

"""The continuity cue on real faces: a real recording, mirror copies, slideshows.

The live face is the real recording `video/short_hamilton_clip.mp4`, its
aligned chips taken by the session's pipeline at the door's 5 fps. The
replays are made of the middle of LFW photos (250x250, the face centred): a
photo and its mirror image for the mirror-flip replay, different photos of
one person held for two frames each for a slideshow, every frame with sensor
noise, as a camera never delivers the same frame twice. The end-to-end runs
through `facerec camera` are in tests/camera/test_liveness_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facerec.faces.images import LoadedImage
from facerec.liveness import continuity
from facerec.liveness.continuity import ContinuityLimits, appearance, judge, measure
from facerec.liveness.verdict import Cue, Verdict

from ..conftest import shared_file

LIMITS = ContinuityLimits()
Chip = np.ndarray


@pytest.fixture(scope="module")
def photos(shared: Path) -> list[Chip]:
    """Four LFW photos of Colin Powell, RGB."""
    folder = shared_file(shared, "lfw/images/Colin_Powell")
    out = []
    for i in (3, 6, 10, 14):
        bgr = cv2.imread(str(folder / f"Colin_Powell_{i:04d}.jpg"))
        assert bgr is not None
        out.append(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return out


@pytest.fixture(scope="module")
def recording(pipeline, shared: Path) -> list[Chip]:  # type: ignore[no-untyped-def]
    """Aligned chips of the largest face in the real recording, 5 frames a second."""
    video = cv2.VideoCapture(str(shared_file(shared, "video/short_hamilton_clip.mp4")))
    chips, index = [], 0
    try:
        while True:
            ok, bgr = video.read()
            if not ok:
                break
            if index % 6 == 0:  # 29.97 fps -> 5 fps
                rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                faces = pipeline.faces(LoadedImage(source=f"frame {index}", pixels=rgb, sha256=""))
                if faces:
                    chips.append(max(faces, key=lambda f: f.detection.area).chip)
            index += 1
    finally:
        video.release()
    assert len(chips) >= 12, len(chips)
    return chips


def chip(photo: Chip, deg: float = 0.0, dx: int = 0) -> Chip:
    """A 112x112 face window of the photo turned by `deg` (in the image plane), moved by `dx`.

    A shift alone is no motion for the cue: comparisons search small shifts.
    """
    turn = cv2.getRotationMatrix2D((125.0, 125.0), deg, 1.0)
    turned = cv2.warpAffine(photo, turn, (photo.shape[1], photo.shape[0]))
    return np.ascontiguousarray(turned[69:181, 69 + dx : 181 + dx])


def noisy(chips: list[Chip], seed: int = 0) -> list[np.ndarray]:
    """Appearances of the chips after sensor noise."""
    rng = np.random.default_rng(seed)
    out = []
    for c in chips:
        frame = np.clip(c.astype(np.float32) + rng.normal(0, 2.0, c.shape), 0, 255)
        out.append(appearance(frame.astype(np.uint8)))
    return out


def verdict_of(track: list[np.ndarray]) -> Verdict:
    return judge(measure(track, LIMITS), LIMITS).verdict


def test_an_appearance_is_a_correlation_vector_blind_to_brightness_and_contrast(
    photos: list[Chip],
) -> None:
    a = appearance(chip(photos[0]))
    assert a.shape == (continuity.APPEARANCE_SIDE,) * 2
    assert abs(float(a.mean())) < 1e-5 and abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
    dimmer = (chip(photos[0]).astype(np.float32) * 0.6 + 30).astype(np.uint8)
    assert float(np.sum(a * appearance(dimmer))) > 0.99
    uniform = appearance(np.full((112, 112, 3), 128, np.uint8))
    assert not uniform.any()  # no pattern, and nothing like any face
    assert continuity.similarity(a, uniform) == continuity.similarity(uniform, a) == 0.0
    assert continuity.similarity(a, a) > 0.999
    with pytest.raises(ValueError, match="uint8 face chip"):
        appearance(np.zeros((112, 112), np.uint8))


def test_a_live_face_changes_smoothly(recording: list[Chip]) -> None:
    track = [appearance(c) for c in recording]
    m = measure(track, LIMITS)
    assert (m.mirrors, m.cuts) == (0, 0) and m.moving >= len(track) // 2
    # Far from a mirror copy: never nearly as similar to the mirrored frame before (the margin),
    # and never much closer to it than to the frame itself.
    assert m.most_mirrored < LIMITS.mirror_min - 0.2 and m.mirror_ratio > LIMITS.mirror_ratio
    result = judge(m, LIMITS)
    assert result.cue is Cue.CONTINUITY and result.verdict is Verdict.LIVE
    assert result.score == 0.0 and "smoothly" in result.reason
    # Too few frames yet: not a pass.
    assert verdict_of(track[:5]) is Verdict.UNDECIDED
    # The same recording with one frame replaced by the mirror image of the one before it.
    flipped = [*recording[:6], np.ascontiguousarray(recording[5][:, ::-1]), *recording[7:]]
    m = measure([appearance(c) for c in flipped], LIMITS)
    assert m.mirrors >= 1 and judge(m, LIMITS).verdict is Verdict.ATTACK


def test_a_photo_swapped_for_its_mirror_image_is_an_attack(photos: list[Chip]) -> None:
    for photo in photos:
        face, mirror = chip(photo), np.ascontiguousarray(chip(photo)[:, ::-1])
        track = noisy([face, face, mirror, mirror, face, mirror, mirror, face])
        m = measure(track, LIMITS)
        assert m.mirrors >= 3, m
        result = judge(m, LIMITS)
        assert result.verdict is Verdict.ATTACK and "mirror image" in result.reason
        # One swap is enough, even before `min_frames`: no head turns into its mirror pose at once.
        assert verdict_of(noisy([face, face, mirror, mirror])) is Verdict.ATTACK


def test_a_still_face_is_not_a_mirror_copy_of_itself(photos: list[Chip]) -> None:
    # A face is nearly symmetric, but a still one stays much closer to itself than to its mirror.
    track = noisy([chip(photos[1])] * 10)
    m = measure(track, LIMITS)
    assert (m.mirrors, m.cuts, m.moving) == (0, 0, 0)
    result = judge(m, LIMITS)
    assert result.verdict is Verdict.UNDECIDED and "not changed" in result.reason


def test_a_slideshow_is_an_attack_once_it_jumps_twice(photos: list[Chip]) -> None:
    a, b, c, d = (chip(p) for p in photos)
    track = noisy([a, a, b, b, c, c, d, d])
    m = measure(track, LIMITS)
    assert m.cuts == 3 and m.mirrors == 0
    result = judge(m, LIMITS)
    assert result.verdict is Verdict.ATTACK and "slideshow" in result.reason
    # One jump between still pictures: the door keeps looking.
    one = judge(measure(noisy([a, a, b, b, b, b, b, b, b]), LIMITS), LIMITS)
    assert one.verdict is Verdict.UNDECIDED and "jumped once" in one.reason
    # A change that takes two frames between still stretches is still a cut ...
    assert measure(noisy([a, a, chip(photos[0], deg=20), b, b, c, c]), LIMITS).cuts == 2
    # ... but a change that lasts (no still frame after it) is motion, not a cut, and a change in
    # the newest frame is not one yet (the face may go on moving).
    assert measure(noisy([a, a, b, c, d, a]), LIMITS).cuts == 0
    assert measure(noisy([a, a, a, b]), LIMITS).cuts == 0
    assert measure(noisy([a, a, a, b, b]), LIMITS).cuts == 1


def test_a_glance_away_and_back_is_not_a_jump(photos: list[Chip]) -> None:
    face, away = chip(photos[0]), chip(photos[0], deg=25, dx=10)
    track = noisy([face, face, away, face, face, away, face, face, face])
    m = measure(track, LIMITS)
    assert (m.cuts, m.mirrors) == (0, 0)
    assert judge(m, LIMITS).verdict is Verdict.LIVE


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="jump < frozen"):
        ContinuityLimits(frozen=0.8, jump=0.9)
    with pytest.raises(ValueError, match="min_frames"):
        ContinuityLimits(min_frames=1)
    with pytest.raises(ValueError, match="different shapes"):
        continuity.steps([np.zeros((32, 32), np.float32), np.zeros((16, 16), np.float32)])

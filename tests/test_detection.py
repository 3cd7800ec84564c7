"""Detection and alignment on real photos (../shared/data), with MTCNN (YuNet: tests/detectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facerec.detectors import Detector, DetectorConfig, DetectorKind
from facerec.faces.alignment import alignment_matrix, transform_points, warp_to_template
from facerec.faces.images import load_image
from facerec.faces.pipeline import STORAGE_TEMPLATE

from .conftest import shared_file

MTCNN = DetectorConfig(kind=DetectorKind.MTCNN)

ONE_FACE = [
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/obama2.jpg",
    "face_recognition/examples/obama-240p.jpg",
    "face_recognition/examples/obama-1080p.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/alex-lacamoire.png",
    "face_recognition/examples/lin-manuel-miranda.png",
    "face_recognition/tests/test_images/32bit.png",
    "facenet_pytorch/data/test_images/angelina_jolie/1.jpg",
    "facenet_pytorch/data/test_images/kate_siegel/1.jpg",
    "facenet_pytorch/data/test_images/paul_rudd/1.jpg",
    "facenet_pytorch/data/test_images/shea_whigham/1.jpg",
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(MTCNN)


@pytest.mark.parametrize("rel", ONE_FACE)
def test_one_face_where_a_person_sees_one(shared: Path, detector: Detector, rel: str) -> None:
    faces = detector.detect(load_image(shared_file(shared, rel)).pixels)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.99
    (lx, ly), (rx, _), (nx, ny), (mlx, mly), (mrx, _) = f.landmarks
    x1, y1, x2, y2 = f.box
    assert x1 < lx < nx < rx < x2 and y1 < ly < ny < mly < y2  # anatomy inside the box
    assert mlx < mrx


def test_two_people(shared: Path, detector: Detector) -> None:
    faces = detector.detect(
        load_image(shared_file(shared, "face_recognition/examples/two_people.jpg")).pixels
    )
    assert len(faces) == 2
    xs = sorted(f.box[0] for f in faces)
    assert xs[1] - xs[0] > 300  # two distinct people, side by side


def test_group_photo(shared: Path, detector: Detector) -> None:
    faces = detector.detect(
        load_image(shared_file(shared, "facenet_pytorch/data/multiface.jpg")).pixels
    )
    assert len(faces) == 6


def test_no_face(shared: Path, detector: Detector) -> None:
    assert detector.detect(load_image(shared_file(shared, "nonface/pilatus800.jpg")).pixels) == []


def test_batch_matches_single(shared: Path, detector: Detector) -> None:
    paths = [shared_file(shared, r) for r in ONE_FACE[:4]] + [shared_file(shared, ONE_FACE[0])]
    images = [load_image(p).pixels for p in paths]
    batched = detector.detect_batch(images)
    for img, got in zip(images, batched, strict=True):
        single = detector.detect(img)
        assert len(got) == len(single)
        np.testing.assert_allclose(got[0].box, single[0].box, atol=1.0)


def test_min_face_size_is_honoured(shared: Path) -> None:
    from facerec.detectors import DetectorConfig

    img = load_image(
        shared_file(shared, "face_recognition/examples/obama-240p.jpg")
    ).pixels  # face ~54 px
    assert len(Detector(DetectorConfig(min_face_size=20, kind=MTCNN.kind)).detect(img)) == 1
    assert Detector(DetectorConfig(min_face_size=120, kind=MTCNN.kind)).detect(img) == []


@pytest.mark.parametrize("rel", ONE_FACE)
def test_aligned_eyes_land_on_the_template(shared: Path, detector: Detector, rel: str) -> None:
    """Detect again inside the aligned chip: the eyes sit where the warp put them (within 2 px),
    and near the template's eyes (the 5-point least-squares fit leaves a few px of residual
    because faces differ in proportions; measured p95 about 5 px at 224 px)."""
    image = load_image(shared_file(shared, rel))
    face = detector.detect(image.pixels)[0]
    lm = face.landmarks_array()
    chip = warp_to_template(image.pixels, lm, STORAGE_TEMPLATE)
    predicted = transform_points(alignment_matrix(lm, STORAGE_TEMPLATE), lm)
    again = detector.detect(chip)
    assert len(again) >= 1
    eyes = np.asarray(max(again, key=lambda f: f.area).landmarks[:2])
    # MTCNN's landmark repeatability on a re-detection is 2-4 px (measured max 3.7 px).
    assert np.linalg.norm(eyes - predicted[:2], axis=1).max() < 4.5
    template_eyes = STORAGE_TEMPLATE.as_array()[:2]
    assert np.linalg.norm(eyes - template_eyes, axis=1).max() < 10.0
    # The eye midpoint is pinned much tighter than each eye: the fit centres the face.
    assert np.linalg.norm(eyes.mean(axis=0) - template_eyes.mean(axis=0)) < 6.0

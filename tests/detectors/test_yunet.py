"""YuNet (`--detector yunet`) on real photos: counts, landmark order, alignment, the weights pin, the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from facerec.detectors import (
    SURE_SCORE,
    Detector,
    DetectorConfig,
    DetectorKind,
    YuNetConfig,
    yunet,
)
from facerec.errors import ModelError
from facerec.faces.alignment import alignment_matrix, transform_points, warp_to_template
from facerec.faces.images import load_image
from facerec.faces.pipeline import STORAGE_TEMPLATE, Pipeline
from facerec.faces.quality import QualityLimits
from facerec.models.dlib_resnet import DLIB_TEMPLATE
from facerec.training.data import Preparation

from ..conftest import shared_file
from ..test_cli import facerec

EX = "face_recognition/examples"
YUNET = DetectorConfig(kind=DetectorKind.YUNET)

PORTRAITS = [
    f"{EX}/obama.jpg",
    f"{EX}/obama-240p.jpg",
    f"{EX}/obama-1080p.jpg",  # wider than max_side: shrunk, mapped back
    f"{EX}/biden.jpg",
    f"{EX}/alex-lacamoire.png",
    "face_recognition/tests/test_images/32bit.png",  # RGBA
    # Faces 600-1000 px across: one YuNet pass at 1600 px sees fragments of them.
    "facenet_pytorch/data/test_images/angelina_jolie/1.jpg",
    "facenet_pytorch/data/test_images/paul_rudd/1.jpg",
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(YUNET)


def detect(shared: Path, detector: Detector, rel: str) -> list:  # type: ignore[type-arg]
    return detector.detect(load_image(shared_file(shared, rel)).pixels)


@pytest.mark.parametrize("rel", PORTRAITS)
def test_one_face_in_a_portrait_with_our_landmark_order(
    shared: Path, detector: Detector, rel: str
) -> None:
    faces = detect(shared, detector, rel)
    assert len(faces) == 1
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = faces[0].landmarks
    x1, y1, x2, y2 = faces[0].box
    # Our order: the eye on the image's left first (YuNet calls it the right eye), then the
    # nose, then the mouth corner on the image's left.
    assert x1 < lx < nx < rx < x2 and mlx < mrx
    assert y1 < max(ly, ry) < ny < min(mly, mry) < y2


def test_two_people(shared: Path, detector: Detector) -> None:
    faces = detect(shared, detector, f"{EX}/two_people.jpg")
    assert len(faces) == 2
    xs = sorted(f.box[0] for f in faces)
    assert xs[1] - xs[0] > 300  # two distinct people, side by side


@pytest.mark.parametrize(
    ("rel", "count"),
    [("facenet_pytorch/data/multiface.jpg", 6), ("openface/longoria-cooper.jpg", 2)],
)
def test_group_photos_as_mtcnn_counts_them(
    shared: Path, detector: Detector, rel: str, count: int
) -> None:
    assert len(detect(shared, detector, rel)) == count


def test_no_face(shared: Path, detector: Detector) -> None:
    assert detect(shared, detector, "nonface/pilatus800.jpg") == []


def test_min_face_size_is_a_floor(shared: Path) -> None:
    img = load_image(shared_file(shared, f"{EX}/obama-240p.jpg")).pixels  # face ~54 px
    assert len(Detector(DetectorConfig(min_face_size=20, kind=DetectorKind.YUNET)).detect(img)) == 1
    assert Detector(DetectorConfig(min_face_size=120, kind=DetectorKind.YUNET)).detect(img) == []


def test_shrunk_detection_maps_back_to_the_source_pixels(shared: Path, detector: Detector) -> None:
    img = load_image(shared_file(shared, f"{EX}/obama-1080p.jpg")).pixels  # 1920 px wide
    full = Detector(
        DetectorConfig(kind=DetectorKind.YUNET, yunet=YuNetConfig(max_side=1920))
    ).detect(img)[0]
    shrunk = detector.detect(img)[0]  # at 1600 px
    # YuNet's answer moves a little with the scale (measured 4% of the face here); points
    # left in the shrunk image's pixels would be off by a sixth of their coordinates.
    tolerance = 0.08 * full.width
    np.testing.assert_allclose(shrunk.box, full.box, atol=tolerance)
    np.testing.assert_allclose(shrunk.landmarks_array(), full.landmarks_array(), atol=tolerance)


@pytest.mark.parametrize("rel", [f"{EX}/obama.jpg", f"{EX}/biden.jpg", PORTRAITS[-1]])
def test_aligned_eyes_land_on_the_template(shared: Path, detector: Detector, rel: str) -> None:
    """Detect again inside the aligned 224-px chip (eye distance 56 px): the eyes sit near
    where the warp put them and near the template's. YuNet's points repeat less tightly than
    MTCNN's (up to 11 px on the shared portraits, MTCNN 4), hence the wider bounds; points in
    the wrong order would turn the chip upside down and miss by a whole face."""
    image = load_image(shared_file(shared, rel))
    lm = detector.detect(image.pixels)[0].landmarks_array()
    chip = warp_to_template(image.pixels, lm, STORAGE_TEMPLATE)
    predicted = transform_points(alignment_matrix(lm, STORAGE_TEMPLATE), lm)
    again = detector.detect(chip)
    assert len(again) >= 1
    eyes = np.asarray(max(again, key=lambda f: f.area).landmarks[:2])
    assert np.linalg.norm(eyes - predicted[:2], axis=1).max() < 12.0
    template_eyes = STORAGE_TEMPLATE.as_array()[:2]
    assert np.linalg.norm(eyes - template_eyes, axis=1).max() < 14.0


def test_quality_gate_takes_yunets_own_score_floor(
    shared: Path,
    detector: Detector,
    pipeline,  # type: ignore[no-untyped-def]
) -> None:
    """YuNet scores clear faces about 0.93, below MTCNN's 0.95 floor: the gate must not refuse them."""
    image = load_image(shared_file(shared, f"{EX}/obama.jpg"))
    yunet_pipeline = Pipeline(detector, pipeline.embedder)
    assert yunet_pipeline.limits.min_score == SURE_SCORE[DetectorKind.YUNET]
    (face,) = yunet_pipeline.faces(image)
    assert face.quality.ok, face.quality.reasons
    assert face.detection.score < SURE_SCORE[DetectorKind.MTCNN]
    strict = Pipeline(detector, pipeline.embedder, QualityLimits(min_score=0.99))
    (face,) = strict.faces(image)
    assert any("detector score" in r for r in face.quality.reasons)


def test_weights_match_the_pin() -> None:
    data = yunet.model_bytes()
    assert hashlib.sha256(data).hexdigest() == yunet.MODEL_SHA256


def fake_package(root: Path, name: str, weights: bytes) -> None:
    (root / name / "models").mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "models" / yunet.MODEL_FILE).write_bytes(weights)


def test_other_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tampered = bytearray(yunet.model_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    fake_package(tmp_path, "facerec_fake_yunet", bytes(tampered))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(yunet, "MODEL_PACKAGE", "facerec_fake_yunet")
    with pytest.raises(ModelError, match=f"sha256 .* is not the pinned .*{yunet.MODEL_SHA256}"):
        Detector(YUNET)


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yunet, "MODEL_PACKAGE", "facerec_no_such_package")
    with pytest.raises(ModelError, match="needs the facerec_no_such_package package"):
        yunet.model_bytes()


def test_kind_from_text_and_unknown_kind() -> None:
    assert DetectorConfig(kind="yunet").kind is DetectorKind.YUNET  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nope"):
        DetectorConfig(kind="nope")  # type: ignore[arg-type]


def test_chip_cache_key_names_the_detector() -> None:
    mtcnn = Preparation(DLIB_TEMPLATE, DetectorConfig(kind=DetectorKind.MTCNN))
    assert mtcnn.key() == "cf154b8b4536"  # as before detectors were registered: caches stay valid
    assert Preparation(DLIB_TEMPLATE, YUNET).key() != mtcnn.key()
    assert Preparation(DLIB_TEMPLATE).key() == Preparation(DLIB_TEMPLATE, YUNET).key()  # default


def test_cli_detector_option_and_environment(
    shared: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "gallery.db"
    obama = shared_file(shared, f"{EX}/obama.jpg")
    two = shared_file(shared, f"{EX}/two_people.jpg")
    r = facerec(["enroll", "Barack Obama", str(obama), "--detector", "yunet"], cli_env, db)
    assert r.returncode == 0, r.stderr
    r = facerec(["identify", str(two), "--json"], {**cli_env, "FACEREC_DETECTOR": "yunet"}, db)
    assert r.returncode == 0, r.stderr
    (photo,) = json.loads(r.stdout)
    faces = photo["faces"]
    assert len(faces) == 2
    # YuNet's scale (MTCNN scores these faces 0.999 and more), and none refused for it.
    assert all(0.85 < f["score"] < 0.99 and f["usable"] for f in faces)
    names = [f["name"] for f in faces]
    assert names.count("Barack Obama") == 1
    r = facerec(["verify", "Barack Obama", str(obama)], {**cli_env, "FACEREC_DETECTOR": "nope"}, db)
    assert r.returncode == 2 and "'mtcnn', 'yunet'" in r.stderr


LFW_FACES = [
    "lfw/images/Colin_Powell/Colin_Powell_0001.jpg",
    "lfw/images/Colin_Powell/Colin_Powell_0002.jpg",
    "lfw/images/Tony_Blair/Tony_Blair_0001.jpg",
    "lfw/images/Tony_Blair/Tony_Blair_0002.jpg",
    "lfw/images/Hugo_Chavez/Hugo_Chavez_0001.jpg",
    "lfw/images/Hugo_Chavez/Hugo_Chavez_0002.jpg",
]


def _points(detector: Detector, image: np.ndarray) -> np.ndarray:
    faces = detector.detect(image)
    h, w = image.shape[:2]
    central = min(
        faces, key=lambda f: (f.box[0] + f.box[2] - w) ** 2 + (f.box[1] + f.box[3] - h) ** 2
    )
    return central.landmarks_array()


def test_refined_points_agree_with_the_mirror_image_and_keep_the_face(shared: Path) -> None:
    """The refined five points of a photo and of its mirror image (mapped back) agree
    better than one pass's (the refinement averages each face with a mirrored look at it,
    so their disagreement should about halve), and stay on the same face: eyes as far apart on average, no
    point moved by a quarter of the eye distance."""
    refined = Detector(YUNET)
    single = Detector(DetectorConfig(kind=DetectorKind.YUNET, yunet=YuNetConfig(refine_face=0)))
    gaps: dict[str, list[float]] = {"refined": [], "single": []}
    ratios, moves = [], []
    for rel in LFW_FACES:
        image = load_image(shared_file(shared, rel)).pixels
        mirror = np.ascontiguousarray(image[:, ::-1])
        w = image.shape[1]
        for name, det in (("refined", refined), ("single", single)):
            a = _points(det, image)
            b = _points(det, mirror)[list(yunet.MIRRORED_ORDER)]
            b[:, 0] = w - 1 - b[:, 0]
            iod = np.linalg.norm(a[1] - a[0])
            gaps[name].append(np.linalg.norm(a - b, axis=1).mean() / iod)
        one, both = _points(single, image), _points(refined, image)
        iod = np.linalg.norm(one[1] - one[0])
        ratios.append(np.linalg.norm(both[1] - both[0]) / iod)
        moves.append(np.linalg.norm(both - one, axis=1).max() / iod)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.08)
    assert max(moves) < 0.25
    assert np.mean(gaps["refined"]) < 0.6 * np.mean(gaps["single"])

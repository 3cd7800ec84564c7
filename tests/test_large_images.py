"""Small files that decode to huge images: the work is bounded, and faces are still found right.

Before: a 231 KB 8900x8900 PNG kept `enroll` busy for 111 s and 2.5 GB, all
of it MTCNN's image pyramid over 79 megapixels. Now the detector never looks
at more than `DETECTION_MAX_SIDE` pixels, boxes and landmarks come back in the
caller's pixels, and large JPEGs can be decoded small from the start.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.detectors import DETECTION_MAX_SIDE
from facerec.errors import NoFaceError
from facerec.faces.images import decode_image, fit_within, load_image, to_full_size

from .bad_images import solid_png
from .conftest import shared_file

EX = "face_recognition/examples"


def cpu_seconds(fn) -> float:  # type: ignore[no-untyped-def]
    """CPU time of this process (every thread) spent in fn(): the work, whatever the machine's load."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def test_solid_png_bounded(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The 4800x4800 kind that held the server's model lock for 59.5 s."""
    from facerec.api import FaceRec

    path = tmp_path / "solid.png"
    path.write_bytes(solid_png(4800, 4800))
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:

        def enroll() -> None:
            with pytest.raises(NoFaceError):
                fr.enroll("Nobody", [path])

        assert cpu_seconds(enroll) < 5
        assert fr.people() == []


@pytest.mark.slow
def test_huge_solid_png_bounded(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The 8900x8900 kind (79 MP, under the 80 MP limit) that took 111 s."""
    from facerec.api import FaceRec

    path = tmp_path / "huge.png"
    path.write_bytes(solid_png(8900, 8900))
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:

        def enroll() -> None:
            with pytest.raises(NoFaceError):
                fr.enroll("Nobody", [path])

        assert cpu_seconds(enroll) < 10  # decoding 79 MP is most of it: the pixel limit bounds that


def test_landmarks_come_back_in_full_resolution_pixels(shared: Path, pipeline) -> None:  # type: ignore[no-untyped-def]
    from facerec.detectors import Detector, DetectorConfig

    photo = load_image(shared_file(shared, f"{EX}/obama.jpg"))
    h, w = photo.pixels.shape[:2]
    k = 3  # 2730x3411: shrunk to 1600 for detection
    big = np.asarray(Image.fromarray(photo.pixels).resize((w * k, h * k), Image.Resampling.BICUBIC))
    assert max(big.shape[:2]) > DETECTION_MAX_SIDE
    (large,) = pipeline.detector.detect(big)

    # Exactly the faces of the shrunk copy, mapped pixel centre to pixel centre.
    shrunk, scale = fit_within(big, DETECTION_MAX_SIDE)
    unbounded = Detector(DetectorConfig(max_side=None, kind=pipeline.detector.kind))
    (direct,) = unbounded.detect(shrunk)
    np.testing.assert_allclose(
        large.landmarks_array(), to_full_size(direct.landmarks_array(), scale), atol=1e-3
    )
    np.testing.assert_allclose(large.box, to_full_size(direct.box, scale), atol=1e-3)

    # And where the face is: the original photo's landmarks, scaled (MTCNN's own noise aside).
    (small,) = pipeline.detector.detect(photo.pixels)
    eyes = np.linalg.norm(small.landmarks_array()[0] - small.landmarks_array()[1]) * k
    expected = (small.landmarks_array() + 0.5) * k - 0.5
    assert np.abs(large.landmarks_array() - expected).max() < 0.1 * eyes


@pytest.mark.parametrize("shape", [(17, 17), (19, 400), (16, 8900), (30, 8900)])
def test_images_too_small_for_a_face_have_none(pipeline, shape: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Found by the CLI fuzz test: MTCNN crashed (torch.cat of nothing) on images smaller than
    its smallest face, which a long strip becomes once shrunk to 1600 px."""
    assert pipeline.detector.detect(np.full((*shape, 3), 128, np.uint8)) == []


def test_large_jpeg_decodes_small_with_its_own_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).resize((6000, 4500))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85, exif=exif.tobytes())
    loaded = decode_image(buf.getvalue(), source="big.jpg", max_side=1600)
    assert max(loaded.size) == 1600 and loaded.size[1] > loaded.size[0]  # upright: portrait
    assert loaded.original_size == (4500, 6000)
    sx, sy = loaded.scale
    assert sx == pytest.approx(4500 / loaded.size[0]) and sy == pytest.approx(6000 / 1600)
    full = decode_image(buf.getvalue(), source="big.jpg")
    assert full.size == (4500, 6000) and full.original_size is None and full.scale == (1.0, 1.0)

"""Damaged JPEGs: Pillow decodes them without a word; facerec flags them and will not enrol them."""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from facerec.errors import ImageError
from facerec.faces.images import decode_image, load_image

from .conftest import shared_file

EX = "face_recognition/examples"


def zeroed(data: bytes, at: float = 0.5, n: int = 500) -> bytes:
    """`data` with `n` bytes zeroed in the middle: a classic interrupted-transfer wound."""
    i = int(len(data) * at)
    return data[:i] + b"\0" * n + data[i + n :]


def pillow_decodes(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data)).load()
    except Exception:
        return False
    return True


def test_zeroed_block_decodes_in_pillow_but_is_flagged(shared: Path) -> None:
    data = zeroed(shared_file(shared, f"{EX}/obama.jpg").read_bytes())
    assert pillow_decodes(data)  # the original failure: grey pixels, no error
    image = decode_image(data, source="wounded.jpg")
    assert image.damage is not None and "Corrupt JPEG data" in image.damage
    assert image.pixels.shape[2] == 3  # still usable where a warning is enough


def test_bit_flips_caught(shared: Path) -> None:
    """200 copies of one photo with three flipped bits each (seeded): Pillow refuses almost
    none; libjpeg-turbo's warnings catch the ones whose Huffman stream no longer adds up.
    scripts/bench_corrupt_jpeg.py measures the rest (flips that stay valid codes)."""
    data = shared_file(shared, f"{EX}/obama-480p.jpg").read_bytes()
    rng = random.Random(11)
    pil_refused = caught = 0
    for _ in range(200):
        b = bytearray(data)
        for _ in range(3):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        m = bytes(b)
        pil_refused += not pillow_decodes(m)
        try:
            caught += decode_image(m, source="copy").damage is not None
        except ImageError:
            caught += 1
    assert pil_refused <= 10
    assert caught >= 60, caught


def test_clean_jpegs_are_not_flagged(shared: Path) -> None:
    paths = [
        p
        for s in ("face_recognition", "facenet_pytorch", "openface")
        for p in sorted((shared / s).rglob("*"))
        if p.suffix.lower() in {".jpg", ".jpeg"}
    ]
    lfw = shared / "lfw" / "images"
    if lfw.is_dir():
        paths += sorted(lfw.rglob("*.jpg"))[:150]
    assert paths
    flagged = [str(p) for p in paths if load_image(p).damage is not None]
    assert flagged == []


@pytest.mark.parametrize(
    ("mode", "options"),
    [("RGB", {"progressive": True}), ("L", {}), ("CMYK", {}), ("RGB", {"subsampling": 2})],
)
def test_unusual_but_valid_jpegs_are_not_flagged(mode: str, options: dict[str, object]) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **options)
    assert decode_image(buf.getvalue(), source="x.jpg").damage is None


def test_truncated_files_are_refused_whatever_pillow_is_told(
    shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jpeg = shared_file(shared, f"{EX}/obama.jpg").read_bytes()
    png = shared_file(shared, f"{EX}/alex-lacamoire.png").read_bytes()
    for data in (jpeg[: len(jpeg) * 2 // 3], png[: len(png) * 2 // 3]):
        with pytest.raises(ImageError, match="truncated"):
            decode_image(data, source="cut")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageError, match="LOAD_TRUNCATED_IMAGES"):
        decode_image(jpeg[: len(jpeg) * 2 // 3], source="cut.jpg")


def test_enrolment_refuses_damage_identification_warns(
    shared: Path, pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from facerec.api import FaceRec

    clean = shared_file(shared, f"{EX}/obama.jpg").read_bytes()
    wounded = decode_image(zeroed(clean, at=0.8), source="wounded.jpg")
    assert wounded.damage is not None
    with FaceRec(tmp_path / "g.db", pipeline=pipeline) as fr:
        with pytest.raises(ImageError, match="damaged photo is not enrolled") as err:
            fr.enroll_images("Barack Obama", [decode_image(clean, source="ok.jpg"), wounded])
        assert "wounded.jpg" in str(err.value)
        assert fr.people() == []  # all or nothing

        fr.enroll_images("Barack Obama", [decode_image(clean, source="ok.jpg")])
        result = fr.identify_image(wounded)
        assert result.damage == wounded.damage
        assert [f.identification.name for f in result.faces if f.identification] == ["Barack Obama"]
        with caplog.at_level(logging.WARNING, logger="facerec.api"):
            assert fr.verify_image("Barack Obama", wounded).accepted
        assert "wounded.jpg" in caplog.text and "Corrupt JPEG data" in caplog.text

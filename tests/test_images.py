from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.errors import ImageError
from facerec.faces.images import decode_image, from_png, load_image, to_png

from .bad_images import write_bad_inputs
from .conftest import shared_file


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture()
def gradient() -> Image.Image:
    x = np.linspace(0, 255, 64, dtype=np.uint8)
    rgb = np.stack(
        [np.tile(x, (48, 1)), np.tile(x[:48, None], (1, 64)), np.full((48, 64), 40, np.uint8)],
        axis=2,
    )
    return Image.fromarray(rgb)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_formats_decode_to_rgb(gradient: Image.Image, fmt: str) -> None:
    img = decode_image(_encode(gradient, fmt), source=f"x.{fmt.lower()}")
    assert img.pixels.shape == (48, 64, 3)
    assert img.pixels.dtype == np.uint8
    if fmt in ("PNG", "BMP", "TIFF"):  # lossless
        np.testing.assert_array_equal(img.pixels, np.asarray(gradient))


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16", "1"])
def test_modes_become_rgb(gradient: Image.Image, mode: str) -> None:
    src = gradient.convert("L").convert(mode) if mode in ("I;16", "1") else gradient.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode == "I;16" else "PNG"
    img = decode_image(_encode(src, fmt), source="m")
    assert img.pixels.shape == (48, 64, 3) and img.pixels.dtype == np.uint8


def test_sixteen_bit_uses_full_range() -> None:
    arr = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    img = decode_image(_encode(Image.fromarray(arr), "PNG"), source="16bit.png")
    assert img.pixels.min() == 0 and img.pixels.max() == 255  # not clipped to white


def test_transparent_pixels_composite_on_white() -> None:
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    img = decode_image(_encode(rgba, "PNG"), source="t.png")
    assert (img.pixels == 255).all()


def test_exif_orientation_is_applied(gradient: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = _encode(gradient, "JPEG", exif=exif.tobytes(), quality=95)
    img = decode_image(data, source="rot.jpg")
    assert img.pixels.shape == (64, 48, 3)


def test_same_bytes_same_hash(tmp_path: Path, gradient: Image.Image) -> None:
    data = _encode(gradient, "PNG")
    (tmp_path / "a.png").write_bytes(data)
    (tmp_path / "b.png").write_bytes(data)
    assert load_image(tmp_path / "a.png").sha256 == load_image(tmp_path / "b.png").sha256


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("empty", "empty file"),
        ("text", "not an image"),
        ("truncated", "truncated"),
        ("tiny", "too small"),
        ("bomb", "decompression bomb"),
    ],
)
def test_bad_inputs_raise_typed_error(tmp_path: Path, shared: Path, kind: str, words: str) -> None:
    bad = write_bad_inputs(tmp_path, shared_file(shared, "face_recognition/examples/obama.jpg"))
    with pytest.raises(ImageError) as err:
        load_image(bad[kind])
    assert words in str(err.value)
    assert str(bad[kind]) in str(err.value)  # names the file
    assert "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_max_pixels_is_configurable(gradient: Image.Image, tmp_path: Path) -> None:
    p = tmp_path / "g.png"
    p.write_bytes(_encode(gradient, "PNG"))
    with pytest.raises(ImageError, match="MP limit"):
        load_image(p, max_pixels=1000)


def test_png_round_trip(gradient: Image.Image) -> None:
    arr = np.asarray(gradient)
    np.testing.assert_array_equal(from_png(to_png(arr)), arr)


def test_real_rgba_png_and_grayscale_pgm(shared: Path) -> None:
    rgba = load_image(shared_file(shared, "face_recognition/tests/test_images/32bit.png"))
    assert rgba.pixels.ndim == 3 and rgba.pixels.shape[2] == 3
    pgm = load_image(shared_file(shared, "att_faces/s1/1.pgm"))
    assert pgm.pixels.shape == (112, 92, 3)
    gif = load_image(next((shared / "yalefaces").rglob("*.gif")))
    assert gif.pixels.shape[2] == 3

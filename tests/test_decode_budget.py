"""Image headers say what decoding will cost; a `DecodeBudget` makes decoders wait for room.

The costs are checked against the memory decoding really takes in
tests/album/test_album_memory.py and tests/server/test_decode_budget_http.py.
"""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from facerec.errors import ImageError
from facerec.faces.images import DecodeBudget, decode_image, read_header

from .bad_images import grey16_png


def float_tiff(side: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.linspace(0, 1, side * side, dtype=np.float32).reshape(side, side)).save(
        buf, format="TIFF"
    )
    return buf.getvalue()


def test_float_pixels_are_refused_from_the_header() -> None:
    data = float_tiff()
    for read in (read_header, decode_image):
        with pytest.raises(ImageError, match="floating-point pixels"):
            read(data)


def test_sixteen_bit_grey_is_costed_and_scaled_to_its_range() -> None:
    data = grey16_png(300, 200, seed=3)
    head = read_header(data)
    assert (head.width, head.height, head.mode) == (300, 200, "I;16")
    assert head.decode_bytes() == 300 * 200 * (2 + 8)
    img = decode_image(data)
    row = (np.arange(200) * 7 + 3 * 977) % 65536
    want = np.clip(row / 65535 * 255 + 0.5, 0, 255).astype(np.uint8)
    assert img.pixels.shape == (200, 300, 3)
    assert (img.pixels[:, 0, 0] == want).all() and (img.pixels == img.pixels[:, :1, :1]).all()


def test_a_jpeg_decoded_small_costs_what_its_dct_scale_decodes() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (90, 100, 110)).save(buf, format="JPEG")
    head = read_header(buf.getvalue())
    assert head.decoded_size(1600) == (2000, 1500)  # 1/2: the smallest scale still >= 1600 px
    assert head.decode_bytes() == 4000 * 3000 * 11  # RGB: 10, and 1 for libjpeg
    assert head.decode_bytes(1600) == 2000 * 1500 * 11 + 1600 * 1600 * 3  # and the shrunk copy


def test_the_budget_makes_decoders_wait_and_refuses_what_never_fits() -> None:
    budget = DecodeBudget(100)
    with pytest.raises(ImageError, match="over the 0 MiB decode budget"), budget.reserve(101):
        pass
    order: list[str] = []
    with budget.reserve(80):
        with pytest.raises(TimeoutError), budget.reserve(30, timeout=0.1):
            pass

        def second() -> None:
            with budget.reserve(30):
                order.append("second")

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.2)
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"] and budget.free == 100

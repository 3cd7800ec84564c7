"""The scan's reader, no model needed: which files, how they are read, bounded parallel decoding."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.album.scan import Fetcher, PhotoFile, bounded_map, find_photos, thumbnail
from facerec.errors import ImageError
from facerec.faces.images import fit_within


def jpeg(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_find_photos_recursive_by_suffix_skipping_hidden(tmp_path: Path) -> None:
    jpeg(tmp_path / "a.jpg")
    jpeg(tmp_path / "sub" / "deeper" / "b.JPEG")
    jpeg(tmp_path / ".thumbnails" / "c.jpg")
    jpeg(tmp_path / ".hidden.jpg")
    (tmp_path / "notes.txt").write_text("x")
    found = [p.path.relative_to(tmp_path).as_posix() for p in find_photos(tmp_path)]
    assert found == ["a.jpg", "sub/deeper/b.JPEG"]
    with pytest.raises(ImageError, match="not a folder"):
        find_photos(tmp_path / "a.jpg")


def test_fetcher_decodes_skips_known_and_reports_bad_files(tmp_path: Path) -> None:
    good = jpeg(tmp_path / "good.jpg", (3000, 1000))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    sha = hashlib.sha256(good.read_bytes()).hexdigest()

    def file(p: Path) -> PhotoFile:
        return PhotoFile(p, p.stat().st_size, p.stat().st_mtime_ns)

    got = Fetcher(frozenset(), max_side=1500)(file(good))
    assert got.error is None and not got.known and got.sha256 == sha
    assert got.image is not None and got.image.size == (1500, 500)  # shrunk for detection
    assert got.original_size == (3000, 1000) and got.scale == (2.0, 2.0)

    known = Fetcher(frozenset({sha}))(file(good))
    assert known.known and known.image is None

    broken = Fetcher(frozenset())(file(bad))
    assert broken.sha256 is not None and "not an image" in (broken.error or "")

    gone = Fetcher(frozenset())(PhotoFile(tmp_path / "gone.jpg", 1, 1))
    assert gone.sha256 is None and "no such file" in (gone.error or "")


def test_shrink_and_thumbnail() -> None:
    pixels = np.zeros((100, 400, 3), np.uint8)
    same, scale = fit_within(pixels, None)
    assert same is pixels and scale == (1.0, 1.0)
    small, scale = fit_within(pixels, 200)
    assert small.shape == (50, 200, 3) and scale == (2.0, 2.0)
    data = thumbnail(pixels, (10, 10, 60, 90))
    out = Image.open(__import__("io").BytesIO(data))
    assert out.format == "JPEG" and max(out.size) <= 112


def test_bounded_map_keeps_order_and_bounds_what_is_in_flight() -> None:
    lock = threading.Lock()
    running = peak = 0

    def work(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.001 * (x % 3))
        with lock:
            running -= 1
        return x * x

    with ThreadPoolExecutor(4) as pool:
        out = []
        for y in bounded_map(pool, work, range(50), window=3):
            out.append(y)
    assert out == [x * x for x in range(50)]
    assert peak <= 3
    assert list(bounded_map(None, work, range(5), window=1)) == [0, 1, 4, 9, 16]

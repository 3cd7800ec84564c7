"""Load any photo a user throws at us as an upright 8-bit RGB array, or fail clearly.

Photos arrive as phone JPEGs rotated by an EXIF tag, scanner TIFFs in CMYK,
16-bit PNGs, palette GIFs, transparent PNG screenshots, and occasionally as
something that is not an image at all or was cut off mid-transfer. Everything
downstream (MTCNN, the warp, the embedding network) assumes upright RGB uint8,
so this is the one place that normalises, and the one place that turns a bad
file into an `ImageError` naming the file and the reason.

Only regular files are read. A FIFO named photo.jpg would block the reader
forever and a link to /dev/zero would fill memory, so the path is checked
with `stat` before it is opened, opened non-blocking (a FIFO swapped in after
the check cannot block), checked again with `fstat` on the open descriptor,
and read no further than the byte limit.

Decompression bombs are refused from the header, before any pixel is decoded:
a 50000x50000 PNG of a few kilobytes would otherwise take 7.5 GB of memory.
The header also says what decoding will cost (`ImageHeader.decode_bytes`:
width x height x the bytes per pixel of every buffer decoding and conversion
hold at once), so that a process can bound its decoders' memory with a
`DecodeBudget` shared by its threads (docs/limits.md); float pixels (32-bit
float TIFFs) are refused rather than guessed at. 16-bit and 32-bit integer
images are converted a strip of rows at a time, not through a float64 copy
of the whole image.

Damaged JPEGs decode without complaint: libjpeg only *warns* about corrupt
entropy data or a missing end marker and fills the gap with grey, and Pillow
swallows the warning. Every JPEG is therefore also run through libjpeg-turbo
with warnings made errors (`simplejpeg`, strict, at 1/8 scale, which still
reads every Huffman code but skips most of the IDCT). A warning does not fail
the load; it sets `LoadedImage.damage`, and each caller decides: enrolment
refuses such a photo, identification and albums use it and say so.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from facerec.errors import ImageError
from facerec.paths import display_path

#: File suffixes a folder scan picks up (decoding is by content, not by suffix).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}
)

DEFAULT_MAX_PIXELS = 80_000_000  # a 100-MP phone sensor downsampled; 8-bit RGB = 240 MB
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MIN_SIDE = 16  # below this nothing recognisable fits

#: Formats whose data is a JPEG stream (MPO: a camera's multi-picture JPEG).
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})

#: Bytes per pixel of Pillow's own buffer for a mode (it keeps 3-channel modes in 4 bytes).
_PIL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
#: Bytes per pixel of the buffers converting a mode to 8-bit RGB adds, at their peak
#: (`_to_rgb`), checked against peak RSS by scripts/bench_decode_memory.py: a Pillow RGB
#: copy (4), then `np.asarray`, which goes through `tobytes` (its chunks and their join,
#: 3 + 3) for most modes; alpha adds the RGBA copy, a white background and the
#: composite (12); 16/32-bit grey: the array at its own depth (twice, `tobytes` again),
#: the RGB result (3) and a float strip.
_CONVERT_BYTES = {"RGB": 6, "I": 12, "I;16": 8, "I;16B": 8, "I;16L": 8, "I;16N": 8}
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
#: Modes whose pixels are floats: their range means nothing we could map to 8 bits.
_FLOAT_MODES = frozenset({"F"})
#: Bytes of decoded pixels a process's decoders may hold at once, by default (`DecodeBudget`).
DEFAULT_DECODE_BUDGET = 1 << 30


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What an image's header says, before any pixel is decoded."""

    width: int
    height: int
    mode: str
    format: str | None
    rotated: bool = False  # an EXIF orientation that swaps or flips: a second buffer

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def decoded_size(self, max_side: int | None = None) -> tuple[int, int]:
        """(width, height) the decoder produces: smaller for a JPEG with `max_side` (DCT scaling)."""
        w, h = self.width, self.height
        if self.format in _JPEG_FORMATS and max_side is not None and max(w, h) > max_side:
            f = max_side / max(w, h)
            want_w, want_h = math.ceil(w * f), math.ceil(h * f)
            for k in (8, 4, 2):  # libjpeg's scales Pillow's draft picks from
                if w // k >= want_w and h // k >= want_h:
                    return math.ceil(w / k), math.ceil(h / k)
        return w, h

    def decode_bytes(self, max_side: int | None = None) -> int:
        """Peak bytes of pixel buffers that decoding to 8-bit RGB holds at once.

        Pillow's buffer, a second one when an EXIF rotation is applied, and the
        conversion's buffers (`_CONVERT_BYTES`); the shrink to `max_side` adds
        only its result (at most `max_side` squared, RGB). Not counted: the
        encoded bytes (the caller has them already).
        """
        w, h = self.decoded_size(max_side)
        mode = self.mode
        own = _PIL_BYTES.get(mode, 4)
        convert = _CONVERT_BYTES.get(mode, 10) + (12 if mode in _ALPHA_MODES else 0)
        if self.format in _JPEG_FORMATS:
            convert += 1  # libjpeg's own buffers and the strict damage check beside them
        shrunk = 0 if max_side is None or max(w, h) <= max_side else max_side * max_side * 3
        return w * h * (own * (2 if self.rotated else 1) + convert) + shrunk


class DecodeBudget:
    """A process's bytes of decoded pixels, shared by its threads: decodes wait for room.

    Each decode (or a request for all its photos) reserves its `decode_bytes`
    first and gives them back when done, so however many threads decode at once,
    their pixel buffers stay under `total` bytes. A reservation larger than the
    whole budget can never be met and is refused at once (`ImageError`).
    """

    def __init__(self, total: int = DEFAULT_DECODE_BUDGET) -> None:
        if total <= 0:
            raise ValueError(f"a decode budget must be positive, got {total}")
        self.total = total
        self._free = total
        self._room = threading.Condition()

    @property
    def free(self) -> int:
        with self._room:
            return self._free

    @contextmanager
    def reserve(
        self, nbytes: int, *, source: str = "<bytes>", timeout: float | None = None
    ) -> Iterator[None]:
        """Hold `nbytes` of the budget inside the block; `TimeoutError` if none frees in `timeout` s."""
        if nbytes > self.total:
            raise ImageError(
                source,
                f"decoding needs {nbytes / 2**20:.0f} MiB of pixel buffers, over the "
                f"{self.total / 2**20:.0f} MiB decode budget (docs/limits.md)",
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._room:
            while self._free < nbytes:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no room in the decode budget within {timeout:g} s")
                self._room.wait(left)
            self._free -= nbytes
        try:
            yield
        finally:
            with self._room:
                self._free += nbytes
                self._room.notify_all()


RGBImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class LoadedImage:
    """Pixels plus what a gallery needs to remember about where they came from.

    `source` is the file name as printable text (`display_path`). `damage` says
    why the decoder thinks some pixels may be wrong (None: decoded cleanly).
    `original_size` is the upright photo's own size when it was decoded
    smaller (`max_side`); None when `pixels` are full size.
    """

    source: str
    pixels: RGBImage  # (H, W, 3) uint8, upright
    sha256: str  # of the encoded bytes: identical files share it
    damage: str | None = None
    original_size: tuple[int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of `pixels`."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) photo pixels per pixel of `pixels`: 1.0 unless decoded smaller."""
        if self.original_size is None:
            return 1.0, 1.0
        w, h = self.size
        return self.original_size[0] / w, self.original_size[1] / h


def file_problem(st: os.stat_result) -> str | None:
    """Why a path with this `stat` is not a photo to read, or None for a regular file."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not an image file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISCHR(mode):
        return "is a character device, not a regular file"
    if stat.S_ISBLK(mode):
        return "is a block device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def stat_photo(path: str | Path) -> os.stat_result:
    """`os.stat` of a photo path (links followed), or an `ImageError` saying why it is not one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageError(path, "dangling symbolic link (its target does not exist)") from None
        raise ImageError(path, "no such file") from None
    except OSError as exc:
        raise ImageError(path, f"cannot read: {exc.strerror or exc}") from None
    problem = file_problem(st)
    if problem is not None:
        raise ImageError(path, problem)
    return st


def _check_size(path: str | Path, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageError(
            path, f"file is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit"
        )


def read_bytes(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A regular file's bytes, at most `max_bytes` of them; anything else is refused by name."""
    _check_size(path, stat_photo(path).st_size, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: a FIFO swapped in since the stat returns at once
    except OSError as exc:
        raise ImageError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)  # what was actually opened, not what the name pointed at before
        problem = file_problem(st)
        if problem is not None:
            raise ImageError(path, problem)
        _check_size(path, st.st_size, max_bytes)
        chunks: list[bytes] = []
        left = max_bytes + 1  # one byte more tells a file that grew past the limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise ImageError(path, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data:
        raise ImageError(path, "empty file")
    if len(data) > max_bytes:
        raise ImageError(path, f"file grew past the {max_bytes / 2**20:.0f} MiB limit while read")
    return data


def load_image(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_side: int | None = None,
    budget: DecodeBudget | None = None,
) -> LoadedImage:
    """Load an image file as upright RGB (see `decode_image` for `max_side` and `budget`)."""
    return decode_image(
        read_bytes(path, max_bytes),
        source=display_path(path),
        max_pixels=max_pixels,
        max_side=max_side,
        budget=budget,
    )


def decode_image(
    data: bytes,
    *,
    source: str = "<bytes>",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    budget: DecodeBudget | None = None,
) -> LoadedImage:
    """Decode encoded image bytes (an upload, a file's content) as upright RGB.

    With `max_side`, the result's longer side is at most that many pixels:
    a JPEG is decoded at a reduced scale straight away (libjpeg's DCT
    scaling, Pillow's `draft`: a 4000x3000 photo is decoded as 2000x1500,
    a quarter of the pixels), anything else is decoded whole and then shrunk. Use it where
    the full resolution is not needed (album scans, thumbnails);
    `original_size` keeps the photo's own size for mapping coordinates back.

    With `budget`, the decode first reserves what the header says it will
    cost (`ImageHeader.decode_bytes`) and waits for room; the reservation
    ends once the pixels are shrunk to `max_side`.
    """
    source = display_path(source)
    if not data:
        raise ImageError(source, "empty file")
    if max_side is not None and max_side < MIN_SIDE:
        raise ValueError(f"max_side must be at least {MIN_SIDE}, got {max_side}")
    digest = hashlib.sha256(data).hexdigest()
    if budget is None:
        pixels, full, damage = _decode(data, source, max_pixels, max_side)
        pixels, _ = fit_within(pixels, max_side)
    else:
        cost = read_header(data, source=source, max_pixels=max_pixels).decode_bytes(max_side)
        with budget.reserve(cost, source=source):
            pixels, full, damage = _decode(data, source, max_pixels, max_side)
            pixels, _ = fit_within(pixels, max_side)
    original = full if full != (pixels.shape[1], pixels.shape[0]) else None
    return LoadedImage(source, pixels, digest, damage, original)


def fit_within(pixels: RGBImage, max_side: int | None) -> tuple[RGBImage, tuple[float, float]]:
    """`pixels` with the longer side at most `max_side`, and the (x, y) scale back.

    Area interpolation: every source pixel contributes, so shrinking by ten
    does not alias the way nearest or bilinear sampling would.
    """
    h, w = pixels.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return pixels, (1.0, 1.0)
    f = max_side / max(h, w)
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    import cv2  # deferred: `facerec people` and `--help` must not load OpenCV

    small = cv2.resize(pixels, (nw, nh), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small), (w / nw, h / nh)


def to_full_size(xy: npt.ArrayLike, scale: tuple[float, float]) -> npt.NDArray[np.float64]:
    """Points (..., 2) or boxes (..., 4) of a shrunk image in the full-size image's pixels.

    Pixel centres map to pixel centres, as `cv2.resize` and libjpeg's DCT
    scaling lay them out: x_full = (x + 0.5) * scale - 0.5.
    """
    a = np.asarray(xy, dtype=np.float64)
    s = np.resize(np.asarray(scale, dtype=np.float64), a.shape[-1])
    return (a + 0.5) * s - 0.5


def jpeg_damage(data: bytes) -> str | None:
    """libjpeg-turbo's complaint about a JPEG stream (corrupt data, early end), or None.

    Strict decoding stops at the first warning; decoding at 1/8 scale to grey
    still reads every Huffman code (where corruption shows) at a third of the
    cost of a full decode.
    """
    try:
        simplejpeg.decode_jpeg(
            data, colorspace="GRAY", min_height=1, min_width=1, min_factor=8, strict=True
        )
    except ValueError as exc:
        return f"damaged JPEG data ({str(exc).strip() or 'decoder warning'})"
    return None


def read_header(
    data: bytes, *, source: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageHeader:
    """The header of encoded image bytes, checked as `decode_image` checks it; decodes nothing."""
    source = display_path(source)
    if not data:
        raise ImageError(source, "empty file")
    with _pil_errors(source), Image.open(io.BytesIO(data)) as img:
        return _check_header(img, source, max_pixels)


@contextmanager
def _pil_errors(source: str) -> Iterator[None]:
    """Pillow's failures on hostile bytes, each as one `ImageError` naming `source`.

    We enforce our own pixel bound from the header, so PIL's bomb warning is silenced.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(source, "not an image (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(source, f"refused as a possible decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            reason = "truncated image data (the file was cut off)"
        raise ImageError(source, f"cannot decode: {reason}") from None


def _check_header(img: Image.Image, source: str, max_pixels: int) -> ImageHeader:
    """`img`'s header facts, or an `ImageError` for a bomb, a speck or float pixels."""
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            source,
            f"image is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
            f"{max_pixels / 1e6:.0f} MP limit (possible decompression bomb)",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(source, f"image is {width}x{height}, too small to contain a face")
    if img.mode in _FLOAT_MODES:
        raise ImageError(
            source,
            f"{img.format or 'image'} with floating-point pixels (mode {img.mode}) is not "
            "supported: save it as 8- or 16-bit",
        )
    orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
    return ImageHeader(width, height, img.mode, img.format, rotated=orientation not in (1, None))


def _decode(
    data: bytes, source: str, max_pixels: int, max_side: int | None
) -> tuple[RGBImage, tuple[int, int], str | None]:
    """(pixels, the upright full size, damage) of encoded bytes."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone in this process told Pillow to pad cut-off files with grey.
        raise ImageError(
            source, "refusing to decode: PIL.ImageFile.LOAD_TRUNCATED_IMAGES is switched on"
        )
    with _pil_errors(source):
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        _check_header(img, source, max_pixels)
        is_jpeg = img.format in _JPEG_FORMATS
        damage = jpeg_damage(data) if is_jpeg else None
        if is_jpeg and max_side is not None and max(width, height) > max_side:
            f = max_side / max(width, height)
            img.draft(None, (math.ceil(width * f), math.ceil(height * f)))
        img.load()
        loaded_size = img.size
        # In place: without an orientation tag the copy exif_transpose returns is 240 MB
        # for a 79-MP photo, for nothing.
        ImageOps.exif_transpose(img, in_place=True)
        full = (height, width) if img.size != loaded_size else (width, height)
        return _to_rgb(img), full, damage


def _to_rgb(img: Image.Image) -> RGBImage:
    """Every PIL mode we meet, as 8-bit RGB."""
    mode = img.mode
    if mode in _FLOAT_MODES:  # refused from the header; a caller of _to_rgb alone gets it too
        raise ImageError("<image>", f"floating-point pixels (mode {mode}) are not supported")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return _high_depth_to_rgb(img)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels carry arbitrary colour; composite onto white, as viewers show them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


#: Rows converted at once from 16/32-bit grey: bounds the float64 temporaries to a strip.
_STRIP_ROWS = 256


def _high_depth_to_rgb(img: Image.Image) -> RGBImage:
    """16/32-bit grey as 8-bit RGB, scaling the real range (PIL's convert("L") clips).

    Strip by strip: a float64 copy of an 8900x8900 16-bit image is 630 MB, and
    the conversion used to hold two of them at once.
    """
    arr = np.asarray(img)  # uint16 / int32, Pillow's buffer copied once at its own depth
    top = 65535.0 if img.mode.startswith("I;16") or int(arr.max()) > 255 else 255.0
    h, w = arr.shape[:2]
    out = np.empty((h, w, 3), dtype=np.uint8)
    for y in range(0, h, _STRIP_ROWS):
        strip = arr[y : y + _STRIP_ROWS].astype(np.float64)
        gray = np.clip(strip / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out[y : y + _STRIP_ROWS] = gray[:, :, None]
    return out


def to_png(pixels: RGBImage) -> bytes:
    """Lossless encoding for stored aligned crops."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def from_png(data: bytes) -> RGBImage:
    """Inverse of `to_png`."""
    return _to_rgb(Image.open(io.BytesIO(data)))

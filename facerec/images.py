"""Load any photo a user throws at us as an upright 8-bit RGB array, or fail clearly.

Photos arrive as phone JPEGs rotated by an EXIF tag, scanner TIFFs in CMYK,
16-bit PNGs, palette GIFs, transparent PNG screenshots, and occasionally as
something that is not an image at all or was cut off mid-transfer. Everything
downstream (MTCNN, the warp, the embedding network) assumes upright RGB uint8,
so this is the one place that normalises, and the one place that turns a bad
file into an `ImageError` naming the file and the reason.

Decompression bombs are refused from the header, before any pixel is decoded:
a 50000x50000 PNG of a few kilobytes would otherwise take 7.5 GB of memory.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from facerec.errors import ImageError

#: File suffixes a folder scan picks up (decoding is by content, not by suffix).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}
)

DEFAULT_MAX_PIXELS = 80_000_000  # a 100-MP phone sensor downsampled; 8-bit RGB = 240 MB
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MIN_SIDE = 16  # below this nothing recognisable fits

RGBImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True, eq=False)
class LoadedImage:
    """Pixels plus what a gallery needs to remember about where they came from."""

    source: str
    pixels: RGBImage  # (H, W, 3) uint8, upright
    sha256: str  # of the encoded bytes: identical files share it

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def read_bytes(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a file, refusing missing, unreadable, empty or oversized ones by name."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ImageError(p, "no such file") from None
    except OSError as exc:
        raise ImageError(p, f"cannot read: {exc.strerror or exc}") from None
    if p.is_dir():
        raise ImageError(p, "is a directory, not an image file")
    if size == 0:
        raise ImageError(p, "empty file")
    if size > max_bytes:
        raise ImageError(
            p, f"file is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit"
        )
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageError(p, f"cannot read: {exc.strerror or exc}") from None


def load_image(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedImage:
    """Load an image file as upright RGB."""
    return decode_image(read_bytes(path, max_bytes), source=str(path), max_pixels=max_pixels)


def decode_image(
    data: bytes, *, source: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Decode encoded image bytes (an upload, a file's content) as upright RGB."""
    if not data:
        raise ImageError(source, "empty file")
    digest = hashlib.sha256(data).hexdigest()
    pixels = _decode(data, source, max_pixels)
    return LoadedImage(source=source, pixels=pixels, sha256=digest)


def _decode(data: bytes, source: str, max_pixels: int) -> RGBImage:
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel bound from the header; silence PIL's own bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    source,
                    f"image is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
                    f"{max_pixels / 1e6:.0f} MP limit (possible decompression bomb)",
                )
            if min(width, height) < MIN_SIDE:
                raise ImageError(source, f"image is {width}x{height}, too small to contain a face")
            img.load()
            upright: Image.Image = ImageOps.exif_transpose(img) or img
            return _to_rgb(upright)
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


def _to_rgb(img: Image.Image) -> RGBImage:
    """Every PIL mode we meet, as 8-bit RGB."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit grayscale: PIL's convert("L") clips; scale the real range instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        gray = ((arr - lo) / (hi - lo or 1.0) * 255.0 + 0.5).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
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


def to_png(pixels: RGBImage) -> bytes:
    """Lossless encoding for stored aligned crops."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def from_png(data: bytes) -> RGBImage:
    """Inverse of `to_png`."""
    return _to_rgb(Image.open(io.BytesIO(data)))

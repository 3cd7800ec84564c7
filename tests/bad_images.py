"""Builders for the malformed inputs users feed us (shared by the image and CLI tests)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb_header(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width * 3 + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def write_bad_inputs(folder: Path, real_jpeg: Path) -> dict[str, Path]:
    """Each kind of bad input as a file: name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    out["empty"] = folder / "empty.jpg"
    out["empty"].write_bytes(b"")
    out["text"] = folder / "notes.jpg"
    out["text"].write_text("this is not an image\n")
    data = real_jpeg.read_bytes()
    out["truncated"] = folder / "truncated.jpg"
    out["truncated"].write_bytes(data[: len(data) // 3])
    out["tiny"] = folder / "tiny.png"
    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (128, 128, 128)).save(buf, format="PNG")
    out["tiny"].write_bytes(buf.getvalue())
    out["bomb"] = folder / "bomb.png"
    out["bomb"].write_bytes(png_bomb_header())
    return out


def solid_png(
    width: int, height: int, rgb: tuple[int, int, int] = (120, 130, 140), level: int = 1
) -> bytes:
    """A real, fully decodable PNG of one colour that decodes to width*height*3 bytes.

    Written row by row through zlib (Pillow would first build the whole image in
    memory). Level 1 is quick to write; level 9 gives the 78 KB (4800x4800) and
    250 KB (8900x8900) files of the original reports.
    """
    row = b"\x00" + bytes(rgb) * width
    z = zlib.compressobj(level)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def grey16_png(width: int, height: int, level: int = 6, seed: int = 0) -> bytes:
    """A real 16-bit greyscale PNG (decodes as Pillow mode I;16), written row by row.

    A smooth ramp with a `seed`-dependent offset, so every call gives other
    content (an album scan skips duplicates) and compresses to about a
    megabyte at 8900x8900, as the reports' scans did.
    """
    z = zlib.compressobj(level)
    parts = []
    for y in range(height):
        v = (y * 7 + seed * 977) % 65536
        parts.append(z.compress(b"\x00" + struct.pack(">H", v) * width))
    idat = b"".join(parts) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def peak_rss_command(out: Path, argv: list[str]) -> list[str]:
    """`python -c` running the facerec CLI with `argv`, writing its own peak RSS (bytes) to `out`.

    The peak is the process's own (`ru_maxrss` of RUSAGE_SELF), not that of
    every child the test process ever waited for.
    """
    import sys

    code = (
        "import atexit, resource, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write("
        "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))\n"
        f"sys.argv = ['facerec', *{argv!r}]\n"
        "from facerec.cli import main\n"
        "main()\n"
    )
    return [sys.executable, "-c", code]

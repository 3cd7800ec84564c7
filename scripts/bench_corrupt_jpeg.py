"""How many damaged JPEGs does facerec catch? Bit-flipped copies of shared photos, three detectors.

For each photo and each number of flipped bits, N copies (seeded) are made
and decoded three ways:

- `pil`: Pillow alone refuses the copy (what facerec did before);
- `facerec`: `decode_image` refuses it or sets `damage` (Pillow plus strict libjpeg-turbo);
- `visible`: the copy decodes to pixels visibly different from the clean photo
  somewhere: some 16x16 block's mean absolute difference from the clean
  decode exceeds 8 grey levels (Pillow errors count as visible). Damage is
  local when the JPEG has restart markers, so a whole-image PSNR would miss it.

"caught of visible" counts visibly damaged copies facerec refuses or flags;
"flagged, not visible" counts copies it flags whose pixels stay within that
bound everywhere (the decoder saw corrupt data that happened to cost little).
A flip inside the entropy-coded data that still forms valid Huffman codes
changes coefficients without any decoder noticing: no JPEG decoder can flag
those, they make up most of what is missed. Then every clean JPEG of the
shared data (LFW included) is checked for false alarms. Prints a table and
writes JSON.

    python scripts/bench_corrupt_jpeg.py [--copies 200] [--flips 1 3 10] [--json bench-results/corrupt_jpeg.json]
"""

from __future__ import annotations

import argparse
import io
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from facerec.errors import ImageError
from facerec.faces.images import decode_image, jpeg_damage

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PHOTOS = (
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "facenet_pytorch/data/test_images/angelina_jolie/1.jpg",
    "openface/adams/adams.jpg",
)
BLOCK = 16
VISIBLE_BLOCK_MAD = 8.0


def flipped(data: bytes, flips: int, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(flips):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def worst_block(a: np.ndarray, b: np.ndarray) -> float:
    """The largest mean absolute difference over BLOCK x BLOCK tiles."""
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(axis=2)
    h, w = (d.shape[0] // BLOCK) * BLOCK, (d.shape[1] // BLOCK) * BLOCK
    tiles = d[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))
    return float(tiles.max())


def pil_pixels(data: bytes) -> np.ndarray | None:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return np.asarray(img.convert("RGB"))
    except Exception:
        return None


def run(path: Path, flips: int, copies: int, seed: int) -> dict[str, object]:
    data = path.read_bytes()
    clean = pil_pixels(data)
    assert clean is not None, path
    rng = random.Random(seed)
    pil = facerec = visible = caught_visible = false_alarms = 0
    for _ in range(copies):
        m = flipped(data, flips, rng)
        pixels = pil_pixels(m)
        pil_refused = pixels is None
        try:
            flagged = decode_image(m, source="copy").damage is not None
        except ImageError:
            flagged = True
        looks_damaged = bool(
            pixels is None
            or pixels.shape != clean.shape
            or worst_block(pixels, clean) > VISIBLE_BLOCK_MAD
        )
        pil += pil_refused
        facerec += flagged
        visible += looks_damaged
        caught_visible += looks_damaged and flagged
        false_alarms += flagged and not looks_damaged
    return {
        "photo": str(path.relative_to(SHARED)),
        "bytes": len(data),
        "flips": flips,
        "copies": copies,
        "pil_refused": pil,
        "facerec_caught": facerec,
        "visibly_damaged": visible,
        "caught_of_visible": caught_visible,
        "flagged_not_visible": false_alarms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--flips", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", type=Path, default=Path("bench-results/corrupt_jpeg.json"))
    args = ap.parse_args()
    rows = [
        run(SHARED / rel, flips, args.copies, args.seed)
        for rel in PHOTOS
        if (SHARED / rel).exists()
        for flips in args.flips
    ]
    head = f"{'photo':<55} {'flips':>5} {'PIL':>5} {'facerec':>8} {'visible':>8} {'caught/vis':>10} {'flag,invis':>10}"
    print(head)
    for r in rows:
        print(
            f"{r['photo']:<55} {r['flips']:>5} {r['pil_refused']:>5} {r['facerec_caught']:>8} "
            f"{r['visibly_damaged']:>8} {r['caught_of_visible']:>10} {r['flagged_not_visible']:>10}"
        )
    clean = sorted(p for p in SHARED.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg"})
    flagged = [str(p.relative_to(SHARED)) for p in clean if jpeg_damage(p.read_bytes())]
    print(f"clean shared JPEGs flagged: {len(flagged)} of {len(clean)} {flagged[:5]}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    summary = {"copies": args.copies, "seed": args.seed, "rows": rows}
    summary.update(clean_checked=len(clean), clean_flagged=flagged)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""Peak memory of decoding one image of each Pillow mode, against what its header announces.

    python scripts/bench_decode_memory.py                  # 4000x4000 of each mode
    python scripts/bench_decode_memory.py --side 3000 --out bench-results/decode_memory.json

`facerec.faces.images.ImageHeader.decode_bytes` is what a `DecodeBudget` reserves
before a decode (docs/limits.md); it must never be below what decoding really
takes. Each case runs in a fresh process: the image is encoded there, then
`decode_image` runs once, and the rise of the process's peak RSS over its RSS
just before the decode is the measured cost. Prints a table (bytes per
pixel, announced and measured) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: (Pillow mode, file format, max_side) of each case.
CASES = [
    ("RGB", "PNG", None),
    ("RGB", "JPEG", None),
    ("RGB", "JPEG", 1600),
    ("L", "PNG", None),
    ("P", "PNG", None),
    ("1", "PNG", None),
    ("RGBA", "PNG", None),
    ("LA", "PNG", None),
    ("CMYK", "JPEG", None),
    ("I;16", "PNG", None),
    ("I;16", "TIFF", None),
    ("I", "TIFF", None),
]

RUNNER = r"""
import gc, io, json, resource, sys
import cv2  # loaded once by the first shrink: its libraries are not the decode's cost
import numpy as np
from PIL import Image
from facerec.faces.images import decode_image, read_header

mode, fmt, side, max_side = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
max_side = None if max_side == "none" else int(max_side)
ramp = np.arange(side, dtype=np.int64)[:, None] * np.ones((1, side), dtype=np.int64)
if mode == "I;16":
    img = Image.fromarray((ramp * 7 % 65536).astype(np.uint16))
elif mode == "I":
    img = Image.fromarray((ramp * 99).astype(np.int32))
else:
    img = Image.new(mode, (side, side), 1 if mode in ("L", "P", "1") else (10,) * len(mode))
buf = io.BytesIO()
img.save(buf, format=fmt)
data = buf.getvalue()
del img, buf, ramp
gc.collect()
announced = read_header(data, max_pixels=10**9).decode_bytes(max_side)


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024


open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
before = rss()
decode_image(data, max_pixels=10**9, max_side=max_side)
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps({"announced": announced, "measured": peak - before}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, default=4000, help="width and height of each image")
    ap.add_argument("--out", type=Path, default=Path("bench-results/decode_memory.json"))
    args = ap.parse_args()
    pixels = args.side * args.side
    rows = []
    print(f"{'mode':6} {'format':6} {'max_side':>8}  {'announced B/px':>14}  {'measured B/px':>13}")
    for mode, fmt, max_side in CASES:
        r = subprocess.run(
            [sys.executable, "-c", RUNNER, mode, fmt, str(args.side), str(max_side or "none")],
            capture_output=True,
            text=True,
            check=True,
        )
        got = json.loads(r.stdout.strip().splitlines()[-1])
        row = {"mode": mode, "format": fmt, "max_side": max_side, "side": args.side, **got}
        rows.append(row)
        print(
            f"{mode:6} {fmt:6} {max_side or '-':>8}  {got['announced'] / pixels:14.1f}  "
            f"{got['measured'] / pixels:13.1f}"
            + ("" if got["announced"] >= got["measured"] else "  UNDER-ANNOUNCED")
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Measure where MTCNN's five landmarks fall inside facenet-pytorch's 160x160 box crops.

InceptionResnetV1 (vggface2) was trained on MTCNN box crops, not on aligned
chips. Averaging the landmarks' positions in such crops over LFW gives the
alignment template that shows the network the geometry it was trained on;
the constants in `facerec/models/inception.py` come from this script.

    python scripts/derive_facenet_template.py [--n 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from facerec.detectors import Detector
from facerec.faces.images import load_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="LFW images to sample")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    paths = sorted((SHARED / "lfw" / "images").glob("*/*.jpg"))
    random.Random(0).shuffle(paths)
    det = Detector()
    rel = []
    for p in paths[: args.n]:
        faces = det.detect(load_image(p).pixels)
        if not faces:
            continue
        f = max(faces, key=lambda f: f.area)  # LFW: the centred face is the largest
        x1, y1, x2, y2 = f.box
        lm = f.landmarks_array()
        rel.append(np.stack([(lm[:, 0] - x1) / (x2 - x1), (lm[:, 1] - y1) / (y2 - y1)], axis=1))
    pts = np.mean(rel, axis=0) * args.size
    # Symmetrise: the template should not prefer one side of the face.
    cx = args.size / 2
    sym = pts.copy()
    for a, b in ((0, 1), (3, 4)):
        dx = (pts[b, 0] - pts[a, 0]) / 2
        y = (pts[a, 1] + pts[b, 1]) / 2
        sym[a] = (cx - dx, y)
        sym[b] = (cx + dx, y)
    sym[2, 0] = cx
    print(f"faces: {len(rel)}")
    print("raw:      ", np.round(pts, 1).tolist())
    print("symmetric:", np.round(sym, 1).tolist())
    if args.json:
        args.json.write_text(
            json.dumps({"n": len(rel), "raw": pts.tolist(), "symmetric": sym.tolist()})
        )


if __name__ == "__main__":
    main()

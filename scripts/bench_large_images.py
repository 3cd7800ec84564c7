"""Large images: what bounding the detector's input costs in accuracy, and what it saves in time.

Part 1, accuracy. Every shared photo whose longer side exceeds the detector's
limit (`DETECTION_MAX_SIDE`, 1600 px) is run through the pipeline twice: with
the limit (detect on a shrunk copy, landmarks mapped back, chip cut from the
full image) and without it (detect on the full image, as before). Per face:
the largest landmark shift in percent of the eye distance, the cosine between
the two embeddings, and whether verify against the other run's embedding
would accept at the default threshold. LFW (250x250) and AT&T are never
shrunk, so their figures cannot change; a sample is rerun to show the
embeddings are bit-identical.

Part 2, cost. `facerec enroll` in a subprocess on the small-file-huge-image
inputs of the reports (solid-colour PNGs of 4800x4800 and 8900x8900, a JPEG of
8900x8900): wall seconds, CPU seconds and peak RSS. `--unbounded` also runs
them with the limit off (max_side None), which is the old behaviour and takes
minutes.

    python scripts/bench_large_images.py [--unbounded] [--json bench-results/large_images.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = ("face_recognition", "facenet_pytorch", "openface")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def accuracy() -> dict[str, object]:
    from facerec.detectors import DETECTION_MAX_SIDE, Detector, DetectorConfig
    from facerec.faces.embedding import Embedder
    from facerec.faces.images import IMAGE_SUFFIXES, load_image
    from facerec.faces.pipeline import Pipeline
    from facerec.models.registry import load_model, model_spec

    embedder = Embedder(load_model())
    bounded = Pipeline(Detector(DetectorConfig()), embedder)
    unbounded = Pipeline(Detector(DetectorConfig(max_side=None)), embedder)
    threshold = model_spec(embedder.identity.name).threshold
    rows = []
    for s in SETS:
        for p in sorted((SHARED / s).rglob("*")):
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            img = load_image(p)
            if max(img.size) <= DETECTION_MAX_SIDE:
                continue
            a, b = bounded.faces(img), unbounded.faces(img)
            for fa in a:
                fb = fb_match(fa, b)
                if fb is None:
                    rows.append({"photo": str(p.relative_to(SHARED)), "matched": False})
                    continue
                la, lb = fa.detection.landmarks_array(), fb.detection.landmarks_array()
                eyes = float(np.linalg.norm(lb[0] - lb[1]))
                cos = float(np.dot(fa.embedding, fb.embedding))
                rows.append(
                    {
                        "photo": str(p.relative_to(SHARED)),
                        "size": list(img.size),
                        "matched": True,
                        "usable": fa.quality.ok,
                        "landmark_shift_pct_eye": 100 * float(np.abs(la - lb).max()) / eyes,
                        "cosine": cos,
                        "same_decision": cos >= threshold,
                    }
                )
    lfw = sorted((SHARED / "lfw" / "images").rglob("*.jpg"))[:100]
    identical = sum(
        all(
            np.array_equal(x.embedding, y.embedding)
            for x, y in zip(bounded.faces(im), unbounded.faces(im), strict=True)
        )
        for im in (load_image(p) for p in lfw)
    )
    return {
        "threshold": threshold,
        "faces": rows,
        "lfw_checked": len(lfw),
        "lfw_identical": identical,
    }


def fb_match(face, others):  # type: ignore[no-untyped-def]
    """The face of `others` whose box centre is nearest `face`'s, if it overlaps."""
    x1, y1, x2, y2 = face.detection.box
    c = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    best = None
    for o in others:
        ox1, oy1, ox2, oy2 = o.detection.box
        d = float(np.linalg.norm(c - [(ox1 + ox2) / 2, (oy1 + oy2) / 2]))
        if d < 0.5 * (x2 - x1) and (best is None or d < best[0]):
            best = (d, o)
    return None if best is None else best[1]


CHILD = textwrap.dedent(
    """
    import resource, sys, time
    from facerec.api import FaceRec
    from facerec.config import Settings
    from facerec.detectors import DetectorConfig
    from facerec.errors import FacerecError
    side = None if sys.argv[3] == "none" else int(sys.argv[3])
    t, c = time.perf_counter(), time.process_time()
    with FaceRec(sys.argv[1], Settings(detector=DetectorConfig(max_side=side))) as fr:
        fr.pipeline  # model loading is not what is measured
        t, c = time.perf_counter(), time.process_time()
        try:
            fr.enroll("Nobody", [sys.argv[2]])
            outcome = "enrolled"
        except FacerecError as exc:
            outcome = type(exc).__name__
    print(time.perf_counter() - t, time.process_time() - c,
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, outcome)
    """
)


def cost(unbounded: bool) -> list[dict[str, object]]:
    from PIL import Image

    from tests.bad_images import solid_png

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for side in (4800, 8900):
            files[f"solid {side}x{side} PNG"] = (
                Path(tmp) / f"s{side}.png",
                solid_png(side, side, level=9),
            )
        buf = io.BytesIO()
        Image.new("RGB", (8900, 8900), (120, 130, 140)).save(buf, format="JPEG", quality=90)
        files["solid 8900x8900 JPEG"] = (Path(tmp) / "s.jpg", buf.getvalue())
        for path, data in files.values():
            path.write_bytes(data)
        sides = ["1600"] + (["none"] if unbounded else [])
        for label, (path, data) in files.items():
            for side in sides:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(Path(tmp) / "g.db"), str(path), side],
                    capture_output=True, text=True, check=True, env=dict(os.environ, FACEREC_OFFLINE="1"),
                )  # fmt: skip
                wall, cpu, rss_kb, outcome = out.stdout.split()
                rows.append(
                    {
                        "input": label,
                        "file_kb": round(len(data) / 1024),
                        "detector_max_side": side,
                        "wall_s": float(wall),
                        "cpu_s": float(cpu),
                        "peak_rss_mb": int(rss_kb) / 1024,
                        "outcome": outcome,
                    }
                )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--unbounded", action="store_true", help="also time the old, unbounded detector"
    )
    ap.add_argument("--json", type=Path, default=Path("bench-results/large_images.json"))
    args = ap.parse_args()
    acc = accuracy()
    faces = acc["faces"]
    assert isinstance(faces, list)
    print(f"{'photo':<55} {'size':>11} {'shift %eye':>10} {'cosine':>8} {'same':>5}")
    for r in faces:
        if not r["matched"]:
            print(f"{r['photo']:<55} face found by one run only")
            continue
        size = "x".join(map(str, r["size"]))
        print(
            f"{r['photo']:<55} {size:>11} {r['landmark_shift_pct_eye']:>10.2f} "
            f"{r['cosine']:>8.4f} {'yes' if r['same_decision'] else 'NO':>5}"
        )
    print(
        f"LFW: {acc['lfw_identical']} of {acc['lfw_checked']} photos give bit-identical embeddings"
    )
    rows = cost(args.unbounded)
    print(
        f"\n{'input':<22} {'KB':>6} {'max side':>8} {'wall s':>7} {'CPU s':>7} {'RSS MB':>7}  outcome"
    )
    for r in rows:
        print(
            f"{r['input']:<22} {r['file_kb']:>6} {r['detector_max_side']:>8} {r['wall_s']:>7.1f} "
            f"{r['cpu_s']:>7.1f} {r['peak_rss_mb']:>7.0f}  {r['outcome']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"accuracy": acc, "cost": rows, "time": time.time(),
                    "maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, indent=2)
    )  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

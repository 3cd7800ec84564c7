"""YuNet's landmark refinement: what it gives in accuracy and what it costs in time.

The default detector measures each face's five points a second time, on the
mirror image of a crop where the face is `refine_face` pixels wide, and averages
them with the first pass's (`facerec.detectors.yunet`). This script runs the
production pipeline with the refinement off (`refine_face 0`, one pass, as before) and at each
width asked for, side by side:

- accuracy: LFW `pairs_dev.txt` 5-fold accuracy (the LFW protocol), and the
  TAR at FAR 1e-3 / 1e-4 / 1e-5 over *every* pair of the photos of the
  people in its folds (the impostor pairs set the threshold; the genuine
  pairs are counted at it); with the default model, through the evaluation
  cache (`facerec.evaluation.embed_set`, the code `facerec evaluate` runs);
- time: the whole road of one photo (`Pipeline.faces`: detection, alignment,
  quality, embedding), single-threaded, on the album-like photos of the
  shared sets and on 640x480 door frames (min face 40, as `facerec camera`);
  the settings take turns photo by photo, the median over repeats of each
  photo, then the median over photos, and the ratio to refinement off.

Prints a table and writes JSON:

    OMP_NUM_THREADS=1 python scripts/bench_landmarks.py --json bench-results/landmarks.json
    OMP_NUM_THREADS=1 python scripts/bench_landmarks.py --skip-accuracy   # time only, ~1 min
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from facerec.config import Settings
from facerec.detectors import Detector, DetectorKind
from facerec.evaluation.cache import EvaluationCache
from facerec.evaluation.embed import embed_set
from facerec.evaluation.metrics import kfold_accuracy
from facerec.evaluation.pairs import read_lfw_pairs
from facerec.faces.embedding import Embedder
from facerec.faces.images import LoadedImage, load_image
from facerec.faces.pipeline import Pipeline
from facerec.models.registry import DEFAULT_MODEL, load_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FARS = (1e-3, 1e-4, 1e-5)
ALBUM = [
    "face_recognition/examples/obama-720p.jpg",
    "face_recognition/examples/two_people.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/lin-manuel-miranda.png",
    "facenet_pytorch/data/multiface.jpg",
    "openface/longoria-cooper.jpg",
    "facenet_pytorch/data/test_images/paul_rudd/1.jpg",
]


def pipeline(refine: int, min_face: int = 20) -> Pipeline:
    """The default road with YuNet's refinement at `refine` px (0: off)."""
    s = Settings()
    yunet = dataclasses.replace(s.detector.yunet, refine_face=refine)
    config = dataclasses.replace(
        s.detector, kind=DetectorKind.YUNET, yunet=yunet, min_face_size=min_face
    )
    embedder = Embedder(load_model(s.model, threads=1), batch_size=s.batch_size, flip=s.flip)
    return Pipeline(Detector(config, threads=1), embedder, s.quality)


def accuracy(refine: int, cache: EvaluationCache) -> dict[str, float]:
    pairs = read_lfw_pairs(SHARED / "lfw" / "pairs_dev.txt")
    people = sorted({p.a.parent for p in pairs} | {p.b.parent for p in pairs})
    paths = sorted(f for d in people for f in d.glob("*.jpg"))
    index = {p: i for i, p in enumerate(paths)}
    vecs = embed_set(pipeline(refine), paths, cache=cache).embeddings
    a = np.array([index[p.a] for p in pairs])
    b = np.array([index[p.b] for p in pairs])
    scores = np.sum(vecs[a] * vecs[b], axis=1)
    folds = kfold_accuracy(scores, [p.same for p in pairs], [p.fold for p in pairs])
    who = np.array([people.index(p.parent) for p in paths])
    upper = np.triu_indices(len(paths), 1)
    same = who[upper[0]] == who[upper[1]]
    sims = np.einsum("ij,ij->i", vecs[upper[0]], vecs[upper[1]])
    impostor = np.sort(sims[~same])
    genuine = sims[same]
    out = {"accuracy": folds.mean, "accuracy_std": folds.std}
    for far in FARS:
        threshold = impostor[min(len(impostor) - 1, int(np.ceil(len(impostor) * (1 - far))))]
        out[f"tar@{far:g}"] = float((genuine > threshold).mean())
    out["genuine_pairs"], out["impostor_pairs"] = int(same.sum()), int((~same).sum())
    return out


def door_frames() -> list[LoadedImage]:
    """640x480 frames of the real recording, every 10th frame of its face stretch."""
    cap = cv2.VideoCapture(str(SHARED / "video" / "short_hamilton_clip.mp4"))
    frames, i = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if 90 <= i < 210 and i % 10 == 0:
            canvas = np.zeros((480, 640, 3), np.uint8)
            canvas[60:420] = cv2.resize(bgr, (640, 360))
            rgb = np.asarray(cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), dtype=np.uint8)
            frames.append(LoadedImage(f"frame-{i}", rgb, f"frame-{i}"))
        i += 1
    cap.release()
    return frames


def timing(
    settings: list[int], images: list[LoadedImage], min_face: int, repeat: int
) -> dict[int, float]:
    """Median over images of the median over repeats of `Pipeline.faces`, ms; turns interleaved."""
    roads = {r: pipeline(r, min_face) for r in settings}
    for road in roads.values():  # warm-up
        road.faces(images[0])
    per: dict[int, list[float]] = {r: [] for r in settings}
    for image in images:
        runs: dict[int, list[float]] = {r: [] for r in settings}
        for _ in range(repeat):
            for r, road in roads.items():
                t = time.perf_counter()
                road.faces(image)
                runs[r].append((time.perf_counter() - t) * 1000)
        for r in settings:
            per[r].append(statistics.median(runs[r]))
    return {r: statistics.median(v) for r, v in per.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refine", default="160", help="comma-separated widths to try [160]")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=Path("bench-results/landmarks.json"))
    args = ap.parse_args()
    settings = [0, *(int(x) for x in args.refine.split(","))]
    album = [load_image(SHARED / p) for p in ALBUM if (SHARED / p).exists()]
    frames = door_frames()
    load = os.getloadavg()[0]
    times = {
        "album": timing(settings, album, 20, args.repeat),
        "door": timing(settings, frames, 40, args.repeat),
    }
    acc: dict[int, dict[str, float]] = {}
    if not args.skip_accuracy:
        cache = EvaluationCache(args.cache_dir)
        acc = {r: accuracy(r, cache) for r in settings}
    print(
        f"{DEFAULT_MODEL}, YuNet; {len(album)} album photos, {len(frames)} door frames "
        f"(640x480, min face 40); load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    head = "| refinement | LFW dev accuracy | TAR@1e-3 | TAR@1e-4 | TAR@1e-5 "
    print(head + "| album ms/photo | door ms/frame |")
    print("|---" * 7 + "|")
    for r in settings:
        a = acc.get(r)
        cells = (
            [
                f"{a['accuracy'] * 100:.2f} ± {a['accuracy_std'] * 100:.2f}%",
                *(f"{a[f'tar@{f:g}'] * 100:.2f}%" for f in FARS),
            ]
            if a
            else ["-"] * 4
        )
        album_ms, door_ms = times["album"][r], times["door"][r]
        ratio = "" if r == 0 else f" ({album_ms / times['album'][0]:.2f}x)"
        door_ratio = "" if r == 0 else f" ({door_ms / times['door'][0]:.2f}x)"
        name = "off (one pass)" if r == 0 else f"{r} px, first pass + mirrored crop"
        print(
            f"| {name} | " + " | ".join(cells) + f" | {album_ms:.1f}{ratio} | {door_ms:.1f}"
            f"{door_ratio} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "model": DEFAULT_MODEL,
                "machine": platform.processor() or platform.machine(),
                "load_average_start": load,
                "times_ms": {k: {str(r): v for r, v in t.items()} for k, t in times.items()},
                "accuracy": {str(r): v for r, v in acc.items()},
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""MTCNN against YuNet: what the faster detector costs in recall, landmarks and accuracy.

For each registered detector, with the default (dlib) embedding:

- LFW (`pairs_dev.txt`): photos without a detected face (`facerec evaluate`'s
  count; those photos get its fallback crop) and the k-fold verification
  accuracy, AUC and TAR@FAR=1e-3, through `facerec.evaluation.embed_set`, the
  code `facerec evaluate` runs;
- the LFW subject's detector score (quantiles) and how many subjects the
  quality gate refuses, in all and for the score alone, at each detector's own
  default floor (`facerec.detectors.SURE_SCORE`);
- mixed pairs: the LFW accuracy when the first photo of every pair went
  through MTCNN and the second through the other detector (a gallery
  enrolled with one detector, queried with another);
- landmark agreement with MTCNN on LFW: the mean distance between the two
  detectors' points for the same face, per point, over MTCNN's eye distance
  (the same measure with YuNet's left and right swapped shows what a
  landmark-order mistake would look like);
- faces found on the group photos (and none on the mountain), and how many
  of the portraits (240 px to 2048 px, faces 50 to 1000 px) show exactly one;
- small faces: LFW photos shrunk so the face is 12-32 px wide (MTCNN's box at
  full size, scaled) and pasted into a grey 640x480 frame, the share found
  at each width with the size floor at 8 px (a face further off than half
  its width from the pasted one does not count);
- detection time per image, single-threaded, at 250 px (LFW photos),
  640x480 (photos letterboxed like a camera frame) and 1600 px on the long
  side (the same photos scaled): the median over repeats of each image, then
  the median over images.

Prints a table and writes JSON. A development run takes a subset of the LFW
pairs (`--limit`, in photos: pairs are taken round-robin over folds and
matched/mismatched until the photos would exceed it); the full run is

    OMP_NUM_THREADS=1 python scripts/bench_detectors.py --json bench-results/detectors.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt
import torch

from facerec.detectors import SURE_SCORE, DetectedFace, Detector, DetectorConfig, DetectorKind
from facerec.evaluation.embed import central_face, embed_set
from facerec.evaluation.metrics import kfold_accuracy
from facerec.evaluation.pairs import Pair, read_lfw_pairs
from facerec.evaluation.report import verification_report
from facerec.faces.alignment import warp_to_template
from facerec.faces.embedding import Embedder
from facerec.faces.images import RGBImage, load_image
from facerec.faces.pipeline import Pipeline
from facerec.faces.quality import assess
from facerec.models.registry import load_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: Group photos and how many faces a person counts in them (as tests/test_detection.py expects).
GROUPS = {
    "face_recognition/examples/two_people.jpg": 2,
    "facenet_pytorch/data/multiface.jpg": 6,
    "openface/longoria-cooper.jpg": 2,
    "nonface/pilatus800.jpg": 0,
}
PORTRAITS = (
    *(
        f"face_recognition/examples/{n}"
        for n in (
            "obama.jpg",
            "obama2.jpg",
            "obama-240p.jpg",
            "obama-1080p.jpg",
            "biden.jpg",
            "alex-lacamoire.png",
            "lin-manuel-miranda.png",
        )
    ),
    "face_recognition/tests/test_images/32bit.png",
    *(
        f"facenet_pytorch/data/test_images/{n}/1.jpg"
        for n in ("angelina_jolie", "kate_siegel", "paul_rudd", "shea_whigham")
    ),
)
SMALL_WIDTHS = (12, 16, 20, 24, 32)
TIMING_PHOTOS = (
    "face_recognition/examples/two_people.jpg",
    "face_recognition/examples/obama2.jpg",
    "facenet_pytorch/data/multiface.jpg",
)
LANDMARKS = ("eye (image left)", "eye (image right)", "nose", "mouth left", "mouth right")


def subset(pairs: Sequence[Pair], limit: int | None) -> list[Pair]:
    """Pairs round-robin over folds and matched/mismatched, while their photos fit in `limit`."""
    if limit is None:
        return list(pairs)
    groups: dict[tuple[int, bool], list[Pair]] = {}
    for p in pairs:
        groups.setdefault((p.fold, p.same), []).append(p)
    out: list[Pair] = []
    photos: set[Path] = set()
    for row in zip_longest(*groups.values()):
        for p in row:
            if p is None:
                continue
            if len(photos | {p.a, p.b}) > limit:
                return out
            out.append(p)
            photos |= {p.a, p.b}
    return out


class Replay:
    """The detections already made, handed to `embed_set` photo by photo in its order,
    so each photo is detected once and `embed_set` stays the code `facerec evaluate` runs."""

    def __init__(self, detector: Detector, found: Sequence[list[DetectedFace]]) -> None:
        self.config = detector.config
        self.sure_score = detector.sure_score
        self._found: Iterator[list[DetectedFace]] = iter(found)

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        return next(self._found)


def quantiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    q = np.quantile(np.asarray(values), [0.0, 0.01, 0.05, 0.5]).tolist()
    return {"min": q[0], "p1": q[1], "p5": q[2], "median": q[3]}


def letterbox(image: RGBImage, size: tuple[int, int]) -> RGBImage:
    w, h = size
    s = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(
        image, (round(image.shape[1] * s), round(image.shape[0] * s)), interpolation=cv2.INTER_AREA
    )
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def long_side(image: RGBImage, side: int) -> RGBImage:
    s = side / max(image.shape[:2])
    size = (round(image.shape[1] * s), round(image.shape[0] * s))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def ms_per_image(detector: Detector, images: Sequence[RGBImage], repeat: int) -> float:
    detector.detect(images[0])  # warm-up: lazy inits, allocator
    per_image = []
    for img in images:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            detector.detect(img)
            times.append(time.perf_counter() - t0)
        per_image.append(statistics.median(times))
    return statistics.median(per_image) * 1000


def same_face(a: DetectedFace, b: DetectedFace) -> bool:
    """Boxes overlapping by IoU 0.3 or more: YuNet's boxes are tighter than MTCNN's."""
    ix = max(0.0, min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
    iy = max(0.0, min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]))
    inter = ix * iy
    return inter / (a.area + b.area - inter) >= 0.3


def landmark_agreement(
    reference: Sequence[DetectedFace | None], other: Sequence[DetectedFace | None]
) -> dict[str, object]:
    """Distances between the two detectors' points for the same face, over the reference's eye distance."""
    d, swapped = [], []
    swap = [1, 0, 2, 4, 3]
    for r, o in zip(reference, other, strict=True):
        if r is None or o is None or not same_face(r, o):
            continue
        ref, got = r.landmarks_array(), o.landmarks_array()
        eye = float(np.linalg.norm(ref[1] - ref[0]))
        d.append(np.linalg.norm(got - ref, axis=1) / eye)
        swapped.append(np.linalg.norm(got[swap] - ref, axis=1) / eye)
    if not d:
        return {"faces": 0}
    arr, sw = np.asarray(d), np.asarray(swapped)
    return {
        "faces": len(arr),
        "mean": float(arr.mean()),
        "p95": float(np.percentile(arr.mean(axis=1), 95)),
        "per_point": {n: float(v) for n, v in zip(LANDMARKS, arr.mean(axis=0), strict=True)},
        "mean_if_left_right_swapped": float(sw.mean()),
    }


def small_face_recall(
    kind: DetectorKind, photos: Sequence[RGBImage], widths: Sequence[float]
) -> dict[str, float]:
    """Share of faces found at each width (see the module docstring)."""
    detector = Detector(DetectorConfig(min_face_size=8, kind=kind), torch.device("cpu"), threads=1)
    out = {}
    for target in SMALL_WIDTHS:
        found = 0
        for img, width in zip(photos, widths, strict=True):
            s = target / width
            small = cv2.resize(
                img,
                (round(img.shape[1] * s), round(img.shape[0] * s)),
                interpolation=cv2.INTER_AREA,
            )
            frame = np.full((480, 640, 3), 110, np.uint8)
            h, w = small.shape[:2]
            frame[200 : 200 + h, 300 : 300 + w] = small
            cx, cy = 300 + w / 2, 200 + h / 2
            found += any(
                abs((f.box[0] + f.box[2]) / 2 - cx) < target / 2
                and abs((f.box[1] + f.box[3]) / 2 - cy) < target / 2
                for f in detector.detect(frame)
            )
        out[f"{target}px"] = found / len(photos)
    return out


class Run(NamedTuple):
    result: dict[str, object]
    central: list[DetectedFace | None]  # the LFW subject per photo, None where missed
    vectors: dict[Path, npt.NDArray[np.float32]]


def run(
    kind: DetectorKind, embedder: Embedder, paths: list[Path], pairs: list[Pair], repeat: int
) -> Run:
    detector = Detector(DetectorConfig(kind=kind), torch.device("cpu"), threads=1)
    found, central, scores, images = [], [], [], []
    for p in paths:
        img = load_image(p).pixels
        faces = detector.detect(img)
        found.append(faces)
        images.append(img)
        c = central_face(faces, img.shape[1], img.shape[0]) if faces else None
        central.append(c)
        if c is not None:
            scores.append(c.score)
    pipeline = Pipeline(Replay(detector, found), embedder)  # type: ignore[arg-type]
    embedded = embed_set(pipeline, paths)
    ver, _ = verification_report(pairs, embedded.lookup())
    gate = [
        assess(c, warp_to_template(img, c.landmarks_array(), pipeline.template), pipeline.limits)
        for img, c in zip(images, central, strict=True)
        if c is not None
    ]
    groups = {}
    for rel, expected in GROUPS.items():
        faces = detector.detect(load_image(SHARED / rel).pixels)
        groups[rel] = {"expected": expected, "found": len(faces)}
    portraits = sum(len(detector.detect(load_image(SHARED / rel).pixels)) == 1 for rel in PORTRAITS)
    timing_photos = [load_image(SHARED / rel).pixels for rel in TIMING_PHOTOS]
    timing = {
        "250px_lfw": ms_per_image(detector, images[:10], repeat),
        "640x480": ms_per_image(
            detector, [letterbox(i, (640, 480)) for i in timing_photos], repeat
        ),
        "1600px": ms_per_image(detector, [long_side(i, 1600) for i in timing_photos], repeat),
    }
    result: dict[str, object] = {
        "detector": kind.value,
        "config": dataclasses.asdict(detector.config),
        "lfw_photos": len(paths),
        "lfw_missed": len(embedded.missed),
        "lfw_pairs": ver.pairs,
        "lfw_accuracy": ver.accuracy,
        "lfw_accuracy_std": ver.accuracy_std,
        "lfw_auc": ver.auc,
        "lfw_tar_at_far": dict(ver.tar_at_far),
        "lfw_subject_score": quantiles(scores),
        "gate_score_floor": SURE_SCORE[kind],
        "gate_refused": sum(not q.ok for q in gate),
        "gate_refused_for_score": sum(any("detector score" in r for r in q.reasons) for q in gate),
        "groups": groups,
        "portraits_with_one_face": portraits,
        "portraits": len(PORTRAITS),
        "ms_per_image": timing,
    }
    return Run(result, central, embedded.lookup())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, default=SHARED / "lfw" / "pairs_dev.txt")
    ap.add_argument("--limit", type=int, default=None, help="LFW photos at most (default: all)")
    ap.add_argument(
        "--detectors", nargs="+", type=DetectorKind, default=list(DetectorKind), metavar="KIND"
    )
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats per image")
    ap.add_argument(
        "--small-faces", type=int, default=100, help="LFW photos for the small-face test (0: none)"
    )
    ap.add_argument("--json", type=Path, default=Path("bench-results/detectors.json"))
    args = ap.parse_args()

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    pairs = subset(read_lfw_pairs(args.pairs), args.limit)
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    embedder = Embedder(load_model("dlib-resnet-v1"))
    runs = {kind: run(kind, embedder, paths, pairs, args.repeat) for kind in args.detectors}
    results = [r.result for r in runs.values()]
    centrals = {kind: r.central for kind, r in runs.items()}
    if DetectorKind.MTCNN in runs:
        for kind, r in runs.items():
            if kind is not DetectorKind.MTCNN:
                first = runs[DetectorKind.MTCNN].vectors
                mixed = kfold_accuracy(
                    [float(first[p.a] @ r.vectors[p.b]) for p in pairs],
                    [p.same for p in pairs],
                    [p.fold for p in pairs],
                )
                r.result["lfw_accuracy_mixed_with_mtcnn"] = mixed.mean
                r.result["lfw_accuracy_mixed_with_mtcnn_std"] = mixed.std
    if args.small_faces:
        # Face width from MTCNN's full-size box for every detector: one ruler for both.
        reference = Detector(DetectorConfig(), torch.device("cpu"))
        photos, widths = [], []
        for p in paths[: args.small_faces]:
            img = load_image(p).pixels
            faces = reference.detect(img)
            if faces:
                photos.append(img)
                widths.append(central_face(faces, img.shape[1], img.shape[0]).width)
        for r in results:
            r["small_face_recall"] = small_face_recall(DetectorKind(r["detector"]), photos, widths)
    if DetectorKind.MTCNN in centrals:
        for r in results:
            kind = DetectorKind(r["detector"])
            if kind is not DetectorKind.MTCNN:
                r["landmarks_vs_mtcnn"] = landmark_agreement(
                    centrals[DetectorKind.MTCNN], centrals[kind]
                )

    head = (
        f"{'detector':<9}{'LFW missed':>11}{'accuracy':>17}{'TAR@1e-3':>10}"
        f"{'gate refused':>14}{'groups':>10}{'portraits':>11}{'250px':>8}{'640x480':>9}{'1600px':>8}"
    )
    print(f"LFW {args.pairs.name}: {len(pairs)} pairs, {len(paths)} photos; times in ms, 1 thread")
    print(head)
    for r in results:
        t = r["ms_per_image"]
        g = r["groups"]
        assert isinstance(t, dict) and isinstance(g, dict)
        groups = "/".join(str(v["found"]) for v in g.values())
        tar = r["lfw_tar_at_far"]
        assert isinstance(tar, dict)
        print(
            f"{r['detector']:<9}{r['lfw_missed']:>11}"
            f"{r['lfw_accuracy'] * 100:>10.2f} ± {r['lfw_accuracy_std'] * 100:4.2f}"  # type: ignore[operator]
            f"{tar.get('1e-03', float('nan')) * 100:>9.2f}%"
            f"{r['gate_refused']:>8} ({r['gate_refused_for_score']})"
            f"{groups:>10}{r['portraits_with_one_face']:>8}/{r['portraits']:<2}"
            f"{t['250px_lfw']:>8.0f}{t['640x480']:>9.0f}{t['1600px']:>8.0f}"
        )
    print(
        f"groups: found on {' / '.join(GROUPS)} (a person counts {'/'.join(map(str, GROUPS.values()))})"
    )
    print("gate refused: LFW subjects the quality gate refuses (for the detector score alone)")
    print("portraits: of the portraits, those where exactly one face was found")
    for r in results:
        lm = r.get("landmarks_vs_mtcnn")
        if isinstance(lm, dict) and lm.get("faces"):
            per = ", ".join(f"{k} {v:.3f}" for k, v in lm["per_point"].items())
            print(
                f"{r['detector']} landmarks vs MTCNN on {lm['faces']} LFW faces, in eye distances: "
                f"mean {lm['mean']:.3f} (p95 {lm['p95']:.3f}; {per}); "
                f"left/right swapped would be {lm['mean_if_left_right_swapped']:.3f}"
            )
    for r in results:
        score = ", ".join(f"{k} {v:.3f}" for k, v in r["lfw_subject_score"].items())  # type: ignore[attr-defined]
        print(f"{r['detector']} LFW subject score: {score}")
    for r in results:
        if "lfw_accuracy_mixed_with_mtcnn" in r:
            print(
                f"LFW pairs with the first photo through mtcnn, the second through {r['detector']}: "
                f"{r['lfw_accuracy_mixed_with_mtcnn'] * 100:.2f} ± "  # type: ignore[operator]
                f"{r['lfw_accuracy_mixed_with_mtcnn_std'] * 100:.2f}"  # type: ignore[operator]
            )
    for r in results:
        if "small_face_recall" in r:
            rec = ", ".join(f"{k} {v * 100:.0f}%" for k, v in r["small_face_recall"].items())  # type: ignore[attr-defined]
            print(f"{r['detector']} small faces found, by face width: {rec}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "pairs_file": str(args.pairs),
                "limit": args.limit,
                "pairs": len(pairs),
                "photos": len(paths),
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "torch": torch.__version__,
                "opencv": cv2.__version__,
                "results": results,
            },
            indent=2,
            default=float,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""dlib's ResNet in facerec's pipeline vs dlib's own pipeline, on the same pairs, in one run.

    python scripts/bench_lfw.py                       # LFW pairs_dev.txt (5 folds x 600 pairs)
    python scripts/bench_lfw.py --sets att yale face_recognition openface
    python scripts/bench_lfw.py --sets lfw att yale face_recognition openface --json bench-results/lfw.json

Both sides use the same weights (`dlib_face_recognition_resnet_model_v1.dat`):
- facerec: MTCNN → 5-point similarity warp onto DLIB_TEMPLATE (150 px) → our PyTorch port;
- dlib: HOG frontal detector (1 upsample, as face_recognition does) → 5-point shape
  predictor → `get_face_chip(size=150, padding=0.25)` → dlib's own network.

Which face: when a detector returns several, both sides take the one whose box centre is
closest to the image centre (LFW photos are centred on their subject).
Misses: when a detector finds no face, both sides fall back to "the face is where this
set usually has it": facerec uses the mean landmarks of its own detections on that set,
dlib runs its shape predictor on the mean rectangle of its own detections on that set.
Misses are counted per side; the table also gives accuracy on the pairs neither side missed.

Metrics: k-fold accuracy (threshold chosen on the other folds; LFW's identity-disjoint
folds, 10 identity-disjoint folds for folder sets), ROC AUC, EER, TAR at FAR=1e-2.
Cosine similarity on L2-normalised descriptors for both sides (dlib's 0.6 euclidean rule
is a threshold on the same ranking up to normalisation).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facerec.evaluation.metrics import auc, eer, kfold_accuracy, roc, tar_at_far
from facerec.evaluation.pairs import Pair, folder_identities, folder_pairs, read_lfw_pairs
from facerec.faces.images import load_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def face_recognition_people() -> dict[str, list[Path]]:
    """The face_recognition photos by identity: the knn folders plus the single portraits."""
    root = SHARED / "face_recognition" / "examples"
    people = {k: list(v) for k, v in folder_identities(root / "knn_examples" / "train").items()}
    tests = {
        "alex_lacamoire1.jpg": "alex_lacamoire",
        "obama1.jpg": "obama",
        "johnsnow_test1.jpg": "kit_harington",
    }
    for f, who in tests.items():
        people[who].append(root / "knn_examples" / "test" / f)
    for f in ["obama-480p.jpg", "obama_small.jpg"]:
        people["obama"].append(root / f)
    people.setdefault("lin_manuel_miranda", []).append(root / "lin-manuel-miranda.png")
    people["obama"].append(SHARED / "face_recognition/tests/test_images/obama3.jpg")
    return {k: sorted(set(v)) for k, v in people.items()}


def pairs_for(name: str) -> list[Pair]:
    if name == "lfw":
        return read_lfw_pairs(SHARED / "lfw" / "pairs_dev.txt")
    if name == "face_recognition":
        return folder_pairs(face_recognition_people(), folds=5)
    folder = {"att": "att_faces", "yale": "yalefaces", "openface": "openface"}[name]
    people = folder_identities(SHARED / folder)
    return folder_pairs(people, folds=10 if len(people) >= 10 else len(people))


@dataclass
class SideResult:
    embeddings: dict[Path, np.ndarray]
    missed: set[Path]
    seconds: float


def central(boxes: list[tuple[float, float, float, float]], w: int, h: int) -> int:
    cx, cy = w / 2, h / 2
    return int(
        np.argmin([((b[0] + b[2]) / 2 - cx) ** 2 + ((b[1] + b[3]) / 2 - cy) ** 2 for b in boxes])
    )


def run_facerec(paths: list[Path], min_face: int) -> SideResult:
    from facerec.detectors import Detector, DetectorConfig
    from facerec.evaluation.embed import embed_set
    from facerec.faces.embedding import Embedder
    from facerec.faces.pipeline import Pipeline
    from facerec.models.registry import load_model

    pipeline = Pipeline(
        Detector(DetectorConfig(min_face_size=min_face)), Embedder(load_model("dlib-resnet-v1"))
    )
    t0 = time.perf_counter()
    res = embed_set(pipeline, paths, progress=True)
    return SideResult(res.lookup(), set(res.missed), time.perf_counter() - t0)


def run_dlib(paths: list[Path]) -> SideResult:
    import dlib

    from facerec.models.dlib_resnet import default_weights_path

    models = default_weights_path().parent
    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    t0 = time.perf_counter()
    rects: dict[Path, np.ndarray] = {}
    images = {}
    for p in tqdm(paths, desc="dlib detect", leave=False):
        img = load_image(p).pixels
        images[p] = img
        dets = hog(img, 1)
        if len(dets):
            boxes = [(d.left(), d.top(), d.right(), d.bottom()) for d in dets]
            i = central(boxes, img.shape[1], img.shape[0])
            rects[p] = np.asarray(boxes[i], float) / np.tile([img.shape[1], img.shape[0]], 2)
    missed = {p for p in paths if p not in rects}
    mean_rect = np.mean(list(rects.values()), axis=0) if rects else None
    out = {}
    for p in tqdm(paths, desc="dlib embed", leave=False):
        img = images[p]
        w, h = img.shape[1], img.shape[0]
        r = rects.get(p, mean_rect) * [w, h, w, h]
        rect = dlib.rectangle(*(round(v) for v in r))
        chip = dlib.get_face_chip(img, sp(img, rect), size=150, padding=0.25)
        v = np.asarray(net.compute_face_descriptor(chip), dtype=np.float32)
        out[p] = v / np.linalg.norm(v)
    return SideResult(out, missed, time.perf_counter() - t0)


def metrics(
    pairs: list[Pair], emb: dict[Path, np.ndarray], keep: Callable[[Pair], bool]
) -> dict[str, float]:
    ps = [p for p in pairs if keep(p)]
    s = np.array([float(emb[p.a] @ emb[p.b]) for p in ps])
    y = np.array([p.same for p in ps])
    f = np.array([p.fold for p in ps])
    r = roc(s, y)
    k = kfold_accuracy(s, y, f)
    tar, th = tar_at_far(r, 1e-2)
    return {
        "pairs": len(ps),
        "accuracy": k.mean,
        "accuracy_std": k.std,
        "auc": auc(r),
        "eer": eer(r),
        "tar_at_far_1e-2": tar,
        "threshold_at_far_1e-2": th,
        "threshold_kfold_mean": float(np.mean(k.thresholds)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sets",
        nargs="+",
        default=["lfw"],
        choices=["lfw", "att", "yale", "face_recognition", "openface"],
    )
    ap.add_argument("--json", type=Path, default=Path("bench-results/lfw.json"))
    ap.add_argument(
        "--limit", type=int, default=0, help="use about N pairs spread over the folds (smoke runs)"
    )
    args = ap.parse_args()
    report = {}
    for name in args.sets:
        pairs = pairs_for(name)
        if args.limit:
            pairs = pairs[:: max(1, len(pairs) // args.limit)]  # spread over folds and kinds
        paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
        min_face = 20
        ours = run_facerec(paths, min_face)
        theirs = run_dlib(paths)
        missed = frozenset(ours.missed | theirs.missed)

        def both_found(p: Pair, missed: frozenset[Path] = missed) -> bool:
            return p.a not in missed and p.b not in missed

        row = {}
        for side, res in (("facerec", ours), ("dlib", theirs)):
            row[side] = {
                "all": metrics(pairs, res.embeddings, lambda p: True),
                "both_detected": metrics(pairs, res.embeddings, both_found),
                "images": len(paths),
                "missed": len(res.missed),
                "ms_per_image": res.seconds / len(paths) * 1000,
            }
        report[name] = row
        print(f"\n{name}: {len(pairs)} pairs, {len(paths)} images")
        print(
            f"{'pipeline':<10}{'acc (all)':>16}{'AUC':>8}{'EER':>8}{'TAR@1e-2':>10}{'missed':>8}"
            f"{'acc (both det.)':>18}{'ms/img':>8}"
        )
        for side in ("facerec", "dlib"):
            a, b = row[side]["all"], row[side]["both_detected"]
            print(
                f"{side:<10}{a['accuracy'] * 100:>9.2f} ± {a['accuracy_std'] * 100:4.2f}{a['auc']:>8.4f}"
                f"{a['eer'] * 100:>7.2f}%{a['tar_at_far_1e-2'] * 100:>9.2f}%{row[side]['missed']:>8}"
                f"{b['accuracy'] * 100:>11.2f} ({b['pairs']}){row[side]['ms_per_image']:>8.0f}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

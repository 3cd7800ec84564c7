"""Which way to fit the five-point similarity for each model, measured on LFW pairs.

Least squares is not symmetric (see `facerec.faces.alignment.FitDirection`): the two
fits give chips that differ by a few per cent in scale. A model should get
the fit its training crops had; this script measures k-fold verification
accuracy on LFW `pairs_dev.txt` (identity-disjoint folds) for each model under
both fits, optionally with flip test-time augmentation, and the mean of the
fold-wise accuracy-optimal thresholds (how the models' provisional default
thresholds were set). Landmarks are detected once (the central face, the
set's mean landmarks when none is found, as `facerec evaluate` does) and
cached, so the models and fits share one detection pass.

    python scripts/compare_fit_direction.py [--folds 1 2] [--models sface insightface-mbf-w600k] [--flip] [--declared-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facerec.detectors import Detector
from facerec.errors import ModelError
from facerec.evaluation.embed import central_face
from facerec.evaluation.pairs import read_lfw_pairs
from facerec.evaluation.report import verification_report
from facerec.faces.alignment import FitDirection, warp_to_template
from facerec.faces.embedding import Embedder
from facerec.faces.images import load_image
from facerec.models.registry import load_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def landmarks(paths: list[Path], cache: Path) -> tuple[dict[Path, np.ndarray], int]:
    """Central-face landmarks per photo (fallback: the set's mean), and how many were missed."""
    key = [str(p) for p in paths]
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if data["paths"].tolist() == key:
            return dict(zip(paths, data["landmarks"], strict=True)), int(data["missed"])
    det = Detector()
    rel: list[np.ndarray | None] = []
    sizes = []
    for p in tqdm(paths, desc="detecting", unit="photo"):
        img = load_image(p).pixels
        h, w = img.shape[:2]
        sizes.append((w, h))
        faces = det.detect(img)
        rel.append(central_face(faces, w, h).landmarks_array() / [w, h] if faces else None)
    fallback = np.mean([r for r in rel if r is not None], axis=0)
    out = np.stack(
        [(r if r is not None else fallback) * s for r, s in zip(rel, sizes, strict=True)]
    )
    missed = sum(r is None for r in rel)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=np.array(key), landmarks=out, missed=missed)
    return dict(zip(paths, out, strict=True)), missed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, default=SHARED / "lfw" / "pairs_dev.txt")
    ap.add_argument("--folds", type=int, nargs="+", default=[1, 2], help="1-based LFW folds")
    ap.add_argument("--models", nargs="+", default=["sface", "insightface-mbf-w600k"])
    ap.add_argument("--flip", action="store_true", help="also measure flip TTA")
    ap.add_argument("--declared-only", action="store_true", help="only each model's declared fit")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path("bench-results/fit_direction.json"))
    args = ap.parse_args()

    pairs = [p for p in read_lfw_pairs(args.pairs) if p.fold + 1 in args.folds]
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    cache = args.json.with_name(f"lfw-landmarks-folds{''.join(map(str, args.folds))}.npz")
    marks, missed = landmarks(paths, cache)
    images = {p: load_image(p).pixels for p in paths}
    rows = []
    for name in args.models:
        try:
            model = load_model(name, threads=args.threads)
        except ModelError as exc:
            print(f"skipping {name}: {exc}")
            continue
        fits = [model.spec.template.fit] if args.declared_only else list(FitDirection)
        for fit in fits:
            template = model.spec.template.fitted(fit)
            chips = [warp_to_template(images[p], marks[p], template) for p in paths]
            for flip in (False, True) if args.flip else (False,):
                t0 = time.perf_counter()
                emb = Embedder(model, flip=flip).embed(chips)
                seconds = time.perf_counter() - t0
                rep, _ = verification_report(pairs, dict(zip(paths, emb, strict=True)))
                rows.append(
                    {
                        "model": name,
                        "fit": fit.value,
                        "declared": fit is model.spec.template.fit,
                        "flip": flip,
                        "ms_per_face": 1000 * seconds / len(chips),
                        **dataclasses.asdict(rep),
                    }
                )
                r = rows[-1]
                print(
                    f"{name:24} {fit.value:24} flip={flip!s:5} acc {r['accuracy'] * 100:6.2f} "
                    f"± {r['accuracy_std'] * 100:4.2f}  AUC {r['auc']:.4f}  EER {r['eer'] * 100:5.2f}%"
                    f"  threshold {r['threshold']:.4f}  {r['ms_per_face']:.1f} ms/face"
                )
    result = {
        "pairs_file": str(args.pairs),
        "folds": args.folds,
        "pairs": len(pairs),
        "images": len(paths),
        "missed_faces": missed,
        "threads": args.threads,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(
        f"{len(pairs)} pairs, {len(paths)} photos, {missed} without a detected face; wrote {args.json}"
    )


if __name__ == "__main__":
    main()

"""Where the time goes in facerec's pipeline: decode, detect, align, embed, per image.

Runs every stage separately over the shared photos (face_recognition,
facenet_pytorch, openface: portraits from 240p to 2048 px), repeats the whole
pass, and reports medians over passes of the per-image mean, plus faces per
second end to end. Prints a table and writes JSON.

    python scripts/bench_pipeline.py [--model dlib-resnet-v1] [--detector yunet|mtcnn] [--repeat 3]
        [--json bench-results/pipeline.json] [--write-docs]

`--write-docs` replaces the table between the `bench_pipeline` markers in
docs/speed.md with this run's, so the page quotes what the script measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from docs_markers import replace_between

from facerec.detectors import DEFAULT_DETECTOR, Detector, DetectorConfig, DetectorKind
from facerec.faces.alignment import warp_to_template
from facerec.faces.embedding import Embedder
from facerec.faces.images import IMAGE_SUFFIXES, load_image
from facerec.models.registry import load_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DOCS_PAGE = ROOT / "docs" / "speed.md"
SETS = ("face_recognition", "facenet_pytorch", "openface")


def photos() -> list[Path]:
    out: list[Path] = []
    for s in SETS:
        out += sorted(p for p in (SHARED / s).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return out


def one_pass(paths: list[Path], det: Detector, emb: Embedder) -> dict[str, float]:
    t = {"decode": 0.0, "detect": 0.0, "align": 0.0, "embed": 0.0}
    faces = 0
    for p in paths:
        t0 = time.perf_counter()
        img = load_image(p)
        t1 = time.perf_counter()
        dets = det.detect(img.pixels)
        t2 = time.perf_counter()
        chips = [warp_to_template(img.pixels, d.landmarks_array(), emb.spec.template) for d in dets]
        t3 = time.perf_counter()
        emb.embed(chips)
        t4 = time.perf_counter()
        t["decode"] += t1 - t0
        t["detect"] += t2 - t1
        t["align"] += t3 - t2
        t["embed"] += t4 - t3
        faces += len(dets)
    total = sum(t.values())
    n = len(paths)
    return {
        **{f"{k}_ms_per_image": v / n * 1000 for k, v in t.items()},
        "total_ms_per_image": total / n * 1000,
        "embed_ms_per_face": t["embed"] / max(faces, 1) * 1000,
        "faces_per_s": faces / total,
        "images_per_s": n / total,
        "faces": faces,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--detector", type=DetectorKind, default=DEFAULT_DETECTOR)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path("bench-results/pipeline.json"))
    ap.add_argument("--write-docs", action="store_true", help=f"rewrite the table in {DOCS_PAGE}")
    args = ap.parse_args()
    paths = photos()
    if not paths:
        raise SystemExit(f"no photos under {SHARED}")
    det = Detector(DetectorConfig(kind=args.detector), threads=torch.get_num_threads())
    emb = Embedder(load_model(args.model))
    one_pass(paths[:3], det, emb)  # warm-up: lazy inits, allocator
    passes = [one_pass(paths, det, emb) for _ in range(args.repeat)]
    med = {k: statistics.median(p[k] for p in passes) for k in passes[0]}
    print(
        f"facerec pipeline, {len(paths)} photos, {int(med['faces'])} faces, detector {det.kind}, "
        f"model {emb.spec.name}, "
        f"device {emb.device}, torch threads {torch.get_num_threads()}, median of {args.repeat} passes"
    )
    print(f"{'stage':<10}{'ms/image':>10}")
    for k in ("decode", "detect", "align", "embed", "total"):
        print(f"{k:<10}{med[f'{k}_ms_per_image']:>10.1f}")
    print(
        f"embed ms/face {med['embed_ms_per_face']:.1f}   faces/s {med['faces_per_s']:.2f}   "
        f"images/s {med['images_per_s']:.2f}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "detector": det.kind.value,
                "model": emb.spec.name,
                "device": str(emb.device),
                "photos": len(paths),
                "repeat": args.repeat,
                "median": med,
                "passes": passes,
                "machine": {
                    "cpu_count": torch.get_num_threads(),
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                },
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")
    if args.write_docs:
        write_docs(med, len(paths), det.kind.value, emb.spec.name, args.repeat)
        print(f"wrote {DOCS_PAGE.relative_to(ROOT)}")


def write_docs(med: dict[str, float], photos: int, detector: str, model: str, repeat: int) -> None:
    """Replace the marked table in docs/speed.md with this run's medians."""
    rows = [
        f"`python scripts/bench_pipeline.py --repeat {repeat} --write-docs` ({photos} shared photos "
        f"from 240p to 2,048 px, {int(med['faces'])} faces; the shipped defaults: {detector} + "
        f"{model}; median of {repeat} passes, 2-core machine, nothing else running):",
        "",
        "| stage | ms per image |",
        "|---|---|",
        f"| decode (EXIF, RGB) | {med['decode_ms_per_image']:.1f} |",
        f"| detect ({detector}) | {med['detect_ms_per_image']:.1f} |",
        f"| align (5-point warp) | {med['align_ms_per_image']:.1f} |",
        f"| embed ({model}) | {med['embed_ms_per_image']:.1f} ({med['embed_ms_per_face']:.1f} per face) |",
        f"| **total** | **{med['total_ms_per_image']:.1f}** ({med['images_per_s']:.1f} images/s, "
        f"{med['faces_per_s']:.1f} faces/s) |",
    ]
    replace_between(DOCS_PAGE, "bench_pipeline", "\n".join(rows))


if __name__ == "__main__":
    main()

"""Quality-aware prototypes: plain mean vs quality-weighted mean vs outlier-dropping, on LFW.

    OMP_NUM_THREADS=1 python scripts/bench_prototypes.py                     # SFace and dlib
    python scripts/bench_prototypes.py --models sface --draws 1 --limit-people 30   # a quick check

A person's prototype is the normalised mean of their enrolment embeddings.
Three ways to form it from k photos are compared:
- `mean`: every sample counts the same (what the gallery does);
- `quality`: each sample weighted by `quality_weight` of the quality metrics
  the gallery stores with it (sharpness, yaw, face size);
- `drop`: samples far from the mean of the others dropped first
  (`outlier_mask`; needs 3 samples or more).

Protocol: LFW people with at least 5 photos; for each k in (2, 3, 5), every
such person with more than k photos is enrolled from k photos drawn at
random (`--draws` seeded draws), their other photos are the genuine probes,
and every LFW photo of everyone else is an impostor probe (about 1.4 million
impostor comparisons per draw). TAR at FAR 1e-3 and 1e-4 and the EER of
probe-vs-prototype cosines, each method at its own thresholds, the draws
pooled. Embeddings come from the evaluation cache (the production pipeline);
the quality metrics are measured the way the pipeline measures them (MTCNN
box and score, blur on the default model's chip, pose from the landmarks) on
the face `facerec.evaluation.embed` chose.

JSON goes to bench-results/prototypes.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facerec.config import Settings
from facerec.detectors import Detector
from facerec.evaluation.cache import EvaluationCache
from facerec.evaluation.embed import central_face, embed_set
from facerec.evaluation.far import PairCounts
from facerec.evaluation.pairs import folder_identities
from facerec.faces.alignment import warp_to_template
from facerec.faces.embedding import Embedder
from facerec.faces.images import load_image
from facerec.faces.pipeline import Pipeline
from facerec.faces.quality import Quality, assess
from facerec.models.registry import DEFAULT_MODEL, DLIB_MODEL, load_model, model_spec

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ENROL = (2, 3, 5)
FARS = (1e-3, 1e-4)
RESOLUTION = 1e-4
Vectors = npt.NDArray[np.float32]

#: Sharpness (variance of the Laplacian on the 112-px grey chip) at which a sample counts fully:
#: ten times the quality gate's floor.
BLUR_FULL = 100.0
#: |yaw| at which a sample counts least: the quality gate's limit.
YAW_LIMIT = 0.40
#: Face size (detector box's shorter side, px) at which a sample counts fully.
SIZE_FULL = 80.0
#: No sample's weight falls below this: a bad photo still says something about its person.
WEIGHT_FLOOR = 0.1


def quality_weight(face_px: float, blur: float, yaw: float) -> float:
    """A sample's weight in (WEIGHT_FLOOR, 1] from its stored quality metrics: sharpness,
    frontalness and size, each saturating at a level where the embedding stops improving."""
    sharp = min(1.0, blur / BLUR_FULL)
    frontal = 1.0 - min(1.0, abs(yaw) / YAW_LIMIT)
    size = min(1.0, face_px / SIZE_FULL)
    return max(WEIGHT_FLOOR, sharp * frontal * size)


def outlier_mask(
    embeddings: Vectors, spread: float = 3.0, min_mad: float = 0.02
) -> npt.NDArray[np.bool_]:
    """Samples to keep: a sample whose cosine to the mean of the *others* lies more than
    `spread` robust deviations (1.4826 MAD, at least `min_mad`) below the median of those
    cosines is dropped; never more than a minority, and nothing from fewer than 3 samples."""
    n = len(embeddings)
    keep = np.ones(n, dtype=bool)
    if n < 3:
        return keep
    e = np.asarray(embeddings, dtype=np.float64)
    total = e.sum(axis=0)
    others = total[None, :] - e
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    loo = (e * others).sum(axis=1)
    med = float(np.median(loo))
    scale = max(1.4826 * float(np.median(np.abs(loo - med))), min_mad)
    worst = np.argsort(loo)[: (n - 1) // 2]
    keep[[i for i in worst if loo[i] < med - spread * scale]] = False
    return keep


def prototype(embeddings: Vectors, weights: npt.NDArray[np.float64] | None = None) -> Vectors:
    m = np.average(np.asarray(embeddings, dtype=np.float64), axis=0, weights=weights)
    return np.asarray(m / np.linalg.norm(m), dtype=np.float32)


@dataclasses.dataclass(frozen=True, slots=True)
class Method:
    name: str
    build: Callable[[Vectors, npt.NDArray[np.float64]], Vectors]  # (samples, quality weights)


METHODS = (
    Method("mean", lambda e, w: prototype(e)),
    Method("quality", lambda e, w: prototype(e, w)),
    Method("drop", lambda e, w: prototype(e[outlier_mask(e)])),
    Method("drop+quality", lambda e, w: prototype(e[outlier_mask(e)], w[outlier_mask(e)])),
)


def measure_quality(detector: Detector, paths: list[Path], settings: Settings) -> list[Quality]:
    """Each photo's face as `embed_set` chooses it, measured as the pipeline measures it."""
    template = model_spec(DEFAULT_MODEL).template  # the chip the default pipeline's gate sees
    limits = settings.quality.for_detector(detector.sure_score)
    out = []
    for i, path in enumerate(paths):
        image = load_image(path).pixels
        faces = detector.detect(image)
        h, w = image.shape[:2]
        if not faces:
            out.append(Quality(0.0, 0.0, 0.0, 0.0, 1.0, 0.0, ("no face",)))
            continue
        face = central_face(faces, w, h)
        out.append(assess(face, warp_to_template(image, face.landmarks_array(), template), limits))
        if sys.stderr.isatty() and i % 200 == 0:
            print(f"quality {i}/{len(paths)}", file=sys.stderr)
    return out


def counts_for(
    protos: Vectors,
    owners: npt.NDArray[np.int64],
    probes: Vectors,
    labels: npt.NDArray[np.int64],
    enrolled: npt.NDArray[np.bool_],
) -> PairCounts:
    bins = round(2.0 / RESOLUTION) + 1
    sims = np.asarray(protos, dtype=np.float64) @ np.asarray(probes, dtype=np.float64).T
    same = owners[:, None] == labels[None, :]
    idx = np.clip(np.floor((np.clip(sims, -1, 1) + 1) / RESOLUTION).astype(np.int64), 0, bins - 1)
    impostor = np.bincount(idx[~same], minlength=bins)
    genuine = np.bincount(idx[same & ~enrolled], minlength=bins)
    return PairCounts(RESOLUTION, impostor, genuine)


def eer_of(c: PairCounts) -> float:
    far = np.cumsum(c.impostor[::-1])[::-1] / c.impostor_pairs
    frr = 1 - np.cumsum(c.genuine[::-1])[::-1] / c.genuine_pairs
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=[DEFAULT_MODEL, DLIB_MODEL])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--min-photos", type=int, default=5)
    ap.add_argument("--limit-people", type=int, default=None)
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=ROOT / "bench-results" / "prototypes.json")
    args = ap.parse_args()

    settings = Settings()
    detector = Detector(settings.detector)
    cache = EvaluationCache(args.cache_dir)
    people = folder_identities(args.data / "lfw" / "images")
    names = sorted(people)
    paths = [p for n in names for p in people[n]]
    labels = np.array([i for i, n in enumerate(names) for _ in people[n]])
    rich = [i for i, n in enumerate(names) if len(people[n]) >= args.min_photos][
        : args.limit_people
    ]
    rich_rows = np.flatnonzero(np.isin(labels, rich))
    t = time.perf_counter()
    qualities = measure_quality(detector, [paths[i] for i in rich_rows], settings)
    print(
        f"quality of {len(rich_rows):,} photos of {len(rich)} people in {time.perf_counter() - t:.0f} s"
    )
    weight = np.zeros(len(paths))
    weight[rich_rows] = [quality_weight(q.face_px, q.blur, q.yaw) for q in qualities]
    print(
        "quality weights: "
        + ", ".join(f"p{p} {np.percentile(weight[rich_rows], p):.2f}" for p in (5, 25, 50, 75, 95))
    )
    results: dict[str, object] = {
        "command": " ".join(["python", "scripts/bench_prototypes.py", *sys.argv[1:]]),
        "people": len(rich),
        "photos": len(rich_rows),
        "weights_percentiles": {
            p: float(np.percentile(weight[rich_rows], p)) for p in (5, 25, 50, 75, 95)
        },
        "rows": [],
    }
    print(
        "\n| model | k | method | TAR@FAR 1e-3 (false accepts / impostor comparisons) | "
        "TAR@FAR 1e-4 | EER | samples dropped |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        pipeline = Pipeline(detector, Embedder(load_model(model, threads=1)), settings.quality)
        emb = embed_set(pipeline, paths, cache=cache).embeddings
        for k in ENROL:
            owners_all = [i for i in rich if len(people[names[i]]) > k]
            pooled: dict[str, list[PairCounts]] = {m.name: [] for m in METHODS}
            dropped = {m.name: 0 for m in METHODS}
            for draw in range(args.draws):
                seed = int(hashlib.sha256(f"{draw}".encode()).hexdigest()[:8], 16)
                rng = np.random.default_rng(seed)
                enrolled = np.zeros(len(paths), dtype=bool)
                chosen = {}
                for i in owners_all:
                    rows = np.flatnonzero(labels == i)
                    pick = rng.choice(rows, size=k, replace=False)
                    chosen[i] = pick
                    enrolled[pick] = True
                owners = np.array(owners_all)
                for m in METHODS:
                    protos = np.stack(
                        [m.build(emb[chosen[i]], weight[chosen[i]]) for i in owners_all]
                    )
                    if m.name.startswith("drop"):
                        dropped[m.name] += sum(
                            int((~outlier_mask(emb[chosen[i]])).sum()) for i in owners_all
                        )
                    pooled[m.name].append(counts_for(protos, owners, emb, labels, enrolled))
            for m in METHODS:
                if m.name.startswith("drop") and k < 3:
                    continue
                c = PairCounts(
                    RESOLUTION,
                    np.sum([x.impostor for x in pooled[m.name]], axis=0),
                    np.sum([x.genuine for x in pooled[m.name]], axis=0),
                )
                points = {f"{far:.0e}": c.for_far(far) for far in FARS}
                row = {
                    "model": model,
                    "k": k,
                    "method": m.name,
                    "people": len(owners_all),
                    "draws": args.draws,
                    "impostor_comparisons": c.impostor_pairs,
                    "genuine_comparisons": c.genuine_pairs,
                    "eer": eer_of(c),
                    "dropped": dropped[m.name],
                    "points": {key: dataclasses.asdict(p) for key, p in points.items()},
                }
                results["rows"].append(row)  # type: ignore[attr-defined]
                p3, p4 = points["1e-03"], points["1e-04"]
                print(
                    f"| {model} | {k} | {m.name} | {p3.tar * 100:.2f}% ({p3.false_accepts:,} / "
                    f"{p3.impostor_pairs:,}) | {p4.tar * 100:.2f}% ({p4.false_accepts:,}) | "
                    f"{eer_of(c) * 100:.2f}% | {dropped[m.name] if m.name.startswith('drop') else '-'} |",
                    flush=True,
                )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

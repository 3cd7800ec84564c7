"""Score fusion and flip averaging: each model and the `sface+dlib` fusion on LFW, AT&T and Yale.

    OMP_NUM_THREADS=1 python scripts/bench_fusion.py                    # flip off and on
    OMP_NUM_THREADS=1 python scripts/bench_fusion.py --flip off \\
        --models sface dlib-resnet-v1 insightface-mbf-w600k             # + the research model
    python scripts/bench_fusion.py --flip off --sets att yale --no-timing   # a quick check

Every photo goes through the production pipeline once per network and flip
setting (MTCNN, the face nearest the image centre, each network's own
template; `facerec.evaluation.embed` with its cache, so a rerun embeds
nothing). A fusion's vectors are its members' fused by `facerec.models.fusion.fuse`,
exactly as the registered model computes them.

The fusion weight (dlib's share; SFace has the rest) is fit, on a 0.02 grid,
to the largest TAR at FAR 1e-4 (the door's operating point) over *every*
pair of the photos of the training people (LFW people of `pairs_dev.txt`'s
other folds, all their photos in lfw/images; about 8.7 million impostor
pairs per fit), with flip off: the registered model has one weight whatever
the flip setting. LFW figures are held out: for each fold, the weight is fit
on the other four folds' people and the accuracy threshold chosen on the
other four folds' pairs. The weight `sface+dlib` ships is the same fit on all
five folds (printed last); AT&T and Yale take part in no fit and are scored
with the registered model's weight.

Columns, per set:
- accuracy (k-fold, threshold from the other folds), AUC, EER and TAR at FAR
  1e-3 on the protocol pairs (`facerec evaluate`'s: LFW's 3,000 pairs with
  1,500 impostor pairs, so one false accept is 6.7e-4; 10 identity folds of
  all genuine pairs and as many seeded impostor pairs for AT&T and Yale);
- TAR at FAR 1e-3 and 1e-4 over *every* pair (LFW: within each held-out
  fold's people, folds pooled), with the false accepts and impostor pairs
  behind each; `*` = fewer than 10 false accepts expected at that FAR. The
  held-out fusion's folds are pooled after a per-fold standardisation fit
  without the fold (see `evaluate`);
- ms per face: one thread, warp(s) plus network(s), median of 3 passes over
  the same LFW faces (noisy on a shared machine).

JSON goes to bench-results/fusion.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from facerec.config import Settings
from facerec.decisions.operating import MIN_FALSE_ACCEPTS
from facerec.detectors import Detector
from facerec.evaluation.cache import EvaluationCache
from facerec.evaluation.embed import embed_set
from facerec.evaluation.metrics import auc, best_threshold, eer, roc, tar_at_far
from facerec.evaluation.pairs import Pair, folder_identities, folder_pairs, read_lfw_pairs
from facerec.faces.embedding import Embedder
from facerec.faces.images import load_image
from facerec.faces.pipeline import Pipeline
from facerec.models.fusion import SFACE_DLIB_SPEC, fuse
from facerec.models.registry import DLIB_MODEL, load_model, model_spec

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
Vectors = npt.NDArray[np.float32]
FUSION = SFACE_DLIB_SPEC.name
FIT_FAR = 1e-4
GRID = np.round(np.arange(0.0, 1.0 + 1e-9, 0.02), 2)
FARS = (1e-3, 1e-4)

log = logging.getLogger("bench_fusion")


@dataclasses.dataclass(frozen=True, slots=True)
class LabelledSet:
    """Photos with identities, the protocol pairs over them and (LFW) each photo's fold."""

    name: str
    paths: tuple[Path, ...]
    labels: npt.NDArray[np.int64]
    pairs: tuple[Pair, ...]
    folds: npt.NDArray[np.int64] | None  # LFW: the pairs_dev fold of each photo's person

    def rows(self, paths: Sequence[Path]) -> npt.NDArray[np.int64]:
        index = {p: i for i, p in enumerate(self.paths)}
        return np.array([index[p] for p in paths], dtype=np.int64)


def lfw_set(data: Path) -> LabelledSet:
    """Every photo in lfw/images of the people in pairs_dev.txt's (identity-disjoint) folds."""
    pairs = read_lfw_pairs(data / "lfw" / "pairs_dev.txt")
    fold_of = {p.parent.name: pair.fold for pair in pairs for p in (pair.a, pair.b)}
    people = folder_identities(data / "lfw" / "images")
    names = sorted(n for n in people if n in fold_of)
    paths = tuple(p for n in names for p in people[n])
    labels = np.array([i for i, n in enumerate(names) for _ in people[n]])
    folds = np.array([fold_of[n] for n in names for _ in people[n]])
    return LabelledSet("LFW", paths, labels, tuple(pairs), folds)


def folder_set(name: str, root: Path) -> LabelledSet:
    """A <person>/<photo> set with `facerec evaluate`'s pairs (10 identity folds, seed 0)."""
    people = folder_identities(root)
    names = sorted(people)
    paths = tuple(p for n in names for p in people[n])
    labels = np.array([i for i, n in enumerate(names) for _ in people[n]])
    pairs = folder_pairs(people, folds=min(10, len(people)), seed=0)
    return LabelledSet(name, paths, labels, tuple(pairs), None)


# -- the weight fit ------------------------------------------------------------------------------


def pair_scores(
    first: Vectors, second: Vectors, labels: npt.NDArray[np.int64], chunk: int = 512
) -> tuple[
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
]:
    """Cosines of every unordered pair under two networks: (impostor 1, impostor 2, genuine 1, genuine 2)."""
    imp1, imp2, gen1, gen2 = [], [], [], []
    n = len(labels)
    for a in range(0, n - 1, chunk):
        b = min(a + chunk, n)
        s1 = first[a:b] @ first[a:].T
        s2 = second[a:b] @ second[a:].T
        upper = np.arange(a, n)[None, :] > np.arange(a, b)[:, None]
        same = labels[a:b, None] == labels[None, a:]
        imp1.append(s1[upper & ~same])
        imp2.append(s2[upper & ~same])
        gen1.append(s1[upper & same])
        gen2.append(s2[upper & same])
    return tuple(np.concatenate(x).astype(np.float32) for x in (imp1, imp2, gen1, gen2))  # type: ignore[return-value]


def tar_at(
    impostor: npt.NDArray[np.float32], genuine: npt.NDArray[np.float32], far: float
) -> float:
    """TAR at the threshold that accepts at most `far` of the impostor scores (strictly above)."""
    k = int(np.floor(far * len(impostor)))
    kth = len(impostor) - 1 - k
    threshold = np.partition(impostor, kth)[kth]
    return float((genuine > threshold).mean())


def fit_weight(sface: Vectors, dlib: Vectors, labels: npt.NDArray[np.int64]) -> tuple[float, float]:
    """dlib's weight on GRID with the largest TAR at FIT_FAR over every pair; (weight, TAR)."""
    i1, i2, g1, g2 = pair_scores(sface, dlib, labels)
    tars = [tar_at((1 - w) * i1 + w * i2, (1 - w) * g1 + w * g2, FIT_FAR) for w in GRID]
    best = int(np.argmax(tars))
    return float(GRID[best]), tars[best]


# -- evaluation ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    model: str
    flip: bool
    set: str
    accuracy: float
    accuracy_std: float
    auc: float
    eer: float
    protocol_negatives: int
    tar_1e3_pairs: float | None
    all_pairs: dict[str, dict[str, float | int | bool]]
    weights: tuple[float, ...] = ()  # dlib's weight per fold (LFW) or the one used


def all_pair_scores(
    v: Vectors, labels: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Cosines of every unordered pair: (impostor, genuine)."""
    s = np.asarray(v, dtype=np.float64) @ np.asarray(v, dtype=np.float64).T
    upper = np.triu(np.ones(s.shape, dtype=bool), k=1)
    same = labels[:, None] == labels[None, :]
    return s[upper & ~same], s[upper & same]


def evaluate(
    data: LabelledSet,
    vectors_for_fold: Callable[[int | None], Vectors],
    model: str,
    flip: bool,
    weights: tuple[float, ...] = (),
    standardise: bool = False,
) -> Row:
    """One table row. `vectors_for_fold(k)`: every photo's vectors as used to score fold k
    (a fusion's weight fit without fold k); None for a set without folds.

    `standardise`: a fusion scored with a different weight per fold puts each fold's
    cosines on its own scale (dlib's share moves the impostor mean), so before the
    folds are pooled for AUC, EER and TAR, fold k's scores are standardised by the
    mean and deviation of the impostor pairs of the *other* folds under fold k's
    weight: a monotone map per fold, fit without the fold.
    """
    pairs = data.pairs
    y = np.array([p.same for p in pairs])
    f = np.array([p.fold for p in pairs])
    a, b = data.rows([p.a for p in pairs]), data.rows([p.b for p in pairs])
    held = np.empty(len(pairs))
    accs = []
    impostor: list[npt.NDArray[np.float64]] = []
    genuine: list[npt.NDArray[np.float64]] = []
    for k in np.unique(f):
        v = vectors_for_fold(int(k) if data.folds is not None else None)
        s = (v[a] * v[b]).sum(axis=1).astype(np.float64)
        train = f != k
        th, _ = best_threshold(s[train], y[train])
        accs.append(float(((s[f == k] >= th) == y[f == k]).mean()))
        centre, scale = 0.0, 1.0
        if standardise:
            centre, scale = float(s[train & ~y].mean()), float(s[train & ~y].std())
        held[f == k] = (s[f == k] - centre) / scale
        if data.folds is not None:
            rows = np.flatnonzero(data.folds == k)
            imp, gen = all_pair_scores(v[rows], data.labels[rows])
            impostor.append((imp - centre) / scale)
            genuine.append((gen - centre) / scale)
    if data.folds is None:
        imp, gen = all_pair_scores(vectors_for_fold(None), data.labels)
        impostor.append(imp)
        genuine.append(gen)
    imp, gen = np.concatenate(impostor), np.concatenate(genuine)
    r = roc(held, y)
    negatives = int((~y).sum())
    all_pairs: dict[str, dict[str, float | int | bool]] = {}
    for far in FARS:
        kth = len(imp) - 1 - int(np.floor(far * len(imp)))
        threshold = float(np.partition(imp, kth)[kth])  # accept above it: at most far * n
        all_pairs[f"{far:.0e}"] = {
            "tar": float((gen > threshold).mean()),
            "false_accepts": int((imp > threshold).sum()),
            "impostor_pairs": len(imp),
            "genuine_pairs": len(gen),
            "resolvable": far * len(imp) >= MIN_FALSE_ACCEPTS,
        }
    return Row(
        model=model,
        flip=flip,
        set=data.name,
        accuracy=float(np.mean(accs)),
        accuracy_std=float(np.std(accs)),
        auc=auc(r),
        eer=eer(r),
        protocol_negatives=negatives,
        tar_1e3_pairs=tar_at_far(r, 1e-3)[0] if negatives * 1e-3 >= 1 else None,
        all_pairs=all_pairs,
        weights=weights,
    )


def ms_per_face(
    pipeline: Pipeline, images: list[npt.NDArray[np.uint8]], marks: list[npt.NDArray[np.float64]]
) -> float:
    """Warp(s) and network(s), one thread, median of 3 passes, per face."""
    pipeline.embed_at(images[:2], marks[:2])  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        pipeline.embed_at(images, marks)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times) / len(images)


def fmt_row(r: Row, ms: float | None) -> str:
    def tar(key: str) -> str:
        p = r.all_pairs[key]
        star = "" if p["resolvable"] else " *"
        return (
            f"{float(p['tar']) * 100:.2f}% ({p['false_accepts']:,} / {p['impostor_pairs']:,}){star}"
        )

    t3 = "-" if r.tar_1e3_pairs is None else f"{r.tar_1e3_pairs * 100:.2f}%"
    speed = "" if ms is None else f"{ms:.1f}"
    return (
        f"| {r.model}{' + flip' if r.flip else ''} | {r.set} | {r.accuracy * 100:.2f} ± "
        f"{r.accuracy_std * 100:.2f}% | {r.auc:.4f} | {r.eer * 100:.2f}% | {t3} | "
        f"{tar('1e-03')} | {tar('1e-04')} | {speed} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["sface", DLIB_MODEL], help="single networks")
    ap.add_argument("--flip", nargs="+", default=["off", "on"], choices=["off", "on"])
    ap.add_argument(
        "--sets", nargs="+", default=["lfw", "att", "yale"], choices=["lfw", "att", "yale"]
    )
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--timing-faces", type=int, default=48)
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--json", type=Path, default=ROOT / "bench-results" / "fusion.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)

    settings = Settings()
    detector = Detector(settings.detector)
    cache = EvaluationCache(args.cache_dir)
    flips = [f == "on" for f in args.flip]
    networks = list(dict.fromkeys([*args.models, "sface", DLIB_MODEL]))
    loaded = {n: load_model(n, threads=1) for n in networks}
    pipelines = {
        (n, fl): Pipeline(detector, Embedder(loaded[n], flip=fl), settings.quality)
        for n in networks
        for fl in flips
    }
    fusion_pipelines = {
        fl: Pipeline(detector, Embedder(load_model(FUSION, threads=1), flip=fl), settings.quality)
        for fl in flips
    }
    sets = {
        "lfw": lambda: lfw_set(args.data),
        "att": lambda: folder_set("AT&T", args.data / "att_faces"),
        "yale": lambda: folder_set("Yale", args.data / "yalefaces"),
    }
    shipped = SFACE_DLIB_SPEC.members[1].weight
    rows: list[Row] = []
    fits: dict[str, object] = {}
    for key in args.sets:
        data = sets[key]()
        vecs: dict[tuple[str, bool], Vectors] = {}
        for (n, fl), pipeline in pipelines.items():
            t = time.perf_counter()
            emb = embed_set(pipeline, data.paths, progress=sys.stderr.isatty(), cache=cache)
            vecs[n, fl] = emb.embeddings
            print(
                f"{data.name} {n} flip={fl}: {len(data.paths):,} photos, {len(emb.missed)} missed, "
                f"{emb.embedded} embedded in {time.perf_counter() - t:.0f} s",
                flush=True,
            )
        fold_weights: dict[int | None, float] = {None: shipped}
        if data.folds is not None:
            base = (vecs["sface", False], vecs[DLIB_MODEL, False])
            for k in [*sorted(set(data.folds.tolist())), None]:
                train = (
                    np.flatnonzero(data.folds != k) if k is not None else np.arange(len(data.paths))
                )
                t = time.perf_counter()
                w, tar = fit_weight(base[0][train], base[1][train], data.labels[train])
                label = f"all folds but {k}" if k is not None else "all five folds (ships)"
                print(
                    f"fit on {label}: dlib weight {w:.2f}, TAR {tar * 100:.2f}% at FAR "
                    f"{FIT_FAR:g} over every training pair ({time.perf_counter() - t:.0f} s)",
                    flush=True,
                )
                fits[label] = {"dlib_weight": w, "tar_at_fit_far": tar}
                if k is not None:
                    fold_weights[k] = w
            if abs(fits["all five folds (ships)"]["dlib_weight"] - shipped) > 1e-9:  # type: ignore[index]
                log.warning("the shipped weight %.2f is not this fit's; update fusion.py", shipped)
        for fl in flips:
            for n in args.models:
                rows.append(evaluate(data, lambda k, v=vecs[n, fl]: v, n, fl))
            members = (vecs["sface", fl], vecs[DLIB_MODEL, fl])

            def fused(
                k: int | None,
                members: tuple[Vectors, Vectors] = members,
                weights: dict[int | None, float] = fold_weights,
            ) -> Vectors:
                return fuse(members, (1 - weights[k], weights[k]))

            used = tuple(fold_weights[k] for k in sorted(k for k in fold_weights if k is not None))
            nested = data.folds is not None
            rows.append(evaluate(data, fused, FUSION, fl, used or (shipped,), standardise=nested))
            if data.folds is not None:  # what `facerec evaluate --model sface+dlib` reports
                rows.append(
                    evaluate(
                        data,
                        lambda k, f=fused: f(None),
                        f"{FUSION} (shipped weight)",
                        fl,
                        (shipped,),
                    )
                )
            if data.folds is None:  # the registered model itself, through its own pipeline
                direct = embed_set(fusion_pipelines[fl], data.paths, cache=cache).embeddings
                np.testing.assert_allclose(direct, fused(None), atol=1e-6)

    speed: dict[str, float] = {}
    if not args.no_timing:
        pairs = read_lfw_pairs(args.data / "lfw" / "pairs_dev.txt")
        images, marks = [], []
        for photo in sorted({p.a for p in pairs})[: args.timing_faces]:
            image = load_image(photo).pixels
            faces = detector.detect(image)
            if faces:
                images.append(image)
                marks.append(faces[0].landmarks_array())
        for (n, fl), pipeline in pipelines.items():
            speed[f"{n}{' + flip' if fl else ''}"] = ms_per_face(pipeline, images, marks)
        for fl, pipeline in fusion_pipelines.items():
            speed[f"{FUSION}{' + flip' if fl else ''}"] = ms_per_face(pipeline, images, marks)

    print(
        "\n| model | set | accuracy (k-fold) | AUC | EER | TAR@1e-3, protocol pairs | "
        "TAR@1e-3, every pair (false accepts / impostor pairs) | TAR@1e-4, every pair | ms per face |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = f"{r.model}{' + flip' if r.flip else ''}"
        print(fmt_row(r, speed.get(label) if r.set == rows[0].set else None))
    if fits:
        print(f"\nfusion weight fits (dlib's share, TAR at FAR {FIT_FAR:g}, flip off): {fits}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "command": " ".join(["python", "scripts/bench_fusion.py", *sys.argv[1:]]),
                "date": time.strftime("%Y-%m-%d"),
                "fit": {"far": FIT_FAR, "grid_step": 0.02, "fits": fits, "shipped": shipped},
                "rows": [dataclasses.asdict(r) for r in rows],
                "ms_per_face": speed,
                "non_commercial": [n for n in args.models if model_spec(n).non_commercial],
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

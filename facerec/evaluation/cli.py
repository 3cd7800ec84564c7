"""`facerec evaluate` and `facerec calibrate`.

Both embed their set through `evaluation.embed` with the on-disk
`EvaluationCache`, so calibrating a set that was just evaluated (or evaluating
it with another protocol) detects nothing again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facerec.cli_common import (
    DbOpt,
    DetectorOpt,
    JsonOpt,
    MinFaceOpt,
    ModelOpt,
    ThreadsOpt,
    WeightsOpt,
    fail,
    make_settings,
    print_json,
    progress,
    session,
)
from facerec.detection import DetectorKind
from facerec.errors import FacerecError

if TYPE_CHECKING:  # the heavy modules load only when a command runs
    from facerec.evaluation.cache import EvaluationCache
    from facerec.evaluation.embed import EmbeddedSet

TargetArg = Annotated[
    Path,
    typer.Argument(
        help="An LFW-style pairs.txt (images in images/ beside it) or a <person>/<photo> folder."
    ),
]

CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Where detections and embeddings of evaluation photos are cached "
        "[default: evaluation/ in the user cache dir].",
    ),
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Detect and embed every photo again; write no cache.")
]


def _cache(cache_dir: Path | None, no_cache: bool) -> EvaluationCache | None:
    from facerec.evaluation.cache import EvaluationCache

    return None if no_cache else EvaluationCache(cache_dir)


def _cache_line(embedded: EmbeddedSet, cache: EvaluationCache | None) -> str:
    n = len(embedded.paths)
    if cache is None:
        return f"{n} photos detected and embedded (no cache)"
    return (
        f"{n} photos: {embedded.detected} detected, {embedded.embedded} embedded, "
        f"the rest from the cache ({cache.root})"
    )


def _pairs(target: Path, seed: int):  # type: ignore[no-untyped-def]
    from facerec.evaluation.pairs import folder_identities, folder_pairs, read_lfw_pairs

    if target.is_file():
        return read_lfw_pairs(target), None
    if target.is_dir():
        people = folder_identities(target)
        return folder_pairs(people, folds=min(10, len(people)), seed=seed), people
    raise FacerecError(f"{target}: no such pairs file or folder")


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        target: TargetArg,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for report.json and roc.png.")
        ] = Path("evaluation"),
        episodes: Annotated[
            int,
            typer.Option("--episodes", help="Also run N 5-way 1/5-shot episodes (0: none).", min=0),
        ] = 0,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        db: DbOpt = None,
        model: ModelOpt = None,
        weights: WeightsOpt = None,
        min_face_size: MinFaceOpt = 20,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        detector: DetectorOpt = DetectorKind.MTCNN,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Verification accuracy (k-fold), AUC, EER, TAR@FAR; one-shot identification; episodes."""
        import dataclasses

        import numpy as np

        from facerec.evaluation.embed import embed_set
        from facerec.evaluation.report import one_shot_identification, plot_roc, verification_report
        from facerec.fewshot import run_episodes

        settings = make_settings(
            model, weights, min_face_size=min_face_size, detector=detector, threads=threads
        )
        with session(db, settings, as_json=as_json) as fr:
            pairs, people = _pairs(target, seed)
            paths = sorted(
                {p.a for p in pairs}
                | {p.b for p in pairs}
                | {x for ps in (people or {}).values() for x in ps}
            )
            cache = _cache(cache_dir, no_cache)
            embedded = embed_set(fr.pipeline, paths, progress=progress(), cache=cache)
            vectors = embedded.lookup()
            ver, r = verification_report(pairs, vectors)
            result: dict[str, object] = {
                "target": str(target),
                "model": fr.spec.name,
                "images": len(paths),
                "missed_faces": len(embedded.missed),
                "detected": embedded.detected,
                "embedded": embedded.embedded,
                "verification": dataclasses.asdict(ver),
            }
            if people is not None:
                result["identification"] = dataclasses.asdict(
                    one_shot_identification(people, vectors, seed=seed)
                )
                if episodes:
                    labels = {n: i for i, n in enumerate(sorted(people))}
                    rows = [(vectors[p], labels[n]) for n, ps in people.items() for p in ps]
                    emb = np.stack([v for v, _ in rows])
                    lab = np.array([y for _, y in rows])
                    counts = np.bincount(lab)
                    result["episodes"] = [
                        dataclasses.asdict(
                            run_episodes(
                                emb,
                                lab,
                                n_way=5,
                                k_shot=k,
                                episodes=episodes,
                                finetune=ft,
                                seed=seed,
                            )
                        )
                        for k in (1, 5)
                        if (counts >= k + 1).sum() >= 5  # 5-way needs 5 people with k + 1 photos
                        for ft in (False, True)
                    ]
            out.mkdir(parents=True, exist_ok=True)
            plot_roc(r, out / "roc.png", f"{target.name}: {result['model']}, AUC {ver.auc:.4f}")
            (out / "report.json").write_text(json.dumps(result, indent=2))
        if as_json:
            print_json(result)
            return
        typer.echo(
            f"{target}: {len(paths)} images, {len(embedded.missed)} without a detected face (fallback crop)"
        )
        typer.echo(_cache_line(embedded, cache))
        typer.echo(
            f"{'pairs':>8}{'accuracy':>18}{'AUC':>9}{'EER':>8}"
            + "".join(f"{'TAR@' + k:>12}" for k in ver.tar_at_far)
        )
        typer.echo(
            f"{ver.pairs:>8}{ver.accuracy * 100:>10.2f} ± {ver.accuracy_std * 100:4.2f}{ver.auc:>9.4f}{ver.eer * 100:>7.2f}%"
            + "".join(f"{v * 100:>11.2f}%" for v in ver.tar_at_far.values())
        )
        typer.echo(f"threshold (mean of {ver.folds} folds): {ver.threshold:.4f}")
        if "identification" in result:
            ident = result["identification"]
            assert isinstance(ident, dict)
            typer.echo(
                f"one-shot identification: {ident['people']} people, {ident['probes']} probes, "
                f"rank-1 {ident['rank1'] * 100:.2f}%, rank-5 {ident['rank5'] * 100:.2f}%, "
                + ", ".join(f"DIR@FAR={k} {v * 100:.2f}%" for k, v in ident["dir_at_far"].items())
            )
        for ep in result.get("episodes", []):  # type: ignore[attr-defined]
            typer.echo(
                f"{ep['n_way']}-way {ep['k_shot']}-shot {'fine-tuned' if ep['finetune'] else 'prototypes'}: "
                f"{ep['mean_accuracy'] * 100:.2f}% ± {ep['ci95'] * 100:.2f} ({ep['episodes']} episodes)"
            )
        typer.echo(f"wrote {out / 'report.json'} and {out / 'roc.png'}")

    @app.command()
    def calibrate(
        target: TargetArg,
        far: Annotated[
            float, typer.Option("--far", help="Target false accept rate, 0 to 1.", min=0.0, max=1.0)
        ] = 1e-3,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        db: DbOpt = None,
        model: ModelOpt = None,
        weights: WeightsOpt = None,
        min_face_size: MinFaceOpt = 20,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        detector: DetectorOpt = DetectorKind.MTCNN,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Choose the threshold for a target FAR on a labelled set; store it in the gallery."""
        from facerec.evaluation.embed import embed_set
        from facerec.evaluation.metrics import roc, tar_at_far

        settings = make_settings(
            model, weights, min_face_size=min_face_size, detector=detector, threads=threads
        )
        with session(db, settings, as_json=as_json) as fr:
            pairs, _ = _pairs(target, seed)
            negatives = sum(not p.same for p in pairs)
            if negatives * far < 1:
                fail(
                    f"{negatives} negative pairs cannot measure FAR {far:g}",
                    as_json=as_json,
                    kind="UsageError",
                )
            paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
            cache = _cache(cache_dir, no_cache)
            embedded = embed_set(fr.pipeline, paths, progress=progress(), cache=cache)
            vectors = embedded.lookup()
            scores = [float(vectors[p.a] @ vectors[p.b]) for p in pairs]
            tar, threshold = tar_at_far(roc(scores, [p.same for p in pairs]), far)
            name = fr.spec.name
            fr.set_threshold(threshold, target_far=far)
            result = {
                "model": name,
                "threshold": threshold,
                "far": far,
                "tar": tar,
                "pairs": len(pairs),
                "detected": embedded.detected,
                "embedded": embedded.embedded,
            }
        if as_json:
            print_json(result)
        else:
            typer.echo(_cache_line(embedded, cache))
            typer.echo(
                f"{name}: threshold {threshold:.4f} for FAR {far:g} (TAR {tar * 100:.2f}% on {len(pairs)} pairs), stored in the gallery"
            )

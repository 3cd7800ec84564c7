"""`facerec evaluate` and `facerec calibrate`: their options, and what they print.

The work is `facerec.evaluation.job`'s (`evaluate`, `calibrate`).
"""

from __future__ import annotations

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
    reported_errors,
    session,
)
from facerec.extras import PLOT_HINT, require_torch

if TYPE_CHECKING:  # the heavy modules load only when a command runs
    from facerec.evaluation.cache import EvaluationCache
    from facerec.evaluation.embed import EmbeddedSet
    from facerec.evaluation.job import Evaluation

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
TrainOnOpt = Annotated[
    Path | None,
    typer.Option(
        "--train-on",
        help="People who train the learned few-shot heads of --episodes, none of them evaluated: "
        "an LFW pairs.txt (everyone in its images/ folder) or a <person>/<photo> folder "
        "[default: a seeded half of the evaluated set's people].",
    ),
]


def _cache_line(embedded: EmbeddedSet, cache: EvaluationCache | None) -> str:
    n = len(embedded.paths)
    if cache is None:
        return f"{n} photos detected and embedded (no cache)"
    return (
        f"{n} photos: {embedded.detected} detected, {embedded.embedded} embedded, "
        f"the rest from the cache ({cache.root})"
    )


def _print_evaluation(target: Path, done: Evaluation) -> None:
    ver, embedded, result = done.verification, done.embedded, done.report
    typer.echo(
        f"{target}: {done.images} images, {len(embedded.missed)} without a detected face "
        "(fallback crop)"
    )
    typer.echo(_cache_line(embedded, done.cache))
    typer.echo(
        f"{'pairs':>8}{'accuracy':>18}{'AUC':>9}{'EER':>8}"
        + "".join(f"{'TAR@' + k:>12}" for k in ver.tar_at_far)
    )
    typer.echo(
        f"{ver.pairs:>8}{ver.accuracy * 100:>10.2f} ± {ver.accuracy_std * 100:4.2f}"
        f"{ver.auc:>9.4f}{ver.eer * 100:>7.2f}%"
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
    if done.heads_text is not None:
        typer.echo(done.heads_text)
    if done.roc_path is None:
        typer.echo(f"note: roc.png not drawn, matplotlib is not installed: {PLOT_HINT}", err=True)
        typer.echo(f"wrote {done.report_path}")
    else:
        typer.echo(f"wrote {done.report_path} and {done.roc_path}")


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        target: TargetArg,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for report.json and roc.png.")
        ] = Path("evaluation"),
        episodes: Annotated[
            int,
            typer.Option(
                "--episodes",
                help="Also compare every few-shot head on N 5-way 1/5-shot episodes, "
                "closed-set and with unknown people (0: none).",
                min=0,
            ),
        ] = 0,
        train_on: TrainOnOpt = None,
        train_steps: Annotated[
            int | None,
            typer.Option(
                "--train-steps",
                help="Adam steps (of 16 episodes each) per learned few-shot head; fewer is "
                "quicker and rougher [default: 300].",
                min=0,
            ),
        ] = None,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        db: DbOpt = None,
        model: ModelOpt = None,
        weights: WeightsOpt = None,
        min_face_size: MinFaceOpt = 20,
        cache_dir: CacheDirOpt = None,
        no_cache: NoCacheOpt = False,
        detector: DetectorOpt = None,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Verification accuracy (k-fold), AUC, EER, TAR@FAR; one-shot identification; episodes."""
        from facerec.evaluation.job import EvaluateOptions, evaluate

        if episodes:
            with reported_errors(as_json=as_json):
                require_torch("--episodes (the few-shot heads)")
        settings = make_settings(
            model, weights, min_face_size=min_face_size, detector=detector, threads=threads
        )
        options = EvaluateOptions(
            target=target,
            out=out,
            episodes=episodes,
            train_on=train_on,
            train_steps=train_steps,
            seed=seed,
            cache_dir=cache_dir,
            no_cache=no_cache,
        )
        with session(db, settings, as_json=as_json) as fr:
            done = evaluate(fr, options, progress=progress())
        if as_json:
            print_json(done.report)
            return
        _print_evaluation(target, done)

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
        detector: DetectorOpt = None,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Choose the threshold for a target FAR on a labelled set; store it in the gallery."""
        from facerec.evaluation.job import calibrate as calibrate_on
        from facerec.evaluation.job import open_cache, pairs_of

        settings = make_settings(
            model, weights, min_face_size=min_face_size, detector=detector, threads=threads
        )
        with session(db, settings, as_json=as_json) as fr:
            pairs, _ = pairs_of(target, seed)
            negatives = sum(not p.same for p in pairs)
            if negatives * far < 1:
                fail(
                    f"{negatives} negative pairs cannot measure FAR {far:g}",
                    as_json=as_json,
                    kind="UsageError",
                )
            cache = open_cache(cache_dir, no_cache)
            done = calibrate_on(fr, pairs, far, cache=cache, progress=progress())
        if as_json:
            print_json(
                {
                    "model": done.model,
                    "threshold": done.threshold,
                    "far": done.far,
                    "tar": done.tar,
                    "pairs": done.pairs,
                    "detected": done.embedded.detected,
                    "embedded": done.embedded.embedded,
                }
            )
        else:
            typer.echo(_cache_line(done.embedded, cache))
            typer.echo(
                f"{done.model}: threshold {done.threshold:.4f} for FAR {far:g} "
                f"(TAR {done.tar * 100:.2f}% on {done.pairs} pairs), stored in the gallery"
            )

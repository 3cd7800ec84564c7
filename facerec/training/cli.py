"""`facerec train`: fine-tune (or train) the embedding with a metric loss on a folder per identity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from facerec.cli_common import (
    DetectorOpt,
    JsonOpt,
    MinFaceOpt,
    ThreadsOpt,
    WeightsOpt,
    print_json,
    progress,
    reported_errors,
)
from facerec.training.job import (
    DistanceChoice,
    LossChoice,
    OptimizerChoice,
    ScheduleChoice,
    TrainOptions,
    run,
)


def register(app: typer.Typer) -> None:
    """Add `facerec train` to the CLI (heavy imports stay inside the command)."""

    @app.command()
    def train(
        data_dir: Annotated[
            Path,
            typer.Argument(
                help="Training photos, one folder per identity: DATA_DIR/<person>/<photo>."
            ),
        ],
        out: Annotated[Path, typer.Option("--out", help="Folder for the checkpoints.")],
        model: Annotated[
            str, typer.Option("--model", help="Architecture to train.")
        ] = "dlib-resnet-v1",
        weights: WeightsOpt = None,
        random_init: Annotated[
            bool, typer.Option("--random-init", help="Start from random weights, not pretrained.")
        ] = False,
        loss: Annotated[LossChoice, typer.Option("--loss", help="Metric loss.")] = "batch-hard",
        margin: Annotated[float, typer.Option("--margin")] = 0.2,
        distance: Annotated[DistanceChoice, typer.Option("--distance")] = "euclidean",
        p: Annotated[int, typer.Option("--p", help="Identities per batch.", min=2)] = 16,
        k: Annotated[int, typer.Option("--k", help="Photos per identity per batch.", min=2)] = 4,
        epochs: Annotated[
            int | None,
            typer.Option("--epochs", help="Epochs [default: 3, or the resumed run's].", min=1),
        ] = None,
        steps_per_epoch: Annotated[
            int | None, typer.Option("--steps-per-epoch", help="Cap the steps of an epoch.", min=1)
        ] = None,
        lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 1e-4,
        weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 5e-4,
        optimizer: Annotated[OptimizerChoice, typer.Option("--optimizer")] = "adamw",
        schedule: Annotated[ScheduleChoice, typer.Option("--schedule")] = "cosine",
        warmup: Annotated[
            int | None,
            typer.Option(
                "--warmup", help="Warm-up steps [default: 10% of the run, at most 100].", min=0
            ),
        ] = None,
        train_last: Annotated[
            int | None,
            typer.Option(
                "--train-last",
                help="Train only the last N blocks plus the embedding layer (0: that layer only).",
                min=0,
            ),
        ] = None,
        freeze_until: Annotated[
            str | None,
            typer.Option(
                "--freeze-until", help="Freeze every layer before this one (e.g. blocks.10)."
            ),
        ] = None,
        no_augment: Annotated[
            bool, typer.Option("--no-augment", help="No flip / colour jitter / small affine.")
        ] = False,
        no_fold_scales: Annotated[
            bool,
            typer.Option(
                "--no-fold-scales",
                help="Fine-tune dlib's parametrisation as is (tiny conv weights, large affine scales).",
            ),
        ] = False,
        seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
        resume: Annotated[
            Path | None,
            typer.Option(
                "--resume", help="Continue from a checkpoint of this run (its options apply)."
            ),
        ] = None,
        exclude_pairs: Annotated[
            Path | None,
            typer.Option(
                "--exclude-pairs", help="LFW pairs file whose fold --fold must not be trained on."
            ),
        ] = None,
        fold: Annotated[
            int | None,
            typer.Option("--fold", help="1-based fold of --exclude-pairs to leave out.", min=1),
        ] = None,
        exclude_list: Annotated[
            Path | None,
            typer.Option(
                "--exclude-list", help="File of identity names (one a line) to leave out."
            ),
        ] = None,
        min_images: Annotated[
            int, typer.Option("--min-images", help="Skip identities with fewer photos.", min=1)
        ] = 2,
        max_per_identity: Annotated[
            int | None,
            typer.Option("--max-per-identity", help="Use at most N photos per identity.", min=1),
        ] = None,
        val_pairs: Annotated[
            Path | None,
            typer.Option(
                "--val-pairs", help="LFW-style pairs file to validate on after each epoch."
            ),
        ] = None,
        val_fold: Annotated[
            int | None,
            typer.Option(
                "--val-fold",
                help="Validate on this 1-based fold only [default: --fold when --val-pairs is "
                "--exclude-pairs, else all pairs].",
                min=1,
            ),
        ] = None,
        cache: Annotated[
            Path | None,
            typer.Option("--cache", help="Chip cache folder [default: the user cache dir]."),
        ] = None,
        min_face_size: MinFaceOpt = 20,
        detector: DetectorOpt = None,
        save_every: Annotated[
            int | None,
            typer.Option("--save-every", help="Also checkpoint every N steps (0: never).", min=0),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option("--workers", help="DataLoader worker processes [default: 0].", min=0),
        ] = None,
        device: Annotated[
            str | None,
            typer.Option("--device", help="cpu, cuda, cuda:1 [default: CUDA if present]."),
        ] = None,
        threads: ThreadsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Metric-learning training on DATA_DIR (faces detected and aligned once, then cached)."""
        options = TrainOptions(
            data_dir=data_dir,
            out=out,
            model=model,
            weights=weights,
            random_init=random_init,
            loss=loss,
            margin=margin,
            distance=distance,
            p=p,
            k=k,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            lr=lr,
            weight_decay=weight_decay,
            optimizer=optimizer,
            schedule=schedule,
            warmup=warmup,
            train_last=train_last,
            freeze_until=freeze_until,
            no_augment=no_augment,
            no_fold_scales=no_fold_scales,
            seed=seed,
            resume=resume,
            exclude_pairs=exclude_pairs,
            fold=fold,
            exclude_list=exclude_list,
            min_images=min_images,
            max_per_identity=max_per_identity,
            val_pairs=val_pairs,
            val_fold=val_fold,
            cache=cache,
            min_face_size=min_face_size,
            detector=detector,
            save_every=save_every,
            workers=workers,
            device=device,
            threads=threads,
        )
        with reported_errors(as_json=as_json):
            result = run(options, progress=progress())
        if as_json:
            print_json(result)
            return
        _print_human(result)


def _print_human(r: dict[str, Any]) -> None:
    d = r["data"]
    res = r["result"]
    typer.echo(
        f"data: {d['photos']} photos, {d['without_face']} without a face, {d['unreadable']} "
        f"unreadable; training on {d['chips']} chips of {d['identities']} identities "
        f"({d['excluded_identities']} excluded); cache {'reused' if d['cache_reused'] else 'built'}: "
        f"{d['cache']}"
    )
    if res.initial_validation is not None:
        v = res.initial_validation
        typer.echo(f"before: validation accuracy {v.accuracy * 100:.2f}%, AUC {v.auc:.4f}")
    for e in res.history:
        val = (
            f", validation accuracy {e.validation.accuracy * 100:.2f}%, AUC {e.validation.auc:.4f}"
            if e.validation
            else ""
        )
        typer.echo(
            f"epoch {e.epoch}: {e.steps} steps, loss {e.loss:.4f}, active {e.active_fraction:.3f}, "
            f"{e.seconds / max(1, e.steps):.2f} s/step{val}"
        )
    typer.echo(
        f"{res.steps} steps on {res.device} ({res.trainable_parameters} trainable parameters, "
        f"{res.seconds_per_step:.2f} s/step); checkpoint {res.checkpoint}"
    )
    typer.echo(
        f"use it with --model {r['config']['model']} --weights {res.checkpoint} "
        "(a new model identity: a gallery filled with other weights refuses it)"
    )

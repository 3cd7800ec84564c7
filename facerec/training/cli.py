"""`facerec train`: fine-tune (or train) the embedding with a metric loss on a folder per identity."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

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

log = logging.getLogger(__name__)


# The choices, spelled out here so that building the CLI does not import torch;
# tests check they equal the trainer's (facerec.training.trainer.LOSSES, ...).
LossChoice = Literal["batch-all", "batch-hard", "semi-hard", "contrastive"]
DistanceChoice = Literal["euclidean", "squared_euclidean", "cosine"]
OptimizerChoice = Literal["adamw", "sgd"]
ScheduleChoice = Literal["cosine", "step", "constant"]


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
        with reported_errors(as_json=as_json):
            result = _run(locals())
        if as_json:
            print_json(result)
            return
        _print_human(result)


def _run(o: dict[str, Any]) -> dict[str, Any]:
    """The command's work, on its options (kept out of `register` so the command stays a thin layer)."""
    from facerec.extras import require_torch

    require_torch("facerec train")
    from facerec.detection import DetectorConfig
    from facerec.evaluation.pairs import read_lfw_pairs
    from facerec.models.registry import model_spec
    from facerec.runtime import use_threads
    from facerec.training.data import (
        Preparation,
        folder_items,
        lfw_fold_identities,
        load_or_build,
        load_pair_chips,
        read_identity_list,
    )
    from facerec.training.trainer import TrainConfig, TrainingError, resume_config, train

    use_threads(o["threads"])
    if (o["exclude_pairs"] is None) != (o["fold"] is None):
        raise TrainingError("--exclude-pairs and --fold go together")
    if o["resume"] is not None:
        config = resume_config(
            o["resume"],
            epochs=o["epochs"],
            save_every=o["save_every"],
            num_workers=o["workers"],
            device=o["device"],
        )
    else:
        config = TrainConfig(
            model=o["model"],
            weights=str(o["weights"]) if o["weights"] else None,
            pretrained=not o["random_init"],
            loss=o["loss"],
            margin=o["margin"],
            distance=o["distance"],
            p=o["p"],
            k=o["k"],
            epochs=o["epochs"] or 3,
            steps_per_epoch=o["steps_per_epoch"],
            lr=o["lr"],
            weight_decay=o["weight_decay"],
            optimizer=o["optimizer"],
            schedule=o["schedule"],
            warmup_steps=o["warmup"],
            train_last=o["train_last"],
            freeze_until=o["freeze_until"],
            augment=not o["no_augment"],
            fold_scales=not o["no_fold_scales"],
            seed=o["seed"],
            save_every=o["save_every"] or 0,
            num_workers=o["workers"] or 0,
            device=o["device"],
        )
    spec = model_spec(config.model)
    excluded: set[str] = set()
    if o["exclude_pairs"] is not None:
        excluded |= lfw_fold_identities(o["exclude_pairs"], o["fold"])
    if o["exclude_list"] is not None:
        excluded |= read_identity_list(o["exclude_list"])

    detector_config = DetectorConfig(min_face_size=o["min_face_size"], kind=o["detector"])
    # The cache covers the whole folder, so every fold of a rotation reuses it;
    # exclusions apply to the chips, before any batch is drawn.
    items = folder_items(
        o["data_dir"], min_images=o["min_images"], max_per_identity=o["max_per_identity"]
    )
    chips = load_or_build(
        items,
        Preparation(spec.template, detector_config),
        cache_dir=o["cache"],
        progress=progress(),
    )
    data = chips.exclude(excluded).with_min_chips(2)

    validation = None
    if o["val_pairs"] is not None:
        pairs = read_lfw_pairs(o["val_pairs"])
        vfold = o["val_fold"]
        same_file = (
            o["exclude_pairs"] is not None
            and o["val_pairs"].resolve() == o["exclude_pairs"].resolve()
        )
        if vfold is None and same_file:
            vfold = o["fold"]
        if vfold is not None:
            folds = sorted({pr.fold for pr in pairs})
            if not 1 <= vfold <= len(folds):
                raise TrainingError(f"{o['val_pairs']}: has folds 1..{len(folds)}, not {vfold}")
            pairs = [pr for pr in pairs if pr.fold == folds[vfold - 1]]
        val_people = {x.parent.name for pr in pairs for x in (pr.a, pr.b)}
        shared = val_people & set(data.names)
        if shared:
            log.warning(
                "%d validation identities are also trained on (e.g. %s): validation figures "
                "will be optimistic",
                len(shared),
                sorted(shared)[0],
            )
        validation = load_pair_chips(
            pairs,
            o["val_pairs"].parent / "images",
            detector_config,
            spec.template,
            cache_dir=o["cache"],
            progress=progress(),
        )

    result = train(
        data, config, o["out"], resume=o["resume"], validation=validation, progress=progress()
    )
    return {
        "data": {
            "root": str(o["data_dir"]),
            "fingerprint": chips.fingerprint,
            "cache": str(chips.cache_path),
            "cache_reused": chips.from_cache,
            "photos": len(items),
            "without_face": len(chips.missed),
            "unreadable": len(chips.unreadable),
            "excluded_identities": len(excluded),
            "identities": len(data.names),
            "chips": len(data),
        },
        "config": config.to_dict(),
        "result": result,
    }


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

"""One `facerec train` job: its options as a typed record, and the work from a folder to a checkpoint.

The CLI (`facerec.training.cli`) declares the options and calls `run`; the
work lives here so that it can be called, and read, without the command.
Importing this module loads no torch: the trainer, the data cache and the
models load when `run` starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from facerec.detectors import DetectorConfig, DetectorKind
    from facerec.models.base import ModelSpec
    from facerec.training.data import ChipSet, PairChips
    from facerec.training.trainer import TrainConfig

log = logging.getLogger(__name__)

# The choices, spelled out here so that building the CLI does not import torch;
# tests check they equal the trainer's (facerec.training.trainer.LOSSES, ...).
LossChoice = Literal["batch-all", "batch-hard", "semi-hard", "contrastive"]
DistanceChoice = Literal["euclidean", "squared_euclidean", "cosine"]
OptimizerChoice = Literal["adamw", "sgd"]
ScheduleChoice = Literal["cosine", "step", "constant"]


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """`facerec train`'s options, as the command's `--help` describes them.

    None means the default the help names (`epochs` 3, or the resumed run's;
    `warmup` 10 % of the run; `val_fold` --fold when `val_pairs` is
    `exclude_pairs`; `cache` the user cache dir).
    """

    data_dir: Path
    out: Path
    model: str = "dlib-resnet-v1"
    weights: Path | None = None
    random_init: bool = False
    loss: LossChoice = "batch-hard"
    margin: float = 0.2
    distance: DistanceChoice = "euclidean"
    p: int = 16
    k: int = 4
    epochs: int | None = None
    steps_per_epoch: int | None = None
    lr: float = 1e-4
    weight_decay: float = 5e-4
    optimizer: OptimizerChoice = "adamw"
    schedule: ScheduleChoice = "cosine"
    warmup: int | None = None
    train_last: int | None = None
    freeze_until: str | None = None
    no_augment: bool = False
    no_fold_scales: bool = False
    seed: int = 0
    resume: Path | None = None
    exclude_pairs: Path | None = None
    fold: int | None = None
    exclude_list: Path | None = None
    min_images: int = 2
    max_per_identity: int | None = None
    val_pairs: Path | None = None
    val_fold: int | None = None
    cache: Path | None = None
    min_face_size: int = 20
    detector: DetectorKind | None = None
    save_every: int | None = None
    workers: int | None = None
    device: str | None = None
    threads: int | None = None


def run(o: TrainOptions, *, progress: bool = False) -> dict[str, Any]:
    """Build (or reuse) the chip cache, leave out the excluded identities, train; the JSON report.

    `progress` shows progress bars (the CLI's when stderr is a terminal).
    """
    from facerec.extras import require_torch

    require_torch("facerec train")
    from facerec.detectors import DetectorConfig
    from facerec.models.registry import model_spec
    from facerec.runtime import use_threads
    from facerec.training.data import Preparation, folder_items, load_or_build
    from facerec.training.trainer import TrainingError, train

    use_threads(o.threads)
    if (o.exclude_pairs is None) != (o.fold is None):
        raise TrainingError("--exclude-pairs and --fold go together")
    config = _config(o)
    spec = model_spec(config.model)
    excluded = _excluded(o)

    detector_config = DetectorConfig(min_face_size=o.min_face_size, kind=o.detector)
    # The cache covers the whole folder, so every fold of a rotation reuses it;
    # exclusions apply to the chips, before any batch is drawn.
    items = folder_items(o.data_dir, min_images=o.min_images, max_per_identity=o.max_per_identity)
    chips = load_or_build(
        items,
        Preparation(spec.template, detector_config),
        cache_dir=o.cache,
        progress=progress,
    )
    data = chips.exclude(excluded).with_min_chips(2)
    validation = (
        _validation(o, data, detector_config, spec, progress=progress)
        if o.val_pairs is not None
        else None
    )

    result = train(data, config, o.out, resume=o.resume, validation=validation, progress=progress)
    return {
        "data": {
            "root": str(o.data_dir),
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


def _config(o: TrainOptions) -> TrainConfig:
    """The trainer's config: the options, or the resumed run's with what may change on resume."""
    from facerec.training.trainer import TrainConfig, resume_config

    if o.resume is not None:
        return resume_config(
            o.resume,
            epochs=o.epochs,
            save_every=o.save_every,
            num_workers=o.workers,
            device=o.device,
        )
    return TrainConfig(
        model=o.model,
        weights=str(o.weights) if o.weights else None,
        pretrained=not o.random_init,
        loss=o.loss,
        margin=o.margin,
        distance=o.distance,
        p=o.p,
        k=o.k,
        epochs=o.epochs or 3,
        steps_per_epoch=o.steps_per_epoch,
        lr=o.lr,
        weight_decay=o.weight_decay,
        optimizer=o.optimizer,
        schedule=o.schedule,
        warmup_steps=o.warmup,
        train_last=o.train_last,
        freeze_until=o.freeze_until,
        augment=not o.no_augment,
        fold_scales=not o.no_fold_scales,
        seed=o.seed,
        save_every=o.save_every or 0,
        num_workers=o.workers or 0,
        device=o.device,
    )


def _excluded(o: TrainOptions) -> set[str]:
    """Identities never trained on: an LFW fold's (`exclude_pairs`, `fold`) and a list's."""
    from facerec.training.data import lfw_fold_identities, read_identity_list

    excluded: set[str] = set()
    if o.exclude_pairs is not None and o.fold is not None:
        excluded |= lfw_fold_identities(o.exclude_pairs, o.fold)
    if o.exclude_list is not None:
        excluded |= read_identity_list(o.exclude_list)
    return excluded


def _validation(
    o: TrainOptions,
    data: ChipSet,
    detector_config: DetectorConfig,
    spec: ModelSpec,
    *,
    progress: bool,
) -> PairChips:
    """The pairs validated on after each epoch (`val_pairs`, one fold of it if asked), as chips."""
    from facerec.evaluation.pairs import read_lfw_pairs
    from facerec.training.data import load_pair_chips
    from facerec.training.trainer import TrainingError

    assert o.val_pairs is not None
    pairs = read_lfw_pairs(o.val_pairs)
    vfold = o.val_fold
    same_file = o.exclude_pairs is not None and o.val_pairs.resolve() == o.exclude_pairs.resolve()
    if vfold is None and same_file:
        vfold = o.fold
    if vfold is not None:
        folds = sorted({pr.fold for pr in pairs})
        if not 1 <= vfold <= len(folds):
            raise TrainingError(f"{o.val_pairs}: has folds 1..{len(folds)}, not {vfold}")
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
    return load_pair_chips(
        pairs,
        o.val_pairs.parent / "images",
        detector_config,
        spec.template,
        cache_dir=o.cache,
        progress=progress,
    )

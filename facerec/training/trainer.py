"""The training loop: metric learning on PK batches of cached face chips (FaceNet-style).

Each step draws P identities x K chips (`PKSampler`), embeds them, L2-normalises
the embeddings (FaceNet, Schroff et al. 2015: the loss then works on the unit
hypersphere, where distances are bounded and the margin means the same thing
throughout training) and applies one of the losses of this package:

* ``batch-all``: every valid triplet, mean over those with a positive loss;
* ``batch-hard``: hardest positive and negative per anchor (Hermans et al. 2017);
* ``semi-hard``: FaceNet's semi-hard negatives;
* ``contrastive``: Hadsell et al.'s pair loss over all pairs of the batch.

Choices that matter on a CPU: fine-tuning all 5.6 M parameters of the dlib
ResNet costs about twice a frozen forward pass, so ``train_last`` (train the
last N residual blocks plus the embedding layer) or ``freeze_until`` keep the
early layers fixed; they run without building a graph.

Conditioning: before fine-tuning the dlib ResNet, the scales of its folded
batch norms are moved into the convolutions (`fold_affine_scales`), the same
function with parameters Adam can move by a sensible relative amount.

Reproducibility: everything random is a function of the seed (model init,
sampler order via `PKSampler.set_epoch`, augmentation via
`ChipDataset.set_epoch`), deterministic algorithms are enforced on CPU, and
a checkpoint stores optimizer, scheduler and generator state, so a resumed run
ends with the weights an uninterrupted one would have.

Collapse guard: a metric loss has a trivial minimiser for the positives, all
embeddings at one point, and batch-hard mining with a large learning rate is
known to fall into it (Hermans et al. 2017; FaceNet's motivation for
semi-hard negatives). Once there, the triplet loss sits at the margin and no
gradient leads out, so the run would burn hours for nothing. The guard stops
with a clear message when the batch's L2-normalised embeddings have a mean
pairwise distance below `collapse_distance` for `collapse_patience`
consecutive steps, before the collapsed weights are saved.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from facerec.errors import FacerecError
from facerec.evaluation.metrics import auc, eer, kfold_accuracy, roc, tar_at_far
from facerec.models.base import LoadedModel
from facerec.models.dlib_resnet import Affine, ResidualBlock
from facerec.training.batch_hard import BatchHardTripletLoss
from facerec.training.checkpoint import (
    Checkpoint,
    CheckpointMeta,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from facerec.training.contrastive import ContrastiveLoss, all_pairs
from facerec.training.data import Augment, ChipDataset, Chips, ChipSet, PairChips
from facerec.training.distances import DISTANCES, Distance, pairwise_distances
from facerec.training.sampler import PKSampler
from facerec.training.triplet import BatchAllTripletLoss

log = logging.getLogger(__name__)

LossName = Literal["batch-all", "batch-hard", "semi-hard", "contrastive"]
OptimizerName = Literal["adamw", "sgd"]
ScheduleName = Literal["cosine", "step", "constant"]
LOSSES: tuple[str, ...] = get_args(LossName)
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)

#: Options that may differ between a run and its resumption: they do not change the maths.
RESUMABLE_CHANGES = frozenset({"epochs", "save_every", "num_workers", "device"})


class TrainingError(FacerecError):
    """A training run that cannot start or continue (bad options, data, checkpoint)."""


class EmbeddingCollapseError(TrainingError):
    """The embeddings converged to one point; see the module docstring."""


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything that shapes a run; stored in every checkpoint and reused on resume.

    `steps_per_epoch` caps an epoch (None: every eligible identity once, P at
    a time). `warmup_steps` None means 10% of the run, at most 100 steps.
    `lr_step_epochs` / `lr_gamma` drive the "step" schedule. `train_last` N
    trains the last N blocks plus the embedding layer (0: that layer only);
    `freeze_until` names the first trainable block (see `layer_units`); both
    None: everything trains. `pretrained` False re-initialises the weights.
    `fold_scales` moves the per-channel affine scales into the convolutions
    before fine-tuning (see `fold_affine_scales`).
    """

    model: str = "dlib-resnet-v1"
    weights: str | None = None
    pretrained: bool = True
    loss: LossName = "batch-hard"
    margin: float = 0.2
    distance: Distance = "euclidean"
    p: int = 16
    k: int = 4
    epochs: int = 3
    steps_per_epoch: int | None = None
    lr: float = 1e-4
    weight_decay: float = 5e-4
    optimizer: OptimizerName = "adamw"
    momentum: float = 0.9
    schedule: ScheduleName = "cosine"
    warmup_steps: int | None = None
    lr_step_epochs: int = 1
    lr_gamma: float = 0.1
    train_last: int | None = None
    freeze_until: str | None = None
    augment: bool = True
    fold_scales: bool = True
    seed: int = 0
    save_every: int = 0
    collapse_distance: float = 1e-3
    collapse_patience: int = 3
    num_workers: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.loss, LOSSES, "loss"),
            (self.distance, DISTANCES, "distance"),
            (self.optimizer, OPTIMIZERS, "optimizer"),
            (self.schedule, SCHEDULES, "schedule"),
        ):
            if value not in allowed:
                raise TrainingError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise TrainingError(f"margin must be finite and >= 0, got {self.margin}")
        if self.p < 2 or self.k < 2:
            raise TrainingError(f"P and K must both be >= 2, got P={self.p}, K={self.k}")
        if self.epochs < 1:
            raise TrainingError(f"epochs must be >= 1, got {self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingError(f"learning rate must be positive, got {self.lr}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise TrainingError(f"steps per epoch must be >= 1, got {self.steps_per_epoch}")
        if self.train_last is not None and self.freeze_until is not None:
            raise TrainingError("use either train_last or freeze_until, not both")
        if self.train_last is not None and self.train_last < 0:
            raise TrainingError(f"train_last must be >= 0, got {self.train_last}")
        if self.seed < 0:
            raise TrainingError(f"seed must be >= 0, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def resume_config(checkpoint: Path, **changes: Any) -> TrainConfig:
    """The configuration a checkpoint was trained with, with resumable `changes` applied."""
    bad = set(changes) - RESUMABLE_CHANGES
    if bad:
        raise TrainingError(
            f"cannot change {', '.join(sorted(bad))} when resuming; only "
            f"{', '.join(sorted(RESUMABLE_CHANGES))}"
        )
    config = TrainConfig.from_dict(load_checkpoint(checkpoint).meta.config)
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


# ---------------------------------------------------------------------------
# Model surgery: units, freezing, re-initialisation
# ---------------------------------------------------------------------------


def layer_units(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's parameterised layers in forward order, the grain of freezing.

    Top-level children, with `nn.Sequential` stages expanded into their blocks
    (DlibResNet: ``stem_conv``, ``stem_affine``, ``blocks.0`` ... ``blocks.13``,
    ``fc``). The last unit is the embedding layer. InceptionResnetV1's
    ``logits`` classifier is not part of the embedding and is left out.
    """
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        if name == "logits":
            continue
        if isinstance(child, nn.Sequential) and len(child) > 1:
            out.extend((f"{name}.{n}", c) for n, c in child.named_children())
        else:
            out.append((name, child))
    return [(n, m) for n, m in out if any(True for _ in m.parameters())]


def select_trainable(
    module: nn.Module, *, train_last: int | None, freeze_until: str | None
) -> list[nn.Module]:
    """Set `requires_grad` per the options; return the frozen units (kept in eval mode)."""
    for prm in module.parameters():
        prm.requires_grad_(True)
    if train_last is None and freeze_until is None:
        return []
    units = layer_units(module)
    names = [n for n, _ in units]
    if not units:
        raise TrainingError(f"{type(module).__name__} has no layers to freeze")
    if freeze_until is not None:
        if freeze_until not in names:
            raise TrainingError(
                f"no layer {freeze_until!r} to start training from; layers: {', '.join(names)}"
            )
        first = names.index(freeze_until)
    else:
        assert train_last is not None
        first = max(0, len(units) - 1 - train_last)
    frozen = [m for _, m in units[:first]]
    for m in frozen:
        for prm in m.parameters():
            prm.requires_grad_(False)
    log.info(
        "training %s; frozen: %d layers up to %s",
        ", ".join(names[first:]),
        first,
        names[first - 1] if first else "none",
    )
    return frozen


def reinitialise(module: nn.Module) -> None:
    """Random initialisation (He et al. 2015) for training from scratch.

    Convolutions and linear layers get Kaiming-normal weights and zero biases;
    per-channel affines (dlib's frozen batch norms) start as the identity,
    except the last one of each residual branch, which starts at zero so that
    every block begins as its shortcut (Goyal et al. 2017): without batch
    normalisation a deep random ResNet otherwise blows up its activations.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.reset_parameters()
            m.reset_running_stats()
        elif isinstance(m, Affine):
            with torch.no_grad():
                m.gamma.fill_(1.0)
                m.beta.zero_()
    for m in module.modules():
        if isinstance(m, ResidualBlock):
            with torch.no_grad():
                m.affine2.gamma.zero_()


@torch.no_grad()
def fold_affine_scales(module: nn.Module) -> int:
    """Move each per-channel affine's scale into the convolution before it; returns the pairs folded.

    The network computes the same function (gamma * (W x + b) + beta equals
    (gamma W) x + gamma b + beta), but its parameters become well scaled for
    fine-tuning. dlib folded its batch norms into affines whose scales are
    around 6-17 and whose convolutions have weights around 1e-3 (mean |w| 4e-4
    in the last blocks). Adam moves every weight by about the learning rate
    per step whatever its size, so at lr 1e-4 those tiny weights change by
    tens of percent within a few dozen steps (measured: 82% relative change of
    blocks.12.conv1 in 80 steps), which wrecks features rather than adjusting
    them. After folding, weights and scales have ordinary magnitudes and the
    learning rate means the same thing for every layer. Saved state dicts keep
    the same keys and shapes, so they load into the same architecture.
    """
    pairs: list[tuple[nn.Conv2d, Affine]] = []
    stem_conv, stem_affine = (
        getattr(module, "stem_conv", None),
        getattr(module, "stem_affine", None),
    )
    if isinstance(stem_conv, nn.Conv2d) and isinstance(stem_affine, Affine):
        pairs.append((stem_conv, stem_affine))
    for m in module.modules():
        if isinstance(m, ResidualBlock):
            pairs += [(m.conv1, m.affine1), (m.conv2, m.affine2)]
    for conv, affine in pairs:
        gamma = affine.gamma.reshape(-1)
        conv.weight.mul_(gamma.view(-1, 1, 1, 1))
        if conv.bias is not None:
            conv.bias.mul_(gamma)
        affine.gamma.fill_(1.0)
    return len(pairs)


# ---------------------------------------------------------------------------
# Loss, optimizer, schedule
# ---------------------------------------------------------------------------


class Objective:
    """The configured loss on a batch: (loss, fraction of active triplets or pairs)."""

    def __init__(self, name: LossName, margin: float, distance: Distance) -> None:
        self.name = name
        self.margin = margin
        self.distance = distance
        self._triplet: BatchAllTripletLoss | BatchHardTripletLoss | None = None
        self._contrastive: ContrastiveLoss | None = None
        if name == "batch-all":
            self._triplet = BatchAllTripletLoss(margin, distance)
        elif name in ("batch-hard", "semi-hard"):
            self._triplet = BatchHardTripletLoss(margin, distance, semi_hard=name == "semi-hard")
        else:
            self._contrastive = ContrastiveLoss(margin, distance)

    def __call__(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, float]:
        if self._triplet is not None:
            loss = self._triplet(embeddings, labels)
            stats = self._triplet.last_stats
            return loss, stats.fraction_positive if stats is not None else 0.0
        assert self._contrastive is not None
        loss = self._contrastive.forward_batch(embeddings, labels)
        with torch.no_grad():
            i, j, same = all_pairs(labels)
            d = pairwise_distances(embeddings.detach(), self.distance)[i, j]
            active = torch.where(same, d > 0, d < self.margin)
        return loss, float(active.float().mean()) if active.numel() else 0.0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "margin": self.margin, "distance": self.distance}


def make_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning-rate multiplier at optimizer step `s` (0-based): warm-up, then the schedule.

    Linear warm-up protects pretrained weights from the first, noisiest
    updates of a fresh optimizer (Adam's moment estimates start at zero).
    """
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_steps if config.warmup_steps is not None else min(100, total // 10)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        if config.schedule == "cosine":
            t = (s - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
        if config.schedule == "step":
            return float(config.lr_gamma ** (s // (config.lr_step_epochs * steps_per_epoch)))
        return 1.0

    return factor


class CollapseGuard:
    """Counts consecutive steps whose embeddings sit (almost) at one point."""

    def __init__(self, min_distance: float, patience: int) -> None:
        self.min_distance = min_distance
        self.patience = max(1, patience)
        self.streak = 0
        self.last_distance = math.nan
        self.last_std = math.nan

    @torch.no_grad()
    def update(self, embeddings: Tensor) -> bool:
        """Record a batch of L2-normalised embeddings; True once collapsed for `patience` steps."""
        e = embeddings.detach().float()
        n = e.shape[0]
        d = torch.cdist(e, e)
        self.last_distance = float(d.sum() / max(1, n * (n - 1)))
        self.last_std = float(e.std(dim=0).mean()) if n > 1 else 0.0
        bad = not math.isfinite(self.last_distance) or self.last_distance < self.min_distance
        self.streak = self.streak + 1 if bad else 0
        return self.streak >= self.patience


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairMetrics:
    """Verification figures on a pair list (cosine similarity of L2-normalised embeddings).

    `fold_kind` says how accuracy's threshold was chosen: "file" = on the
    other folds of the pair file (LFW's identity-disjoint folds), "10-fold
    within" = 10-fold cross-validation over the pairs of a single fold
    (pairs i, i+10, ... form a sub-fold; these share people, so the threshold
    is chosen on other pairs, not on other people).
    """

    pairs: int
    accuracy: float
    accuracy_std: float
    threshold: float
    fold_kind: str
    auc: float
    eer: float
    tar_at_far: Mapping[str, float]

    def flat(self, prefix: str) -> dict[str, float]:
        out = {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}auc": self.auc,
            f"{prefix}eer": self.eer,
            # The decision threshold moves with fine-tuning (triplet training spreads the
            # embeddings: LFW's optimum went from cosine 0.90 to 0.43-0.56), so a checkpoint
            # carries the one its validation pairs chose; the model loader applies it.
            f"{prefix}threshold": self.threshold,
        }
        out.update({f"{prefix}tar@far={k}": v for k, v in self.tar_at_far.items()})
        return out


def verification_metrics(embeddings: npt.NDArray[np.float32], pairs: PairChips) -> PairMetrics:
    """Accuracy (threshold by cross-validation), AUC, EER, TAR@FAR=1e-2/1e-3 where measurable."""
    scores = np.einsum("ij,ij->i", embeddings[pairs.a], embeddings[pairs.b]).astype(np.float64)
    folds = pairs.folds
    kind = "file"
    if len(np.unique(folds)) < 2:
        folds = np.arange(len(scores)) % 10
        kind = "10-fold within"
    r = roc(scores, pairs.same)
    k = kfold_accuracy(scores, pairs.same, folds)
    negatives = int((~pairs.same).sum())
    tars = {f"{far:.0e}": tar_at_far(r, far)[0] for far in (1e-2, 1e-3) if negatives * far >= 1}
    return PairMetrics(
        pairs=len(scores),
        accuracy=k.mean,
        accuracy_std=k.std,
        threshold=float(np.mean(k.thresholds)),
        fold_kind=kind,
        auc=auc(r),
        eer=eer(r),
        tar_at_far=tars,
    )


@torch.no_grad()
def embed_chips(
    module: nn.Module,
    chips: Chips,
    mean: tuple[float, float, float],
    std: float,
    device: torch.device,
    batch_size: int = 64,
) -> npt.NDArray[np.float32]:
    """L2-normalised embeddings of uint8 chips with `module` as it is now (no augmentation)."""
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    out = []
    for start in range(0, len(chips), batch_size):
        x = torch.from_numpy(chips[start : start + batch_size]).to(device)
        x = (x.permute(0, 3, 1, 2).float() - m) / std
        out.append(F.normalize(module(x).float(), dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpochLog:
    """One epoch's figures: mean loss and fraction of active triplets over its steps."""

    epoch: int
    steps: int
    loss: float
    active_fraction: float
    lr: float
    seconds: float
    validation: PairMetrics | None


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What a run did and where its last checkpoint is."""

    checkpoint: Path
    epochs: int
    steps: int
    history: tuple[EpochLog, ...]
    initial_validation: PairMetrics | None
    seconds_per_step: float
    trainable_parameters: int
    identities: int
    images: int
    device: str
    resumed_from: Path | None


class _DeterministicCPU:
    """`torch.use_deterministic_algorithms(True, warn_only=True)` for the run, restored after."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._before = (False, False)

    def __enter__(self) -> None:
        self._before = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        if self.enabled:
            torch.use_deterministic_algorithms(True, warn_only=True)

    def __exit__(self, *exc: object) -> None:
        torch.use_deterministic_algorithms(self._before[0], warn_only=self._before[1])


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def _set_train_mode(module: nn.Module, frozen: list[nn.Module]) -> None:
    module.train()
    for m in frozen:
        m.eval()  # frozen layers keep their batch-norm statistics


def _check_resumable(ck_config: Mapping[str, Any], config: TrainConfig, path: Path) -> None:
    now = config.to_dict()
    differ = sorted(k for k in now if k not in RESUMABLE_CHANGES and ck_config.get(k) != now[k])
    if differ:
        raise TrainingError(
            f"{path}: cannot resume with different options: "
            + ", ".join(f"{k} {ck_config.get(k)!r} -> {now[k]!r}" for k in differ)
        )


def train(
    data: ChipSet,
    config: TrainConfig,
    out_dir: Path,
    *,
    resume: Path | None = None,
    model: LoadedModel | None = None,
    validation: PairChips | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train on `data`, writing checkpoints to `out_dir`; see the module docstring.

    `model` (trained in place) replaces loading `config.model`, for callers
    that already hold one. `resume` continues a run from one of its
    checkpoints (same data, same options except `RESUMABLE_CHANGES`).
    Raises TrainingError (EmbeddingCollapseError when the guard fires).
    """
    from facerec.runtime import default_device

    device = torch.device(config.device) if config.device else default_device()
    checkpoint = _resumable(resume, data, config) if resume is not None else None

    torch.manual_seed(config.seed)
    with _DeterministicCPU(device.type == "cpu"):
        run = _build(data, config, device, model, checkpoint, validation)
        initial = run.validate() if checkpoint is None else None
        if initial is not None:
            log.info(
                "validation before training: accuracy %.4f, AUC %.4f", initial.accuracy, initial.auc
            )
        start_epoch = checkpoint.meta.epoch if checkpoint is not None else 0
        skip = checkpoint.meta.step_in_epoch if checkpoint is not None else 0
        history: list[EpochLog] = []
        _set_train_mode(run.module, run.frozen)
        for epoch in range(start_epoch, config.epochs):
            first = skip if epoch == start_epoch else 0
            history.append(run.epoch(epoch, first, out_dir, progress=progress))
    run.module.eval()
    assert run.last_path is not None
    return TrainResult(
        checkpoint=run.last_path,
        epochs=config.epochs,
        steps=run.step,
        history=tuple(history),
        initial_validation=initial,
        seconds_per_step=run.run_seconds / max(1, run.run_steps),
        trainable_parameters=run.n_trainable,
        identities=len(data.names),
        images=len(data),
        device=str(device),
        resumed_from=resume,
    )


def _resumable(resume: Path, data: ChipSet, config: TrainConfig) -> Checkpoint:
    """The checkpoint to resume from, refused if it saw other data or options or is finished."""
    checkpoint = load_checkpoint(resume)
    meta = checkpoint.meta
    _check_resumable(meta.config, config, checkpoint.path)
    if (meta.data_fingerprint, meta.identities_sha256) != (
        data.fingerprint,
        data.identities_sha256(),
    ):
        raise TrainingError(
            f"{checkpoint.path}: trained on other data (fingerprint "
            f"{meta.data_fingerprint[:12]}, {meta.n_identities} identities), this set is "
            f"{data.fingerprint[:12]} with {len(data.names)} identities"
        )
    if meta.epoch >= config.epochs:
        raise TrainingError(
            f"{checkpoint.path}: already {meta.epoch} epochs done; pass more epochs to continue"
        )
    return checkpoint


def _build(
    data: ChipSet,
    config: TrainConfig,
    device: torch.device,
    model: LoadedModel | None,
    checkpoint: Checkpoint | None,
    validation: PairChips | None,
) -> _Run:
    """The network, its trainable part, batches, optimiser and schedule, restored from `checkpoint`.

    Runs after `torch.manual_seed`: the order of the draws here (a network's
    fresh initialisation first) is part of what makes two runs alike.
    """
    model, module = _network(config, device, model, checkpoint)
    frozen = select_trainable(
        module, train_last=config.train_last, freeze_until=config.freeze_until
    )
    params = [prm for prm in module.parameters() if prm.requires_grad]
    if not params:
        raise TrainingError("no trainable parameters left (check train_last / freeze_until)")
    try:
        sampler = PKSampler(data.labels, config.p, config.k, seed=config.seed)
    except ValueError as exc:
        raise TrainingError(f"cannot form P x K batches: {exc}") from None
    steps_per_epoch = len(sampler)
    if config.steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.steps_per_epoch)
    optimizer = make_optimizer(params, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps_per_epoch))
    if checkpoint is not None:
        _restore(checkpoint, optimizer, scheduler)
    spec = model.spec
    run = _Run(
        config=config,
        data=data,
        model=model,
        module=module,
        frozen=frozen,
        device=device,
        sampler=sampler,
        steps_per_epoch=steps_per_epoch,
        optimizer=optimizer,
        scheduler=scheduler,
        dataset=ChipDataset(
            data,
            spec.mean,
            spec.std,
            augment=Augment() if config.augment else None,
            seed=config.seed,
        ),
        objective=Objective(config.loss, config.margin, config.distance),
        guard=CollapseGuard(config.collapse_distance, config.collapse_patience),
        n_trainable=sum(prm.numel() for prm in params),
        validation=validation,
        step=checkpoint.meta.step if checkpoint is not None else 0,
        last_path=checkpoint.path if checkpoint is not None else None,
    )
    log.info(
        "training %s on %s: %d identities, %d chips, %d steps/epoch, %d trainable parameters",
        spec.name,
        device,
        len(data.names),
        len(data),
        steps_per_epoch,
        run.n_trainable,
    )
    return run


def _network(
    config: TrainConfig,
    device: torch.device,
    model: LoadedModel | None,
    checkpoint: Checkpoint | None,
) -> tuple[LoadedModel, nn.Module]:
    """The model to train (given, or loaded; fresh unless pretrained), with `checkpoint`'s weights."""
    from facerec.models.registry import load_model

    if model is None:
        weights = Path(config.weights) if config.weights else None
        model = load_model(config.model, weights, trainable=True)
        if not config.pretrained:
            reinitialise(model.module)
    if config.pretrained and config.fold_scales:
        log.info(
            "folded %d affine scales into their convolutions", fold_affine_scales(model.module)
        )
    module = model.module.to(device)
    if checkpoint is not None:
        module.load_state_dict(checkpoint.state_dict)
    return model, module


def _restore(
    checkpoint: Checkpoint,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
) -> None:
    """Put the optimiser, the schedule and the RNGs back where `checkpoint` left them."""
    if checkpoint.optimizer is not None:
        optimizer.load_state_dict(checkpoint.optimizer)
    if checkpoint.scheduler is not None:
        scheduler.load_state_dict(checkpoint.scheduler)
    if checkpoint.rng is not None:
        restore_rng_state(checkpoint.rng)
    log.info(
        "resuming %s at epoch %d, step %d",
        checkpoint.path,
        checkpoint.meta.epoch + 1,
        checkpoint.meta.step,
    )


@dataclass(eq=False)
class _Run:
    """One run's moving parts, built by `_build`; `step`, `last_path` and the timings advance."""

    config: TrainConfig
    data: ChipSet
    model: LoadedModel
    module: nn.Module
    frozen: list[nn.Module]
    device: torch.device
    sampler: PKSampler
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    dataset: ChipDataset
    objective: Objective
    guard: CollapseGuard
    n_trainable: int
    validation: PairChips | None
    step: int = 0
    last_path: Path | None = None
    run_steps: int = 0
    run_seconds: float = 0.0

    def validate(self) -> PairMetrics | None:
        """Verification figures on the held-out pairs (None without them), then back to training."""
        if self.validation is None:
            return None
        spec = self.model.spec
        self.module.eval()
        emb = embed_chips(
            self.module, self.validation.chips.chips, spec.mean, spec.std, self.device
        )
        _set_train_mode(self.module, self.frozen)
        return verification_metrics(emb, self.validation)

    def epoch(self, epoch: int, first: int, out_dir: Path, *, progress: bool) -> EpochLog:
        """One epoch from its step `first` (a resumed run skips what it did), saved at its end."""
        config = self.config
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        batches = list(self.sampler)[first : self.steps_per_epoch]
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=config.num_workers,
            # Its own generator: creating an iterator must not advance the global RNG,
            # or a resumed run would draw different dropout masks than an uninterrupted one.
            generator=torch.Generator().manual_seed(config.seed * 1000 + epoch),
        )
        losses: list[float] = []
        actives: list[float] = []
        t0 = time.perf_counter()
        bar = tqdm(
            loader,
            total=len(batches),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="step",
            disable=not progress,
        )
        for i, (x, y) in enumerate(bar, start=first):
            loss, active = self._step(x, y, epoch)
            losses.append(loss)
            actives.append(active)
            bar.set_postfix(
                loss=f"{loss:.4f}",
                active=f"{active:.2f}",
                lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
            )
            step = self.step
            if config.save_every and step % config.save_every == 0 and i + 1 < self.steps_per_epoch:
                self.last_path = self.save(
                    out_dir / f"step-{step:06d}.pt",
                    epoch,
                    i + 1,
                    {"loss": float(np.mean(losses)), "active_fraction": float(np.mean(actives))},
                )
        bar.close()
        seconds = time.perf_counter() - t0
        self.run_seconds += seconds
        entry = EpochLog(
            epoch=epoch + 1,
            steps=len(losses),
            loss=float(np.mean(losses)) if losses else math.nan,
            active_fraction=float(np.mean(actives)) if actives else math.nan,
            lr=float(self.scheduler.get_last_lr()[0]),
            seconds=seconds,
            validation=self.validate(),
        )
        self._end_epoch(entry, out_dir)
        return entry

    def _step(self, x: Tensor, y: Tensor, epoch: int) -> tuple[float, float]:
        """One optimisation step on a batch: (loss, active fraction); refuses collapse and NaN."""
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        emb = F.normalize(self.module(x), dim=1)
        config, guard, last = self.config, self.guard, self.last_path or "none"
        if guard.update(emb):
            raise EmbeddingCollapseError(
                f"training stopped at epoch {epoch + 1}, step {self.step + 1}: the embeddings "
                f"collapsed to a single point (mean pairwise distance "
                f"{guard.last_distance:.2e} < {config.collapse_distance:g}, per-dimension "
                f"std {guard.last_std:.2e}, for {guard.streak} consecutive steps). Nothing "
                f"from the collapsed steps was saved; the last checkpoint is "
                f"{last}. Lower --lr, try --loss semi-hard, or train fewer "
                "layers."
            )
        loss, active = self.objective(emb, y)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"training stopped at epoch {epoch + 1}, step {self.step + 1}: the loss is "
                f"{float(loss)}; lower --lr. The last checkpoint is {last}."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.run_steps += 1
        return float(loss.detach()), active

    def _end_epoch(self, entry: EpochLog, out_dir: Path) -> None:
        """Log the epoch and save it as `epoch-NNN.pt` and `last.pt`."""
        val = entry.validation
        metrics = {
            "loss": entry.loss,
            "active_fraction": entry.active_fraction,
            "seconds_per_step": entry.seconds / max(1, entry.steps),
        }
        if val is not None:
            metrics.update(val.flat("val_"))
        log.info(
            "epoch %d: loss %.4f, active %.3f, %.2f s/step%s",
            entry.epoch,
            entry.loss,
            entry.active_fraction,
            metrics["seconds_per_step"],
            f", validation accuracy {val.accuracy:.4f}, AUC {val.auc:.4f}" if val else "",
        )
        self.last_path = self.save(out_dir / f"epoch-{entry.epoch:03d}.pt", entry.epoch, 0, metrics)
        _copy_atomic(self.last_path, out_dir / "last.pt")

    def save(self, path: Path, epoch: int, in_epoch: int, metrics: Mapping[str, float]) -> Path:
        """A resumable checkpoint: weights, optimiser, schedule and RNG at this step."""
        return save_checkpoint(
            path,
            self.module.state_dict(),
            self._meta(epoch, in_epoch, metrics),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            rng=rng_state(),
        )

    def _meta(self, epoch: int, in_epoch: int, metrics: Mapping[str, float]) -> CheckpointMeta:
        spec, data = self.model.spec, self.data
        return CheckpointMeta(
            model=spec.name,
            architecture=type(self.module).__name__,
            embedding_dim=spec.embedding_dim,
            data_fingerprint=data.fingerprint,
            identities_sha256=data.identities_sha256(),
            n_identities=len(data.names),
            n_images=len(data),
            epoch=epoch,
            step=self.step,
            step_in_epoch=in_epoch,
            base_weights_sha256=self.model.weights_sha256,
            loss=self.objective.describe(),
            metrics=dict(metrics),
            config=self.config.to_dict(),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )

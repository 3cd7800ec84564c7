"""Run a registered backbone on aligned chips and return unit-length embeddings.

Every similarity in facerec is a cosine, so every embedding leaving this
module is L2-normalised; prototypes, thresholds and the FAISS inner-product
index all rely on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from facerec.detection import default_device
from facerec.images import RGBImage
from facerec.models.base import LoadedModel, ModelIdentity, ModelSpec

Embeddings = npt.NDArray[np.float32]


class Embedder:
    """Batched, gradient-free inference on the best available device.

    `flip=True` averages each chip's embedding with its mirror image's: a
    cheap test-time augmentation that usually helps a little on pose.
    """

    def __init__(
        self,
        model: LoadedModel,
        device: torch.device | None = None,
        batch_size: int = 32,
        flip: bool = False,
    ) -> None:
        self.model = model
        self.device = device or default_device()
        self.batch_size = batch_size
        self.flip = flip
        self._module = model.module.to(self.device).eval()
        spec = model.spec
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device).view(
            1, 3, 1, 1
        )
        self._std = float(spec.std)

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def identity(self) -> ModelIdentity:
        return self.model.identity

    def embed(self, chips: Sequence[RGBImage] | npt.NDArray[np.uint8]) -> Embeddings:
        """(N, D) float32 unit vectors for N aligned RGB chips of the model's input size."""
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

    @torch.inference_mode()
    def _run(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        x = (x - self._mean) / self._std
        emb = self._module(x)
        if self.flip:
            emb = torch.nn.functional.normalize(emb, dim=1) + torch.nn.functional.normalize(
                self._module(torch.flip(x, dims=[3])), dim=1
            )
        emb = torch.nn.functional.normalize(emb.float(), dim=1)
        return emb.cpu().numpy().astype(np.float32, copy=False)

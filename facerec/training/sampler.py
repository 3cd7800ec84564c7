"""PK batch sampler: P identities x K images per batch (Hermans, Beyer & Leibe 2017).

Triplet and contrastive losses learn only from pairs *inside* a batch. A
uniformly shuffled face dataset with thousands of identities gives batches with
almost no same-identity pairs, so nothing to pull together. PK sampling fixes
the composition: P distinct identities, K images of each, hence every anchor
has K - 1 positives and (P - 1) K negatives.

Policy, made explicit because it changes what the loss sees:

* identities with a single image are **skipped**: they can never form a
  positive pair;
* identities with 2 <= n < K images are **filled up to K by sampling their own
  images again** (the n distinct images first, then K - n repeats drawn with
  replacement) when `allow_repeats=True` (the default), and skipped otherwise.
  A repeated image is a zero-distance positive; `facerec.training.distances`
  keeps its gradient finite (zero);
* each epoch visits every eligible identity exactly once, in a random order,
  P at a time, with a fresh random choice of K of its images. With
  `drop_last=True` (default) the last (len % P) identities of the shuffled
  order wait for a later epoch; with `drop_last=False` the last batch is
  completed with identities drawn from the rest, so every batch still has P
  distinct identities.

Everything is a function of (seed, epoch): call `set_epoch(e)` before each
epoch (as with `DistributedSampler`) to get a different but reproducible order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler


class PKSampler(Sampler[list[int]]):
    """Batch sampler yielding lists of P*K dataset indices: K consecutive indices per identity.

    Use as `DataLoader(dataset, batch_sampler=PKSampler(labels, p, k, seed=...))`.
    Raises ValueError when fewer than P identities are eligible.

    Attributes: `identities` (eligible labels, sorted) and `skipped_identities`
    (labels left out for having too few images, see the module docstring).
    """

    def __init__(
        self,
        labels: Sequence[int] | npt.NDArray[np.integer],
        p: int,
        k: int,
        *,
        seed: int,
        drop_last: bool = True,
        allow_repeats: bool = True,
    ) -> None:
        super().__init__()
        if p < 2:
            raise ValueError(f"p must be >= 2 (a batch needs negatives), got {p}")
        if k < 2:
            raise ValueError(f"k must be >= 2 (a batch needs positives), got {k}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        arr = np.asarray(labels)
        if arr.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
        self.p, self.k, self.seed = int(p), int(k), int(seed)
        self.drop_last, self.allow_repeats = bool(drop_last), bool(allow_repeats)
        self.epoch = 0

        ids, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
        by_identity = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
        min_images = 2 if self.allow_repeats else self.k
        keep = [i for i, c in enumerate(counts) if c >= min_images]
        self.identities: tuple[object, ...] = tuple(ids[i].item() for i in keep)
        self.skipped_identities: tuple[object, ...] = tuple(
            ids[i].item() for i in range(len(ids)) if counts[i] < min_images
        )
        self._indices: list[npt.NDArray[np.intp]] = [by_identity[i] for i in keep]
        if len(self._indices) < self.p:
            raise ValueError(
                f"PKSampler needs at least p={self.p} identities with >= {min_images} images, "
                f"found {len(self._indices)} (of {len(ids)} identities in {arr.size} labels)"
            )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose (deterministic) order `__iter__` produces next."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self._indices)
        return n // self.p if self.drop_last else -(-n // self.p)

    def _images(self, rng: np.random.Generator, identity: int) -> list[int]:
        idx = self._indices[identity]
        if len(idx) >= self.k:
            chosen = rng.choice(idx, size=self.k, replace=False)
        else:
            extra = rng.choice(idx, size=self.k - len(idx), replace=True)
            chosen = np.concatenate([rng.permutation(idx), extra])
        return [int(i) for i in chosen]

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        n = len(self._indices)
        order = rng.permutation(n)
        for start in range(0, len(self) * self.p, self.p):
            group = order[start : start + self.p]
            if len(group) < self.p:  # only when drop_last=False
                others = np.setdiff1d(np.arange(n), group)
                fill = rng.choice(others, size=self.p - len(group), replace=False)
                group = np.concatenate([group, fill])
            yield [i for identity in group for i in self._images(rng, int(identity))]

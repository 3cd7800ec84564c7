"""Forgetting a person: what every store holding faces is told about them, and how it decides.

Removing a person's enrolment is not enough to forget their face: the album
holds their faces (embeddings and thumbnails) from scanned photos, and a door
camera's audit log may hold an image of them filed under someone else (they
claimed to be that person). `FaceRec.forget` runs one transaction on the
gallery file in which each of those stores is handed a `ForgetTarget` and
deletes what is theirs. A face belongs to the person when it was matched or
assigned to them, or when its embedding reaches the verification threshold
against their prototype: the same rule that would have opened a door for
that face, so "their face" means what the system itself would call their face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facerec.models.base import ModelIdentity


@dataclass(frozen=True, slots=True, eq=False)
class ForgetTarget:
    """The person being forgotten, read inside the forgetting transaction.

    `prototype` is unit length; `model` is the model that made it (embeddings
    of another model cannot be compared with it); `threshold` is the cosine
    at which `FaceRec.verify` accepts a face as theirs.
    """

    identity_id: int
    name: str
    model: ModelIdentity
    prototype: npt.NDArray[np.float32]
    threshold: float

    def is_them(self, embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Per row: does this embedding reach the threshold against the prototype?

        Rows are re-normalised (stored vectors are not trusted to be unit
        length); rows of another dimension, or all zeros, are never them.
        """
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != self.prototype.shape[0]:
            return np.zeros(x.shape[0] if x.ndim == 2 else 0, dtype=bool)
        norms = np.linalg.norm(x, axis=1)
        cos = (x @ self.prototype.astype(np.float64)) / np.maximum(norms, 1e-12)
        return (norms > 0) & (cos >= self.threshold)

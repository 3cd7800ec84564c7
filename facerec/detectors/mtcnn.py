"""MTCNN through facenet-pytorch: the cascade detector, with five landmarks.

MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", 2016); facenet-pytorch ships its weights
inside the package. Chosen by `DetectorKind.MTCNN` through
`facerec.detectors.Detector`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from facerec.detectors.types import DetectedFace, DetectorConfig
from facerec.faces.images import RGBImage, fit_within, to_full_size
from facerec.runtime import default_device

if TYPE_CHECKING:
    import torch


class MtcnnDetector:
    """MTCNN wrapper returning `DetectedFace` records, batching equal-sized images."""

    def __init__(self, config: DetectorConfig | None = None, device: torch.device | None = None):
        from facenet_pytorch import MTCNN  # heavy import, deferred until a detector is needed

        from facerec.runtime import sync_torch_threads

        sync_torch_threads()
        self.config = config or DetectorConfig()
        self.device = device or default_device()
        self._mtcnn = MTCNN(
            min_face_size=self.config.min_face_size,
            thresholds=list(self.config.thresholds),
            factor=self.config.factor,
            keep_all=True,
            post_process=False,
            device=self.device,
        )

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """All faces in one image, highest score first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """Faces for several images, in each image's own pixels; equal sizes run as one batch."""
        import torch

        shrunk = [fit_within(img, self.config.max_side) for img in images]
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, (img, _) in enumerate(shrunk):
            # No face of the smallest size fits (MTCNN's pyramid would be empty and it
            # crashes on that): a 17x17 image, or a 8900x16 strip shrunk to 1600x3.
            if min(img.shape[:2]) >= self.config.min_face_size:
                by_shape[img.shape].append(i)
        out: list[list[DetectedFace]] = [[] for _ in images]
        for idxs in by_shape.values():
            batch = np.stack([shrunk[i][0] for i in idxs]) if len(idxs) > 1 else shrunk[idxs[0]][0]
            with torch.inference_mode():
                boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
            if len(idxs) == 1:
                boxes, probs, points = [boxes], [probs], [points]
            for i, b, p, lm in zip(idxs, boxes, probs, points, strict=True):
                out[i] = self._records(b, p, lm, shrunk[i][1])
        return out

    def _records(
        self, boxes: Any, probs: Any, points: Any, scale: tuple[float, float]
    ) -> list[DetectedFace]:
        if boxes is None or points is None:
            return []
        faces = []
        for raw_box, prob, raw_lm in zip(boxes, probs, points, strict=True):
            if prob is None or float(prob) < self.config.min_score:
                continue
            box = to_full_size(raw_box, scale)
            lm = to_full_size(raw_lm, scale)
            # MTCNN's min_face_size only starts its image pyramid; it still returns smaller
            # faces now and then. Users read the option as a floor, so enforce it.
            if min(box[2] - box[0], box[3] - box[1]) < self.config.min_face_size:
                continue
            pts = tuple((float(x), float(y)) for x, y in lm)
            faces.append(
                DetectedFace(
                    box=tuple(float(v) for v in box),  # type: ignore[arg-type]
                    score=float(prob),
                    landmarks=pts,  # type: ignore[arg-type]
                )
            )
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces

"""Face detection with MTCNN: every face, its box, confidence and five landmarks.

MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", 2016) is used through facenet-pytorch, whose
weights ship inside the package, so detection works offline. We use MTCNN for
boxes *and* landmarks only; cropping is alignment's job (`alignment.py`),
because MTCNN's own box crop leaves in-plane rotation in the face.

The detector never looks at more than `max_side` pixels on an image's longer
side: larger images are shrunk (area interpolation) for detection and the
boxes and landmarks mapped back to the caller's pixels. MTCNN's image pyramid
grows with the image, not with the faces in it: a 79-MP PNG of one solid
colour, 231 KB on disk, kept `enroll` busy for 111 s and 2.5 GB. At 1600
pixels a face the quality gate accepts (24 px and more) in a 12-MP photo is
still found, and the aligned chip is cut from the caller's full-resolution
pixels, so only the landmarks' precision depends on the shrink
(`scripts/bench_large_images.py` measures the effect on embeddings).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facerec.images import RGBImage, fit_within, to_full_size

log = logging.getLogger(__name__)

Point = tuple[float, float]

#: Longest side, in pixels, of the image the detector runs on.
DETECTION_MAX_SIDE = 1600


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """One face as the detector saw it, in the source image's pixel coordinates."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: tuple[
        Point, Point, Point, Point, Point
    ]  # eyes (image-left, -right), nose, mouth corners

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def landmarks_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """MTCNN settings.

    `thresholds` are the three cascade stages' (P-, R-, O-net) acceptance
    scores; `min_score` is a final cut on the O-net confidence. A smaller
    `min_face_size` finds smaller faces at the cost of a deeper image pyramid
    (slower): AT&T/Yale-style tight crops need it, album photos rarely do.
    `max_side` bounds the detector's work (module docstring); None detects at
    full size, however large.
    """

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    min_score: float = 0.90
    max_side: int | None = DETECTION_MAX_SIDE


def default_device() -> torch.device:
    """CUDA when present, else CPU: GPUs must never sit silently unused."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Detector:
    """MTCNN wrapper returning `DetectedFace` records, batching equal-sized images."""

    def __init__(self, config: DetectorConfig | None = None, device: torch.device | None = None):
        from facenet_pytorch import MTCNN  # heavy import, deferred until a detector is needed

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
        shrunk = [fit_within(img, self.config.max_side) for img in images]
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, (img, _) in enumerate(shrunk):
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

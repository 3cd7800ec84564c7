"""Face detection: every face, its box, confidence and five landmarks.

Two detectors, chosen by `DetectorConfig.kind`; callers build `Detector` and
never name a backend, so the choice is configuration (`--detector`,
$FACEREC_DETECTOR), not code.

- MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task
  Cascaded Convolutional Networks", 2016), through facenet-pytorch, whose
  weights ship inside the package.
- YuNet (Wu et al., "YuNet: A Tiny Millisecond-level Face Detector", 2023),
  through OpenCV (`facerec.detectors.yunet`): several times faster on a CPU,
  a fraction of the memory, and the default (`DEFAULT_DETECTOR`);
  `scripts/bench_detectors.py` measures what that costs in recall.

Both are used for boxes *and* landmarks only; cropping is alignment's job
(`alignment.py`), because a box crop leaves in-plane rotation in the face.

The detector never looks at more than `max_side` pixels on an image's longer
side: larger images are shrunk (area interpolation) for detection and the
boxes and landmarks mapped back to the caller's pixels. MTCNN's image pyramid
grows with the image, not with the faces in it: a 79-MP PNG of one solid
colour, 231 KB on disk, kept `enroll` busy for 111 s and 2.5 GB. At 1600
pixels a face the quality gate accepts (24 px and more) in a 12-MP photo is
still found, and the aligned chip is cut from the caller's full-resolution
pixels, so only the landmarks' precision depends on the shrink
(`scripts/bench_large_images.py` measures the effect on embeddings).

This module holds what every backend and every caller shares (the kinds, the
config, the face record, the backend Protocol) and imports no backend: MTCNN
is in `facerec.detectors.mtcnn`, YuNet in `facerec.detectors.yunet`, and
`Detector` (`facerec.detectors.factory`) picks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from facerec.faces.images import RGBImage

Point = tuple[float, float]

#: Longest side, in pixels, of the image the detector runs on.
DETECTION_MAX_SIDE = 1600


class DetectorKind(StrEnum):
    """The registered detectors; the values are what `--detector` and $FACEREC_DETECTOR take."""

    MTCNN = "mtcnn"
    YUNET = "yunet"


#: The detector when neither the caller nor the gallery names one: YuNet, for its speed
#: and its memory (no torch in the process), at the accuracy the README's table shows.
DEFAULT_DETECTOR = DetectorKind.YUNET


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
class YuNetConfig:
    """YuNet's own settings (its scores are not on MTCNN's scale, so none are shared).

    `min_score` is the cut on YuNet's face score: the faces in the shared
    photos and LFW score 0.88-0.96, the false detections seen there 0.69 at
    most (blurred background behind a close portrait). `nms_iou` is the
    overlap above which the lower-scored of two boxes is dropped. `max_side`
    bounds the work (YuNet's time grows with the pixels): a larger image is
    shrunk for detection and the results mapped back. `refine_face` is the
    width, in detection pixels, at which each face's five points are measured
    again (`facerec.detectors.yunet`; 0 keeps the first pass's points).
    """

    min_score: float = 0.7
    nms_iou: float = 0.3
    max_side: int = 1600
    refine_face: int = 160


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Which detector, and its settings.

    `min_face_size` is a floor for every detector, in the caller's pixels.
    `thresholds`, `factor` and `min_score` are MTCNN's: the three cascade
    stages' (P-, R-, O-net) acceptance scores, the pyramid step and a final cut
    on the O-net confidence. For MTCNN a smaller `min_face_size` also means a
    deeper image pyramid (slower): AT&T/Yale-style tight crops need it, album
    photos rarely do. `yunet` holds YuNet's settings. `kind` None means
    the gallery's detector (the one that cut its enrolled faces) when a
    `FaceRec` has a gallery, else `DEFAULT_DETECTOR`.
    `max_side` bounds the work of both detectors (module docstring); None detects at
    full size, however large.
    """

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    min_score: float = 0.90
    kind: DetectorKind | None = None
    yunet: YuNetConfig = field(default_factory=YuNetConfig)

    def __post_init__(self) -> None:
        # "yunet" from a JSON file or a form is the enum member; anything else fails here.
        if self.kind is not None:
            object.__setattr__(self, "kind", DetectorKind(self.kind))

    @property
    def resolved_kind(self) -> DetectorKind:
        """The detector this config runs: `kind`, else `DEFAULT_DETECTOR`."""
        return self.kind if self.kind is not None else DEFAULT_DETECTOR

    max_side: int | None = DETECTION_MAX_SIDE


#: The detector score of a face each detector is sure of: the quality gate's
#: default (`QualityLimits.min_score`), since the scales differ. MTCNN's O-net
#: gives clear faces 0.99 and more; YuNet's scores are compressed into
#: 0.88-0.96 for the same faces (`scripts/bench_detectors.py` prints both
#: distributions on LFW).
SURE_SCORE = {DetectorKind.MTCNN: 0.95, DetectorKind.YUNET: 0.85}


class DetectorBackend(Protocol):
    """What one registered detector provides; `Detector` picks one by `config.kind`."""

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]: ...

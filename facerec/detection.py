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
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from facerec.images import RGBImage, fit_within, to_full_size

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

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
    shrunk for detection and the results mapped back.
    """

    min_score: float = 0.7
    nms_iou: float = 0.3
    max_side: int = 1600


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


def default_device() -> torch.device:
    """CUDA when present, else CPU: GPUs must never sit silently unused."""
    import torch  # deferred: commands that never detect (people, info) should not load torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: The detector score of a face each detector is sure of: the quality gate's
#: default (`QualityLimits.min_score`), since the scales differ. MTCNN's O-net
#: gives clear faces 0.99 and more; YuNet's scores are compressed into
#: 0.88-0.96 for the same faces (`scripts/bench_detectors.py` prints both
#: distributions on LFW).
SURE_SCORE = {DetectorKind.MTCNN: 0.95, DetectorKind.YUNET: 0.85}


class DetectorBackend(Protocol):
    """What one registered detector provides; `Detector` picks one by `config.kind`."""

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]: ...


class Detector:
    """The detector `config.kind` names, returning `DetectedFace` records.

    `threads` is YuNet's (OpenCV's) thread count, None to leave OpenCV's
    process-wide setting alone; MTCNN runs on torch's threads. `device` is
    MTCNN's; YuNet runs on the CPU whatever it says.
    """

    def __init__(
        self,
        config: DetectorConfig | None = None,
        device: torch.device | None = None,
        threads: int | None = None,
    ):
        config = config or DetectorConfig()
        self.config = dataclasses.replace(config, kind=config.resolved_kind)  # never None here
        self._backend = _BACKENDS[self.config.resolved_kind](self.config, device, threads)

    @property
    def kind(self) -> DetectorKind:
        return self.config.resolved_kind

    @property
    def sure_score(self) -> float:
        """The score of a face this detector is sure of (see `SURE_SCORE`)."""
        return SURE_SCORE[self.config.resolved_kind]

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """All faces in one image, highest score first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """Faces for several images, each list highest score first."""
        return self._backend.detect_batch(images)


def _mtcnn(
    config: DetectorConfig, device: torch.device | None, threads: int | None
) -> DetectorBackend:
    from facerec.extras import require_torch

    require_torch("the MTCNN detector (--detector mtcnn)", "facenet_pytorch")
    return MtcnnDetector(config, device)


def _yunet(
    config: DetectorConfig, device: torch.device | None, threads: int | None
) -> DetectorBackend:
    from facerec.detectors.yunet import YuNetDetector  # OpenCV's DNN module: CPU only

    if device is not None and device.type != "cpu":  # None: no torch import to find out
        log.info("YuNet runs on the CPU; %s is left to the embedding model", device)
    return YuNetDetector(config, threads=threads)


_BACKENDS: dict[
    DetectorKind,
    Callable[[DetectorConfig, torch.device | None, int | None], DetectorBackend],
] = {DetectorKind.MTCNN: _mtcnn, DetectorKind.YUNET: _yunet}


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

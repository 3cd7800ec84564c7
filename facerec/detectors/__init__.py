"""Face detection: `Detector` and the records it returns, one backend per file.

`types` holds what every backend and caller shares, `factory` the `Detector`
that picks a backend by `DetectorConfig.kind`, `mtcnn` and `yunet` the two
backends (each imported only when chosen). Callers import from here.
"""

from facerec.detectors.factory import Detector
from facerec.detectors.types import (
    DEFAULT_DETECTOR,
    DETECTION_MAX_SIDE,
    SURE_SCORE,
    DetectedFace,
    DetectorBackend,
    DetectorConfig,
    DetectorKind,
    Point,
    YuNetConfig,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTION_MAX_SIDE",
    "SURE_SCORE",
    "DetectedFace",
    "Detector",
    "DetectorBackend",
    "DetectorConfig",
    "DetectorKind",
    "Point",
    "YuNetConfig",
]

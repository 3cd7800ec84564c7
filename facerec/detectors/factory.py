"""`Detector`: the one detector callers build; `DetectorConfig.kind` picks the backend.

Each backend's module is imported only when chosen, so a YuNet process never
imports torch and an MTCNN one never loads YuNet's weights.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from facerec.detectors.types import (
    SURE_SCORE,
    DetectedFace,
    DetectorBackend,
    DetectorConfig,
    DetectorKind,
)
from facerec.faces.images import RGBImage

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


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
    from facerec.detectors.mtcnn import MtcnnDetector  # loaded when chosen, as YuNet is

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

"""The two MiniFASNets as shipped ONNX files, run by OpenCV's DNN module: liveness offline.

The released weights (minivision-ai's Silent-Face-Anti-Spoofing, Apache-2.0;
the licence ships beside them in ``weights/LICENSE``) are exported from our
PyTorch rebuild (`facerec.liveness.minifasnet`) by ``scripts/export_onnx.py``,
which checks p(live) against the PyTorch modules (max |difference| <= 1e-4)
and reproduces the shipped digests. So the door's liveness needs neither
PyTorch nor a download: the files install with the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.models.base import sha256_file

#: One file per released model, in the order of `facerec.liveness.passive.RELEASED_MODELS`.
LIVENESS_ONNX = ("2.7_80x80_MiniFASNetV2.onnx", "4_0_0_80x80_MiniFASNetV1SE.onnx")
#: What scripts/export_onnx.py writes (torch 2.14, opset 17); checked at load.
LIVENESS_ONNX_SHA256 = {
    "2.7_80x80_MiniFASNetV2.onnx": "f020605c16ba094b02e8eb56117f740e0a9c0936fc63365c68879caa6d6cdaca",
    "4_0_0_80x80_MiniFASNetV1SE.onnx": "86c4d6556737b184d2db6d833cc283a8bb393059a11b95cee43aafdf115c8032",
}


def liveness_weights_dir() -> Path:
    """The package folder holding the ONNX files and their licence."""
    return Path(str(files("facerec.liveness") / "weights"))


class OnnxMiniFASNet:
    """One MiniFASNet on OpenCV DNN: (N, 3, 80, 80) BGR 0..255 float32 -> (N, 3) logits.

    Chips go through one at a time (the graph is exported for a batch of 1);
    a door scores one or two faces per frame.
    """

    def __init__(self, path: Path) -> None:
        import cv2

        if not path.is_file():
            raise WeightsNotFoundError(
                f"{path} is missing from the installed package; reinstall facerec"
            )
        pinned = LIVENESS_ONNX_SHA256.get(path.name, "")
        digest = sha256_file(path)
        if digest != pinned:
            raise ModelError(
                f"{path}: sha256 {digest[:12]}... is not the shipped {pinned[:12]}...; "
                "reinstall facerec"
            )
        try:
            self._net: Any = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            reason = " ".join(str(exc).split())[-200:]
            raise ModelError(f"{path}: OpenCV cannot read this network ({reason})") from None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        rows = []
        for chip in np.ascontiguousarray(batch, dtype=np.float32):
            self._net.setInput(chip[None])
            rows.append(np.asarray(self._net.forward(), dtype=np.float32).reshape(-1))
        return np.stack(rows)


def load_shipped() -> list[OnnxMiniFASNet]:
    """Both shipped networks, in `LIVENESS_ONNX` order."""
    folder = liveness_weights_dir()
    return [OnnxMiniFASNet(folder / name) for name in LIVENESS_ONNX]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the probabilities a threshold compares)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))

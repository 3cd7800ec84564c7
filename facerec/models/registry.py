"""Which embedding models exist, and how to load one by name.

The names are what users type (`--model`) and what a gallery is pinned to, so
they are stable strings, never class names.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from facerec.errors import ModelError
from facerec.extras import require_torch
from facerec.models.base import LoadedModel, ModelSpec

#: The model an empty gallery is filled with. SFace beats dlib's ResNet on every set we
#: measure (LFW, AT&T, Yale) and above all at the door's strict false-accept rates (TAR
#: 99.3% vs 81.9% at FAR 1e-4 on LFW), is permissively licensed and runs offline: its
#: weights install from the package registry. A gallery keeps the model it was filled
#: with (`FaceRec.model_name`), so galleries made with dlib's ResNet go on using it.
DEFAULT_MODEL = "sface"
DLIB_MODEL = "dlib-resnet-v1"

#: Models whose spec module imports no engine (neither torch nor OpenCV), so that
#: `facerec info` and `facerec people` stay light: name -> (module, attribute).
_LIGHT_SPECS = {
    DLIB_MODEL: ("facerec.models.dlib_spec", "DLIB_SPEC"),
    "sface": ("facerec.models.sface", "SFACE_SPEC"),
    "sface+dlib": ("facerec.models.fusion", "SFACE_DLIB_SPEC"),
}


def _specs() -> dict[str, ModelSpec]:
    from facerec.models.dlib_spec import DLIB_SPEC
    from facerec.models.fusion import FUSIONS
    from facerec.models.inception import SPECS
    from facerec.models.insightface_mbf import MBF_SPEC
    from facerec.models.sface import SFACE_SPEC

    singles = (DLIB_SPEC, SFACE_SPEC, *SPECS.values(), MBF_SPEC)
    return {spec.name: spec for spec in (*singles, *FUSIONS.values())}


def available_models() -> list[str]:
    return sorted(_specs())


def model_spec(name: str) -> ModelSpec:
    """A model's declared preprocessing and defaults, without loading weights."""
    if name in _LIGHT_SPECS:
        module, attribute = _LIGHT_SPECS[name]
        spec: ModelSpec = getattr(importlib.import_module(module), attribute)
        return spec
    specs = _specs()
    if name not in specs:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(sorted(specs))}")
    return specs[name]


def weights_file(weights: Path | None = None) -> Path | None:
    """The weights file a load uses: `weights`, else $FACEREC_WEIGHTS, else None (the model's own)."""
    if weights is None and os.environ.get("FACEREC_WEIGHTS"):
        return Path(os.environ["FACEREC_WEIGHTS"])
    return weights


#: The `--model` help text, written out so that building the CLI imports no backbone
#: (tests/models/test_insightface_mbf.py checks it against `models_help()`).
MODELS_HELP = (
    "dlib-resnet-v1, sface, facenet-vggface2, facenet-casia-webface, "
    "insightface-mbf-w600k (NON-COMMERCIAL research weights, extra 'research'), sface+dlib"
)


def models_help() -> str:
    """The model names for `--model` help, each non-commercial one marked as such."""
    return ", ".join(
        f"{s.name} (NON-COMMERCIAL research weights, extra 'research')"
        if s.non_commercial
        else s.name
        for s in _specs().values()
    )


def load_model(
    name: str | None = None,
    weights: Path | None = None,
    *,
    threads: int | None = None,
    trainable: bool = False,
) -> LoadedModel:
    """Load a backbone by name; `weights` (or FACEREC_WEIGHTS) replaces the default file.

    `threads` goes to engines with their own thread pools (OpenCV DNN, ONNX
    Runtime); PyTorch models follow torch's global setting. A fusion loads
    each member's own packaged weights; `weights` names one network's file,
    so it is refused for a fusion rather than guessed onto a member.
    dlib's ResNet runs from the shipped ONNX file (no PyTorch) unless
    `trainable` asks for the PyTorch module to fine-tune or `weights` names
    other weights; both need the torch extra.
    """
    name = name or os.environ.get("FACEREC_MODEL") or DEFAULT_MODEL
    weights = weights_file(weights)
    spec = model_spec(name)  # validates the name with a helpful message
    if spec.members:
        from facerec.models.fusion import load_fusion

        if weights is not None:
            raise ModelError(
                f"{name} is a fusion of {', '.join(m.spec.name for m in spec.members)} and loads "
                f"their packaged weights; a weights file ({weights}) applies to one network"
            )
        return load_fusion(spec, lambda member: load_model(member, threads=threads))
    if name == DLIB_MODEL:
        if weights is None and not trainable:
            from facerec.models.dlib_onnx import load_dlib_onnx

            return load_dlib_onnx(threads)
        require_torch(
            f"{DLIB_MODEL} with a weights file ({weights})"
            if weights is not None
            else f"fine-tuning {DLIB_MODEL}"
        )
        from facerec.models.dlib_resnet import load_dlib_resnet

        return load_dlib_resnet(weights)
    from facerec.models.insightface_mbf import MBF_SPEC, load_mbf
    from facerec.models.sface import SFACE_SPEC, load_sface

    if name == SFACE_SPEC.name:
        return load_sface(weights, threads)
    if name == MBF_SPEC.name:
        return load_mbf(weights, threads)
    require_torch(f"the model {name}", "facenet_pytorch")
    from facerec.models.inception import load_inception

    return load_inception(name, weights)

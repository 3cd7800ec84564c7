"""Which embedding models exist, and how to load one by name.

The names are what users type (`--model`) and what a gallery is pinned to, so
they are stable strings, never class names.
"""

from __future__ import annotations

import os
from pathlib import Path

from facerec.errors import ModelError
from facerec.models.base import LoadedModel, ModelSpec

#: Offline by default: its weights install from the package registry.
DEFAULT_MODEL = "dlib-resnet-v1"


def _specs() -> dict[str, ModelSpec]:
    from facerec.models.dlib_spec import DLIB_SPEC
    from facerec.models.inception import SPECS

    return {DLIB_SPEC.name: DLIB_SPEC, **SPECS}


def available_models() -> list[str]:
    return sorted(_specs())


def model_spec(name: str) -> ModelSpec:
    """A model's declared preprocessing and defaults, without loading weights."""
    specs = _specs()
    if name not in specs:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(sorted(specs))}")
    return specs[name]


def load_model(name: str | None = None, weights: Path | None = None) -> LoadedModel:
    """Load a backbone by name; `weights` (or FACEREC_WEIGHTS) replaces the default file."""
    name = name or os.environ.get("FACEREC_MODEL") or DEFAULT_MODEL
    if weights is None and os.environ.get("FACEREC_WEIGHTS"):
        weights = Path(os.environ["FACEREC_WEIGHTS"])
    model_spec(name)  # validates the name with a helpful message
    if name == DEFAULT_MODEL:
        from facerec.models.dlib_resnet import load_dlib_resnet

        return load_dlib_resnet(weights)
    from facerec.models.inception import load_inception

    return load_inception(name, weights)

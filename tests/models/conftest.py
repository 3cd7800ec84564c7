"""Models loaded once per test session (loading costs seconds), sharing the session's detector."""

from __future__ import annotations

import pytest

from facerec.embedding import Embedder
from facerec.models.base import LoadedModel
from facerec.models.registry import load_model
from facerec.pipeline import Pipeline


@pytest.fixture(scope="session")
def sface() -> LoadedModel:
    return load_model("sface", threads=1)


@pytest.fixture(scope="session")
def sface_pipeline(pipeline: Pipeline, sface: LoadedModel) -> Pipeline:
    """MTCNN (the session's) + SFace."""
    return Pipeline(pipeline.detector, Embedder(sface))

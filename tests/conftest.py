"""Shared fixtures: the real photos in ../shared/data, and one loaded pipeline per test session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def missing_shared(reason: str) -> NoReturn:
    """Skip a test whose shared data is absent, saying why; fail it in CI (env CI=true).

    Locally a checkout without ../shared/data should still run what it can;
    in CI a skipped test is a test that silently did not run, so the data
    going missing there must turn the run red.
    """
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: the shared test data is required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared photo sets; tests that need them skip (with the reason) when absent."""
    if not SHARED.is_dir():
        missing_shared(f"shared test data not found at {SHARED}")
    return SHARED


def shared_file(shared: Path, rel: str) -> Path:
    """`shared / rel`, a file or folder; skip (in CI: fail) when it is not there."""
    p = shared / rel
    if not p.exists():
        missing_shared(f"shared file {rel} not present")
    return p


@pytest.fixture(scope="session")
def pipeline():  # type: ignore[no-untyped-def]
    """MTCNN + dlib's ResNet, loaded once: loading costs seconds.

    dlib, not the default model: most tests' similarities were measured with it,
    and the API tests pass this pipeline in. CLI subprocess tests run the real default.
    """
    from facerec.detection import Detector
    from facerec.embedding import Embedder
    from facerec.models.registry import load_model
    from facerec.pipeline import Pipeline

    return Pipeline(Detector(), Embedder(load_model("dlib-resnet-v1")))


@pytest.fixture(scope="session")
def sface():  # type: ignore[no-untyped-def]
    """SFace, the default model, loaded once."""
    from facerec.models.registry import load_model

    return load_model("sface", threads=1)


@pytest.fixture(scope="session")
def sface_pipeline(pipeline, sface):  # type: ignore[no-untyped-def]
    """MTCNN (the session's) + SFace: what `FaceRec()` runs with every default."""
    from facerec.embedding import Embedder
    from facerec.pipeline import Pipeline

    return Pipeline(pipeline.detector, Embedder(sface))


@pytest.fixture(params=["sface", "dlib-resnet-v1"])
def each_model(request, pipeline, sface_pipeline):  # type: ignore[no-untyped-def]
    """The default model (SFace), then dlib's ResNet (the model of older galleries)."""
    return sface_pipeline if request.param == "sface" else pipeline


@pytest.fixture()
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: no user gallery, no weights download."""
    env = dict(os.environ)
    env["FACEREC_DB"] = str(tmp_path / "never-used-default.db")
    env["FACEREC_OFFLINE"] = "1"
    env.pop("FACEREC_MODEL", None)
    env.pop("FACEREC_WEIGHTS", None)
    env.pop("FACEREC_DETECTOR", None)
    return env

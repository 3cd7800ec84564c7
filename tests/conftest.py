"""Shared fixtures: the real photos in ../shared/data, and one loaded pipeline per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared photo sets; tests that need them skip (with the reason) when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED}")
    return SHARED


def shared_file(shared: Path, rel: str) -> Path:
    p = shared / rel
    if not p.exists():
        pytest.skip(f"shared file {rel} not present")
    return p


@pytest.fixture(scope="session")
def pipeline():  # type: ignore[no-untyped-def]
    """MTCNN + the default (dlib) model, loaded once: loading costs seconds."""
    from facerec.detection import Detector
    from facerec.embedding import Embedder
    from facerec.models.registry import load_model
    from facerec.pipeline import Pipeline

    return Pipeline(Detector(), Embedder(load_model()))


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

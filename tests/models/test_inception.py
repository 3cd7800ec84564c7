"""InceptionResnetV1 loading without any download: our own checkpoint files and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.faces.embedding import Embedder
from facerec.models.registry import load_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "ours.pt"
    torch.save(
        {"state_dict": InceptionResnetV1(pretrained=None).state_dict(), "meta": {"epoch": 1}}, path
    )
    return path


def test_own_checkpoint_loads_and_embeds(checkpoint: Path) -> None:
    model = load_model("facenet-vggface2", weights=checkpoint)
    assert model.spec.embedding_dim == 512 and model.spec.input_size == 160
    emb = Embedder(model).embed(np.zeros((2, 160, 160, 3), np.uint8))
    assert emb.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert len(model.weights_sha256) == 64


def test_offline_without_weights_says_where_to_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FACEREC_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        load_model("facenet-vggface2")
    msg = str(err.value)
    assert str(tmp_path / "torch" / "checkpoints" / "20180402-114759-vggface2.pt") in msg
    assert "--weights" in msg


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_model("facenet-vggface2", weights=tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable PyTorch checkpoint"):
        load_model("facenet-vggface2", weights=junk)
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ModelError, match="does not fit InceptionResnetV1"):
        load_model("facenet-vggface2", weights=wrong)
    with pytest.raises(ModelError, match="unknown model"):
        load_model("no-such-model")

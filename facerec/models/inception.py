"""facenet-pytorch's InceptionResnetV1 (Szegedy et al. 2016; FaceNet-style training by D. Sandberg).

512-d embeddings; 99.65% LFW with the `vggface2` weights. The weights are a
download (facenet-pytorch's GitHub release), cached under the torch-hub
checkpoints folder, so this backbone is selectable but not the offline
default. Users with the internet get the download; offline users get an
error that says exactly where to put the file. Our own fine-tuned checkpoints
of this architecture load through the same path with `weights=`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.faces.alignment import FitDirection, Template
from facerec.models.base import LoadedModel, ModelSpec, sha256_file
from facerec.models.runners import TorchBackbone

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: Release files of facenet-pytorch, by the data set the weights were trained on.
RELEASE_FILES = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}
RELEASE_URL = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"

#: The network was trained on MTCNN box crops (margin 0, squashed to 160x160),
#: not on landmark-aligned chips. This template is where MTCNN's five landmarks
#: land on average in such crops, measured over 300 LFW photos (then made left-right symmetric) by
#: `scripts/derive_facenet_template.py`, so our aligned chip shows the network the
#: geometry it was trained on, minus the in-plane rotation.
FACENET_TEMPLATE = Template(
    160,
    (
        (44.5, 61.5),
        (115.5, 61.5),
        (80.0, 92.8),
        (48.8, 120.5),
        (111.2, 120.5),
    ),
    FitDirection.TEMPLATE_ONTO_LANDMARKS,  # the fit these chips have always had here
)

_COMMON = dict(
    template=FACENET_TEMPLATE,
    embedding_dim=512,
    mean=(127.5, 127.5, 127.5),
    std=128.0,
    licence="MIT (facenet-pytorch); weights trained on VGGFace2 / CASIA-WebFace, research data sets",
)

SPECS = {
    "facenet-vggface2": ModelSpec(
        name="facenet-vggface2",
        threshold=0.45,
        origin="facenet-pytorch InceptionResnetV1, pretrained='vggface2' (download)",
        **_COMMON,  # type: ignore[arg-type]
    ),
    "facenet-casia-webface": ModelSpec(
        name="facenet-casia-webface",
        threshold=0.45,
        origin="facenet-pytorch InceptionResnetV1, pretrained='casia-webface' (download)",
        **_COMMON,  # type: ignore[arg-type]
    ),
}


def torch_hub_checkpoints() -> Path:
    """The folder facenet-pytorch downloads into (honours TORCH_HOME / XDG_CACHE_HOME)."""
    home = os.environ.get(
        "TORCH_HOME", os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    )
    return Path(os.path.expanduser(home)) / "checkpoints"


def cached_weights(pretrained: str) -> Path:
    """Where the release file for `pretrained` lives once downloaded."""
    return torch_hub_checkpoints() / RELEASE_FILES[pretrained]


def _download(pretrained: str, dest: Path) -> None:
    if os.environ.get("FACEREC_OFFLINE"):
        raise WeightsNotFoundError(
            f"{pretrained} weights are not at {dest} and FACEREC_OFFLINE is set; "
            f"download {RELEASE_URL}{RELEASE_FILES[pretrained]} to that path, "
            "or pass --weights PATH / set FACEREC_WEIGHTS"
        )
    from facenet_pytorch.models.utils.download import download_url_to_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s weights to %s", pretrained, dest)
    try:
        download_url_to_file(RELEASE_URL + RELEASE_FILES[pretrained], str(dest))
    except Exception as exc:  # network errors come in many types
        dest.unlink(missing_ok=True)
        raise WeightsNotFoundError(
            f"{pretrained} weights are not at {dest} and the download failed ({exc}); "
            f"fetch {RELEASE_URL}{RELEASE_FILES[pretrained]} on a connected machine and put it "
            "there, or pass --weights PATH / set FACEREC_WEIGHTS"
        ) from None


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch  # deferred: the specs above are read by commands that never load a model

    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj:  # our own training checkpoints
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelError(f"{path}: expected a state dict, found {type(obj).__name__}")
    # The release files carry the training classifier; embeddings do not use it.
    return {k: v for k, v in obj.items() if not k.startswith("logits.")}


def load_inception(name: str, weights: Path | None = None) -> LoadedModel:
    """Build InceptionResnetV1 for `name` from `weights` or the cached/downloaded release file."""
    from facenet_pytorch import InceptionResnetV1

    if name not in SPECS:
        raise ModelError(f"unknown InceptionResnetV1 variant {name!r}; choose from {sorted(SPECS)}")
    pretrained = name.removeprefix("facenet-")
    path = weights if weights is not None else cached_weights(pretrained)
    if weights is not None and not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    if weights is None and not path.is_file():
        _download(pretrained, path)
    module = InceptionResnetV1(pretrained=None, classify=False)
    missing, unexpected = module.load_state_dict(_state_dict(path), strict=False)
    missing = [k for k in missing if not k.startswith("logits.")]
    if missing or unexpected:
        raise ModelError(
            f"{path}: does not fit InceptionResnetV1 (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    module.eval()
    return LoadedModel(SPECS[name], TorchBackbone(module), sha256_file(path))

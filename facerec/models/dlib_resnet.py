"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network is Davis King's public-domain (CC0) metric-learning ResNet, the
one behind dlib's ``face_recognition_model_v1`` and the ``face_recognition``
package (99.38% on LFW). Its definition is in dlib's
``examples/dnn_face_recognition_ex.cpp``; the weights ship in the
``face-recognition-models`` package, in dlib's own serialisation format,
which `facerec.models.dlib_format` reads without dlib. We rebuild the layers
here so that inference needs only PyTorch.

Architecture (input 3x150x150, RGB, x = (pixel - channel average) / 256):

* stem: conv 7x7/2, 32 filters, *no padding* (dlib's ``con_`` defaults to
  padding 0 whenever the stride is not 1, and to k/2 when it is) -> 72x72;
  per-channel affine (a batch norm folded at training end); ReLU; max-pool
  3x3/2, no padding -> 35x35.
* 14 residual blocks (ResNet-34-like, halved widths): 3 x 32 ch; then
  {down, 3 plain} x 64, {down, 2 plain} x 128, {down, 2 plain} x 256 and a last
  down block at 256. Each block is conv 3x3 (stride 2 in a down block, padding
  0; else stride 1, padding 1), affine, ReLU, conv 3x3/1 pad 1, affine, then
  the shortcut is added and a ReLU applied.
* The down blocks have no projection shortcut: the input is average-pooled
  2x2/2 and dlib's ``add_prev`` adds two tensors of different shapes by
  zero-padding both to the larger one (channels, rows and columns, at the
  end). So the extra channels come from the residual branch only, and in the
  last two down blocks, whose stride-2 unpadded convolution gives a smaller
  map than the pooled shortcut (8x8 -> 3x3 vs 4x4, 4x4 -> 1x1 vs 2x2), the
  residual branch only reaches the top-left positions.
* global average pool (2x2 -> 1x1), fully connected 256 -> 128 without bias.
  The 128-d output is the raw descriptor, which dlib compares by Euclidean
  distance < 0.6. Raw descriptors are not unit vectors (norms of about 1.3 to
  1.6 on real faces), so a cosine threshold on normalised ones is only roughly
  equivalent and is calibrated separately.

`DLIB_TEMPLATE` reproduces the geometry of ``dlib.get_face_chip(img, shape,
size=150, padding=0.25)`` (what dlib's ``compute_face_descriptor`` feeds the
network) for MTCNN's five landmarks, so our chips look like the ones the
network was trained and evaluated on. It and `DLIB_SPEC` live in
`facerec.models.dlib_spec`, which reads without torch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.models.base import LoadedModel, ModelSpec, installed_file, sha256_file
from facerec.models.dlib_format import DlibLayer, DlibNetwork, read_dlib_network
from facerec.models.dlib_spec import DLIB_CHIP_SIZE, DLIB_INPUT_MEAN, DLIB_SPEC
from facerec.models.dlib_spec import DLIB_TEMPLATE as DLIB_TEMPLATE  # re-exported
from facerec.models.dlib_spec import MTCNN_FROM_68 as MTCNN_FROM_68  # re-exported
from facerec.models.runners import TorchBackbone

log = logging.getLogger(__name__)

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


class Affine(nn.Module):
    """dlib's ``affine_`` in conv mode: y = x * gamma[c] + beta[c] (a frozen batch norm)."""

    def __init__(self, gamma: torch.Tensor, beta: torch.Tensor) -> None:
        super().__init__()
        self.gamma = nn.Parameter(gamma.reshape(1, -1, 1, 1).clone())
        self.beta = nn.Parameter(beta.reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum of two (N, C, H, W) tensors, each zero-padded to the larger shape."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class ResidualBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down``: relu(branch(x) + shortcut(x)).

    The branch is conv-affine-relu-conv-affine. A down block's first conv has
    stride 2 and the shortcut is a 2x2/2 average pool, added with zero padding
    (`add_padded`); a plain block's shortcut is the identity.
    """

    def __init__(
        self, conv1: nn.Conv2d, affine1: Affine, conv2: nn.Conv2d, affine2: Affine, down: bool
    ) -> None:
        super().__init__()
        self.conv1, self.affine1, self.conv2, self.affine2 = conv1, affine1, conv2, affine2
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        if self.down:
            return F.relu(add_padded(F.avg_pool2d(x, 2, 2), y))
        return F.relu(y + x)


class DlibResNet(nn.Module):
    """dlib's face recognition ResNet, built from a parsed dlib network description.

    ``forward`` takes (N, 3, 150, 150) float RGB already normalised as
    ``(pixel - DLIB_INPUT_MEAN) / 256`` and returns (N, 128) raw descriptors
    (not L2-normalised), matching dlib's ``compute_face_descriptor``.
    """

    def __init__(self, network: DlibNetwork) -> None:
        super().__init__()
        layers = list(network.layers)
        self.source = network.source
        self.input_avg_rgb = network.input.avg_rgb
        pos = 0

        def expect(kinds: Sequence[str], what: str) -> list[DlibLayer]:
            nonlocal pos
            got = layers[pos : pos + len(kinds)]
            # A batch norm stands where an affine is expected: dlib converts it on load too.
            found = ["affine" if layer.kind == "bn" else layer.kind for layer in got]
            if found != list(kinds):
                where = got[0].offset if got else "the end"
                raise ModelError(
                    f"{network.source}: layers {pos}..{pos + len(kinds) - 1} (from byte {where}) "
                    f"are {[layer.kind for layer in got]}, expected {what} {list(kinds)}; "
                    "this is not dlib's face recognition ResNet"
                )
            pos += len(kinds)
            return got

        con, aff, _, pool = expect(["con", "affine", "relu", "max_pool"], "the stem")
        self.stem_conv = _conv(con, network.source)
        self.stem_affine = _affine(aff, network.source)
        self.stem_pool = _max_pool(pool, network.source)

        plain = ["tag_or_skip", "con", "affine", "relu", "con", "affine", "add_prev", "relu"]
        down = ["tag_or_skip", "con", "affine", "relu", "con", "affine"]
        down += ["tag_or_skip", "tag_or_skip", "avg_pool", "add_prev", "relu"]
        blocks: list[ResidualBlock] = []
        while pos < len(layers) and layers[pos].kind == "tag_or_skip":
            is_down = pos + 6 < len(layers) and layers[pos + 6].kind == "tag_or_skip"
            got = expect(down if is_down else plain, "a residual block")
            c1, a1, c2, a2 = got[1], got[2], got[4], got[5]
            stride = 2 if is_down else 1
            strides = [int(c.attrs[k]) for c in (c1, c2) for k in ("stride_y", "stride_x")]
            if strides != [stride, stride, 1, 1]:
                raise ModelError(
                    f"{network.source}: residual block at byte {c1.offset} has unexpected strides"
                )
            if is_down:
                p = got[8].attrs
                geometry = tuple(p[k] for k in ("nr", "nc", "stride_y", "stride_x", "padding_y"))
                if geometry != (2, 2, 2, 2, 0) or p["padding_x"] != 0:
                    raise ModelError(
                        f"{network.source}: shortcut pool at byte {got[8].offset} is not 2x2/2: {p}"
                    )
            blocks.append(
                ResidualBlock(
                    _conv(c1, network.source),
                    _affine(a1, network.source),
                    _conv(c2, network.source),
                    _affine(a2, network.source),
                    is_down,
                )
            )
        if not blocks:
            raise ModelError(f"{network.source}: no residual blocks found after the stem")
        self.blocks = nn.Sequential(*blocks)

        gap, fc = expect(["avg_pool", "fc"], "the head")
        if (gap.attrs["nr"], gap.attrs["nc"]) != (0, 0):
            raise ModelError(
                f"{network.source}: expected a global average pool at byte {gap.offset}"
            )
        self.fc = _linear(fc, network.source)
        if pos != len(layers):
            raise ModelError(f"{network.source}: unexpected layers after the fc layer")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(F.relu(self.stem_affine(self.stem_conv(x))))
        x = self.blocks(x)
        out: torch.Tensor = self.fc(x.mean(dim=(2, 3)))
        return out


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _conv(layer: DlibLayer, source: str) -> nn.Conv2d:
    a = layer.attrs
    if a["use_relu"]:
        raise ModelError(
            f"{source}: con layer at byte {layer.offset} has a fused relu (unsupported)"
        )
    filters = layer.params["filters"]
    out_ch, in_ch, kh, kw = filters.shape
    conv = nn.Conv2d(
        in_ch,
        out_ch,
        (kh, kw),
        stride=(int(a["stride_y"]), int(a["stride_x"])),
        # Same output size as dlib's 1 + (n + 2p - k) / s, and the same taps.
        padding=(int(a["padding_y"]), int(a["padding_x"])),
        bias=bool(a["use_bias"]),
    )
    with torch.no_grad():
        conv.weight.copy_(_tensor(filters))  # dlib's (filters, k, nr, nc) == torch's OIHW
        if conv.bias is not None:
            conv.bias.copy_(_tensor(layer.params["biases"]))
    return conv


def _affine(layer: DlibLayer, source: str) -> Affine:
    if layer.attrs["mode"] != 0:
        raise ModelError(f"{source}: layer at byte {layer.offset} is not a per-channel affine")
    p = layer.params
    if layer.kind == "bn":
        # dlib's affine_(bn_) conversion, in float32 like dlib.
        eps = np.float32(layer.attrs["eps"])
        gamma = p["gamma"] / np.sqrt(p["running_variances"] + eps)
        beta = p["beta"] - gamma * p["running_means"]
        return Affine(_tensor(gamma), _tensor(beta))
    if layer.attrs["disabled"]:
        raise ModelError(f"{source}: disabled affine layer at byte {layer.offset} (unsupported)")
    return Affine(_tensor(p["gamma"]), _tensor(p["beta"]))


def _max_pool(layer: DlibLayer, source: str) -> nn.MaxPool2d:
    a = layer.attrs
    if a["nr"] == 0 or a["nc"] == 0:
        raise ModelError(f"{source}: global max pool at byte {layer.offset} (unsupported)")
    # dlib clips windows at the border (ignores padding), as torch's -inf padding does.
    return nn.MaxPool2d(
        (int(a["nr"]), int(a["nc"])),
        stride=(int(a["stride_y"]), int(a["stride_x"])),
        padding=(int(a["padding_y"]), int(a["padding_x"])),
    )


def _linear(layer: DlibLayer, source: str) -> nn.Linear:
    a = layer.attrs
    weights = layer.params["weights"]  # (num_inputs, num_outputs): y = x @ W
    fc = nn.Linear(int(a["num_inputs"]), int(a["num_outputs"]), bias=bool(a["use_bias"]))
    with torch.no_grad():
        fc.weight.copy_(_tensor(weights.T))
        if fc.bias is not None:
            fc.bias.copy_(_tensor(layer.params["biases"]))
    return fc


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def default_weights_path() -> Path:
    """The weights file inside the installed face-recognition-models package.

    The package is located without importing it: its ``__init__`` imports
    ``pkg_resources``, which recent setuptools no longer provide.
    """
    return installed_file(
        "face_recognition_models",
        f"models/{WEIGHTS_FILE}",
        f"pip install face-recognition-models, or pass --weights PATH to a {WEIGHTS_FILE}",
    )


def load_dlib_resnet(path: Path | None = None) -> LoadedModel:
    """Parse dlib's .dat file (default: the packaged one) into an eval-mode float32 DlibResNet.

    A PyTorch file instead (``.pt``/``.pth``, or torch's zip container) holds
    fine-tuned weights, e.g. a ``facerec train`` checkpoint: see `_load_finetuned`.
    """
    if path is None:
        path = default_weights_path()
    elif not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    if _is_torch_file(path):
        return _load_finetuned(path)
    network = read_dlib_network(path)
    if network.input.rows != DLIB_CHIP_SIZE or network.input.cols != DLIB_CHIP_SIZE:
        raise ModelError(
            f"{path}: the network takes {network.input.rows}x{network.input.cols} inputs, "
            f"dlib-resnet-v1 takes {DLIB_CHIP_SIZE}x{DLIB_CHIP_SIZE}"
        )
    if not np.allclose(network.input.avg_rgb, DLIB_INPUT_MEAN, rtol=0, atol=1e-4):
        raise ModelError(
            f"{path}: input channel averages {network.input.avg_rgb} differ from "
            f"dlib-resnet-v1's {DLIB_INPUT_MEAN}"
        )
    module = DlibResNet(network).float().eval()
    log.debug("loaded %s (%d parameters)", path, sum(p.numel() for p in module.parameters()))
    return LoadedModel(DLIB_SPEC, TorchBackbone(module), sha256_file(path))


def _is_torch_file(path: Path) -> bool:
    """By suffix, or by content: torch.save writes a zip archive, a dlib .dat never starts with PK."""
    if path.suffix.lower() in (".pt", ".pth"):
        return True
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _load_finetuned(path: Path) -> LoadedModel:
    """The architecture from the packaged .dat, the weights from a PyTorch state dict.

    Accepts a ``facerec train`` checkpoint (a dict with ``state_dict`` and
    ``meta``) or a bare state dict. The model's identity is the hash of this
    file, so a gallery pinned to the original weights refuses it.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if isinstance(meta, dict) and meta.get("model", DLIB_SPEC.name) != DLIB_SPEC.name:
        raise ModelError(f"{path}: a checkpoint of {meta['model']!r}, not of {DLIB_SPEC.name}")
    state = obj["state_dict"] if isinstance(obj, dict) and "state_dict" in obj else obj
    if not isinstance(state, dict):
        raise ModelError(f"{path}: expected a state dict, found {type(state).__name__}")
    module = load_dlib_resnet().module
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ModelError(f"{path}: does not fit {DLIB_SPEC.name} ({reason})") from None
    return LoadedModel(
        _finetuned_spec(path, meta), TorchBackbone(module.float().eval()), sha256_file(path)
    )


def _finetuned_spec(path: Path, meta: object) -> ModelSpec:
    """DLIB_SPEC with the threshold the checkpoint's own validation chose, when it has one.

    Fine-tuning moves the cosine scale (on LFW the optimum fell from 0.91 to
    0.43-0.56), so the original model's 0.905 would reject nearly everyone.
    Without a validated threshold the default stays and a warning says to
    calibrate (`facerec calibrate ... --weights`), which overrides it per gallery.
    """
    metrics = meta.get("metrics") if isinstance(meta, dict) else None
    threshold = metrics.get("val_threshold") if isinstance(metrics, dict) else None
    if isinstance(threshold, int | float) and -1.0 <= threshold <= 1.0:
        return dataclasses.replace(DLIB_SPEC, threshold=float(threshold))
    log.warning(
        "%s carries no validated threshold (train with --val-pairs); the original model's "
        "%.3f may not suit it: run `facerec calibrate DATA --weights %s`",
        path,
        DLIB_SPEC.threshold,
        path,
    )
    return DLIB_SPEC

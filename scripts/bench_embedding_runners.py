"""Which engine should run SFace, and how fast each registered model embeds a face on the CPU.

SFace's ONNX file can run on OpenCV's DNN module (what OpenCV's own
FaceRecognizerSF uses) or on ONNX Runtime. On real aligned chips (MTCNN
landmarks, SFace's template, from the shared photos) this measures, single-threaded
by default: milliseconds per face at batch 1 and 16 for both engines, and the
cosine between each engine's output and `cv2.FaceRecognizerSF.feature()`.
Then ms/face of every registered model that loads here, through the Embedder
(what facerec runs). Prints tables and writes JSON.

The file declares 29 weight tensors as graph inputs that no node reads
(leftovers of its block quantisation); ONNX Runtime insists on a value for
each, so the ONNX Runtime column feeds zeros there, which changes nothing.

    python scripts/bench_embedding_runners.py [--threads 1] [--repeat 5] [--json bench-results/embedding_runners.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from facerec.detectors import Detector
from facerec.errors import ModelError
from facerec.faces.alignment import warp_to_template
from facerec.faces.embedding import Embedder
from facerec.faces.images import IMAGE_SUFFIXES, load_image
from facerec.models.registry import available_models, load_model
from facerec.models.sface import SFACE_SPEC, default_weights_path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = ("face_recognition", "facenet_pytorch", "openface")

Raw = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


def faces() -> list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]]:
    det = Detector()
    out = []
    for s in SETS:
        for p in sorted((SHARED / s).rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                img = load_image(p).pixels
                out += [(img, f.landmarks_array()) for f in det.detect(img)]
    return out


def ms_per_face(run: Callable[[], object], n: int, repeat: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / n


def sface_engines(threads: int) -> dict[str, Raw]:
    path = str(default_weights_path())
    net = cv2.dnn.readNet(path)

    def opencv(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        rows = []
        for chip in x:  # the file's batch axis is fixed at 1
            net.setInput(chip[None])
            rows.append(net.forward().reshape(-1))
        return np.stack(rows)

    try:
        import onnxruntime as ort
    except ImportError:  # only the research extra installs it
        return {"opencv-dnn": opencv}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    unused = {i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs()[1:]}
    name = session.get_inputs()[0].name

    def onnxruntime(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.concatenate(
            [session.run(None, {name: x[i : i + 1], **unused})[0] for i in range(len(x))]
        )

    return {"opencv-dnn": opencv, "onnxruntime": onnxruntime}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=Path("bench-results/embedding_runners.json"))
    args = ap.parse_args()
    os.environ.setdefault("FACEREC_OFFLINE", "1")  # a benchmark never downloads weights
    cv2.setNumThreads(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    found = faces()
    chips = np.stack([warp_to_template(img, lm, SFACE_SPEC.template) for img, lm in found])
    x = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)  # RGB 0..255
    x16 = np.concatenate([x] * (16 // len(x) + 1))[:16]
    recognizer = cv2.FaceRecognizerSF.create(str(default_weights_path()), "")
    reference = np.stack(
        [recognizer.feature(np.ascontiguousarray(c[:, :, ::-1])).ravel() for c in chips]
    )
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)

    engines = []
    print(f"SFace on {len(chips)} real chips, {args.threads} thread(s)")
    print(
        f"{'engine':14}{'batch 1 ms/face':>17}{'batch 16 ms/face':>18}{'min cos vs FaceRecognizerSF':>30}"
    )
    for name, run in sface_engines(args.threads).items():
        out = run(x)
        cos = (out / np.linalg.norm(out, axis=1, keepdims=True) * reference).sum(axis=1)
        row = {
            "engine": name,
            "batch1_ms_per_face": ms_per_face(lambda r=run: r(x[:1]), 1, args.repeat),
            "batch16_ms_per_face": ms_per_face(lambda r=run: r(x16), 16, args.repeat),
            "min_cosine_vs_face_recognizer_sf": float(cos.min()),
        }
        engines.append(row)
        print(
            f"{name:14}{row['batch1_ms_per_face']:>17.1f}{row['batch16_ms_per_face']:>18.1f}"
            f"{row['min_cosine_vs_face_recognizer_sf']:>30.7f}"
        )

    models = []
    print(f"\n{'model (Embedder)':26}{'batch 1 ms/face':>17}{'batch 16 ms/face':>18}")
    for name in available_models():
        try:
            model = load_model(name, threads=args.threads)
        except ModelError as exc:
            print(f"{name:26}  not loaded: {str(exc)[:70]}")
            continue
        size = model.spec.input_size
        # One view per template: a fusion cuts each face once per member.
        views = [
            np.stack([warp_to_template(img, lm, t) for img, lm in found])
            for t in model.spec.templates
        ]
        views16 = [np.concatenate([v] * (16 // len(v) + 1))[:16] for v in views]
        emb = Embedder(model, device=torch.device("cpu"), batch_size=16)
        row = {
            "model": name,
            "input_size": size,
            "batch1_ms_per_face": ms_per_face(
                lambda e=emb, v=views: e.embed_views([x[:1] for x in v]), 1, args.repeat
            ),
            "batch16_ms_per_face": ms_per_face(
                lambda e=emb, v=views16: e.embed_views(v), 16, args.repeat
            ),
        }
        models.append(row)
        print(f"{name:26}{row['batch1_ms_per_face']:>17.1f}{row['batch16_ms_per_face']:>18.1f}")

    result = {
        "threads": args.threads,
        "repeat": args.repeat,
        "chips": len(chips),
        "cpu": platform.processor() or platform.machine(),
        "opencv": cv2.__version__,
        "sface_engines": engines,
        "models": models,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""Per-frame latency of the door camera on 640x480 frames, on this CPU.

Builds an MP4 (mp4v, 640x480, 10 fps) from the shared photos, letterboxed: a
door scene with nobody, Obama, Biden, two people, a stranger. Enrolls Obama in
a temporary gallery, then runs the camera's own code path (`FrameSource` ->
`DoorCamera.observe`, claim mode) over the video at every frame and reports
the median and 95th percentile of

- decode: reading one frame from the file and converting it to RGB;
- process: detection, alignment, quality, embedding and the vote (what the
  `latency_ms` of a decision event measures), split into frames with a face
  and frames without.

Prints a table and writes JSON (with the machine's load average: on a shared
machine the figures are only as good as the CPU we got).

    python scripts/bench_camera.py [--frames 60] [--threads N] [--load K]
    python scripts/bench_camera.py --compare --load 2   # default vs --threads 1 vs every core

`--load K` runs K CPU-bound processes beside the camera for the whole measurement
(a busy machine, as users' machines are). `--compare` runs the camera once per thread
setting, each in a fresh process under the same load, and prints them side by side:
the default must be no slower than `--threads 1`, the setting whose latency does not
depend on what else runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from facerec import runtime
from facerec.api import FaceRec
from facerec.camera.door import DoorCamera
from facerec.camera.stream import FrameSource
from facerec.camera.window import WindowRule
from facerec.config import Settings
from facerec.detectors import DetectorConfig, DetectorKind

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EX = SHARED / "face_recognition" / "examples"
SCENE = [
    SHARED / "nonface" / "pilatus800.jpg",
    EX / "obama2.jpg",
    EX / "biden.jpg",
    EX / "two_people.jpg",
    EX / "lin-manuel-miranda.png",
    EX / "obama-720p.jpg",
]
SIZE = (640, 480)


def letterbox(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}")
    h, w = image.shape[:2]
    scale = min(SIZE[0] / w, SIZE[1] / h)
    resized = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    out = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    y, x = (SIZE[1] - resized.shape[0]) // 2, (SIZE[0] - resized.shape[1]) // 2
    out[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return out


def write_video(path: Path, frames: int) -> None:
    """`frames` frames cycling through the scene, 2 frames per photo, slightly jittered."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, SIZE)
    stills = [letterbox(p) for p in SCENE]
    rng = np.random.default_rng(0)
    for i in range(frames):
        base = stills[(i // 2) % len(stills)].astype(np.int16)
        noise = rng.integers(-3, 4, size=base.shape, dtype=np.int16)  # no two frames alike
        writer.write(np.clip(base + noise, 0, 255).astype(np.uint8))
    writer.release()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values)
    return {
        "n": len(values),
        "median_ms": float(np.median(arr)),
        "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()),
        "max_ms": float(arr.max()),
    }


def _burn() -> None:
    """A competing CPU-bound process: what a busy user machine runs beside the camera."""
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def compare(args: argparse.Namespace) -> None:
    """The camera under the same load with each thread setting, one fresh process each."""
    cores = os.cpu_count() or 1
    rows = []
    for label, threads in (("default", None), ("--threads 1", 1), (f"--threads {cores}", cores)):
        out = args.json.with_name(f"{args.json.stem}_{label.replace('--threads ', 't')}.json")
        cmd = [sys.executable, __file__, "--frames", str(args.frames), "--json", str(out)]
        cmd += ["--load", str(args.load)] + (["--threads", str(threads)] if threads else [])
        print(f"$ {' '.join(cmd[1:])}", file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows.append((label, json.loads(out.read_text())))
    print(f"door camera under load ({args.load} competing CPU-bound processes, {cores} cores)")
    print("| threads | facerec threads | process median ms | p95 ms | with face median ms |")
    print("|---|---|---|---|---|")
    for label, r in rows:
        print(
            f"| {label} | {r['threads']} | {r['process']['median_ms']:.0f} | "
            f"{r['process']['p95_ms']:.0f} | {r['process_with_face']['median_ms']:.0f} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"load": args.load, "runs": dict(rows)}, indent=2))
    print(f"wrote {args.json}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60, help="frames measured (after warm-up)")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--min-face-size", type=int, default=40, help="as `facerec camera`")
    ap.add_argument(
        "--detector",
        type=DetectorKind,
        choices=list(DetectorKind),
        default=None,
        help="[facerec's default]",
    )
    ap.add_argument("--threads", type=int, default=None, help="model threads [facerec default]")
    ap.add_argument("--load", type=int, default=0, help="competing CPU-bound processes")
    ap.add_argument("--compare", action="store_true", help="default vs 1 vs every core")
    ap.add_argument("--json", type=Path, default=Path("bench-results/camera.json"))
    args = ap.parse_args()
    if args.compare:
        compare(args)
        return

    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    try:
        measure(args)
    finally:
        for b in burners:
            b.terminate()


def measure(args: argparse.Namespace) -> None:
    settings = Settings(
        detector=DetectorConfig(min_face_size=args.min_face_size, kind=args.detector),
        threads=args.threads,
    )
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "door.mp4"
        write_video(video, args.frames + args.warmup)
        with FaceRec(Path(tmp) / "g.db", settings) as fr:
            fr.enroll("Barack Obama", [EX / "obama.jpg"])
            door = DoorCamera(
                fr, "bench", claim="Barack Obama", rule=WindowRule(k=10**6, n=10**6)
            )  # a window that never decides: every frame is measured alike
            decode: list[float] = []
            face: list[float] = []
            noface: list[float] = []
            with FrameSource(str(video), fps=1000, max_side=None) as source:
                frames = iter(source)
                for i in range(args.frames + args.warmup):
                    t0 = time.perf_counter()
                    frame = next(frames)
                    t1 = time.perf_counter()
                    assert frame.pixels.shape == (SIZE[1], SIZE[0], 3)
                    result, _ = door.observe(frame)
                    if i < args.warmup:
                        continue
                    decode.append((t1 - t0) * 1000)
                    (face if result.faces else noface).append(result.latency_ms)
            model = fr.model_name()
            detector = str(fr.detector_kind())
    process = face + noface
    report = {
        "frame_size": list(SIZE),
        "model": model,
        "detector": detector,
        "threads": runtime.threads(),
        "opencv_threads": cv2.getNumThreads(),
        "load": args.load,
        "min_face_size": args.min_face_size,
        "frames": args.frames,
        "decode": percentiles(decode),
        "process": percentiles(process),
        "process_with_face": percentiles(face),
        "process_without_face": percentiles(noface),
        "frames_per_s_sustainable": 1000.0 / statistics.mean(process) if process else None,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_loaded": "torch" in sys.modules,
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
            "opencv": cv2.__version__,
        },
    }
    print(
        f"door camera, {args.frames} frames of {SIZE[0]}x{SIZE[1]}, min face {args.min_face_size} px, "
        f"detector {detector}, model threads {runtime.threads()}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(f"{'stage':<22}{'frames':>8}{'median ms':>11}{'p95 ms':>9}")
    for key in ("decode", "process", "process_with_face", "process_without_face"):
        row = report[key]
        assert isinstance(row, dict)
        if row["n"]:
            print(f"{key:<22}{row['n']:>8}{row['median_ms']:>11.1f}{row['p95_ms']:>9.1f}")
    print(f"sustainable rate: {report['frames_per_s_sustainable']:.2f} frames/s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

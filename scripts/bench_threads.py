"""Per-frame latency by thread count and OpenMP wait policy, on an idle and on a busy machine.

    python scripts/bench_threads.py                       # 20 frames per setting
    python scripts/bench_threads.py --frames 50 --image ../shared/data/face_recognition/examples/obama.jpg

Each setting runs in a fresh process (the thread pools and OMP_WAIT_POLICY are
fixed when torch loads), which loads the default pipeline, applies
`facerec.runtime.use_threads(n)`, warms up on two frames and then times
`Pipeline.faces` (detection, alignment, quality, embedding: what a door
camera or `facerec verify` does per frame) on one photo. "busy" starts
CPU-bound competitors (`while True: pass`, one per `--competitors`) before the
process and stops them after. The table gives median, 90th percentile and
worst latency; the JSON in bench-results/ keeps every frame and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_IMAGE = SHARED / "face_recognition" / "examples" / "obama-480p.jpg"

CHILD = """
import json, sys, time
from facerec import runtime
n, frames, image = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
applied = runtime.use_threads(n)
from facerec.api import FaceRec
from facerec.faces.images import load_image
fr = FaceRec(':memory:')
img = load_image(image)
pipe = fr.pipeline
for _ in range(2):
    pipe.faces(img)
lat = []
for _ in range(frames):
    t = time.perf_counter()
    pipe.faces(img)
    lat.append((time.perf_counter() - t) * 1000)
import torch
print(json.dumps({"applied": applied, "torch_threads": torch.get_num_threads(), "ms": lat}))
"""


def run_one(threads: int, policy: str | None, competitors: int, frames: int, image: Path) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "FACEREC_THREADS", "OMP_WAIT_POLICY"):
        env.pop(var, None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(competitors)
    ]
    try:
        load = os.getloadavg()[0]
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(threads), str(frames), str(image)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        for p in busy:
            p.kill()
            p.wait()
    res = json.loads(out.stdout.strip().splitlines()[-1])
    ms = res["ms"]
    return {
        "threads": threads,
        "wait_policy": policy or "default",
        "competitors": competitors,
        "load_before": load,
        "median_ms": statistics.median(ms),
        "p90_ms": sorted(ms)[int(0.9 * (len(ms) - 1))],
        "max_ms": max(ms),
        "ms": ms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--competitors", type=int, default=1, help="CPU-bound processes when busy")
    ap.add_argument("--json", type=Path, default=Path("bench-results/threads.json"))
    args = ap.parse_args()
    from facerec.runtime import available_cores

    cores = available_cores()
    rows = []
    for competitors in (0, args.competitors):
        for policy in (None, "PASSIVE"):
            for threads in sorted({1, cores}):
                row = run_one(threads, policy, competitors, args.frames, args.image)
                rows.append(row)
                print(
                    f"busy={competitors} policy={row['wait_policy']} threads={threads}: "
                    f"median {row['median_ms']:.0f} ms",
                    file=sys.stderr,
                )
    print(f"\n{args.image.name}, {cores} cores, {args.frames} frames per setting\n")
    print(
        "| competing processes | OMP_WAIT_POLICY | threads | median ms | p90 ms | max ms | load before |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['competitors']} | {r['wait_policy']} | {r['threads']} | {r['median_ms']:.0f} | "
            f"{r['p90_ms']:.0f} | {r['max_ms']:.0f} | {r['load_before']:.1f} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "cores": cores,
                "image": str(args.image),
                "frames": args.frames,
                "rows": rows,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
